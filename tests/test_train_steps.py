"""The data-parallel train step: 1 device and 8 simulated devices agree; NaN steps change nothing."""

import jax
import jax.numpy as jnp
import numpy as np

from videmo import parallel
from videmo.models import video
from videmo.models.input_convention import VGGFACE_CONVENTION
from videmo.train import optim, steps

MODEL = dict(trunk_width_divisor=16, attention_hidden=8, num_heads=2)
OPTIM = dict(groups=dict(trunk=dict(pattern="^trunk/", lr=1e-3), head=dict(pattern="^(?!trunk/)", lr=0.1)),
             momentum=0.9, nesterov=False, weight_decay=5e-5, sgdr_cycle_epochs=1.0, sgdr_multiplier=1.0,
             sgdr_min_ratio=0.0)


def normalise(frames):
  return VGGFACE_CONVENTION.normalize(frames, jnp.float32)


def make_batches(n=3, b=8, f=4, size=32):
  rng = np.random.default_rng(0)
  batches = []
  for _ in range(n):
    mask = np.ones((b, f), bool)
    mask[::3, 2:] = False
    batches.append(dict(frames=rng.integers(0, 256, (b, f, size, size, 3), dtype=np.uint8), mask=mask,
                        label=rng.integers(0, 7, b).astype(np.int32), valid=np.ones(b, bool),
                        index=np.arange(b, dtype=np.int32)))
  return batches


def run(num_devices, batches, penalty_coef=1.0):
  mesh = parallel.data_mesh(num_devices)
  model = video.build_model(MODEL)
  frames = jnp.zeros((1, 4, 32, 32, 3))
  params = model.init(jax.random.key(0), frames, jnp.ones((1, 4), bool))["params"]
  tx, _, schedule = optim.make_optimizer(params, OPTIM, total_steps=10, steps_per_epoch=5)
  state = parallel.replicate(steps.TrainState(jnp.zeros((), jnp.int32), params, tx.init(params)), mesh)
  step = jax.jit(steps.make_train_step(model, tx, normalise, penalty_coef, schedule),
                 in_shardings=(parallel.replicated(mesh), parallel.batch_sharded(mesh), parallel.replicated(mesh)))
  history = []
  for batch in batches:
    state, metrics = step(state, parallel.global_batch(batch, mesh), jax.random.key(1))
    history.append(jax.device_get(metrics))
  return state, history


def test_one_device_and_eight_devices_give_the_same_parameters():
  assert len(jax.devices()) == 8, "tests run with 8 simulated CPU devices (see conftest.py)"
  batches = make_batches()
  one, history_one = run(1, batches)
  eight, history_eight = run(8, batches)
  assert int(one.step) == int(eight.step) == 3
  # The 8-device step all-reduces partial gradient sums in another order than one device
  # sums them: float32 rounding differs, nothing else. Tolerance: 1e-5 relative + 1e-6 absolute.
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), one.params, eight.params)
  for a, b in zip(history_one, history_eight):
    np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-5)
  # And the parameters did move.
  assert float(history_one[0]["grad_norm"]) > 0


def test_a_non_finite_loss_leaves_the_state_unchanged():
  batches = make_batches(n=1)
  mesh = parallel.data_mesh(1)
  model = video.build_model(MODEL)
  params = model.init(jax.random.key(0), jnp.zeros((1, 4, 32, 32, 3)), jnp.ones((1, 4), bool))["params"]
  params = jax.tree.map(lambda x: x, params)
  params["classifier"]["bias"] = params["classifier"]["bias"].at[0].set(jnp.nan)
  tx, _, _ = optim.make_optimizer(params, OPTIM, total_steps=10, steps_per_epoch=5)
  state = steps.TrainState(jnp.zeros((), jnp.int32), params, tx.init(params))
  step = jax.jit(steps.make_train_step(model, tx, normalise, 1.0))
  new_state, metrics = step(state, parallel.global_batch(batches[0], mesh), jax.random.key(1))
  assert float(metrics["finite"]) == 0.0 and not np.isfinite(float(metrics["loss"]))
  assert int(new_state.step) == 0
  jax.tree.map(lambda a, b: np.testing.assert_array_equal(a, b), new_state.params, params)
