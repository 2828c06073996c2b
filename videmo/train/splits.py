"""A config's splits: one built split ('train', 'fold_3') or a union of built splits ('fold_1+fold_2').

k-fold evaluation trains on every fold but one and evaluates on that one:

    config.train_split = "fold_1+fold_2+fold_4+fold_5"
    config.eval_split = "fold_3"

(`fold_splits(3, (1, 2, 3, 4, 5))`; `videmo sweep --folds` sets both for each fold). Each part
of a union is opened, and decoded into its shared store, on its own, so the runs of a 5-fold
sweep share five stores of one fold each rather than five of four folds each; `ConcatSource`
reads the parts as one random-access source, the records of the first part first.
"""

from __future__ import annotations

import bisect
from typing import Any, Sequence

SEPARATOR = "+"


def parts(split: str) -> tuple[str, ...]:
  """The built splits a split name stands for: 'fold_1+fold_2' -> ('fold_1', 'fold_2'); ValueError
  (one line) for an empty name, an empty part or a part named twice."""
  names = tuple(part.strip() for part in str(split).split(SEPARATOR))
  if not all(names):
    raise ValueError(f"a split is a name or names joined by '{SEPARATOR}' (e.g. 'fold_1+fold_2'), got {split!r}")
  repeated = sorted({name for name in names if names.count(name) > 1})
  if repeated:
    raise ValueError(f"the split {split!r} names {', '.join(repeated)} more than once")
  return names


def fold_name(fold: int) -> str:
  """The split of fold `fold` in a built dataset: 'fold_3' (video_folder's name for it)."""
  return f"fold_{int(fold)}"


def fold_splits(fold: int, folds: Sequence[int]) -> tuple[str, str]:
  """(train split, eval split) of fold `fold` in k-fold evaluation over `folds`: the union of every
  other fold, and the fold itself. fold_splits(2, (1, 2, 3)) -> ('fold_1+fold_3', 'fold_2')."""
  folds = tuple(int(f) for f in folds)
  if fold not in folds or len(folds) < 2:
    raise ValueError(f"fold {fold} must be one of at least 2 folds, got {folds}")
  return SEPARATOR.join(fold_name(f) for f in folds if f != fold), fold_name(fold)


class ConcatSource:
  """Random-access sources read as one: index i is record i of the parts laid end to end.

  sources: the parts (each with len() and [index] -> record dict), in order.
  """

  def __init__(self, sources: Sequence[Any]):
    self.sources = list(sources)
    self._ends = []
    total = 0
    for source in self.sources:
      total += len(source)
      self._ends.append(total)

  def __len__(self) -> int:
    return self._ends[-1] if self._ends else 0

  def __getitem__(self, index: int) -> dict:
    index = int(index)
    if index < 0:
      index += len(self)
    if not 0 <= index < len(self):
      raise IndexError(f"record {index} of {len(self)}")
    part = bisect.bisect_right(self._ends, index)
    start = self._ends[part - 1] if part else 0
    return self.sources[part][index - start]

  def __repr__(self) -> str:
    return f"ConcatSource({self.sources!r})"


def concat(sources: Sequence[Any]) -> Any:
  """The one source of `sources` itself, or a ConcatSource of several."""
  return sources[0] if len(sources) == 1 else ConcatSource(sources)
