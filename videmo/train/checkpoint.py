"""Checkpoints: the one module that talks to orbax.

A checkpoint is the whole `TrainState` (step, parameters, optimiser state) saved under
`WORKDIR/checkpoints/<step>`. Orbax writes each one to a temporary folder and renames it
when complete, so a run killed while saving leaves the previous checkpoints intact and the
next run resumes from the latest complete one. The data order is a function of the step,
so the step is all a resumed run needs to see the same batches.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

from videmo.train import run_dir


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

  def restore(self, target: Any, step: int | None = None) -> Any:
    """Restore the checkpoint at `step` (default: latest) into the structure/shardings of `target`."""
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"no checkpoint in {self.directory}")
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    try:
      return self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
    except ValueError as err:
      raise ValueError(
          f"the checkpoint {self.directory}/{step} does not match this config's model or optimiser "
          f"(was it written with other model or optim settings?); use a fresh --workdir. "
          f"orbax: {' '.join(str(err).split())[:300]}") from None

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
