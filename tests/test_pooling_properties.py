"""Temporal pooling and the loss as functions: properties over random draws, under every chex variant.

* Properties (hypothesis draws the scores, masks and shapes): τ → 0 tends to max pooling,
  τ → ∞ to the mean; permuting the frames permutes p(f|S) and leaves p(c|S); padded frames
  change nothing; a constant added to one class's scores leaves which frames matter for each
  class, and the other classes' odds, unchanged; one added to every score changes nothing.
* The masking guarantee: called directly on raw scores whose padded frames hold ±1e4 or NaN
  (and on a clip of padding only), every pooling and the loss give finite outputs and finite
  gradients that are exactly 0 on the padded frames.
* τ is absorbed by the linear classifier: the model at (τ, W, b) equals the model at (1, W/τ, b/τ).

Each check runs with and without jit and with the inputs on and off a device (chex.variants).
Tolerances: float32 round-off of a logsumexp over at most 8 x 5 terms of scale ≤ 4, about
1e-6 relative; 1e-5 is used.
"""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from videmo.models import temporal, video
from videmo.train import losses

import tiny

POOLINGS = ("softmax", "average", "mean_score", "max")
VARIANTS = dict(with_jit=True, without_jit=True, with_device=True, without_device=True)
TOL = 1e-5


@st.composite
def clips(draw, b=3, f=8, e=5):
  """(scores [B, F, E] float32 of scale ≤ 4, mask [B, F] with at least one real frame per clip).

  The shape is fixed (a jitted variant then compiles once per test); the values, their scale
  and which frames are real (1 to F per clip) are drawn."""
  seed = draw(st.integers(0, 2 ** 31 - 1))
  rng = np.random.default_rng(seed)
  scores = (rng.standard_normal((b, f, e)) * draw(st.floats(0.1, 4.0))).astype(np.float32)
  mask = rng.random((b, f)) < draw(st.floats(0.3, 1.0))
  mask[np.arange(b), rng.integers(0, f, b)] = True
  return scores, mask


@functools.cache
def _pool(kind, temperature=1.0):
  """One function object per (kind, τ), so that jitted variants reuse their compilation."""
  return lambda scores, mask: temporal.pool_frame_scores(kind, scores, mask, temperature)


def _frames_per_class(scores, mask):
  """p(f | c, S) = softmax over real frames of o_fc: [B, F, E]."""
  return jax.nn.softmax(jnp.where(mask[..., None], scores, -jnp.inf), axis=1)


class TestProperties(chex.TestCase):

  @chex.variants(**VARIANTS)
  @settings(max_examples=15, deadline=None)
  @given(clips())
  def test_softmax_pooling_tends_to_max_and_to_the_mean(self, clip):
    """log p(c|S) = s_c/τ − lse_c(s_c/τ), so τ·(log p(c|S) − log p(0|S)) = s_c − s_0: the pooled
    scores' differences, which tend to max_f o_fc's as τ → 0 and to mean_f o_fc's as τ → ∞.
    Bounds: τ·log F (ties of the max) at τ = 1e-3; var/(2τ) ≤ 16/2e4 plus float32 round-off of
    log p (≈1e-7) times τ = 1e4 at the hot end: 1e-2 covers both."""
    scores, mask = clip
    real = np.where(mask[..., None], scores, np.nan)
    for tau, pooled in ((1e-3, np.nanmax(real, axis=1)), (1e4, np.nanmean(real, axis=1))):
      log_p = np.asarray(self.variant(_pool("softmax", tau))(scores, mask)[0], np.float64)
      chex.assert_trees_all_close(tau * (log_p - log_p[:, :1]), pooled - pooled[:, :1], atol=1e-2)

  @chex.variants(**VARIANTS)
  @settings(max_examples=15, deadline=None)
  @given(clips(), st.sampled_from(POOLINGS), st.integers(0, 2 ** 31 - 1))
  def test_permuting_frames_permutes_importance_and_keeps_the_prediction(self, clip, kind, seed):
    scores, mask = clip
    order = np.random.default_rng(seed).permutation(scores.shape[1])
    pool = self.variant(_pool(kind))
    log_p, p_frame = pool(scores, mask)
    log_p2, p_frame2 = pool(scores[:, order], mask[:, order])
    chex.assert_trees_all_close(log_p2, log_p, atol=TOL)
    if kind != "max":  # max pooling's argmax frame is not unique under ties; its value is
      chex.assert_trees_all_close(p_frame2, np.asarray(p_frame)[:, order], atol=TOL)

  @chex.variants(**VARIANTS)
  @settings(max_examples=15, deadline=None)
  @given(clips(), st.sampled_from(POOLINGS), st.integers(0, 2 ** 31 - 1))
  def test_padded_frames_change_nothing(self, clip, kind, seed):
    scores, mask = clip
    extra = 3
    rng = np.random.default_rng(seed)
    padding = (rng.standard_normal((scores.shape[0], extra, scores.shape[2])) * 1e3).astype(np.float32)
    padded = np.concatenate([scores, padding], axis=1)
    padded_mask = np.concatenate([mask, np.zeros((mask.shape[0], extra), bool)], axis=1)
    pool = self.variant(_pool(kind))
    log_p, p_frame = pool(scores, mask)
    log_p2, p_frame2 = pool(padded, padded_mask)
    chex.assert_trees_all_close(log_p2, log_p, atol=TOL)
    chex.assert_trees_all_close(p_frame2, np.pad(np.asarray(p_frame), ((0, 0), (0, extra))), atol=TOL)

  @chex.variants(**VARIANTS)
  @settings(max_examples=15, deadline=None)
  @given(clips(), st.floats(-3.0, 3.0), st.integers(0, 4))  # which class: 0..E-1
  def test_a_constant_on_one_class_moves_only_that_class(self, clip, constant, which):
    scores, mask = clip
    c = which % scores.shape[2]
    shifted = scores.copy()
    shifted[..., c] += constant
    per_class = self.variant(_frames_per_class)  # which frames matter for each class
    chex.assert_trees_all_close(per_class(shifted, mask), per_class(scores, mask), atol=TOL)
    log_p = np.asarray(self.variant(_pool("softmax"))(scores, mask)[0])
    log_p2 = np.asarray(self.variant(_pool("softmax"))(shifted, mask)[0])
    others = [k for k in range(scores.shape[2]) if k != c]
    odds = lambda lp: lp[:, others] - lp[:, others[:1]]
    np.testing.assert_allclose(odds(log_p2), odds(log_p), atol=1e-4)
    everything = self.variant(_pool("softmax"))(scores + constant, mask)  # every score: nothing moves
    chex.assert_trees_all_close(everything[0], log_p, atol=1e-4)


