"""The full list of a prepared dataset's clips, per split: those written and those preparation could not use.

Evaluation protocols such as EmotiW's score every listed clip, including those in which no
face was found and files that could not be decoded. The shards hold only the clips written,
so the video builders also write `clip_list.json` next to them:

    {"format": 1, "dataset": "afew/default:1.0.0",
     "splits": {"validation": [{"clip_id": ..., "source": "Val_AFEW/Fear/x.avi",
                                "label": "Fear", "status": "ok" | "no_face" | "unreadable" | "empty",
                                "reason": "no face in any of its 95 frames"}, ...], ...}}

`missing_clips(directory, split, class_names)` reads back the clips of a split that were not
written (None when the dataset was built before clip lists were recorded: then nobody knows).
SynthEmo writes every clip it lists, so it needs no list (`WRITES_EVERY_CLIP`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Protocol, Sequence

from videmo.data.clip_status import EMPTY, NO_FACE, OK, UNREADABLE

CLIP_LIST_NAME = "clip_list.json"
FORMAT = 1
MISSING_STATUSES = (NO_FACE, UNREADABLE, EMPTY)


@dataclasses.dataclass(frozen=True)
class MissingClip:
  """A listed clip that is not in the shards: label (class index), source file, status and why."""

  source: str
  label: int
  status: str
  reason: str


class ClipOutcome(Protocol):
  """What `from_results` reads of a clip's result (preparation's `clip_processing.ClipResult`)."""

  clip_id: str
  source: str
  label: int
  split: str
  status: str
  message: str


def from_results(dataset: str, results: Sequence[ClipOutcome], class_names: Sequence[str]) -> dict:
  """The clip list of one build, from every listed clip's result (status OK = written)."""
  splits: dict[str, list[dict]] = {}
  for r in sorted(results, key=lambda r: (r.split, r.clip_id)):
    splits.setdefault(r.split, []).append(dict(clip_id=r.clip_id, source=r.source, label=class_names[r.label],
                                               status=r.status, reason=r.message))
  return {"format": FORMAT, "dataset": dataset, "splits": splits}


def write(clip_list: dict, directory: str | os.PathLike) -> Path:
  """Writes DIRECTORY/clip_list.json (via a temporary file); returns its path."""
  path = Path(directory) / CLIP_LIST_NAME
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(path.name + ".tmp")
  tmp.write_text(json.dumps(clip_list, indent=1) + "\n")
  os.replace(tmp, path)
  return path


def missing_clips(directory: str | os.PathLike, split: str, class_names: Sequence[str]) -> list[MissingClip] | None:
  """The clips of `split` that preparation listed but could not write; None if there is no list.

  Raises ValueError (naming the file) for a list that cannot be read or names an unknown class.
  """
  path = Path(directory) / CLIP_LIST_NAME
  if not path.exists():
    return None
  try:
    data = json.loads(path.read_text())
    entries = data["splits"].get(split, [])
    index = {name: i for i, name in enumerate(class_names)}
    missing = [MissingClip(e["source"], index[e["label"]], e["status"], e.get("reason", ""))
               for e in entries if e["status"] != OK]
  except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
    raise ValueError(f"{path}: not a readable clip list ({type(err).__name__}: {err})") from None
  return missing


def split_labels(directory: str | os.PathLike, split: str, class_names: Sequence[str]) -> list[int] | None:
  """The labels (class indices) of every listed clip of `split`, written or not; None without a list.

  Raises ValueError (naming the file) for a list that cannot be read, or that does not list
  `split` at all (its labels would otherwise be taken as none).
  """
  path = Path(directory) / CLIP_LIST_NAME
  if not path.exists():
    return None
  index = {name: i for i, name in enumerate(class_names)}
  try:
    splits = json.loads(path.read_text())["splits"]
    labels = {name: [index[e["label"]] for e in entries] for name, entries in splits.items()}
  except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
    raise ValueError(f"{path}: not a readable clip list ({type(err).__name__}: {err})") from None
  if split not in labels:
    raise ValueError(f"{path} lists no split {split!r} (it lists {sorted(labels)}); prepare the dataset again")
  return labels[split]
