"""`train_and_evaluate(config, workdir)`: the whole training run, resumable after a kill.

0. With `config.pretrain`, first run that config in `workdir/pretrain` and start from its trunk
   (two-stage training, videmo/train/stages.py).
1. Open the dataset (building it first when `config.build_if_missing`, e.g. SynthEmo).
2. Build the model, initialise it or load a converted pre-trained trunk (`config.init.weights`).
3. Make the optimiser (parameter groups, SGDR) and log every parameter's group.
4. Resume from the latest checkpoint in `workdir/checkpoints`, if any.
5. Train with a jit-compiled data-parallel step over all devices, logging to TensorBoard and
   the console, checkpointing every `checkpoint_every_steps` and evaluating every
   `eval_every_epochs`; a non-finite loss stops the run with the last good checkpoint intact.
6. Evaluate and write `workdir/metrics.json` and `workdir/confusion.png`; with
   `config.export_trunk`, also the trained trunk to `workdir/trunk` (a converted-weight folder).

Derived numbers (classes, steps per epoch, total steps, SGDR cycle steps) are computed here
from the config and the dataset, never inside a config.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.experimental import multihost_utils
from tqdm import tqdm

from videmo import parallel
from videmo.data.loading import decoded_cache, pipeline
from videmo.models import video
from videmo.models.input_convention import IMAGENET_CONVENTION, InputConvention
from videmo.train import checkpoint as checkpoint_lib
from videmo.train import optim, run_dir, scoring, stages, steps, writers
from videmo.train.config_check import check_config

log = logging.getLogger("videmo.train")


class NonFiniteLossError(FloatingPointError):
  """Training produced a NaN or Inf loss or gradient."""


def open_dataset(config: ml_collections.ConfigDict) -> tuple[Any, Any, list[str]]:
  """(train source, eval source, class names), building the dataset first if asked to."""
  from videmo.data.preparation import prepare

  data_dir = prepare.data_dir_or_default(config.data_dir)
  builder = prepare.load_builder(config.dataset, data_dir)
  if not builder.is_prepared() and not config.build_if_missing:
    raise FileNotFoundError(f"dataset {config.dataset!r} is not built in {data_dir}; run "
                            f"`videmo prepare --dataset {config.dataset} --data_dir {data_dir}` "
                            f"or set --config.build_if_missing=True")
  # Several processes: process 0 builds first; the others then find it built (a shared data_dir)
  # or build their own copy (a data_dir on each host).
  if jax.process_index() == 0:
    _build_if_missing(builder, config.dataset, data_dir)
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(f"videmo: {config.dataset} built")
    if jax.process_index() > 0:
      builder = prepare.load_builder(config.dataset, data_dir)  # sees what process 0 built
      _build_if_missing(builder, config.dataset, data_dir)
  class_names = list(builder.info.features["label"].names)
  train = pipeline.open_split(config.dataset, config.train_split, data_dir)
  evaluation = pipeline.open_split(config.dataset, config.eval_split, data_dir)
  if config.input.decoded_cache_mb > 0:  # one budget for both splits (decoded_cache.py)
    cache = decoded_cache.DecodedCache(config.input.decoded_cache_mb)
    train, evaluation = decoded_cache.CachedSource(train, cache), decoded_cache.CachedSource(evaluation, cache)
  return train, evaluation, class_names


def _build_if_missing(builder, dataset: str, data_dir: str) -> None:
  import tensorflow_datasets as tfds

  if not builder.is_prepared():
    print(f"building {dataset} in {data_dir} (once)")
    builder.download_and_prepare(file_format="array_record", download_config=tfds.download.DownloadConfig())


def train_batch_stream(config: ml_collections.ConfigDict, source: Any, batch_size: int, start_step: int = 0):
  """This process's training batches from global step `start_step` on, as `config.input` says
  (pipeline.train_batches; `batch_size` is the per-process batch)."""
  return pipeline.train_batches(
      source, batch_size=batch_size, num_frames=config.input.num_frames, crop_size=config.input.crop_size,
      seed=config.seed, start_step=start_step, mirror=config.input.mirror,
      vertical_flip=config.input.vertical_flip, workers=config.input.workers,
      process_index=jax.process_index(), process_count=jax.process_count())


def derived_numbers(config: ml_collections.ConfigDict, num_train_clips: int) -> dict[str, int]:
  """Steps per epoch and total steps (config.num_train_steps > 0 overrides the epochs)."""
  steps_per_epoch = max(1, num_train_clips // config.batch_size)
  total = config.num_train_steps if config.num_train_steps > 0 else int(round(config.num_epochs * steps_per_epoch))
  return dict(steps_per_epoch=steps_per_epoch, total_steps=total,
              eval_every_steps=max(1, int(round(config.eval_every_epochs * steps_per_epoch)))
              if config.eval_every_epochs > 0 else 0)


def load_convention(config: ml_collections.ConfigDict) -> InputConvention:
  """The trunk's input convention: the converted weights' own; for a trunk trained from
  scratch, unit-scale inputs (ImageNet's mean and std: VGG-Face's 0..255 range would make a
  freshly initialised 13-layer ReLU stack blow up)."""
  if config.init.weights:
    from videmo.weights import converted

    return converted.load_convention(config.init.weights)
  return IMAGENET_CONVENTION


def init_state(config, model, mesh, num_frames: int, crop_size: int, steps_per_epoch: int,
               total_steps: int) -> tuple[steps.TrainState, Any, Any, Any]:
  """(replicated TrainState, optimizer, group labels, unit LR schedule)."""
  dummy = jnp.zeros((1, num_frames, crop_size, crop_size, 3), jnp.float32)
  load = None
  if config.init.weights:
    from videmo.weights import converted

    load = functools.partial(converted.load_trunk_into, converted_dir=config.init.weights,
                             allow_missing=tuple(config.init.allow_missing),
                             allow_unexpected=tuple(config.init.allow_unexpected))
    # Names and shapes are checked against the parameter shapes before init is compiled (seconds).
    load(jax.eval_shape(model.init, jax.random.key(config.seed), dummy, jnp.ones((1, num_frames), bool))["params"])
  params = _compiled_init(model, dummy)(jax.random.key(config.seed), dummy, jnp.ones((1, num_frames), bool))["params"]
  if load is not None:
    params, report = load(params)
    log.info("pre-trained trunk: %s", report)
    print(f"loaded pre-trained trunk from {config.init.weights}:\n{report}")
  optimizer, labels, schedule = optim.make_optimizer(params, config.optim, total_steps, steps_per_epoch)
  for line in optim.describe_groups(params, labels):
    log.info("param group %s", line)
  state = steps.TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=optimizer.init(params))
  return parallel.replicate(state, mesh), optimizer, labels, schedule


# XLA:CPU spends seconds in LLVM on the random initialisers' unrolled loops at its default
# optimisation level; at level 1 it compiles them 3-5x faster and (checked on VGG16 and the
# narrow trunks with every head) gives the same values bit for bit. The init runs once.
_CPU_INIT_OPTIONS = {"xla_backend_optimization_level": 1}


def _compiled_init(model, frames):
  """model.init(rng, frames [1, F, S, S, 3], mask [1, F]), jit-compiled (quickly, on CPU)."""
  init = jax.jit(model.init)
  if jax.default_backend() != "cpu":
    return init
  mask = jnp.ones(frames.shape[:2], bool)
  compiled = init.lower(jax.random.key(0), frames, mask).compile(compiler_options=_CPU_INIT_OPTIONS)
  return lambda rng, frames, mask: compiled(rng, frames, mask)


@dataclasses.dataclass
class Experiment:
  """What a config resolves to at run time: devices, data, model, derived numbers."""

  config: ml_collections.ConfigDict
  mesh: Any
  train_source: Any
  eval_source: Any
  class_names: list[str]
  model: Any
  numbers: dict[str, int]
  convention: InputConvention
  eval: scoring.EvalSplit | None = None  # every listed clip of the eval split (None: no data, as in bench)

  @property
  def num_classes(self) -> int:
    return len(self.class_names)

  def normalise(self, frames):
    """uint8 RGB frames [..., H, W, 3] -> the trunk's float32 input (traceable)."""
    return self.convention.normalize(frames, jnp.float32)


