"""Temporal pooling: the paper's softmax pooling against float64 numpy, its max/average limits, masking."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from videmo.models import temporal


def pooled_class_scores(scores, mask, temperature=1.0):
  """Softmax pooling's class scores s_c = τ·logsumexp_f(o_fc/τ) over real frames: [B, F, E] -> [B, E]."""
  z = jnp.where(jnp.asarray(mask)[..., None], jnp.asarray(scores, jnp.float32) / temperature, -jnp.inf)
  return temperature * jax.nn.logsumexp(z, axis=1)


def random_scores(seed=0, b=3, f=6, e=7, scale=2.0):
  rng = np.random.default_rng(seed)
  scores = rng.normal(size=(b, f, e)) * scale
  mask = np.ones((b, f), bool)
  mask[1, 4:] = False  # a short clip padded at the end
  mask[2, [0, 3]] = False  # holes anywhere are allowed too
  return scores.astype(np.float32), mask


def numpy_joint(scores, mask, temperature=1.0):
  """p(c, f|S) of Eq. 5 in float64, masked frames excluded: [B, F, E]."""
  z = scores.astype(np.float64) / temperature
  joint = np.zeros_like(z)
  for i in range(z.shape[0]):
    ez = np.exp(z[i] - z[i][mask[i]].max())
    ez[~mask[i]] = 0.0
    joint[i] = ez / ez.sum()
  return joint


