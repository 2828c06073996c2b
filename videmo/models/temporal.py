"""Temporal pooling: per-frame class scores o [B, F, E] (or frame features) -> a clip prediction.

Every pooling takes a frame mask [B, F] (bool, True = a real frame) and returns
`(log_p_class [B, E], p_frame [B, F])`: log p(c|S) and a frame importance that sums to 1 over
the real frames and is exactly 0 on masked ones. A clip with no real frame (all padding) gets
the uniform log p(c|S) = −log E and zero importance. Whatever the padded frames hold (±1e4,
inf, NaN), outputs and gradients are finite and the gradient is exactly 0 on them: masks
select (`where`), never multiply, and each pooling first replaces the padded entries by 0
before any exp, log or division ("double where": the gradient of the untaken branch of a
`where` is 0 only if that branch computed nothing non-finite).

* `softmax_pooling` (the paper, Eq. 5): p(c, f|S) = exp(o_fc/τ) / Σ_{f',c'} exp(o_f'c'/τ)
  over real frames; p(c|S) = Σ_f p(c, f|S), p(f|S) = Σ_c p(c, f|S). In logs,
  log p(c|S) = lse_f(o_fc/τ) − lse_{f,c}(o_fc/τ): a softmax over classes of s_c/τ, where
  s_c = τ·lse_f(o_fc/τ) is the pooled score, which tends to max_f o_fc as τ → 0 and to
  mean_f o_fc + τ·log F as τ → ∞ (tests/test_temporal.py checks both); softmax pooling
  generalises max and average pooling. In the model the scores come from a linear layer with
  a bias, o = W·v + b, so pooling at τ with (W, b) is pooling at τ = 1 with (W/τ, b/τ): τ
  changes the classifier's initial scale and its effective learning rate, not the set of
  models the network can represent (tests/test_temporal.py checks it).
* `average_pooling`: log_softmax of the mean frame score; p(f) uniform. Two model poolings use
  it: 'average' (the paper's VGG+AVG, trained frame by frame with eq. 7's loss, see
  videmo/train/losses.py) and 'mean_score' (the same prediction trained with the clip's
  cross-entropy: not the paper's).
* `max_pooling`: log_softmax of the per-class max frame score; p(f) = Σ_c p(c|S)·[f = argmax_f o_fc],
  the τ → 0 limit of softmax pooling's p(f|S).
* `LSTMPooling` (VGG16+LSTM): an LSTM over frame features, classifying from the state after
  the last real frame (masked frames leave the state unchanged); per-frame scores come from
  each step's state, and p(f) is the normalised positive change of the predicted class's
  probability that frame f brings (uniform over real frames if no frame raises it).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from videmo.models.precision import at_least_float32

POOLINGS: tuple[str, ...] = ("softmax", "average", "mean_score", "max", "lstm")


def check_mask(scores: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
  """Validate scores [B, F, ...] against mask [B, F]; returns the mask as bool."""
  if scores.ndim < 2:
    raise ValueError(f"scores must be [B, F, ...], got shape {scores.shape}")
  if mask.shape != scores.shape[:2]:
    raise ValueError(f"mask must be [B, F] = {tuple(scores.shape[:2])} (bool, True = real frame), "
                     f"got shape {tuple(mask.shape)}")
  return mask.astype(bool)


def _masked(scores: jnp.ndarray, mask: jnp.ndarray, fill: float) -> jnp.ndarray:
  """scores [B, F, E] with masked frames replaced by `fill`."""
  return jnp.where(mask[..., None], scores, fill)


def _clean(scores: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
  """scores [B, F, ...] as float32 or wider, 0 on masked frames: the inner `where` of the double
  where, so that no exp, log or division ever sees what padding holds."""
  return jnp.where(mask.reshape(mask.shape + (1,) * (scores.ndim - 2)), at_least_float32(scores), 0.0)


def _computable(mask: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
  """(has_frame [B], the mask with a clip of no real frame treated as all real [B, F]): the
  computation runs on finite numbers everywhere and the empty clips' results are then replaced."""
  has_frame = jnp.any(mask, axis=1)
  return has_frame, mask | ~has_frame[:, None]