def make_experiment(config: ml_collections.ConfigDict, convention: InputConvention | None = None) -> Experiment:
  """Check the config, make the mesh, open the data, build the model, derive the numbers."""
  check_config(config)
  parallel.initialize_distributed()
  mesh = parallel.data_mesh(config.num_devices or None)
  parallel.check_batch_size(config.batch_size, mesh)
  parallel.check_batch_size(config.eval_batch_size, mesh)
  train_source, eval_source, class_names = open_dataset(config)
  num_classes = len(class_names)
  if config.model.num_classes not in (None, num_classes):
    raise ValueError(f"config.model.num_classes is {config.model.num_classes} but {config.dataset} has "
                     f"{num_classes} classes {class_names}; leave it unset to take the dataset's")
  model = video.build_model(dict(config.model.to_dict(), num_classes=num_classes))
  numbers = derived_numbers(config, len(train_source))
  return Experiment(config, mesh, train_source, eval_source, class_names, model, numbers,
                    convention or load_convention(config),
                    scoring.eval_split(config, train_source, eval_source, class_names))


def compile_steps(exp: Experiment, optimizer, schedule):
  """(train_step, eval_step), jit-compiled for the experiment's mesh."""
  replicated, sharded = parallel.replicated(exp.mesh), parallel.batch_sharded(exp.mesh)
  train_step = jax.jit(
      parallel.traced_on(exp.mesh, steps.make_train_step(exp.model, optimizer, exp.normalise,
                                                         exp.config.penalty_coef, schedule)),
      in_shardings=(replicated, sharded, replicated), out_shardings=(replicated, replicated),
      donate_argnums=(0,))
  return train_step, compile_eval_step(exp)


