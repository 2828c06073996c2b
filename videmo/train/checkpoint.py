"""Checkpoints: the one module that talks to orbax.

A checkpoint is the whole `TrainState` (step, parameters, optimiser state) saved under
`WORKDIR/checkpoints/<step>`. Orbax writes each one to a temporary folder and renames it
when complete, so a run killed while saving leaves the previous checkpoints intact and the
next run resumes from the latest complete one. The data order is a function of the step,
so the step is all a resumed run needs to see the same batches.

Once orbax has committed a checkpoint, a manifest of its files (relative path, size, CRC-32)
is written into the step folder (`run_dir.MANIFEST_FILE`). A checkpoint whose files no
longer match it (a data file cut short, a disk that filled up) is known to be damaged before
orbax reads anything. Resuming (`restore_latest`) moves a damaged checkpoint aside to
`checkpoints/damaged-<step>`, says so in one line, and continues from the newest
checkpoint that reads; it never falls back silently to step 0. Reading one named checkpoint
(`restore`: videmo eval, predict, export) fails with one line that names the step folder
and says it is damaged. A checkpoint that matches its manifest but does not restore was
written for another model or optimiser. A checkpoint without a manifest (written by an
older videmo) is read by orbax alone, as before.

Every device of a data-parallel run holds the same state. Orbax's default for such replicated
arrays on CPU ("replica-parallel" saving) cuts each array into one slice per device, which
costs one small compiled `slice` per parameter shape and device at a run's first save (1-2 s
of a tiny run's 11 s), and buys nothing where the devices share one host memory. Here the
first replica writes each array whole, into the same array files as before, read back the same
way (checkpoints of earlier versions too); orbax's record of each array's write shape
(`default/array_metadatas/`) is no longer written, and restoring does not read it.
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from videmo.train import run_dir

log = logging.getLogger(__name__)
DAMAGED_PREFIX = "damaged-"
_CHUNK = 1 << 20


class CheckpointReadError(ValueError):
  """A checkpoint's files cannot be read (the message is one line naming the step folder)."""


def _first_line(err: BaseException, limit: int = 200) -> str:
  """The innermost cause of `err` (TensorStore's own words, not orbax's wrapper), on one line."""
  while err.__cause__ is not None or err.__context__ is not None:
    err = err.__cause__ or err.__context__
  text = f"{type(err).__name__}: " + " ".join(str(err).split())
  return (text[:limit] + "...") if len(text) > limit else text


def _crc32(path: Path) -> int:
  crc = 0
  with open(path, "rb") as f:
    while chunk := f.read(_CHUNK):
      crc = zlib.crc32(chunk, crc)
  return crc


def _files(folder: Path) -> list[Path]:
  return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != run_dir.MANIFEST_FILE)


def write_manifest(folder: str | os.PathLike) -> Path:
  """Write FOLDER/videmo_manifest.json: {relative path: [size, CRC-32]} of every file in it."""
  folder = Path(folder)
  entries = {os.fspath(p.relative_to(folder)): [p.stat().st_size, _crc32(p)] for p in _files(folder)}
  path = folder / run_dir.MANIFEST_FILE
  temporary = path.with_name(path.name + ".tmp")
  temporary.write_text(json.dumps({"format": 1, "files": entries}))
  os.replace(temporary, path)
  return path


def damage(folder: str | os.PathLike) -> str | None:
  """How a step folder differs from its manifest (one line), or None when it matches or has none."""
  folder = Path(folder)
  path = folder / run_dir.MANIFEST_FILE
  if not path.is_file():
    return None
  try:
    entries = json.loads(path.read_text())["files"]
  except (OSError, ValueError, KeyError, TypeError) as err:
    return f"its manifest cannot be read ({type(err).__name__})"
  for name, (size, crc) in sorted(entries.items()):
    file = folder / name
    if not file.is_file():
      return f"{name} is missing"
    if file.stat().st_size != size:
      return f"{name} is {file.stat().st_size} bytes, {size} when saved"
    if _crc32(file) != crc:
      return f"{name} has changed since it was saved (CRC-32)"
  return None


class _Unreadable(Exception):
  """One checkpoint could not be restored: `reason` (one line); `damaged`: its files do not match
  its manifest; `verified`: they do (so a failed restore means another model or optimiser)."""

  def __init__(self, reason: str, damaged: bool, verified: bool):
    super().__init__(reason)
    self.reason, self.damaged, self.verified = reason, damaged, verified


def _type_handlers() -> ocp.type_handlers.TypeHandlerRegistry:
  """Orbax's standard type handlers, with jax.Arrays written whole by their first replica."""
  standard = ocp.type_handlers.supported_types()
  registry = ocp.type_handlers.create_type_handler_registry(
      *((kind, ocp.type_handlers.get_type_handler(kind)) for kind in standard if kind is not jax.Array))
  registry.add(jax.Array, ocp.type_handlers.ArrayHandler(use_replica_parallel=False))
  return registry


class Checkpoints:
  """Save and restore `TrainState`s in a work directory.

  Args:
    workdir: the run's directory (checkpoints go to `workdir/checkpoints`).
    max_to_keep: how many recent checkpoints to keep.
  """

  def __init__(self, workdir: str | os.PathLike, max_to_keep: int = 3, create: bool = True):
    self.directory = run_dir.checkpoints_dir(workdir)
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=create,
                                           enable_async_checkpointing=False)
    handler = ocp.PyTreeCheckpointHandler(type_handler_registry=_type_handlers())
    self._manager = ocp.CheckpointManager(self.directory, options=options, item_handlers=handler)

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state: Any) -> None:
    """Save `state` as step `step` (blocking: when this returns, the checkpoint is complete)."""
    self._manager.save(step, args=ocp.args.PyTreeSave(state), force=True)
    self._manager.wait_until_finished()
    if jax.process_index() == 0:
      write_manifest(Path(self.directory) / str(step))

  def steps(self) -> list[int]:
    """The saved steps, oldest first."""
    return sorted(self._manager.all_steps())

  def _restore(self, target: Any, step: int) -> Any:
    """The state at `step`, or _Unreadable: its files checked against its manifest first."""
    folder = Path(self.directory) / str(step)
    reason = damage(folder)
    if reason is not None:
      raise _Unreadable(reason, damaged=True, verified=False)
    verified = (folder / run_dir.MANIFEST_FILE).is_file()
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    try:
      restore_args = ocp.checkpoint_utils.construct_restore_args(abstract)
      return self._manager.restore(step, args=ocp.args.PyTreeRestore(abstract, restore_args=restore_args))
    except Exception as err:  # orbax and TensorStore raise many types for one unreadable folder
      raise _Unreadable(_first_line(err), damaged=False, verified=verified) from None

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
    if failure.damaged or not (failure.verified or self._readable_older(target, step) is None):
      return CheckpointReadError(f"the checkpoint {folder} cannot be read (damaged or partly written): "
                                 f"{failure.reason}")
    return CheckpointReadError(
        f"the checkpoint {folder} does not match this config's model or optimiser (was it written "
        f"with other model or optim settings?); use a fresh --workdir. orbax: {failure.reason}")

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
        if failure.verified:  # intact files that do not restore: another model or optimiser
          raise self._read_error(target, step, failure) from None
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

  A restore target (`TrainedRun.restore_state`, resume) that initialises and compiles nothing (a VGG16
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
