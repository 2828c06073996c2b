"""Checkpoints: the one module that talks to orbax.

A checkpoint is the whole `TrainState` (step, parameters, optimiser state) saved under
`WORKDIR/checkpoints/<step>`. Orbax writes each one to a temporary folder and renames it
when complete, so a run killed while saving leaves the previous checkpoints intact and the
next run resumes from the latest complete one. The data order is a function of the step,
so the step is all a resumed run needs to see the same batches.

A checkpoint whose files are damaged (a data file cut short, a disk that filled up) cannot
be read. Resuming (`restore_latest`) then moves it aside to `checkpoints/damaged-<step>`,
says so in one line, and continues from the newest checkpoint that reads; it never falls
back silently to step 0. Reading one named checkpoint (`restore`) fails with one line that
names the step folder.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from videmo.train import run_dir

log = logging.getLogger(__name__)
DAMAGED_PREFIX = "damaged-"


class CheckpointReadError(ValueError):
  """A checkpoint's files cannot be read (the message is one line naming the step folder)."""


def _first_line(err: BaseException, limit: int = 200) -> str:
  """The innermost cause of `err` (TensorStore's own words, not orbax's wrapper), on one line."""
  while err.__cause__ is not None or err.__context__ is not None:
    err = err.__cause__ or err.__context__
  text = f"{type(err).__name__}: " + " ".join(str(err).split())
  return (text[:limit] + "...") if len(text) > limit else text


class _Unreadable(Exception):
  """One checkpoint could not be restored: `reason` (one line); `value_error` if orbax raised a
  ValueError (what a structure mismatch raises too). Carries no traceback into orbax's reads."""

  def __init__(self, reason: str, value_error: bool):
    super().__init__(reason)
    self.reason, self.value_error = reason, value_error


@contextlib.contextmanager
def _stderr_held():
  """Hold back what is written to stderr (fd 2) inside; yields a function that drops it."""
  sys.stderr.flush()
  saved_fd, held = os.dup(2), tempfile.TemporaryFile()
  os.dup2(held.fileno(), 2)
  keep = [True]
  try:
    yield lambda: keep.__setitem__(0, False)
  finally:
    sys.stderr.flush()
    os.dup2(saved_fd, 2)
    os.close(saved_fd)
    if keep[0]:
      held.seek(0)
      os.write(2, held.read())
    held.close()


def _settle(seconds: float = 0.5) -> None:
  """After a failed read: let orbax's other reads in flight end and collect them, silently.

  They end on TensorStore's threads with tracebacks dozens of lines long ("Event loop is
  closed", "Task exception was never retrieved", "Exception ignored in: <coroutine ...>")."""
  saved_hook, asyncio_log = sys.unraisablehook, logging.getLogger("asyncio")
  saved_disabled = asyncio_log.disabled
  sys.unraisablehook, asyncio_log.disabled = (lambda _: None), True
  try:
    time.sleep(seconds)
    gc.collect()
  finally:
    sys.unraisablehook, asyncio_log.disabled = saved_hook, saved_disabled


