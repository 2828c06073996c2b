"""Spatial aggregation: the paper's multi-head attention, its penalty, SHIFT, spatial average."""

import itertools

import jax
import numpy as np
import pytest

from videmo.models import spatial


def local_descriptors(seed=0, shape=(2, 3, 16, 8)):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def brute_force_penalty(attention):
  """‖A·Aᵀ − I‖²_F with explicit loops, float64."""
  a = np.asarray(attention, np.float64)
  n, _ = a.shape
  total = 0.0
  for i, j in itertools.product(range(n), range(n)):
    total += (np.dot(a[i], a[j]) - (i == j)) ** 2
  return total


def test_multi_head_attention_matches_the_paper_formula():
  local = local_descriptors()
  module = spatial.MultiHeadAttention(num_heads=3, hidden=5)
  params = module.init(jax.random.key(0), local)
  features, attention = module.apply(params, local)
  w1 = np.asarray(params["params"]["W1"]["kernel"], np.float64)  # [D, U] = W1ᵀ
  w2 = np.asarray(params["params"]["W2"]["kernel"], np.float64)  # [U, N] = W2ᵀ
  r = local.astype(np.float64)
  logits = np.einsum("un,bflu->bfnl", w2, np.tanh(r @ w1))  # W2·tanh(W1·Rᵀ): [B, F, N, L]
  expected_a = np.exp(logits - logits.max(-1, keepdims=True))
  expected_a /= expected_a.sum(-1, keepdims=True)
  np.testing.assert_allclose(attention, expected_a, rtol=1e-5, atol=1e-6)
  expected_v = np.einsum("bfnl,bfld->bfnd", expected_a, r).reshape(2, 3, 3 * 8)
  np.testing.assert_allclose(features, expected_v, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(np.asarray(attention).sum(-1), 1.0, atol=1e-6)


def test_penalty_is_zero_for_orthonormal_one_hot_heads():
  attention = np.zeros((4, 10), np.float32)
  attention[np.arange(4), [0, 3, 5, 9]] = 1.0
  assert float(spatial.attention_penalty(attention)) == 0.0


def test_penalty_is_positive_for_identical_heads():
  attention = np.zeros((3, 10), np.float32)
  attention[:, 2] = 1.0  # three heads on the same position: A·Aᵀ is all ones
  np.testing.assert_allclose(spatial.attention_penalty(attention), 3 * 3 - 3)
  spread = np.full((2, 10), 0.1, np.float32)
  assert float(spatial.attention_penalty(spread)) > 0.0


def test_penalty_matches_brute_force_per_item():
  rng = np.random.default_rng(1)
  attention = rng.dirichlet(np.ones(12), size=(2, 3, 4)).astype(np.float32)  # [2, 3, N=4, L=12]
  penalty = np.asarray(spatial.attention_penalty(attention))
  assert penalty.shape == (2, 3)
  for i, j in itertools.product(range(2), range(3)):
    np.testing.assert_allclose(penalty[i, j], brute_force_penalty(attention[i, j]), rtol=1e-5)


def test_shift_output_has_unit_norm_and_normalised_attention():
  local = local_descriptors(2)
  module = spatial.AttentionClusters(num_heads=2)
  params = module.init(jax.random.key(0), local)
  # Move alpha and beta off their initial values so the shift is really exercised.
  params = jax.tree.map(lambda x: x, params)
  params["params"]["alpha"] = params["params"]["alpha"] * 2.5
  params["params"]["beta"] = params["params"]["beta"] + 0.3
  features, attention = module.apply(params, local)
  assert features.shape == (2, 3, 2 * 8) and attention.shape == (2, 3, 2, 16)
  np.testing.assert_allclose(np.linalg.norm(features, axis=-1), 1.0, rtol=1e-5)
  np.testing.assert_allclose(np.asarray(attention).sum(-1), 1.0, atol=1e-6)
  # Each unit's λ_k has norm 1/√N.
  units = np.asarray(features).reshape(2, 3, 2, 8)
  np.testing.assert_allclose(np.linalg.norm(units, axis=-1), 1 / np.sqrt(2), rtol=1e-5)


def test_spatial_average_is_the_mean_over_positions():
  local = local_descriptors(3)
  features, attention = spatial.SpatialAverage().apply({}, local)
  assert attention is None
  np.testing.assert_allclose(features, local.mean(axis=-2), rtol=1e-6)


@pytest.mark.parametrize("cls", [spatial.MultiHeadAttention, spatial.AttentionClusters])
def test_heads_below_one_are_rejected(cls):
  with pytest.raises(ValueError, match="num_heads must be >= 1"):
    cls(num_heads=0).init(jax.random.key(0), local_descriptors())
