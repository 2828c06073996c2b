"""The training loss as each pooling trains: eq. 7 for AVG against numpy; padding clips change nothing.

A clip whose frames are all masked (a clip with no face, or padding) must contribute nothing:
the loss and the gradients of a batch holding it are finite and equal those of the batch
without it. Masks select (`where`); multiplying by them would let 0 x NaN = NaN through.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tiny
from videmo.models import temporal, video
from videmo.models.input_convention import IMAGENET_CONVENTION
from videmo.train import losses, steps


def frame_batch(seed=0, b=4, f=6, e=7):
  rng = np.random.default_rng(seed)
  scores = (3 * rng.standard_normal((b, f, e))).astype(np.float32)
  mask = np.ones((b, f), bool)
  mask[1, 4:] = False
  mask[3, 2:] = False
  valid = np.array([True, True, True, False])
  return scores, mask, valid, rng.integers(0, e, b).astype(np.int32)


def test_avg_trains_the_per_frame_loss_of_eq7():
  scores, mask, valid, label = frame_batch()
  outputs = dict(frame_scores=jnp.asarray(scores), log_probs=jnp.zeros((4, 7)))
  got = float(losses.classification_loss(outputs, label, mask, valid, "average"))
  # Eq. 7: every real frame of every (valid) clip classified on its own with its clip's label;
  # the sum over those frames, divided by their number.
  terms = []
  for i in range(4):
    for f in range(6):
      if valid[i] and mask[i, f]:
        z = scores[i, f].astype(np.float64)
        terms.append(-(z[label[i]] - np.log(np.exp(z - z.max()).sum()) - z.max()))
  assert len(terms) == 6 + 4 + 6
  np.testing.assert_allclose(got, np.mean(terms), rtol=1e-6)
  # The mean-score variant trains the clip's cross-entropy of softmax(mean_f o_f): another loss.
  log_p, _ = temporal.average_pooling(jnp.asarray(scores), jnp.asarray(mask))
  clip = float(losses.classification_loss(dict(outputs, log_probs=log_p), label, mask, valid, "mean_score"))
  mean = np.array([scores[i][mask[i]].mean(0) for i in range(3)], np.float64)
  expected = np.mean([-(m[label[i]] - np.log(np.exp(m).sum())) for i, m in enumerate(mean)])
  np.testing.assert_allclose(clip, expected, rtol=1e-6)
  assert abs(clip - got) > 0.1


@pytest.mark.parametrize("pooling", temporal.POOLINGS[:-1])  # the LSTM: test_the_lstm_gives_...
def test_every_pooling_gives_a_clip_without_frames_a_uniform_finite_answer(pooling):
  scores, mask, _, _ = frame_batch()
  mask[2] = False
  log_p, importance = temporal.pool_frame_scores(pooling, jnp.asarray(scores), jnp.asarray(mask))
  np.testing.assert_allclose(log_p[2], -np.log(7), rtol=1e-6)
  assert np.all(np.asarray(importance[2]) == 0) and np.all(np.isfinite(log_p))
  grads = jax.grad(lambda s: jnp.sum(temporal.pool_frame_scores(pooling, s, jnp.asarray(mask))[0]))(jnp.asarray(scores))
  assert np.all(np.isfinite(grads)) and np.all(np.asarray(grads[2]) == 0)


@pytest.mark.slow
@pytest.mark.parametrize("pooling", ["softmax", "average"])  # the clip loss and eq. 7's frame loss
def test_a_batch_holding_an_all_masked_clip_trains_as_the_batch_without_it(pooling):
  model = video.build_model(dict(trunk_width_divisor=16, attention_hidden=8, lstm_hidden=8, temporal=pooling))
  params = tiny.random_params(model, num_frames=3)
  rng = np.random.default_rng(1)
  frames = rng.integers(0, 256, (3, 3, 32, 32, 3), dtype=np.uint8)
  mask = np.array([[True, True, False], [True, True, True], [False, False, False]])
  label = np.array([2, 5, 1], np.int32)
  normalise = lambda x: IMAGENET_CONVENTION.normalize(x, jnp.float32)  # noqa: E731

  @jax.jit
  def loss_and_grads(params, batch):
    return jax.value_and_grad(steps._loss, argnums=1, has_aux=True)(model, params, batch, normalise, 1.0, None)

  # The third clip: valid (not padding) but without a single real frame.
  (with_it, metrics), grads_with = loss_and_grads(params, dict(frames=frames, mask=mask, label=label,
                                                               valid=np.ones(3, bool)))
  (without, _), grads_without = loss_and_grads(params, dict(frames=frames[:2], mask=mask[:2], label=label[:2],
                                                            valid=np.ones(2, bool)))
  assert np.isfinite(float(with_it)) and all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads_with))
  # The same float32 computation on the two real clips; round-off only (relative 1e-6 of the loss,
  # 1e-5 of each gradient leaf's largest entry).
  np.testing.assert_allclose(float(with_it), float(without), rtol=1e-6)
  for a, b in zip(jax.tree.leaves(grads_with), jax.tree.leaves(grads_without)):
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * float(np.abs(b).max()) + 1e-12)
  assert 0 <= float(metrics["accuracy"]) <= 1


def test_the_lstm_gives_a_clip_without_frames_a_uniform_finite_answer():
  features = np.random.default_rng(3).standard_normal((2, 4, 5)).astype(np.float32)
  mask = np.array([[True, True, True, False], [False] * 4])
  module = temporal.LSTMPooling(num_classes=7, hidden=8)
  params = jax.jit(module.init)(jax.random.key(0), features, mask)

  def total(params, features):
    out = module.apply(params, features, mask)
    return jnp.sum(out["log_probs"]), out

  (_, out), grads = jax.jit(jax.value_and_grad(total, argnums=(0, 1), has_aux=True))(params, features)
  np.testing.assert_allclose(out["log_probs"][1], -np.log(7), rtol=1e-6)
  assert np.all(np.asarray(out["frame_importance"][1]) == 0)
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads)) and np.all(np.asarray(grads[1][1]) == 0)
