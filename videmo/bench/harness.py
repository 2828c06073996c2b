"""The training step under test, built exactly as `videmo train` builds it, on a synthetic batch.

`bench_config(config, ...)` applies the benchmark's sizes and options to a copy of an
experiment config; `build_step(config)` then makes the model, the replicated TrainState and
the optimiser with `experiment.init_state`, and the jitted train step with `experiment.compile_steps`
(the same shardings and buffer donation as training), compiles it for one batch

  frames [B, F, S, S, 3] uint8 (uniform noise), mask [B, F] all True, label [B], valid [B] all True

and records the compile time. Random pixels cost the same as faces: nothing in the step
depends on the values. No dataset is opened: the classes default to the paper's 7 emotions
(`config.model.num_classes` when set).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import jax
import ml_collections
import numpy as np

from videmo import parallel
from videmo.models import video
from videmo.train import experiment
from videmo.train.config_check import check_config

DEFAULT_CLASSES = 7
DTYPES = ("float32", "bfloat16")  # what a benchmark may time


def bench_config(config: ml_collections.ConfigDict, *, batch_size: int | None = None,
                 num_frames: int | None = None, size: int | None = None, dtype: str | None = None,
                 remat: bool | None = None) -> ml_collections.ConfigDict:
  """A checked copy of `config` with the given sizes and options (None keeps the config's).

  A pre-trained trunk is not required (the step costs the same with random weights); one
  named in `config.init.weights` is still loaded.
  """
  config = ml_collections.ConfigDict(config.to_dict())
  config.init.pretrained_required = False
  config.pretrain = None  # a two-stage config's pre-training run is not part of its step
  if config.model.num_classes is None:
    config.model.num_classes = DEFAULT_CLASSES
  for field, value in (("batch_size", batch_size), ("input.num_frames", num_frames),
                       ("input.crop_size", size), ("model.dtype", dtype), ("model.remat", remat)):
    if value is None:
      continue
    if field in ("batch_size", "input.num_frames", "input.crop_size") and (not isinstance(value, int) or value < 1):
      raise ValueError(f"{field} must be a positive integer, got {value!r}")
    if field == "model.dtype" and value not in DTYPES:
      raise ValueError(f"dtype must be one of {DTYPES}, got {value!r}")
    section, _, name = field.rpartition(".")
    (config[section] if section else config)[name] = value
  check_config(config)
  return config


def synthetic_batch(batch_size: int, num_frames: int, size: int, num_classes: int, seed: int = 0) -> dict:
  """A training batch of random pixels (see the module doc), as numpy arrays."""
  rng = np.random.default_rng(seed)
  return dict(frames=rng.integers(0, 256, (batch_size, num_frames, size, size, 3), dtype=np.uint8),
              mask=np.ones((batch_size, num_frames), bool),
              label=rng.integers(0, num_classes, batch_size).astype(np.int32),
              valid=np.ones((batch_size,), bool))


@dataclasses.dataclass
class StepBench:
  """A compiled train step with its state and batch; `run()` does one step and waits for it."""

  config: ml_collections.ConfigDict
  model: Any
  mesh: Any
  optimizer: Any
  schedule: Any
  convention: Any
  state: Any
  batch: dict
  rng: Any
  compiled: Any
  compile_seconds: float
  metrics: dict | None = None

  def normalise(self, frames):
    """uint8 frames [..., S, S, 3] -> the trunk's float32 input, as the step normalises them."""
    return self.convention.normalize(frames, np.float32)

  def run(self) -> dict:
    """One training step (the state advances; donated buffers are reused), blocking until done."""
    self.state, self.metrics = self.compiled(self.state, self.batch, self.rng)
    jax.block_until_ready((self.state, self.metrics))
    return self.metrics

  @property
  def sizes(self) -> tuple[int, int, int]:
    """(clips, frames, size) of the batch."""
    b, f, s = self.batch["frames"].shape[:3]
    return int(b), int(f), int(s)


def build_step(config: ml_collections.ConfigDict, seed: int = 0) -> StepBench:
  """Build and compile the train step for a `bench_config` config (see the module doc)."""
  mesh = parallel.data_mesh(config.num_devices or None)
  parallel.check_batch_size(config.batch_size, mesh)
  num_classes = config.model.num_classes
  model = video.build_model(config.model)
  frames, size = config.input.num_frames, config.input.crop_size
  # The schedule's length changes only the learning rate's value, never the step's cost.
  numbers = experiment.DerivedNumbers(steps_per_epoch=100, total_steps=1000, eval_every_steps=0)
  state, optimizer, _, schedule = experiment.init_state(config, model, mesh, frames, size,
                                                        numbers.steps_per_epoch, numbers.total_steps)
  convention = experiment.load_convention(config)
  exp = experiment.Experiment(config, mesh, None, None, [f"class{i}" for i in range(num_classes)], model,
                              numbers, convention)
  train_step, _ = experiment.compile_steps(exp, optimizer, schedule)
  batch = parallel.global_batch(synthetic_batch(config.batch_size, frames, size, num_classes, seed), mesh)
  rng = jax.random.key(seed + 7)
  start = time.perf_counter()
  compiled = train_step.lower(state, batch, rng).compile()
  compile_seconds = time.perf_counter() - start
  return StepBench(config, model, mesh, optimizer, schedule, convention, state, batch, rng,
                   compiled, compile_seconds)