def compile_eval_step(exp: Experiment):
  """eval_step, jit-compiled for the experiment's mesh (parameters replicated, batch split)."""
  return jax.jit(parallel.traced_on(exp.mesh, steps.make_eval_step(exp.model, exp.normalise)),
                 in_shardings=(parallel.replicated(exp.mesh), parallel.batch_sharded(exp.mesh)))


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | os.PathLike) -> dict:
  """Train (or resume) and evaluate; returns the final metrics record (also in metrics.json).

  With config.pretrain set, first pre-trains the trunk in WORKDIR/pretrain (videmo/train/stages.py);
  with config.export_trunk, writes the trained trunk to WORKDIR/trunk at the end.
  """
  workdir = Path(workdir).absolute()
  if config.get("pretrain") is not None:
    check_config(config)
    config = stages.with_pretrained_trunk(config, workdir, train_and_evaluate)
  exp = make_experiment(config)
  mesh, numbers = exp.mesh, exp.numbers
  local_batch = parallel.check_batch_size(config.batch_size, mesh)
  log.info("derived: %s; input convention: %s", numbers, exp.convention.describe())
  if jax.process_index() == 0:
    workdir.mkdir(parents=True, exist_ok=True)
    run_dir.write_run_files(workdir, config, exp.convention)

  state, optimizer, _, schedule = init_state(config, exp.model, mesh, config.input.num_frames,
                                             config.input.crop_size, numbers["steps_per_epoch"],
                                             numbers["total_steps"])
  checkpoints = checkpoint_lib.Checkpoints(workdir, max_to_keep=config.keep_checkpoints)
  state, start = checkpoints.restore_latest(state)
  if start:
    print(f"resumed from {checkpoints.directory}/{start}")

  train_step, eval_step = compile_steps(exp, optimizer, schedule)
  train_source = exp.train_source
  writer = writers.create_writer(workdir)
  if start == 0:
    writer.write_hparams({k: str(v) for k, v in config.to_dict().items()})

  batches = train_batch_stream(config, train_source, local_batch, start)
  rng = jax.random.key(config.seed + 7)
  total = numbers["total_steps"]
  pending, history = None, []
  timer = time.perf_counter()
  progress = tqdm(range(start, total), initial=start, total=total, desc="train", unit="step",
                  disable=jax.process_index() != 0 or not config.progress_bar)
  for step in progress:
    batch = parallel.global_batch(next(batches), mesh)
    state, step_metrics = train_step(state, batch, rng)
    if pending is not None:  # look at the previous step's metrics while this one runs
      _check_finite(*pending, checkpoints)
      history.append(pending[1])
    pending = (step, step_metrics)
    done = step + 1
    if done % config.log_every_steps == 0 or done == total:
      _check_finite(*pending, checkpoints)
      history.append(pending[1])
      pending = None
      scalars = {f"train/{k}": float(np.mean([float(m[k]) for m in history])) for k in history[0]}
      elapsed = time.perf_counter() - timer
      scalars["train/steps_per_second"] = len(history) / elapsed
      scalars["train/clips_per_second"] = len(history) * config.batch_size / elapsed
      writer.write_scalars(done, scalars)
      progress.set_postfix(loss=f"{scalars['train/loss']:.3f}", acc=f"{scalars['train/accuracy']:.2f}")
      history, timer = [], time.perf_counter()
    if done % config.checkpoint_every_steps == 0 or done == total:
      if pending is not None:
        _check_finite(*pending, checkpoints)
      checkpoints.save(done, state)
    if numbers["eval_every_steps"] and done % numbers["eval_every_steps"] == 0 and done != total:
      scoring.write_scalars(writer, done, scoring.evaluate(eval_step, state.params, exp))
  progress.close()

  final_step = int(state.step)
  result = scoring.evaluate(eval_step, state.params, exp)
  scoring.write_scalars(writer, final_step, result)
  writer.flush()
  checkpoints.close()
  record = scoring.write_results(workdir, final_step, result, exp)
  print(scoring.result_line(config, final_step, result))
  if config.export_trunk:
    stages.export_trunk(state.params, exp.convention, config, workdir, final_step)
  return record


def _check_finite(step: int, step_metrics: dict, checkpoints) -> None:
  if float(step_metrics["finite"]) < 1:
    last = checkpoints.latest_step()
    raise NonFiniteLossError(
        f"non-finite loss or gradient at step {step + 1} (loss={float(step_metrics['loss'])}); "
        f"training stopped, the last good checkpoint is "
        f"{'step ' + str(last) if last is not None else 'none (no checkpoint was saved yet)'} "
        f"in {checkpoints.directory}")
