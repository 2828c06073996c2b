"""`train_and_evaluate(config, workdir)`: the whole training run, resumable after a kill.

0. With `config.pretrain`, first run that config in `workdir/pretrain` and start from its trunk
   (two-stage training, videmo/train/stages.py).
1. Take the work directory's lock (one `videmo train` per folder: train/run_lock.py), open
   the dataset (building it first when `config.build_if_missing`, e.g. SynthEmo) and derive
   the numbers (train/experiment.py).
2. Build the model, initialise it or load a converted pre-trained trunk (`config.init.weights`) or a
   trained run's parameters (`config.init.from_run`, remapped by class name: train/from_run.py).
3. Make the optimiser (parameter groups, SGDR) and log every parameter's group.
4. Resume from the latest checkpoint in `workdir/checkpoints`, if any.
5. Train with a jit-compiled data-parallel step over all devices, logging to TensorBoard and
   the console, checkpointing every `checkpoint_every_steps` and evaluating every
   `eval_every_epochs`; a non-finite loss stops the run with the last good checkpoint intact.
6. Evaluate and write the metrics record and the confusion matrix (train/evaluation.py); with
   `config.export_trunk`, also the trained trunk to `workdir/trunk` (a converted-weight folder).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path

import jax
import ml_collections
import numpy as np
from tqdm import tqdm

from videmo import parallel
from videmo.train import checkpoint as checkpoint_lib
from videmo.train import evaluation, experiment, run_dir, run_lock, stages, writers
from videmo.train.config_check import check_config

log = logging.getLogger("videmo.train")


class NonFiniteLossError(FloatingPointError):
  """Training produced a NaN or Inf loss or gradient."""


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | os.PathLike) -> dict:
  """Train (or resume) and evaluate; returns the final metrics record (also written to WORKDIR).

  With config.pretrain set, first pre-trains the trunk in WORKDIR/pretrain (videmo/train/stages.py);
  with config.export_trunk, writes the trained trunk to WORKDIR/trunk at the end. Raises
  run_lock.WorkdirInUse (one line) when another `videmo train` is writing WORKDIR.
  """
  workdir = Path(workdir).absolute()
  check_config(config)
  parallel.initialize_distributed()  # before anything asks JAX which process this is
  with run_lock.held(workdir) if jax.process_index() == 0 else contextlib.nullcontext():
    return _train_and_evaluate(config, workdir)


def _train_and_evaluate(config: ml_collections.ConfigDict, workdir: Path) -> dict:
  if config.get("pretrain") is not None:
    config = stages.with_pretrained_trunk(config, workdir, train_and_evaluate)
  exp = experiment.make_experiment(config)
  mesh, numbers = exp.mesh, exp.numbers
  local_batch = parallel.check_batch_size(config.batch_size, mesh)
  log.info("derived: %s; input convention: %s", numbers, exp.convention.describe())
  if jax.process_index() == 0:
    workdir.mkdir(parents=True, exist_ok=True)
    run_dir.write_run_files(workdir, config, exp.convention)

  state, optimizer, _, schedule = experiment.init_state(config, exp.model, mesh, config.input.num_frames,
                                                        config.input.crop_size, numbers.steps_per_epoch,
                                                        numbers.total_steps, exp.class_names)
  checkpoints = checkpoint_lib.Checkpoints(workdir, max_to_keep=config.keep_checkpoints)
  state, start = checkpoints.restore_latest(state)
  if start:
    print(f"resumed from {checkpoints.directory}/{start}")

  train_step, eval_step = experiment.compile_steps(exp, optimizer, schedule)
  train_source = exp.train_source
  writer = writers.create_writer(workdir)
  if start == 0:
    writer.write_hparams({k: str(v) for k, v in config.to_dict().items()})

  batches = experiment.train_batch_stream(config, train_source, local_batch, start)
  rng = jax.random.key(config.seed + 7)
  total = numbers.total_steps
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
    if numbers.eval_every_steps and done % numbers.eval_every_steps == 0 and done != total:
      evaluation.write_scalars(writer, done, evaluation.evaluate(eval_step, state.params, exp))
  progress.close()

  final_step = int(state.step)
  result = evaluation.evaluate(eval_step, state.params, exp)
  evaluation.write_scalars(writer, final_step, result)
  writer.flush()
  checkpoints.close()
  record = evaluation.write_results(workdir, final_step, result, exp)
  print(evaluation.result_line(config, final_step, result))
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