@pytest.mark.parametrize("temperature", [0.5, 1.0, 3.0])
def test_softmax_pooling_matches_float64_reference(temperature):
  scores, mask = random_scores()
  log_p_class, p_frame = temporal.softmax_pooling(jnp.asarray(scores), jnp.asarray(mask), temperature)
  joint = numpy_joint(scores, mask, temperature)
  np.testing.assert_allclose(np.exp(log_p_class), joint.sum(axis=1), rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(p_frame, joint.sum(axis=2), rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(np.exp(log_p_class).sum(-1), 1.0, atol=1e-6)
  np.testing.assert_allclose(np.asarray(p_frame).sum(-1), 1.0, atol=1e-6)


def test_softmax_pooling_is_a_class_softmax_of_logsumexp_pooled_scores():
  scores, mask = random_scores(1)
  for temperature in (0.3, 1.0, 4.0):
    log_p_class, _ = temporal.softmax_pooling(scores, mask, temperature)
    pooled = pooled_class_scores(scores, mask, temperature)
    np.testing.assert_allclose(log_p_class, jax.nn.log_softmax(pooled / temperature), atol=1e-5)


def test_pooled_scores_tend_to_max_as_temperature_goes_to_zero():
  scores, mask = random_scores(2)
  masked = np.where(mask[..., None], scores, -np.inf)
  frames = mask.sum(1)[:, None]
  errors = []
  for temperature in (1.0, 0.1, 0.01, 0.001):
    pooled = np.asarray(pooled_class_scores(scores, mask, temperature))
    gap = pooled - masked.max(axis=1)
    # max_f o <= τ·lse_f(o/τ) <= max_f o + τ·log F for every τ.
    assert np.all(gap >= -1e-5) and np.all(gap <= temperature * np.log(frames) + 1e-5)
    errors.append(np.abs(gap).max())
  assert errors == sorted(errors, reverse=True) and errors[-1] < 1e-2


def test_pooled_scores_tend_to_mean_as_temperature_goes_to_infinity():
  scores, mask = random_scores(3, scale=1.0)
  frames = mask.sum(1)[:, None]
  mean = np.where(mask[..., None], scores, 0).sum(1) / frames
  variance = np.array([scores[i][mask[i]].astype(np.float64).var(0) for i in range(len(scores))])
  errors = []
  for temperature in (1.0, 10.0, 100.0, 1000.0):
    pooled = np.asarray(pooled_class_scores(scores, mask, temperature), np.float64)
    gap = pooled - temperature * np.log(frames) - mean
    errors.append(np.abs(gap).max())
    if temperature == 100.0:
      # To first order the gap is the frames' score variance / (2τ).
      np.testing.assert_allclose(gap * temperature, variance / 2, rtol=0.05, atol=0.02)
  assert errors == sorted(errors, reverse=True) and errors[-1] < 2e-3


def test_softmax_pooling_frame_importance_tends_to_max_pooling_importance():
  scores, mask = random_scores(4, scale=3.0)
  _, p_frame_cold = temporal.softmax_pooling(scores, mask, temperature=1e-3)
  # At τ → 0, p(c, f|S) -> p(c|S)·[f = argmax_f o_fc] with p(c|S) one-hot on the max class.
  _, p_frame_max = temporal.max_pooling(scores / 1e-3, mask)
  np.testing.assert_allclose(p_frame_cold, p_frame_max, atol=1e-4)


POOLINGS = {
    "softmax": lambda s, m: temporal.softmax_pooling(s, m),
    "average": temporal.average_pooling,
    "max": temporal.max_pooling,
}


@pytest.mark.parametrize("name", sorted(POOLINGS))
def test_masked_frames_get_zero_importance_and_change_nothing(name):
  pool = POOLINGS[name]
  scores, mask = random_scores(5)
  log_p, p_frame = pool(scores, mask)
  assert np.all(np.asarray(p_frame)[~mask] == 0.0)
  np.testing.assert_allclose(np.asarray(p_frame).sum(-1), 1.0, atol=1e-6)
  changed = scores.copy()
  changed[~mask] = np.random.default_rng(9).normal(size=changed[~mask].shape) * 100
  log_p2, p_frame2 = pool(changed, mask)
  np.testing.assert_array_equal(log_p, log_p2)
  np.testing.assert_array_equal(p_frame, p_frame2)


def test_average_and_max_pooling_against_numpy():
  scores, mask = random_scores(6)
  log_p, p_frame = temporal.average_pooling(scores, mask)
  for i in range(scores.shape[0]):
    mean = scores[i][mask[i]].astype(np.float64).mean(0)
    np.testing.assert_allclose(log_p[i], mean - np.log(np.exp(mean).sum()), atol=1e-5)
    np.testing.assert_allclose(p_frame[i][mask[i]], 1.0 / mask[i].sum(), atol=1e-7)
    log_p_max, _ = temporal.max_pooling(scores, mask)
    best = scores[i][mask[i]].astype(np.float64).max(0)
    np.testing.assert_allclose(log_p_max[i], best - np.log(np.exp(best).sum()), atol=1e-5)


def make_lstm(features, mask):
  """(module, params, jitted apply) of a small LSTM pooling."""
  module = temporal.LSTMPooling(num_classes=7, hidden=8)
  params = jax.jit(module.init)(jax.random.key(0), features, mask)
  return module, params, jax.jit(module.apply)


def test_lstm_masked_frames_change_nothing_and_get_zero_importance():
  rng = np.random.default_rng(7)
  features = rng.normal(size=(3, 6, 5)).astype(np.float32)
  _, mask = random_scores()
  _, params, apply = make_lstm(features, mask)
  out = apply(params, features, mask)
  changed = features.copy()
  changed[~mask] = rng.normal(size=changed[~mask].shape) * 10
  out2 = apply(params, changed, mask)
  for key in out:
    np.testing.assert_array_equal(out[key], out2[key], err_msg=key)
  importance = np.asarray(out["frame_importance"])
  assert np.all(importance[~mask] == 0.0)
  np.testing.assert_allclose(importance.sum(-1), 1.0, atol=1e-6)
  chex.assert_shape(out["log_probs"], (3, 7))
  np.testing.assert_allclose(np.exp(out["log_probs"]).sum(-1), 1.0, atol=1e-6)


def test_lstm_on_a_padded_clip_equals_the_lstm_on_the_clip_alone():
  rng = np.random.default_rng(8)
  features = rng.normal(size=(1, 6, 5)).astype(np.float32)
  mask = np.array([[True] * 4 + [False] * 2])
  _, params, apply = make_lstm(features, mask)
  padded = apply(params, features, mask)
  alone = apply(params, features[:, :4], mask[:, :4])
  np.testing.assert_allclose(padded["log_probs"], alone["log_probs"], atol=1e-6)
  np.testing.assert_allclose(padded["frame_importance"][:, :4], alone["frame_importance"], atol=1e-6)


def test_bad_arguments_name_what_is_wrong():
  scores, mask = random_scores()
  with pytest.raises(ValueError, match="mask must be"):
    temporal.softmax_pooling(scores, mask[:, :3])
  with pytest.raises(ValueError, match="temperature must be > 0"):
    temporal.softmax_pooling(scores, mask, temperature=0.0)
  with pytest.raises(ValueError, match="scores must be"):
    temporal.average_pooling(scores[0, 0], mask)
