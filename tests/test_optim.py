"""Optimiser: parameter groups (every parameter exactly once), per-group rates, SGDR restarts."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from videmo.train import optim

PARAMS = {
    "trunk": {"conv1_1": {"kernel": jnp.ones((3, 3, 3, 4)), "bias": jnp.ones((4,))}},
    "spatial": {"W1": {"kernel": jnp.ones((4, 2))}},
    "classifier": {"kernel": jnp.ones((4, 7)), "bias": jnp.ones((7,))},
}
CONFIG = dict(
    groups=dict(trunk=dict(pattern="^trunk/", lr=1e-5), head=dict(pattern="^(?!trunk/)", lr=0.1)),
    momentum=0.9, nesterov=False, weight_decay=5e-5, sgdr_cycle_epochs=2.0, sgdr_multiplier=2.0,
    sgdr_min_ratio=0.0)


def restart_steps(total_steps: int, cycle_steps: int, multiplier: float = 1.0) -> list[int]:
  """The steps at which SGDR restarts (the start of every cycle after the first)."""
  starts, at, length = [], 0, float(cycle_steps)
  while True:
    at += max(1, int(round(length)))
    if at >= total_steps:
      return starts
    starts.append(at)
    length *= multiplier


def test_every_parameter_gets_its_group():
  labels = optim.group_labels(PARAMS, CONFIG["groups"])
  assert labels["trunk"]["conv1_1"]["kernel"] == "trunk"
  assert labels["spatial"]["W1"]["kernel"] == "head"
  assert labels["classifier"]["bias"] == "head"
  lines = optim.describe_groups(PARAMS, labels)
  assert any("trunk/conv1_1/kernel" in line and "trunk" in line.split()[0] for line in lines)


def test_unmatched_and_doubly_matched_parameters_are_named():
  with pytest.raises(ValueError, match="classifier/kernel matches no group"):
    optim.group_labels(PARAMS, dict(trunk=dict(pattern="^trunk/", lr=1), spatial=dict(pattern="^spatial/", lr=1)))
  with pytest.raises(ValueError, match=r"trunk/conv1_1/bias matches 2 groups \['all', 'trunk'\]"):
    optim.group_labels(PARAMS, dict(all=dict(pattern=".", lr=1), trunk=dict(pattern="^trunk/", lr=1)))
  with pytest.raises(ValueError, match="unknown field"):
    optim.group_labels(PARAMS, dict(all=dict(pattern=".", lr=1, lr_mult=2)))


def test_first_step_moves_each_group_by_its_own_rate():
  tx, _, schedule = optim.make_optimizer(PARAMS, CONFIG, total_steps=12, steps_per_epoch=2)
  grads = jax.tree.map(lambda p: jnp.full_like(p, 0.5), PARAMS)
  state = tx.init(PARAMS)
  updates, _ = tx.update(grads, state, PARAMS)
  new = optax.apply_updates(PARAMS, updates)
  assert float(schedule(0)) == 1.0
  # Step 0 of SGD with momentum: p - lr * (g + wd * p), the momentum buffer being empty.
  for group, lr in (("trunk", 1e-5), ("head", 0.1)):
    expected = 1.0 - lr * (0.5 + 5e-5 * 1.0)
    leaf = new["trunk"]["conv1_1"]["kernel"] if group == "trunk" else new["classifier"]["kernel"]
    np.testing.assert_allclose(leaf, expected, rtol=1e-6)


def test_second_step_uses_momentum_and_the_schedule():
  tx, _, schedule = optim.make_optimizer(PARAMS, CONFIG, total_steps=12, steps_per_epoch=2)
  grads = jax.tree.map(lambda p: jnp.full_like(p, 0.5), PARAMS)
  state, params = tx.init(PARAMS), PARAMS
  for _ in range(2):
    updates, state = tx.update(grads, state, params)
    params = optax.apply_updates(params, updates)
  g0 = 0.5 + 5e-5 * 1.0
  p1 = 1.0 - 0.1 * g0
  g1 = 0.5 + 5e-5 * p1
  expected = p1 - 0.1 * float(schedule(1)) * (g1 + 0.9 * g0)
  np.testing.assert_allclose(params["classifier"]["kernel"], expected, rtol=1e-6)


def test_sgdr_restarts_where_configured():
  # Cycles of 2 epochs x 2 steps = 4 steps, then 8: restart at step 4; total 12 steps.
  schedule = optim.sgdr_schedule(total_steps=12, cycle_steps=4, multiplier=2.0)
  values = np.array([float(schedule(s)) for s in range(12)])
  assert restart_steps(12, 4, 2.0) == [4]
  assert values[0] == 1.0 and values[4] == 1.0
  assert np.all(np.diff(values[:4]) < 0) and np.all(np.diff(values[4:]) < 0)
  np.testing.assert_allclose(values[2], 0.5 * (1 + np.cos(np.pi * 2 / 4)), atol=1e-6)
  np.testing.assert_allclose(values[6], 0.5 * (1 + np.cos(np.pi * 2 / 8)), atol=1e-6)


def test_frozen_group_never_moves():
  config = dict(CONFIG, groups=dict(trunk=dict(pattern="^trunk/", lr=1e-3, frozen=True),
                                    head=dict(pattern="^(?!trunk/)", lr=0.1)))
  tx, _, _ = optim.make_optimizer(PARAMS, config, total_steps=4, steps_per_epoch=1)
  grads = jax.tree.map(jnp.ones_like, PARAMS)
  updates, _ = tx.update(grads, tx.init(PARAMS), PARAMS)
  new = optax.apply_updates(PARAMS, updates)
  np.testing.assert_array_equal(new["trunk"]["conv1_1"]["kernel"], PARAMS["trunk"]["conv1_1"]["kernel"])
  assert float(new["classifier"]["kernel"][0, 0]) < 1.0
