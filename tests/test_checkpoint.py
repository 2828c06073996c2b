"""Checkpoints of a replicated state: saved whole by the first replica, read back bit for bit."""

import logging

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from videmo import parallel
from videmo.train import checkpoint as checkpoint_lib


def _state(seed: int = 0) -> dict:
  """A small state of several shapes and dtypes, as a TrainState holds (host arrays)."""
  rng = np.random.default_rng(seed)
  return dict(step=np.asarray(7, np.int32),
              params=dict(conv=dict(kernel=rng.standard_normal((3, 3, 3, 8)).astype(np.float32),
                                    bias=rng.standard_normal(8).astype(np.float32)),
                          dense=dict(kernel=rng.standard_normal((16, 7)).astype(np.float32))),
              opt_state=dict(count=np.asarray(3, np.int32), trace=rng.standard_normal((16, 7)).astype(np.float32)))


def _assert_same(restored, expected):
  assert jax.tree.structure(restored) == jax.tree.structure(expected)
  for got, want in zip(jax.tree.leaves(restored), jax.tree.leaves(expected)):
    assert np.asarray(got).dtype == np.asarray(want).dtype
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_saving_a_state_replicated_on_two_devices_compiles_nothing_and_restores_bit_for_bit(tmp_path, caplog):
  """Orbax's replica-parallel saving would compile one `slice` per shape and device here."""
  mesh = parallel.data_mesh(2)
  state = parallel.replicate(jax.tree.map(jnp.asarray, _state()), mesh)
  checkpoints = checkpoint_lib.Checkpoints(tmp_path)
  with caplog.at_level(logging.WARNING), jax.log_compiles(True):
    checkpoints.save(1, state)
  compiled = [r.getMessage() for r in caplog.records if "Compiling" in r.getMessage()]
  assert not compiled, compiled
  restored = checkpoints.restore(state)
  checkpoints.close()
  _assert_same(restored, state)
  assert all(leaf.sharding == want.sharding for leaf, want in zip(jax.tree.leaves(restored), jax.tree.leaves(state)))


def test_a_checkpoint_written_by_the_standard_handler_restores(tmp_path):
  """Checkpoints of earlier versions (orbax's StandardSave) read as before: the format is the same."""
  state = jax.tree.map(jnp.asarray, _state(1))
  manager = ocp.CheckpointManager(tmp_path / "checkpoints", options=ocp.CheckpointManagerOptions(create=True))
  manager.save(5, args=ocp.args.StandardSave(state))
  manager.wait_until_finished()
  manager.close()
  checkpoints = checkpoint_lib.Checkpoints(tmp_path)
  target = jax.tree.map(jnp.zeros_like, state)
  restored, step = checkpoints.restore_latest(target)
  checkpoints.close()
  assert step == 5
  _assert_same(restored, state)