def _padded_batch(fill):
  """Scores [3, 5, 4] whose padded frames hold `fill`; clip 2 is padding only."""
  rng = np.random.default_rng(0)
  scores = rng.standard_normal((3, 5, 4)).astype(np.float32)
  mask = np.ones((3, 5), bool)
  mask[0, 3:] = False
  mask[1, [0, 2]] = False
  mask[2] = False
  scores[~mask] = fill
  return scores, mask


class TestMasking(chex.TestCase):

  @chex.variants(**VARIANTS)
  def test_loss_and_pooling_gradients_are_finite_and_zero_on_padding(self):
    for fill in (1e4, -1e4, np.nan):
      scores, mask = _padded_batch(fill)
      label, valid = np.array([1, 3, 0]), np.ones(3, bool)
      for kind in POOLINGS:
        def loss(s, kind=kind):
          log_probs, importance = temporal.pool_frame_scores(kind, s, mask)
          value = losses.classification_loss(dict(log_probs=log_probs, frame_scores=s), label, mask, valid, kind)
          return value + 0.0 * jnp.sum(importance)  # importance's gradient path too
        value, grad = self.variant(jax.value_and_grad(loss))(scores)
        assert np.isfinite(value), (kind, fill)
        grad = np.asarray(grad)
        assert np.isfinite(grad).all(), (kind, fill, np.argwhere(~np.isfinite(grad)))
        assert (grad[~mask] == 0).all(), (kind, fill)

  @chex.variants(with_jit=True, without_jit=True)
  def test_the_lstm_gradient_is_finite_and_zero_on_padding(self):
    features, mask = _padded_batch(np.nan)
    module = temporal.LSTMPooling(num_classes=3, hidden=4)
    params = module.init(jax.random.key(0), np.zeros_like(features), mask)

    def loss(f):
      out = module.apply(params, f, mask)
      return losses.classification_loss(out, np.array([0, 1, 2]), mask, np.ones(3, bool), "lstm")

    grad = np.asarray(self.variant(jax.grad(loss))(features))
    assert np.isfinite(grad).all() and (grad[~mask] == 0).all()


def test_temperature_is_absorbed_by_the_classifier():
  """For the shipped classifier (linear, with a bias) τ does not change what the model can say."""
  frames = np.random.default_rng(1).integers(0, 256, (2, 4, 32, 32, 3)).astype(np.float32) / 255
  mask = np.array([[True] * 4, [True, True, False, False]])
  tau = 3.0
  hot = video.build_model(dict(tiny.STEP_MODEL, temperature=tau, conv_impl="xla"))
  cold = video.build_model(dict(tiny.STEP_MODEL, temperature=1.0, conv_impl="xla"))
  params = {"params": tiny.random_params(hot)}
  scaled = jax.tree.map(lambda x: x, params)
  classifier = scaled["params"]["classifier"]
  scaled["params"]["classifier"] = dict(kernel=classifier["kernel"] / tau, bias=classifier["bias"] / tau)
  a, b = hot.apply(params, frames, mask), cold.apply(scaled, frames, mask)
  chex.assert_trees_all_close(a["log_probs"], b["log_probs"], atol=1e-5)
  chex.assert_trees_all_close(a["frame_importance"], b["frame_importance"], atol=1e-6)
  chex.assert_trees_all_close(a["frame_scores"] / tau, b["frame_scores"], atol=1e-5)
