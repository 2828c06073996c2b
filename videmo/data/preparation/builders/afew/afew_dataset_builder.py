"""AFEW: movie clips of seven acted emotions (EmotiW), prepared into aligned-face clips.

The licensed AFEW files are placed by hand (`--manual_dir`); nothing is downloaded. The
builder reads AFEW's layout

    <manual_dir>/Train_AFEW/<Emotion>/*.avi   ->  split "train"
    <manual_dir>/Val_AFEW/<Emotion>/*.avi     ->  split "validation"

accepting the usual spellings of the split folders (Train_AFEW, AFEW_Train, Train, train,
Val_AFEW, Val, Validation, ..., case-insensitive, at the top of manual_dir or one level
down) and of the emotion folders (Angry/anger, Happy/happiness, Surprise/surprised, ...).
Labels are AFEW's seven emotions in EmotiW's order (videmo.data.schema.AFEW_EMOTIONS).
AFEW's test set has no public labels and is not built. Folders that are not emotions
(e.g. AlignedFaces_LBPTOP_Points) and files that are not videos are listed in the report.

    videmo prepare --dataset afew --manual_dir ~/AFEW --data_dir ~/tensorflow_datasets
    tfds build videmo/data/preparation/builders/afew --manual_dir ~/AFEW --file_format array_record
"""

from __future__ import annotations

import re
from pathlib import Path

from videmo.data.preparation import clip_sources
from videmo.data import schema
from videmo.data.preparation.builders import clip_builder

_SPLIT_PATTERNS = {
    "train": re.compile(r"^(afew[\W_]*)?train(ing)?([\W_]*afew)?([\W_]*v?\d+(\.\d+)?)?$", re.IGNORECASE),
    "validation": re.compile(r"^(afew[\W_]*)?val(id|idation)?([\W_]*afew)?([\W_]*v?\d+(\.\d+)?)?$", re.IGNORECASE),
}
_SPLIT_FOLDERS = {"train": "Train_AFEW", "validation": "Val_AFEW"}

_EMOTION_ALIASES = {
    "angry": "Angry", "anger": "Angry",
    "disgust": "Disgust", "disgusted": "Disgust",
    "fear": "Fear", "fearful": "Fear", "afraid": "Fear",
    "happy": "Happy", "happiness": "Happy",
    "neutral": "Neutral",
    "sad": "Sad", "sadness": "Sad",
    "surprise": "Surprise", "surprised": "Surprise",
}


def _candidate_dirs(root: Path) -> list[Path]:
  """Folders at depth 1 and 2 under root, shallowest first, each level sorted."""
  level1 = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
  level2 = sorted(q for p in level1 for q in p.iterdir() if q.is_dir() and not q.name.startswith("."))
  return level1 + level2


def emotion_index(folder_name: str) -> int | None:
  """AFEW class index of an emotion folder name (any usual spelling), else None."""
  name = _EMOTION_ALIASES.get(folder_name.strip().lower())
  return None if name is None else schema.AFEW_EMOTIONS.index(name)


def list_afew(root: Path):
  """(tasks per split, AFEW's class names, listing issues) of an AFEW folder."""
  root = Path(root)
  issues: list[clip_sources.ListingIssue] = []
  found: dict[str, Path] = {}
  for folder in _candidate_dirs(root):
    for split, pattern in _SPLIT_PATTERNS.items():
      if not pattern.match(folder.name):
        continue
      if split in found:
        if folder.parent != found[split]:  # not inside the chosen one
          issues.append(clip_sources.ListingIssue(
              clip_sources.DUPLICATE, clip_sources.relative(folder, root),
              f"another {_SPLIT_FOLDERS[split]} folder; using {clip_sources.relative(found[split], root)}"))
      else:
        found[split] = folder
  if not found:
    seen = ", ".join(p.name for p in sorted(root.iterdir())[:10])
    raise FileNotFoundError(f"afew: no Train_AFEW or Val_AFEW folder in {root} (it holds: {seen or 'nothing'})")
  splits = {}
  for split, folder in found.items():
    classes = {entry.name: emotion_index(entry.name) for entry in folder.iterdir()
               if entry.is_dir() and emotion_index(entry.name) is not None}
    tasks, problems = clip_sources.class_folder_clips(folder, root, split, classes, schema.AFEW_EMOTIONS)
    splits[split] = tasks
    issues += problems
  for split, name in _SPLIT_FOLDERS.items():
    if split not in found:
      issues.append(clip_sources.ListingIssue(clip_sources.MISSING_SPLIT, name,
                                              f"no {name} folder in {root}; split {split!r} not built"))
  return splits, list(schema.AFEW_EMOTIONS), issues


class Builder(clip_builder.VideoClipBuilder):
  """AFEW (EmotiW): movie clips of 7 acted emotions as 256x256 aligned face sequences."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  AFEW is licensed by its authors for research (ask the EmotiW organisers). Unpack it into
  manual_dir so that it holds Train_AFEW/<Emotion>/*.avi and Val_AFEW/<Emotion>/*.avi, with
  Emotion one of Angry, Disgust, Fear, Happy, Neutral, Sad, Surprise (Train/Val/Validation
  and AFEW_Train-style names are accepted too, also one folder down).
  """

  CITATION = """@article{dhall2012afew,
  title = {Collecting Large, Richly Annotated Facial-Expression Databases from Movies},
  author = {Dhall, Abhinav and Goecke, Roland and Lucey, Simon and Gedeon, Tom},
  journal = {IEEE MultiMedia}, volume = {19}, number = {3}, pages = {34--41}, year = {2012}}"""

  BUILDER_CONFIGS = [
      clip_builder.VideoClipConfig(
          name="default", description="Frames where a face was found (the paper's preparation)."),
      clip_builder.VideoClipConfig(
          name="reuse_last", missing_face="reuse_last",
          description="Every frame; a frame without a face repeats the last face (face_found False)."),
  ]

  def _fixed_class_names(self):
    return schema.AFEW_EMOTIONS

  def _list_clips(self, root: Path):
    return list_afew(root)
