"""`TrainedRun`: a finished (or saved) training run, reopened. Every reader of a run goes through it.

    run = TrainedRun.open("runs/synthemo")            # or runs/synthemo/checkpoints/700
    run.config, run.convention, run.step               # the experiment config, input normalisation, step
    run.dataset.class_names, run.dataset.clip_options  # what the data was (train/dataset_facts.py)
    model = run.model(conv_impl="xla")                 # the network, rebuilt with field overrides
    params, step = run.restore(model)                  # shape-checked parameters, on one device
    run.metrics()                                      # the final metrics record

The path is a work directory (its latest step), its checkpoints folder (the same), or a step
folder `WORKDIR/checkpoints/<step>`; the files a run holds are named in train/run_dir.py alone.
`videmo eval` (train/evaluation.py), `Predictor`, `videmo export` and the sweep read runs
through here. Errors are one line naming what is missing, wrong or damaged.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path
from typing import Any

import jax
import ml_collections

from videmo.models import video
from videmo.models.input_convention import InputConvention
from videmo.train import checkpoint as checkpoint_lib
from videmo.train import dataset_facts, run_dir


def build_model(config: ml_collections.ConfigDict, num_classes: int, **overrides: Any) -> video.VideoEmotionNet:
  """The network of `config.model` for `num_classes` classes, with field `overrides` (e.g. conv_impl)."""
  return video.build_model(dict(config.model.to_dict(), num_classes=num_classes, **overrides))


@dataclasses.dataclass(frozen=True)
class TrainedRun:
  """A work directory and the checkpoint to read from it (see the module docstring).

  workdir: the run's folder. requested_step: the step folder asked for (None: the latest).
  config: the experiment config. convention: the trunk's input normalisation.
  """

  workdir: Path
  requested_step: int | None
  config: ml_collections.ConfigDict
  convention: InputConvention

  @classmethod
  def open(cls, path: str | os.PathLike) -> "TrainedRun":
    """Read a work directory, its checkpoints folder or a step folder; one-line errors."""
    workdir, step = run_dir.locate(path)
    return cls(workdir, step, run_dir.read_config(workdir, path), run_dir.read_convention(workdir, path))

  @property
  def step(self) -> int | None:
    """The checkpoint's step: the one asked for, else the latest saved (None: none saved)."""
    if self.requested_step is not None:
      return self.requested_step
    return run_dir.latest_step(self.workdir)

  @property
  def crop_size(self) -> int:
    return int(self.config.input.crop_size)

  @functools.cached_property
  def dataset(self) -> dataset_facts.DatasetFacts:
    """The facts of the dataset the run trained on; class names from the run's metrics files
    when the builder does not know them (a video_folder dataset not built here)."""
    try:
      facts = dataset_facts.facts(dataset_facts.open_builder(self.config))
    except ValueError as err:
      raise ValueError(f"{run_dir.config_path(self.workdir)}: {err}") from None
    names = facts.class_names or run_dir.class_names_from_metrics(self.workdir)
    if not names:
      raise ValueError(f"cannot tell the class names of {self.config.dataset!r}: it is not built in "
                       f"{dataset_facts.data_dir(self.config)} and {self.workdir} holds no metrics of it; "
                       f"build the dataset there or set data_dir in {run_dir.config_path(self.workdir)}")
    expected = self.config.model.get("num_classes")
    if expected is not None and expected != len(names):
      raise ValueError(f"{run_dir.config_path(self.workdir)}: model.num_classes is {expected} but "
                       f"{self.config.dataset!r} has {len(names)} classes {list(names)}")
    return dataclasses.replace(facts, class_names=tuple(names))

  @property
  def class_names(self) -> tuple[str, ...]:
    return self.dataset.class_names

  def model(self, **overrides: Any) -> video.VideoEmotionNet:
    """The run's network (its config's model fields and its dataset's classes), with `overrides`."""
    return build_model(self.config, len(self.class_names), **overrides)

  def restore_state(self, model: video.VideoEmotionNet, sharding: jax.sharding.Sharding) -> tuple[Any, int]:
    """(TrainState, step) of the checkpoint, restored into `model`'s shapes placed by `sharding`.

    The target is shapes only (nothing initialised or compiled). Raises FileNotFoundError when
    no checkpoint is saved, CheckpointReadError when it is damaged or does not match the model.
    """
    step = self.step
    if step is None:
      raise FileNotFoundError(f"--checkpoint {self.workdir}: no checkpoint saved "
                              f"(expected {run_dir.checkpoints_dir(self.workdir)}/<step>)")
    target = checkpoint_lib.restore_target(model, self.config.optim, self.crop_size, sharding)
    checkpoints = checkpoint_lib.Checkpoints(self.workdir, create=False)
    try:
      return checkpoints.restore(target, step), step
    finally:
      checkpoints.close()

  def restore(self, model: video.VideoEmotionNet | None = None,
              sharding: jax.sharding.Sharding | None = None) -> tuple[Any, int]:
    """(parameters, step) of the checkpoint, restored into `model` (default: `self.model()`) on
    `sharding` (default: the first device); the optimiser state is dropped."""
    sharding = sharding or jax.sharding.SingleDeviceSharding(jax.devices()[0])
    state, step = self.restore_state(model or self.model(), sharding)
    return state.params, step

  def metrics(self, name: str = run_dir.METRICS_NAME) -> dict:
    """The run's final metrics record (or the `videmo eval` record `name`), as written."""
    return run_dir.read_metrics(self.workdir, name)

  def step_dir(self, step: int) -> Path:
    """WORKDIR/checkpoints/STEP."""
    return run_dir.step_dir(self.workdir, step)
