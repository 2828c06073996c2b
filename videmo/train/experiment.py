"""What a config resolves to at run time: devices, data, model, derived numbers, compiled steps.

`make_experiment(config)` checks the config, makes the `data` mesh, opens the dataset (building
it first when `config.build_if_missing`, e.g. SynthEmo; a split may be a union of splits such
as 'fold_1+fold_2', train/splits.py), builds the model and derives the numbers (steps per epoch, total steps, evaluation interval) and the clips evaluation scores.
`init_state`, `compile_steps` and `train_batch_stream` give training (train/loop.py) and the
benchmark (videmo/bench) the state (initialised, or from converted weights or a trained run:
train/from_run.py), the jit-compiled steps and the batches.
`evaluate_saved(config, run)` evaluates a saved run on `config.eval_split` (`videmo eval`).

Derived numbers are computed here from the config and the dataset, never inside a config.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from pathlib import Path
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import ml_collections
from jax.experimental import multihost_utils

from videmo import parallel
from videmo.data.loading import decoded_cache, decoded_store, pipeline
from videmo.models.input_convention import IMAGENET_CONVENTION, InputConvention
from videmo.train import dataset_facts, evaluation, from_run, optim, run_dir, splits, steps
from videmo.train.config_check import check_config
from videmo.train.trained_run import TrainedRun, build_model

log = logging.getLogger("videmo.train")


@dataclasses.dataclass(frozen=True)
class DerivedNumbers:
  """steps_per_epoch, total_steps, and eval_every_steps (0: only at the end)."""

  steps_per_epoch: int
  total_steps: int
  eval_every_steps: int


def open_dataset(config: ml_collections.ConfigDict) -> tuple[Any, Any, dataset_facts.DatasetFacts]:
  """(train source, eval source, the dataset's facts), building the dataset first if asked to."""
  data_dir = dataset_facts.data_dir(config)
  builder = dataset_facts.open_builder(config)
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
      builder = dataset_facts.open_builder(config)  # sees what process 0 built
      _build_if_missing(builder, config.dataset, data_dir)
  facts = dataset_facts.facts(builder)
  train, train_stored = _open_split(config, facts, config.train_split, data_dir)
  evaluation, eval_stored = _open_split(config, facts, config.eval_split, data_dir)
  if config.input.decoded_cache_mb > 0:  # one budget for the splits without a store (decoded_cache.py)
    cache = decoded_cache.DecodedCache(config.input.decoded_cache_mb)
    train, evaluation = (source if stored else decoded_cache.CachedSource(source, cache)
                         for source, stored in ((train, train_stored), (evaluation, eval_stored)))
  return train, evaluation, facts


def _open_split(config, facts: dataset_facts.DatasetFacts, split: str, data_dir: str) -> tuple[Any, bool]:
  """(source, whether it reads shared decoded stores) of a split or a union of splits ('fold_1+fold_2',
  train/splits.py): each part opened, and given its own store, on its own."""
  names = splits.parts(split)
  sources = [pipeline.open_split(config.dataset, name, data_dir) for name in names]
  stores = [_decoded_store(config, facts, name, source) for name, source in zip(names, sources)]
  stored = all(store is not None for store in stores)
  if stored:
    sources = [decoded_store.StoredSource(source, store) for source, store in zip(sources, stores)]
  return splits.concat(sources), stored


def _decoded_store(config, facts: dataset_facts.DatasetFacts, split: str, source: Any):
  """The split's shared decoded store (data/loading/decoded_store.py), or None: switched off,
  too big for input.decoded_store_mb, or a dataset folder this process cannot write."""
  megabytes = config.input.get("decoded_store_mb", 0)
  if not megabytes:
    return None
  try:
    return decoded_store.DecodedStore.open_or_build(
        source, facts.directory / "decoded" / split, int(megabytes * decoded_cache.MB),
        decoded_store.shard_files(facts.directory, split))
  except OSError as err:
    log.warning("no shared decoded store for %s %s (%s); decoding in this process", config.dataset, split, err)
    return None


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



def derived_numbers(config: ml_collections.ConfigDict, num_train_clips: int) -> DerivedNumbers:
  """Steps per epoch and total steps (config.num_train_steps > 0 overrides the epochs)."""
  steps_per_epoch = max(1, num_train_clips // config.batch_size)
  total = config.num_train_steps if config.num_train_steps > 0 else int(round(config.num_epochs * steps_per_epoch))
  return DerivedNumbers(steps_per_epoch=steps_per_epoch, total_steps=total,
                        eval_every_steps=max(1, int(round(config.eval_every_epochs * steps_per_epoch)))
                        if config.eval_every_epochs > 0 else 0)


def load_convention(config: ml_collections.ConfigDict) -> InputConvention:
  """The trunk's input convention: the converted weights' own; for a trunk trained from
  scratch, unit-scale inputs (ImageNet's mean and std: VGG-Face's 0..255 range would make a
  freshly initialised 13-layer ReLU stack blow up)."""
  if config.init.weights:
    from videmo.weights import converted

    return converted.load_convention(config.init.weights)
  if config.init.get("from_run"):
    return from_run.source_convention(config.init.from_run)
  return IMAGENET_CONVENTION


def init_state(config, model, mesh, num_frames: int, crop_size: int, steps_per_epoch: int,
               total_steps: int, class_names: Sequence[str] | None = None) -> tuple[steps.TrainState, Any, Any, Any]:
  """(replicated TrainState, optimizer, group labels, unit LR schedule).

  The parameters are the model's init with config.seed, then the converted trunk of
  config.init.weights or the trained run of config.init.from_run (train/from_run.py, which needs
  the dataset's `class_names` [E] to remap the classifier by name).
  """
  dummy = jnp.zeros((1, num_frames, crop_size, crop_size, 3), jnp.float32)
  mask = jnp.ones((1, num_frames), bool)
  load = run_source = None
  if config.init.weights:
    from videmo.weights import converted

    load = functools.partial(converted.load_trunk_into, converted_dir=config.init.weights,
                             allow_missing=tuple(config.init.allow_missing),
                             allow_unexpected=tuple(config.init.allow_unexpected))
    # Names and shapes are checked against the parameter shapes before init is compiled (seconds).
    load(jax.eval_shape(model.init, jax.random.key(config.seed), dummy, mask)["params"])
  elif config.init.get("from_run"):
    if class_names is None:
      raise ValueError("config.init.from_run remaps the classifier by class name, and this run's class names "
                       "are not known here")
    run_source = from_run.load_from_run(config, jax.eval_shape(model.init, jax.random.key(config.seed), dummy,
                                                               mask)["params"], class_names)
  params = _compiled_init(model, dummy)(jax.random.key(config.seed), dummy, mask)["params"]
  if load is not None:
    params, report = load(params)
    log.info("pre-trained trunk: %s", report)
    print(f"loaded pre-trained trunk from {config.init.weights}:\n{report}")
  if run_source is not None:
    source, transfer, name = run_source
    params = from_run.transfer_params(params, source, transfer)
    log.info("%s", transfer.describe(name))
    print(transfer.describe(name))
  optimizer, labels, schedule = optim.make_optimizer(params, config.optim, total_steps, steps_per_epoch)
  for line in optim.describe_groups(params, labels):
    log.info("param group %s", line)
  state = steps.TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=jax.jit(optimizer.init)(params))
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
  numbers: DerivedNumbers
  convention: InputConvention
  eval: evaluation.EvalSplit | None = None  # every listed clip of the eval split (None: no data, as in bench)
  dataset: dataset_facts.DatasetFacts | None = None  # None: no data (bench)

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
  train_source, eval_source, facts = open_dataset(config)
  class_names = list(facts.class_names)
  num_classes = len(class_names)
  if config.model.num_classes not in (None, num_classes):
    raise ValueError(f"config.model.num_classes is {config.model.num_classes} but {config.dataset} has "
                     f"{num_classes} classes {class_names}; leave it unset to take the dataset's")
  model = build_model(config, num_classes)
  numbers = derived_numbers(config, len(train_source))
  return Experiment(config, mesh, train_source, eval_source, class_names, model, numbers,
                    convention or load_convention(config),
                    evaluation.eval_split(config, facts, train_source, eval_source, class_names), facts)


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


@dataclasses.dataclass
class SavedEvaluation:
  """What `evaluate_saved` did: the metrics record and its path, and what a report of the split
  needs (the experiment, the restored parameters, the per-clip results, the run and step)."""

  record: dict
  path: Path
  exp: Experiment
  params: Any
  result: evaluation.Evaluation
  run: TrainedRun
  step: int


def evaluate_saved(config: ml_collections.ConfigDict, checkpoint: str) -> SavedEvaluation:
  """Evaluate `checkpoint` (a work directory or WORKDIR/checkpoints/STEP) on config.eval_split.

  The input normalisation is the one the run trained with. Writes the record to
  WORKDIR/eval_SPLIT_STEP.json (run_dir.eval_name) and prints the result line and the headline
  policy's per-class recall. `videmo eval --report` then draws the split (videmo/predict/split_report.py).
  """
  run = TrainedRun.open(checkpoint)
  with config.unlocked():
    config.init.weights = ""  # the checkpoint holds the whole model
    config.init.from_run = ""
    config.init.pretrained_required = False
    config.pretrain = None
  exp = make_experiment(config, run.convention)
  state, step = run.restore_state(exp.model, parallel.replicated(exp.mesh))
  result = evaluation.evaluate(compile_eval_step(exp), state.params, exp)
  name = run_dir.eval_name(config.eval_split, step)
  record = evaluation.write_results(run.workdir, step, result, exp, name=name)
  print(evaluation.result_line(config, step, result))
  for class_name, recall in zip(exp.class_names, result.headline(config.no_face_policy).per_class_recall):
    print(f"  {class_name:>10}: {100 * recall:5.1f}%")
  return SavedEvaluation(record, run_dir.metrics_path(run.workdir, name), exp, state.params, result, run, step)
