"""Starting a run from a trained run's parameters (`config.init.from_run`): fine-tuning on other data.

    videmo train --config=configs/table1_sa2_reg1.py --workdir=runs/mine \
        --config.dataset=video_folder/mine --config.init.from_run=runs/afew    # or runs/afew/checkpoints/700

The new run's parameters start as a fresh run's (`model.init` with its seed); then every parameter
of the source run that has a place in the new model is copied into it: the trunk, the spatial
attention, an LSTM's cell. The classifier (`classifier/kernel` [D, E] and `classifier/bias` [E]:
one column per class) is copied whole when both runs have the same class names in the same order;
otherwise class by class: a class of the new dataset whose name (compared case-insensitively) is
a class of the source run takes that class's column, and the other classes keep their fresh
initialisation. A parameter of the new model that the source lacks stays fresh (e.g. attention
when the source run had none); one of the source that the new model lacks is left out. One line
says what was loaded, remapped, new and left out; a parameter whose shape differs (another trunk
width, another number of heads) is a one-line ValueError naming it.

The source is read through TrainedRun: its config, its class names (from its dataset's builder,
or from the run's own metrics when that dataset is no longer on disk), its input convention (the
new run normalises its frames the same way, as with a converted trunk) and its checkpoint.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import jax
import numpy as np
from flax import traverse_util

from videmo.models.input_convention import InputConvention
from videmo.train.trained_run import TrainedRun

CLASSIFIER = "classifier"  # the Dense layer whose last axis is the classes (top level, or inside the LSTM)
# Model fields that change parameter shapes or names: named in a shape error when the runs differ in them.
SHAPE_FIELDS = ("trunk_width_divisor", "spatial", "num_heads", "attention_hidden", "temporal", "lstm_hidden")


@dataclasses.dataclass(frozen=True)
class Transfer:
  """What goes where. copied: parameter names ('trunk/conv1_1/kernel') taken whole from the source.
  classifier: 'whole' (the same class names in the same order: copied), 'by class' (the columns
  `class_columns`, (new class index, source class index) pairs, are copied; `remapped` names them
  (new class, source class) and `new_classes` keep their fresh columns) or 'fresh' (the source has
  no classifier in this place). fresh: names of the new model the source lacks. left_out: names
  of the source the new model lacks."""

  copied: tuple[str, ...]
  classifier: str
  class_columns: tuple[tuple[int, int], ...] = ()
  remapped: tuple[tuple[str, str], ...] = ()
  new_classes: tuple[str, ...] = ()
  fresh: tuple[str, ...] = ()
  left_out: tuple[str, ...] = ()

  def describe(self, source: str) -> str:
    """The one-line report."""
    if self.classifier == "whole":
      head = "classifier loaded (the same classes)"
    elif self.classifier == "by class":
      renamed = [new if new == old else f"{new}<-{old}" for new, old in self.remapped]
      head = (f"classifier: {len(self.remapped)} classes remapped ({', '.join(renamed) or 'none'}), "
              f"{len(self.new_classes)} new ({', '.join(self.new_classes) or 'none'})")
    else:
      head = "classifier: new (the source run has none in its place)"
    parts = [f"loaded {_modules([name for name in self.copied if not _is_classifier(name)]) or 'nothing'}", head]
    fresh = [name for name in self.fresh if not _is_classifier(name)]
    if fresh:
      parts.append(f"initialised fresh: {_modules(fresh)}")
    if self.left_out:
      parts.append(f"left out: {_modules(self.left_out)}")
    return f"init.from_run {source}: " + "; ".join(parts)


def _is_classifier(name: str) -> bool:
  return name.split("/")[-2:-1] == [CLASSIFIER]


def _modules(names: Sequence[str]) -> str:
  """'spatial (4 arrays), temporal (3 arrays)'."""
  counts: dict[str, int] = {}
  for name in names:
    module = name.split("/")[0]
    counts[module] = counts.get(module, 0) + 1
  ordered = sorted(counts.items(), key=lambda item: item[0] != "trunk")  # the trunk first, the rest as found
  return ", ".join(f"{module} ({n} array{'s' if n > 1 else ''})" for module, n in ordered)


def plan_transfer(source: Mapping[str, tuple[int, ...]], source_classes: Sequence[str],
                  target: Mapping[str, tuple[int, ...]], target_classes: Sequence[str],
                  hint: str = "") -> Transfer:
  """What to copy from parameters of shapes `source` ({'trunk/conv1_1/kernel': (3, 3, 3, 64), ...})
  with classes `source_classes` [E'] into parameters of shapes `target` with `target_classes` [E].

  Raises ValueError, one line naming the first parameter, when a shared parameter's shape differs
  (for the classifier: any axis but the classes); `hint` is added to it.
  """
  same = list(source_classes) == list(target_classes)
  shared = [name for name in target if name in source]
  for name in sorted(shared, key=lambda name: (not name.startswith("trunk/"), _is_classifier(name))):  # trunk first
    mine, theirs = tuple(target[name]), tuple(source[name])
    differs = mine != theirs if (same or not _is_classifier(name)) else mine[:-1] != theirs[:-1]
    if differs:
      raise ValueError(f"init.from_run: {name} is {list(theirs)} in the source run but {list(mine)} in this "
                       f"run's model{hint}")
  fresh = tuple(name for name in target if name not in source)
  left_out = tuple(name for name in source if name not in target)
  if not any(_is_classifier(name) for name in shared):
    return Transfer(copied=tuple(shared), classifier="fresh", fresh=fresh, left_out=left_out)
  if same:
    return Transfer(copied=tuple(shared), classifier="whole", fresh=fresh, left_out=left_out)
  by_name: dict[str, int] = {}
  for index, name in enumerate(source_classes):
    by_name.setdefault(name.strip().lower(), index)
  columns, remapped, new = [], [], []
  for index, name in enumerate(target_classes):
    found = by_name.get(name.strip().lower())
    if found is None:
      new.append(name)
    else:
      columns.append((index, found))
      remapped.append((name, source_classes[found]))
  return Transfer(copied=tuple(name for name in shared if not _is_classifier(name)), classifier="by class",
                  class_columns=tuple(columns), remapped=tuple(remapped), new_classes=tuple(new),
                  fresh=fresh, left_out=left_out)


def apply_transfer(transfer: Transfer, source: Mapping[str, np.ndarray], target: Mapping[str, Any]) -> dict[str, Any]:
  """Flat parameters {name: array}: `target`'s, with what `transfer` names taken from `source`
  (numpy arrays of the target leaf's dtype; the fresh ones as they were)."""
  out = dict(target)
  for name in transfer.copied:
    out[name] = np.asarray(source[name], np.asarray(target[name]).dtype)
  if transfer.class_columns:
    new, old = (list(axis) for axis in zip(*transfer.class_columns))
    for name in target:
      if _is_classifier(name) and name in source:
        value = np.array(target[name])
        value[..., new] = np.asarray(source[name])[..., old]
        out[name] = value
  return out


def open_source(path: str | os.PathLike) -> TrainedRun:
  """The trained run `config.init.from_run` names (a work directory or WORKDIR/checkpoints/STEP);
  one-line errors that name the field."""
  if not Path(path).expanduser().exists():
    raise FileNotFoundError(f"config.init.from_run {path} does not exist (give a work directory of "
                            f"`videmo train`, or one of its checkpoints/STEP folders)")
  try:
    return TrainedRun.open(path)
  except (FileNotFoundError, ValueError) as err:
    raise type(err)(f"config.init.from_run: {err}") from None


def source_convention(path: str | os.PathLike) -> InputConvention:
  """The input convention the source run trained with (the new run's)."""
  return open_source(path).convention


def _hint(source_config, config) -> str:
  differing = [f"{field} {source_config.model.get(field)!r} there, {config.model.get(field)!r} here"
               for field in SHAPE_FIELDS if source_config.model.get(field) != config.model.get(field)]
  return f" (model fields that differ: {'; '.join(differing)})" if differing else ""


def load_from_run(config, target_shapes: Any, class_names: Sequence[str]) -> tuple[Any, Transfer, str]:
  """Read config.init.from_run and check it against the new model before anything is compiled.

  target_shapes: the new model's `params` as shapes (jax.eval_shape of its init).
  class_names: the new dataset's classes [E].
  Returns (the source's parameters as a flat {name: numpy array}, the Transfer, the source's name
  for the report: 'WORKDIR (step S)').
  """
  run = open_source(config.init.from_run)
  source_classes = list(run.class_names)
  # The checkpoint restores into the source's own shapes, on this process's first device.
  params, step = run.restore(sharding=jax.sharding.SingleDeviceSharding(jax.local_devices()[0]))
  source = {name: np.asarray(value) for name, value in
            traverse_util.flatten_dict(jax.device_get(params), sep="/").items()}
  target = {name: tuple(leaf.shape) for name, leaf in traverse_util.flatten_dict(target_shapes, sep="/").items()}
  transfer = plan_transfer({name: value.shape for name, value in source.items()}, source_classes,
                           target, class_names, _hint(run.config, config))
  return source, transfer, f"{run.workdir} (step {step})"


def transfer_params(params: Any, source: Mapping[str, np.ndarray], transfer: Transfer) -> Any:
  """The new model's freshly initialised `params` (nested) with the source's parameters in them."""
  flat = traverse_util.flatten_dict(dict(params), sep="/")
  return traverse_util.unflatten_dict(apply_transfer(transfer, source, flat), sep="/")