def _uniform_where_empty(log_p_class: jnp.ndarray, has_frame: jnp.ndarray) -> jnp.ndarray:
  """log p(c|S) [B, E], the uniform −log E for clips without a real frame."""
  return jnp.where(has_frame[:, None], log_p_class, -jnp.log(log_p_class.shape[-1]))


def softmax_pooling(scores: jnp.ndarray, mask: jnp.ndarray,
                    temperature: float = 1.0) -> tuple[jnp.ndarray, jnp.ndarray]:
  """The paper's temporal softmax pooling.

  Args:
    scores: o [B, F, E], per-frame class scores.
    mask: [B, F] bool, True = real frame (at least one per clip).
    temperature: τ > 0 (1 in the paper).

  Returns:
    log_p_class [B, E] = log p(c|S), and p_frame [B, F] = p(f|S) (0 on masked frames).
  """
  mask = check_mask(scores, mask)
  if temperature <= 0:
    raise ValueError(f"temperature must be > 0, got {temperature}")
  has_frame, computable = _computable(mask)
  z = _masked(_clean(scores, mask) / temperature, computable, -jnp.inf)
  b, f, e = z.shape
  log_joint = z - jax.nn.logsumexp(z.reshape(b, f * e), axis=-1)[:, None, None]  # log p(c, f|S)
  log_p_class = _uniform_where_empty(jax.nn.logsumexp(log_joint, axis=1), has_frame)
  p_frame = jnp.where(mask, jnp.sum(jnp.exp(log_joint), axis=-1), 0.0)
  return log_p_class, p_frame


def _uniform_importance(mask: jnp.ndarray) -> jnp.ndarray:
  """p(f) = 1/F_real on real frames, 0 on masked ones (and everywhere in a clip without one): [B, F]."""
  mask = mask.astype(jnp.float32)
  return mask / jnp.maximum(jnp.sum(mask, axis=1, keepdims=True), 1.0)


