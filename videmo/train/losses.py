"""The classification loss of a batch, as each pooling is trained (selection, never multiplication by masks).

Shapes: B clips, F frames, E classes; `usable` clips are valid (not padding) and have at
least one real frame. A clip that is not usable contributes nothing, and neither does a
masked frame: their scores are replaced by 0 before the log-softmax and their terms selected
away before any sum (a "double where"), so a NaN or inf in them reaches neither the loss nor
its gradient (tests/test_losses.py calls the loss on raw scores with such padding).

* every pooling but 'average': the clip's cross-entropy −log p(y|S) (paper eq. 6), averaged
  over usable clips.
* 'average' (the paper's AVG, eq. 7): every real frame f of a usable clip is classified on
  its own with the clip's label, −log softmax(o_f)[y]; the loss is the mean over all those
  frames of the batch (eq. 7 sums them; the mean keeps the scale of the clip cross-entropy, so
  learning rates carry over). At inference the clip's prediction is softmax(mean_f o_f).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

FRAME_LEVEL = ("average",)  # poolings trained with the per-frame loss of eq. 7


def usable_clips(mask: jnp.ndarray, valid: jnp.ndarray) -> jnp.ndarray:
  """[B] bool: a valid clip with at least one real frame (mask [B, F], valid [B])."""
  return valid.astype(bool) & jnp.any(mask.astype(bool), axis=1)


def classification_loss(outputs: dict, label: jnp.ndarray, mask: jnp.ndarray, valid: jnp.ndarray,
                        temporal: str) -> jnp.ndarray:
  """Scalar loss of the model's outputs (log_probs [B, E], frame_scores [B, F, E]) for labels [B]."""
  usable = usable_clips(mask, valid)
  if temporal in FRAME_LEVEL:
    counted = mask.astype(bool) & usable[:, None]
    clean = jnp.where(counted[..., None], outputs["frame_scores"], 0.0)  # before the log: the inner where
    log_p = jax.nn.log_softmax(clean, axis=-1)  # [B, F, E]
    nll = -jnp.take_along_axis(log_p, label[:, None, None], axis=-1)[..., 0]  # [B, F]
    return jnp.sum(jnp.where(counted, nll, 0.0)) / jnp.maximum(jnp.sum(counted), 1)
  log_probs = jnp.where(usable[:, None], outputs["log_probs"], 0.0)  # the inner where
  nll = -jnp.take_along_axis(log_probs, label[:, None], axis=1)[:, 0]  # [B]
  return jnp.sum(jnp.where(usable, nll, 0.0)) / jnp.maximum(jnp.sum(usable), 1)
