"""Spatial aggregation of one frame's local descriptors R [..., L, D] into a frame vector.

Three ways, all with the same interface `module(R) -> (V [..., K], A [..., N, L] or None)`:

* `MultiHeadAttention` (the paper, Sec. 3.2): A = softmax_L(W2 · tanh(W1 · Rᵀ)) with
  W1: U×D, W2: N×U; M = A·R [..., N, D] flattened to V [..., N·D]. Its diversity penalty
  `attention_penalty(A)` = ‖A·Aᵀ − I‖²_F is added to the loss times a coefficient.
* `AttentionClusters` with shifting (SHIFT, Long et al. 2018): per unit k,
  a_k = softmax_L(w_k·Rᵀ + b_k), v_k = a_k·R, λ_k = (α_k·v_k + β_k) / (√N·‖α_k·v_k + β_k‖₂)
  with learnable scalars α_k, β_k; V = [λ_1, ..., λ_N], so ‖V‖₂ = 1.
* `SpatialAverage` (the "no spatial attention" baseline): V = mean over L of R [..., D].
"""

from __future__ import annotations

from typing import Any

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from videmo.models.precision import at_least_float32


def attention_penalty(attention: jnp.ndarray) -> jnp.ndarray:
  """Diversity penalty ‖A·Aᵀ − I‖²_F of attention maps A [..., N, L] -> [...] (one per item).

  Zero when the N heads are orthonormal (e.g. one-hot on distinct positions); it grows when
  heads overlap (N identical one-hot heads give N² − N) or spread out.
  """
  if attention.ndim < 2:
    raise ValueError(f"attention must be [..., N, L], got shape {attention.shape}")
  attention = at_least_float32(attention)
  gram = jnp.einsum("...nl,...ml->...nm", attention, attention)
  eye = jnp.eye(attention.shape[-2], dtype=gram.dtype)
  return jnp.sum(jnp.square(gram - eye), axis=(-2, -1))


class MultiHeadAttention(nn.Module):
  """The paper's multi-head spatial self-attention.

  Attributes:
    num_heads: N >= 1, attention maps per frame.
    hidden: U >= 1, width of the tanh layer.
    dtype: computation dtype.
  """

  num_heads: int = 2
  hidden: int = 64
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, local: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """local R [..., L, D] -> (V [..., N·D], A [..., N, L]); each row of A sums to 1."""
    if self.num_heads < 1:
      raise ValueError(f"num_heads must be >= 1, got {self.num_heads}")
    if self.hidden < 1:
      raise ValueError(f"hidden (attention size U) must be >= 1, got {self.hidden}")
    *batch, num_positions, dim = local.shape
    hidden = jnp.tanh(nn.Dense(self.hidden, use_bias=False, dtype=self.dtype, name="W1")(local))
    logits = nn.Dense(self.num_heads, use_bias=False, dtype=self.dtype, name="W2")(hidden)  # [..., L, N]
    attention = jax.nn.softmax(at_least_float32(jnp.swapaxes(logits, -1, -2)), axis=-1)  # [..., N, L]
    pooled = jnp.einsum("...nl,...ld->...nd", attention.astype(local.dtype), local)  # [..., N, D]
    chex.assert_shape(attention, (*batch, self.num_heads, num_positions))
    return pooled.reshape(*batch, self.num_heads * dim), attention


class AttentionClusters(nn.Module):
  """Attention clusters with the shifting operation (SHIFT; Long et al., CVPR 2018).

  Attributes:
    num_heads: N >= 1 attention units.
    dtype: computation dtype.
  """

  num_heads: int = 2
  dtype: Any = jnp.float32
  epsilon: float = 1e-6

  @nn.compact
  def __call__(self, local: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """local R [..., L, D] -> (V [..., N·D] with ‖V‖₂ = 1, A [..., N, L])."""
    if self.num_heads < 1:
      raise ValueError(f"num_heads must be >= 1, got {self.num_heads}")
    *batch, _, dim = local.shape
    logits = nn.Dense(self.num_heads, dtype=self.dtype, name="units")(local)  # w_k·Rᵀ + b_k: [..., L, N]
    attention = jax.nn.softmax(at_least_float32(jnp.swapaxes(logits, -1, -2)), axis=-1)  # [..., N, L]
    pooled = jnp.einsum("...nl,...ld->...nd", attention, at_least_float32(local))  # v_k: [..., N, D]
    alpha = self.param("alpha", nn.initializers.ones, (self.num_heads, 1))
    beta = self.param("beta", nn.initializers.zeros, (self.num_heads, 1))
    shifted = alpha * pooled + beta
    norm = jnp.sqrt(jnp.sum(jnp.square(shifted), axis=-1, keepdims=True) + self.epsilon ** 2)
    shifted = shifted / (jnp.sqrt(float(self.num_heads)) * norm)
    return shifted.reshape(*batch, self.num_heads * dim).astype(self.dtype), attention


class SpatialAverage(nn.Module):
  """No spatial attention: the mean of the L local descriptors."""

  @nn.compact
  def __call__(self, local: jnp.ndarray) -> tuple[jnp.ndarray, None]:
    """local R [..., L, D] -> (V [..., D], None)."""
    return jnp.mean(local, axis=-2), None