def average_pooling(scores: jnp.ndarray, mask: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
  """Average pooling of frame scores before the softmax: [B, F, E], [B, F] -> ([B, E], [B, F])."""
  mask = check_mask(scores, mask)
  weights = _uniform_importance(mask)
  mean = jnp.einsum("bf,bfe->be", weights, _clean(scores, mask))
  return jax.nn.log_softmax(mean, axis=-1), weights


def max_pooling(scores: jnp.ndarray, mask: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
  """Max pooling of frame scores per class: [B, F, E], [B, F] -> ([B, E], [B, F])."""
  mask = check_mask(scores, mask)
  has_frame, computable = _computable(mask)
  z = _masked(_clean(scores, mask), computable, -jnp.inf)
  log_p_class = _uniform_where_empty(jax.nn.log_softmax(jnp.max(z, axis=1), axis=-1), has_frame)
  argmax = jax.nn.one_hot(jnp.argmax(z, axis=1), z.shape[1], axis=1)  # [B, F, E]
  p_frame = jnp.einsum("bfe,be->bf", argmax, jnp.exp(jax.lax.stop_gradient(log_p_class)))
  return log_p_class, jnp.where(mask, p_frame, 0.0)


def pool_frame_scores(kind: str, scores: jnp.ndarray, mask: jnp.ndarray,
                      temperature: float = 1.0) -> tuple[jnp.ndarray, jnp.ndarray]:
  """The frame-local pooling `kind` ('softmax', 'average', 'mean_score' or 'max') of scores [B, F, E]:
  -> (log p(c|S) [B, E], frame importance [B, F]). The LSTM is not frame-local (LSTMPooling)."""
  if kind == "softmax":
    return softmax_pooling(scores, mask, temperature)
  if kind in ("average", "mean_score"):  # the same prediction; trained differently (train/losses.py)
    return average_pooling(scores, mask)
  if kind == "max":
    return max_pooling(scores, mask)
  raise ValueError(f"pooling of frame scores must be 'softmax', 'average', 'mean_score' or 'max' (one of {POOLINGS} "
                   f"but the LSTM runs over features), got {kind!r}")


class LSTMPooling(nn.Module):
  """LSTM over frame features, skipping masked frames (the VGG16+LSTM baseline).

  Attributes:
    num_classes: E.
    hidden: LSTM state size.
  """

  num_classes: int
  hidden: int = 512
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, features: jnp.ndarray, mask: jnp.ndarray) -> dict[str, jnp.ndarray]:
    """features [B, F, K], mask [B, F] -> dict(log_probs [B, E], frame_importance [B, F], frame_scores [B, F, E])."""
    mask = check_mask(features, mask)
    if self.hidden < 1:
      raise ValueError(f"lstm hidden size must be >= 1, got {self.hidden}")
    b = features.shape[0]
    features = jnp.where(mask[..., None], features, jnp.zeros((), features.dtype))  # padding never enters the cell
    cell = nn.OptimizedLSTMCell(self.hidden, dtype=self.dtype, name="cell")
    carry = cell.initialize_carry(jax.random.key(0), (b, features.shape[-1]))

    def step(cell, carry, inputs):
      x, real = inputs
      new_carry, _ = cell(carry, x)
      carry = jax.tree.map(lambda new, old: jnp.where(real[:, None], new, old), new_carry, carry)
      return carry, carry[1]  # (c, h): emit h

    scan = nn.scan(step, variable_broadcast="params", split_rngs={"params": False},
                   in_axes=1, out_axes=1)
    _, hidden = scan(cell, carry, (features, mask))  # [B, F, H]
    frame_scores = nn.Dense(self.num_classes, dtype=self.dtype, name="classifier")(hidden)
    frame_scores = _masked(at_least_float32(frame_scores), mask, 0.0)
    # The prediction is read from the state after the last real frame (masked frames leave
    # the state as it was, and their own scores are zeroed above).
    last_real = features.shape[1] - 1 - jnp.argmax(mask[:, ::-1], axis=1)  # [B]
    last_scores = jnp.take_along_axis(frame_scores, last_real[:, None, None], axis=1)[:, 0]
    log_probs = jax.nn.log_softmax(last_scores, axis=-1)
    importance = _evidence_importance(frame_scores, log_probs, mask)
    return dict(log_probs=log_probs, frame_importance=importance, frame_scores=frame_scores)


def _evidence_importance(frame_scores: jnp.ndarray, log_probs: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
  """How much each frame raised the predicted class's probability, normalised: [B, F]."""
  e = frame_scores.shape[-1]
  predicted = jax.nn.one_hot(jnp.argmax(log_probs, axis=-1), e)  # [B, E]
  prob = jnp.einsum("bfe,be->bf", jax.nn.softmax(frame_scores, axis=-1), predicted)
  # Masked frames repeat the previous state: carry the previous probability through them.
  def carry_forward(prev, inputs):
    p, real = inputs
    p = jnp.where(real, p, prev)
    return p, p
  start = jnp.full(prob.shape[:1], 1.0 / e)
  _, prob = jax.lax.scan(carry_forward, start, (prob.T, mask.T))
  prob = prob.T
  previous = jnp.concatenate([jnp.broadcast_to(start[:, None], (prob.shape[0], 1)), prob[:, :-1]], axis=1)
  gain = jnp.where(mask, jnp.maximum(prob - previous, 0.0), 0.0)
  total = jnp.sum(gain, axis=1, keepdims=True)
  importance = jnp.where(total > 0, gain / jnp.where(total > 0, total, 1.0), _uniform_importance(mask))
  return jax.lax.stop_gradient(importance)
