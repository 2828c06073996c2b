"""Computation dtypes of the model, and the float32-or-wider rule for what is not a matrix product.

`model.dtype` is the dtype of the convolutions and dense layers:
  float32   the default;
  bfloat16  mixed precision (GPU/TPU configs): matrices in bfloat16, and softmaxes, the penalty,
            pooling, log-probabilities and the loss in float32;
  float64   numerical reference checks (tests); needs `jax.enable_x64`.
Parameters are float32 unless the caller casts them (float64 checks do).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

DTYPES: dict[str, Any] = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float64": jnp.float64}


def at_least_float32(x: jnp.ndarray) -> jnp.ndarray:
  """x in float32, or in its own dtype if wider (float64): softmaxes and sums never run in bfloat16."""
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def check_dtype(name: str) -> None:
  """Raise if `name` is not a model dtype, or is float64 without 64-bit mode."""
  if name not in DTYPES:
    raise ValueError(f"model.dtype must be one of {tuple(DTYPES)}, got {name!r}")
  if name == "float64" and not jax.config.read("jax_enable_x64"):
    raise ValueError("model.dtype 'float64' needs 64-bit mode (jax.enable_x64(True) or JAX_ENABLE_X64=1)")