class Checkpoints:
  """Save and restore `TrainState`s in a work directory.

  Args:
    workdir: the run's directory (checkpoints go to `workdir/checkpoints`).
    max_to_keep: how many recent checkpoints to keep.
  """

  def __init__(self, workdir: str | os.PathLike, max_to_keep: int = 3):
    self.directory = run_dir.checkpoints_dir(workdir)
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                           enable_async_checkpointing=False)
    self._manager = ocp.CheckpointManager(self.directory, options=options)

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state: Any) -> None:
    """Save `state` as step `step` (blocking: when this returns, the checkpoint is complete)."""
    self._manager.save(step, args=ocp.args.StandardSave(state), force=True)
    self._manager.wait_until_finished()

  def steps(self) -> list[int]:
    """The saved steps, oldest first."""
    return sorted(self._manager.all_steps())

  def _restore(self, target: Any, step: int) -> Any:
    """The state at `step`, or _Unreadable (after the failed read's noise has been dropped)."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    failure = None
    with _stderr_held() as drop:
      try:
        return self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
      except Exception as err:  # orbax and TensorStore raise many types for one unreadable folder
        failure = _Unreadable(_first_line(err), isinstance(err, ValueError))
      drop()
      _settle()  # `err` and its traceback are gone: the reads it held can be collected
    raise failure

  def restore(self, target: Any, step: int | None = None) -> Any:
    """Restore the checkpoint at `step` (default: latest) into the structure/shardings of `target`.

    Raises CheckpointReadError when it cannot be read; the message says whether it does not
    match the target (another model or optimiser) or is damaged (older checkpoints read).
    """
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"no checkpoint in {self.directory}")
    try:
      return self._restore(target, step)
    except _Unreadable as failure:
      raise self._read_error(target, step, failure) from None

  def _read_error(self, target: Any, step: int, failure: _Unreadable) -> CheckpointReadError:
    folder = f"{self.directory}/{step}"
    if failure.value_error and self._readable_older(target, step) is None:
      return CheckpointReadError(
          f"the checkpoint {folder} does not match this config's model or optimiser (was it written "
          f"with other model or optim settings?), or cannot be read; use a fresh --workdir. "
          f"orbax: {failure.reason}")
    return CheckpointReadError(f"the checkpoint {folder} cannot be read (damaged or partly written): "
                               f"{failure.reason}")

  def _readable_older(self, target: Any, step: int) -> int | None:
    """The newest step before `step` that restores into `target` (None if none does)."""
    for older in reversed([s for s in self.steps() if s < step]):
      try:
        self._restore(target, older)
        return older
      except _Unreadable:
        continue
    return None

  def restore_latest(self, target: Any) -> tuple[Any, int]:
    """(state, step) from the newest checkpoint that reads, or (target, 0) when there is none.

    A newer checkpoint that cannot be read is moved to `checkpoints/damaged-<step>` with a
    one-line warning. If checkpoints exist and none reads, raises CheckpointReadError (the
    newest one's), so that a run never restarts from step 0 over a workdir's checkpoints.
    """
    steps = self.steps()
    first_error = None
    for step in reversed(steps):
      try:
        state = self._restore(target, step)
      except _Unreadable as failure:
        first_error = first_error or (step, failure)
        continue
      for damaged in [s for s in steps if s > step]:
        self._set_aside(damaged, first_error[1] if first_error[0] == damaged else None)
      return state, step
    if first_error is None:
      return target, 0
    raise self._read_error(target, *first_error)

  def _set_aside(self, step: int, failure: _Unreadable | None) -> None:
    source = Path(self.directory) / str(step)
    destination = Path(self.directory) / f"{DAMAGED_PREFIX}{step}"
    if destination.exists():
      destination = Path(self.directory) / f"{DAMAGED_PREFIX}{step}-{os.getpid()}"
    if jax.process_index() == 0:
      source.rename(destination)
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices(f"videmo: checkpoint {step} set aside")
    reason = f" ({failure.reason})" if failure is not None else ""
    log.warning("the checkpoint %s cannot be read%s; moved it to %s and resuming from an older one",
                source, reason, destination.name)
    self._manager.reload()

  def close(self) -> None:
    self._manager.close()


def restore_target(model: Any, optim_config: Any, crop_size: int, sharding: jax.sharding.Sharding) -> Any:
  """The `TrainState` a run saves, as shapes only (`jax.eval_shape`), placed by `sharding`.

  A restore target for `restore_params` that initialises and compiles nothing (a VGG16
  `init` takes seconds to compile on a CPU). model: the run's VideoEmotionNet; optim_config:
  its `config.optim` (the optimiser state's structure follows the parameter groups).
  """
  import jax.numpy as jnp

  from videmo.train import optim, steps

  frames = jax.ShapeDtypeStruct((1, 1, crop_size, crop_size, 3), jnp.float32)
  params = jax.eval_shape(model.init, jax.random.key(0), frames, jax.ShapeDtypeStruct((1, 1), jnp.bool_))["params"]
  # The step counts shape only the learning-rate schedule, not the optimiser state.
  optimizer, _, _ = optim.make_optimizer(params, optim_config, total_steps=1, steps_per_epoch=10_000)
  target = steps.TrainState(step=jax.ShapeDtypeStruct((), jnp.int32), params=params,
                            opt_state=jax.eval_shape(optimizer.init, params))
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), target)


def restore_params(path: str | os.PathLike, target_state: Any) -> tuple[Any, int]:
  """(state, step) from a work directory (latest step) or a step folder `.../checkpoints/<step>`."""
  path = Path(path).absolute()
  if not path.exists():
    raise FileNotFoundError(f"--checkpoint {path} does not exist")
  workdir, step = run_dir.split_checkpoint_path(path)
  checkpoints = Checkpoints(workdir)
  try:
    step = checkpoints.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"--checkpoint {path}: no checkpoint found (expected {workdir}/checkpoints/<step>)")
    return checkpoints.restore(target_state, step), step
  finally:
    checkpoints.close()
