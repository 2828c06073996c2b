"""The annotation files of a video_folder dataset, and the folds they name.

Which files: the `*.csv` files at the top of manual_dir (or those the config names); when there
are none, the CSV files one or two folders down whose path names a fold, as DFEW publishes its
five folds (`EmoLabel_DataSplit/train(single-labeled)/set_1.csv`, `.../test(single-labeled)/set_1.csv`)
or as `set_1/train.csv`, `set_1/test.csv`.

Which split each row goes to:

  * a file whose path names a fold (a folder or file name `set_K`, `fold_K` or `split_K`, any
    case, with '_', '-' or nothing before K; the file's own name first) lists fold K's clips:
    its rows go to the split `fold_K`, unless its path also says `train`: then it is fold K's
    training list. k-fold training on fold K reads the other folds (`fold_1+...`, the train
    layer's split unions), so a training list is checked to hold exactly the other folds' clips,
    and not stored again;
  * any other file: the third column (a number n gives `fold_n`), else the file's name
    (train.csv -> `train`), as clip_sources.annotation_clips reads it.

So one CSV `path,label,fold` and DFEW's per-fold train/test lists build the same splits
`fold_1` ... `fold_5`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from videmo.data.preparation import clip_sources

_FOLD = re.compile(r"(?<![a-z0-9])(?:set|fold|split)[-_ ]?0*(\d+)(?![0-9])")
_TRAIN = re.compile(r"(?<![a-z])train(?:ing)?(?![a-z])")
_DEPTHS = ("*/*.csv", "*/*/*.csv")  # where fold lists are looked for when manual_dir has no CSV at its top


def fold_of(path: Path, root: Path) -> tuple[int | None, bool]:
  """(the fold number the path names or None, whether it names a training list), from the
  file's name and its folders below `root`: 'test(single-labeled)/set_3.csv' -> (3, False)."""
  relative = Path(clip_sources.relative(path, root))
  names = [relative.stem.lower()] + [part.lower() for part in reversed(relative.parent.parts)]
  fold = next((int(match.group(1)) for name in names for match in [_FOLD.search(name)] if match), None)
  return fold, any(_TRAIN.search(name) for name in names)


def annotation_files(root: Path, annotations: Sequence[str] | None = None) -> list[Path]:
  """The annotation files of manual_dir `root` (see the module docstring); [] for a folder tree."""
  root = Path(root)
  if annotations:
    files = [root / name for name in annotations]
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
      raise FileNotFoundError(f"video_folder: annotation file(s) not found: {', '.join(missing)}")
    return files
  top = sorted(p for p in root.iterdir()
               if p.suffix.lower() == ".csv" and p.is_file() and not clip_sources.is_hidden(p))
  if top:
    return top
  deeper = (p for pattern in _DEPTHS for p in root.glob(pattern) if p.is_file())
  return sorted(p for p in deeper if not any(part.startswith(".") for part in p.relative_to(root).parts)
                and fold_of(p, root)[0] is not None)


def annotation_clips(root: Path, files: Sequence[Path], class_names: Sequence[str] | None = None):
  """(tasks per split, class names, listing issues) of annotation `files` (module docstring).

  Raises ValueError (one line) when a fold's training list is not exactly the other folds' clips,
  or names a fold whose own clips no file lists.
  """
  root = Path(root)
  fold_splits, training = {}, {}
  for path in files:
    fold, is_training = fold_of(path, root)
    if fold is None:
      continue
    if is_training:
      training.setdefault(fold, []).append(path)
    else:
      fold_splits[path] = f"fold_{fold}"
  listed = [path for path in files if not any(path in group for group in training.values())]
  splits, names, issues = clip_sources.annotation_clips(root, listed, class_names, fold_splits)
  for fold, lists in sorted(training.items()):
    _check_training_lists(root, fold, lists, splits, names)
  return splits, names, issues


def _check_training_lists(root: Path, fold: int, lists: Sequence[Path], splits: dict, names: Sequence[str]) -> None:
  """Fold `fold`'s training lists must hold exactly the clips (and labels) of the other folds."""
  where = ", ".join(clip_sources.relative(path, root) for path in lists)
  if f"fold_{fold}" not in splits:
    raise ValueError(f"video_folder: {where} is fold {fold}'s training list, but no file lists fold {fold}'s own "
                     f"clips (its test list, e.g. a path with 'test' and 'set_{fold}')")
  found, _, _ = clip_sources.annotation_clips(root, lists, names, {path: "train" for path in lists})
  listed = {(task.clip_id, names[task.label]) for task in found.get("train", [])}
  others = {(task.clip_id, names[task.label]) for split, tasks in splits.items()
            if split.startswith("fold_") and split != f"fold_{fold}" for task in tasks}
  extra, missing = sorted(listed - others), sorted(others - listed)
  if extra or missing:
    first = lambda items: f" (first: {items[0][0]} {items[0][1]})" if items else ""
    raise ValueError(f"video_folder: {where} (fold {fold}'s training list) is not the other folds' clips: "
                     f"{len(extra)} listed there only{first(extra)}, {len(missing)} of the other folds not "
                     f"listed{first(missing)}; training on fold {fold} reads every other fold, so its list must "
                     f"hold exactly those")
