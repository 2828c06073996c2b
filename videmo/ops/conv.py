"""Which convolution a model runs: XLA's or oneDNN's (`model.conv_impl`).

  'auto'    oneDNN on CPU when its library builds and loads and the dtype is float32 (or
            bfloat16 on a CPU with native bf16 instructions); XLA's everywhere else (GPU, TPU,
            float64 checks, a machine without a compiler or the oneDNN wheels).
  'xla'     always `lax.conv_general_dilated`.
  'onednn'  oneDNN, or an error saying why it cannot run here.

`conv_general_dilated(impl, dtype)` returns a drop-in for `lax.conv_general_dilated` (the
callable `flax.linen.Conv` accepts as `conv_general_dilated`). The choice is made when the
model is traced, on the default backend; convolutions the oneDNN op does not take (dilation,
groups, layouts other than NHWC/HWIO) always go to XLA.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import jax
import jax.numpy as jnp
from jax import lax

from videmo.ops import native_build, onednn_conv

log = logging.getLogger(__name__)

CONV_IMPLS = ("auto", "xla", "onednn")
_NHWC = lax.ConvDimensionNumbers(lhs_spec=(0, 3, 1, 2), rhs_spec=(3, 2, 0, 1), out_spec=(0, 3, 1, 2))
_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def check_conv_impl(impl: str) -> None:
  if impl not in CONV_IMPLS:
    raise ValueError(f"conv_impl must be one of {CONV_IMPLS}, got {impl!r}")


@functools.cache
def cpu_has_native_bf16() -> bool:
  """Whether the CPU has bf16 dot-product instructions (AVX512-BF16 or AMX-BF16)."""
  try:
    flags = Path("/proc/cpuinfo").read_text().split()
  except OSError:
    return False
  return any(flag in flags for flag in _BF16_FLAGS)


def unavailable_reason(dtype) -> str | None:
  """Why oneDNN cannot run a `dtype` convolution on the default backend here (None: it can)."""
  dtype = jnp.dtype(dtype)
  if jax.default_backend() != "cpu":
    return f"the default backend is {jax.default_backend()}, not cpu"
  if dtype == jnp.bfloat16 and not cpu_has_native_bf16():
    return "this CPU has no native bf16 (avx512_bf16 or amx_bf16)"
  if dtype not in (jnp.float32, jnp.bfloat16):
    return f"oneDNN takes float32 or bfloat16, not {dtype.name}"
  if native_build.load() is None:
    return "the oneDNN library could not be built or loaded"
  return None


def resolve(impl: str, dtype) -> str:
  """'auto' / 'xla' / 'onednn' -> the path that runs: 'xla' or 'onednn' (errors if 'onednn' cannot)."""
  check_conv_impl(impl)
  if impl == "xla":
    return "xla"
  reason = unavailable_reason(dtype)
  if reason is None:
    return "onednn"
  if impl == "onednn":
    raise ValueError(f"model.conv_impl='onednn' cannot run here: {reason}; use 'auto' or 'xla'")
  return "xla"


def _onednn_or_xla(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                   dimension_numbers=None, feature_group_count=1, precision=None, **kwargs):
  """lax.conv_general_dilated's signature; oneDNN for what it takes, XLA for the rest."""
  plain = (all(d == 1 for d in (lhs_dilation or (1, 1))) and all(d == 1 for d in (rhs_dilation or (1, 1)))
           and feature_group_count == 1 and lhs.ndim == 4 and not kwargs
           and lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers) == _NHWC
           and lhs.dtype == rhs.dtype)
  if not plain:
    return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                                    dimension_numbers, feature_group_count, precision=precision, **kwargs)
  return onednn_conv.conv2d(lhs, rhs, window_strides, padding)


def conv_general_dilated(impl: str, dtype):
  """The convolution function for `conv_impl` and the model's computation dtype."""
  return _onednn_or_xla if resolve(impl, dtype) == "onednn" else lax.conv_general_dilated
