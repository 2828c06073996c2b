"""Find the labelled clips of a dataset on disk: class folders, split trees, annotation CSVs.

Every builder turns its layout into `ClipTask`s (see clip_processing) plus a list of
`ListingIssue`s for what it had to leave out (a file that is not a video, a folder that is
not a known class, an annotation naming a missing file, ...). Nothing is dropped silently:
the issues go into the preparation report.

A clip is a video file (video_io.VIDEO_EXTENSIONS) or a folder of frame images. Its id is
its path relative to the data root without the video suffix, e.g. "Train_AFEW/Angry/000123".
Hidden entries (".DS_Store", "._x.avi") are ignored.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import re
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from videmo.data import video_io
from videmo.data.preparation.clip_processing import ClipTask

# Issue kinds, as they appear in the report.
NOT_VIDEO = "not_video"              # a file/folder in the tree that is neither a video nor frames
UNKNOWN_CLASS = "unknown_class"      # a class folder (or label) that is not one of the classes
UNLABELLED = "unlabelled"            # a clip outside any class folder
MISSING_FILE = "missing_file"        # an annotation row naming a path that does not exist
BAD_ANNOTATION = "bad_annotation"    # an annotation row that cannot be parsed
DUPLICATE = "duplicate"              # the same clip listed twice in one split
MISSING_SPLIT = "missing_split"      # an expected split folder that is absent


@dataclasses.dataclass(frozen=True)
class ListingIssue:
  """Something in the data that was left out: kind (see the constants), path, why."""

  kind: str
  path: str
  message: str


def is_hidden(path: Path) -> bool:
  return path.name.startswith(".")


def relative(path: Path, root: Path) -> str:
  """POSIX path of `path` relative to `root` (the absolute path when outside it)."""
  try:
    return path.relative_to(root).as_posix()
  except ValueError:
    return path.as_posix()


def clip_id(path: Path, root: Path) -> str:
  """The clip's id: its path relative to root, without a video suffix."""
  rel = relative(path, root)
  return rel[: -len(path.suffix)] if path.suffix.lower() in video_io.VIDEO_EXTENSIONS else rel


def sanitize_split(name: str) -> str:
  """A TFDS split name from a folder or column value: 'Val AFEW' -> 'val_afew', '3' -> 'fold_3'."""
  name = name.strip()
  if name.isdigit():
    return f"fold_{int(name)}"
  clean = re.sub(r"\W+", "_", name).strip("_").lower()
  if not clean or clean == "all":
    raise ValueError(f"{name!r} cannot name a split")
  return clean


def clips_in_folder(folder: Path, root: Path, label: int, split: str
                    ) -> tuple[list[ClipTask], list[ListingIssue]]:
  """The clips (videos and frame folders) directly inside one class folder, sorted."""
  tasks, issues = [], []
  for entry in sorted(folder.iterdir()):
    if is_hidden(entry):
      continue
    if video_io.is_video_file(entry) or video_io.is_frame_folder(entry):
      tasks.append(ClipTask(clip_id(entry, root), os.fspath(entry.resolve()), relative(entry, root), label, split))
    else:
      what = "folder without frame images" if entry.is_dir() else f"not a video file ({entry.suffix or 'no extension'})"
      issues.append(ListingIssue(NOT_VIDEO, relative(entry, root), what))
  return tasks, issues


def class_folder_clips(split_dir: Path, root: Path, split: str, classes: Mapping[str, int],
                       known: Sequence[str]) -> tuple[list[ClipTask], list[ListingIssue]]:
  """Clips of `split_dir/<class>/<clip>`; `classes` maps a folder name to a class index
  (folders it does not know are reported as unknown classes, loose files as unlabelled)."""
  tasks, issues = [], []
  for entry in sorted(split_dir.iterdir()):
    if is_hidden(entry):
      continue
    rel = relative(entry, root)
    if not entry.is_dir():
      kind = UNLABELLED if video_io.is_video_file(entry) else NOT_VIDEO
      issues.append(ListingIssue(kind, rel, "file outside the class folders"))
    elif entry.name in classes:
      found, problems = clips_in_folder(entry, root, classes[entry.name], split)
      tasks += found
      issues += problems
    else:
      issues.append(ListingIssue(UNKNOWN_CLASS, rel,
                                 f"folder {entry.name!r} is not a class ({', '.join(known)}); skipped"))
  return tasks, issues


def tree_clips(root: Path, class_names: Sequence[str] | None = None
               ) -> tuple[dict[str, list[ClipTask]], list[str], list[ListingIssue]]:
  """Clips of a `<root>/<split>/<class>/<video or frame folder>` tree.

  Returns (tasks per split, class names, issues). Class names are the sorted class folders
  of all splits unless `class_names` fixes them.
  """
  issues: list[ListingIssue] = []
  split_dirs = {}
  for entry in sorted(root.iterdir()):
    if is_hidden(entry):
      continue
    if not entry.is_dir():
      issues.append(ListingIssue(NOT_VIDEO, relative(entry, root),
                                 "file at the top of the tree (expected split folders)"))
      continue
    try:
      split = sanitize_split(entry.name)
    except ValueError as err:
      issues.append(ListingIssue(NOT_VIDEO, relative(entry, root), str(err)))
      continue
    if split in split_dirs:
      issues.append(ListingIssue(DUPLICATE, relative(entry, root), f"a second folder for split {split!r}; skipped"))
      continue
    split_dirs[split] = entry
  if class_names is None:
    class_names = sorted({c.name for d in split_dirs.values() for c in d.iterdir() if c.is_dir() and not is_hidden(c)})
  classes = {name: index for index, name in enumerate(class_names)}
  splits = {}
  for split, split_dir in split_dirs.items():
    tasks, problems = class_folder_clips(split_dir, root, split, classes, class_names)
    splits[split] = tasks
    issues += problems
  return splits, list(class_names), issues


