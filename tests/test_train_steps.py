"""The data-parallel train step: 1 device and 8 simulated devices compute the same step; NaN steps change nothing.

The 1-vs-8 comparison runs in float64 (`jax.enable_x64`): the 8-device step sums partial
gradients in another order than one device does, and only round-off may differ. In float64
that is ~1e-16 per operation and, over reductions of ~1e4 terms, ~1e-12 of the values summed,
on any CPU (x86-64 with or without AVX-512, ARM): measured 4e-15 to 6e-15 of the update's scale.
The bound, 1e-9 of each parameter's change over the three steps, keeps three orders of
magnitude of margin above that and seven below the errors a sharding bug makes (a loss
normalised per device instead of over the global batch, or gradients summed instead of
averaged over devices: 1e-2 to 1 of the update). In float32 the same round-off is ~1e-6 of
the update and depends on the CPU's vector width, which is why the check is not made there.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from videmo import parallel
from videmo.models import video
from videmo.models.input_convention import VGGFACE_CONVENTION
from videmo.train import optim, steps

import tiny

ROUND_OFF_BOUND = 1e-9  # of each parameter's change; see the module docstring
MODEL, OPTIM, make_batches = tiny.STEP_MODEL, tiny.STEP_OPTIM, tiny.step_batches


def run(num_devices, batches, dtype="float32", penalty_coef=1.0):
  """(initial params, final state, per-step metrics) of len(batches) steps on `num_devices`."""
  mesh = parallel.data_mesh(num_devices)
  model = video.build_model(dict(MODEL, dtype=dtype))
  params = tiny.random_params(model, dtype=dtype)
  tx, _, schedule = optim.make_optimizer(params, OPTIM, total_steps=10, steps_per_epoch=5)
  state = parallel.replicate(steps.TrainState(jnp.zeros((), jnp.int32), params, tx.init(params)), mesh)
  normalise = lambda frames: VGGFACE_CONVENTION.normalize(frames, dtype)
  step = jax.jit(steps.make_train_step(model, tx, normalise, penalty_coef, schedule),
                 in_shardings=(parallel.replicated(mesh), parallel.batch_sharded(mesh), parallel.replicated(mesh)))
  history = []
  for batch in batches:
    state, metrics = step(state, parallel.global_batch(batch, mesh), jax.random.key(1))
    history.append(jax.device_get(metrics))
  return params, state, history


@pytest.mark.slow
def test_one_device_and_eight_devices_compute_the_same_step():
  assert len(jax.devices()) == 8, "tests run with 8 simulated CPU devices (see conftest.py)"
  batches = make_batches()
  with jax.enable_x64(True):
    initial, one, history_one = run(1, batches, "float64")
    _, eight, history_eight = run(8, batches, "float64")
  assert int(one.step) == int(eight.step) == 3
  paths = [jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_leaves_with_path(initial)]
  for path, start, a, b in zip(paths, jax.tree.leaves(initial), jax.tree.leaves(one.params),
                               jax.tree.leaves(eight.params)):
    start, a, b = np.asarray(start), np.asarray(a), np.asarray(b)
    assert a.dtype == np.float64
    change = np.abs(a - start).max()
    assert change > 0, f"{path} did not move"
    assert np.abs(a - b).max() <= ROUND_OFF_BOUND * change, (path, np.abs(a - b).max() / change)
  for a, b in zip(history_one, history_eight):
    assert abs(a["loss"] - b["loss"]) <= ROUND_OFF_BOUND * abs(a["loss"])
    assert abs(a["grad_norm"] - b["grad_norm"]) <= ROUND_OFF_BOUND * abs(a["grad_norm"])


@pytest.mark.slow
def test_a_non_finite_loss_leaves_the_state_unchanged():
  batches = make_batches(n=1)
  mesh = parallel.data_mesh(1)
  model = video.build_model(MODEL)
  params = tiny.random_params(model)
  params["classifier"]["bias"][0] = np.nan
  tx, _, _ = optim.make_optimizer(params, OPTIM, total_steps=10, steps_per_epoch=5)
  state = steps.TrainState(jnp.zeros((), jnp.int32), params, tx.init(params))
  step = jax.jit(steps.make_train_step(model, tx, lambda f: VGGFACE_CONVENTION.normalize(f, jnp.float32), 1.0))
  new_state, metrics = step(state, parallel.global_batch(batches[0], mesh), jax.random.key(1))
  assert float(metrics["finite"]) == 0.0 and not np.isfinite(float(metrics["loss"]))
  assert int(new_state.step) == 0
  jax.tree.map(np.testing.assert_array_equal, new_state.params, params)