_HEADER_WORDS = {"path", "file", "filename", "file_name", "video", "video_name", "video_path", "clip", "name",
                 "label", "emotion", "class", "category", "split", "fold", "subset"}


def read_annotations(csv_path: Path) -> tuple[list[tuple[int, list[str]]], list[ListingIssue]]:
  """Rows (line number, cells) of an annotation file: comma, semicolon, tab or space separated,
  with or without a header row (recognised by its words: path, label, emotion, ...)."""
  text = csv_path.read_text(encoding="utf-8-sig", errors="replace")
  try:
    dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t ")
  except csv.Error:
    dialect = csv.excel
  rows, issues = [], []
  for line, cells in enumerate(csv.reader(io.StringIO(text), dialect), start=1):
    cells = [c.strip() for c in cells if c.strip() != ""]
    if not cells:
      continue
    if line == 1 and any(c.lower() in _HEADER_WORDS for c in cells):
      continue
    if len(cells) < 2:
      issues.append(ListingIssue(BAD_ANNOTATION, f"{csv_path.name}:{line}",
                                 f"expected 'path, label[, split]', got {cells}"))
      continue
    rows.append((line, cells))
  return rows, issues


def _label_order(labels: Iterable[str]) -> list[str]:
  labels = set(labels)
  if all(re.fullmatch(r"-?\d+", label) for label in labels):
    return sorted(labels, key=int)
  return sorted(labels)


def _resolve(path_text: str, base: Path) -> Path | None:
  path = Path(path_text)
  path = path if path.is_absolute() else base / path
  if path.exists():
    return path
  for suffix in sorted(video_io.VIDEO_EXTENSIONS):
    candidate = path.with_name(path.name + suffix)
    if candidate.exists():
      return candidate
  return None


def annotation_clips(root: Path, csv_files: Sequence[Path], class_names: Sequence[str] | None = None,
                     file_splits: Mapping[Path, str] | None = None
                     ) -> tuple[dict[str, list[ClipTask]], list[str], list[ListingIssue]]:
  """Clips listed in annotation files, rows `path, label[, split or fold]`.

  Paths are relative to `root` (or absolute; the video suffix may be left out). The split is
  the third column (a number n names the split 'fold_n'), else the file's name
  (train.csv -> 'train'); `file_splits` may name the split of every row of a file instead.
  Class names are the sorted labels (numerically when all labels are numbers) unless
  `class_names` fixes them. Returns (tasks per split, class names, issues).
  """
  issues: list[ListingIssue] = []
  entries = []  # (split, label text, path, row reference)
  for csv_path in csv_files:
    rows, problems = read_annotations(csv_path)
    issues += problems
    for line, cells in rows:
      ref = f"{csv_path.name}:{line}"
      try:
        split = (file_splits or {}).get(csv_path) or sanitize_split(cells[2] if len(cells) > 2 else csv_path.stem)
      except ValueError as err:
        issues.append(ListingIssue(BAD_ANNOTATION, ref, str(err)))
        continue
      entries.append((split, cells[1], cells[0], ref))
  if class_names is None:
    class_names = _label_order(label for _, label, _, _ in entries)
  classes = {name: index for index, name in enumerate(class_names)}
  splits: dict[str, list[ClipTask]] = {}
  seen: set[tuple[str, str]] = set()
  for split, label, path_text, ref in entries:
    if label not in classes:
      issues.append(ListingIssue(UNKNOWN_CLASS, ref, f"label {label!r} is not a class ({', '.join(class_names)})"))
      continue
    path = _resolve(path_text, root)
    if path is None:
      issues.append(ListingIssue(MISSING_FILE, ref, f"{path_text}: no such video or frame folder under {root}"))
      continue
    if not (video_io.is_video_file(path) or video_io.is_frame_folder(path)):
      issues.append(ListingIssue(NOT_VIDEO, ref, f"{path_text}: neither a video file nor a folder of frames"))
      continue
    cid = clip_id(path, root)
    if (split, cid) in seen:
      issues.append(ListingIssue(DUPLICATE, ref, f"{path_text} is listed twice in split {split!r}; kept the first"))
      continue
    seen.add((split, cid))
    splits.setdefault(split, []).append(
        ClipTask(cid, os.fspath(path.resolve()), relative(path, root), classes[label], split))
  for split in splits:
    splits[split].sort(key=lambda task: task.clip_id)
  return dict(sorted(splits.items())), list(class_names), issues
