"""Which convolution a model runs: XLA's or oneDNN's (`model.conv_impl`).

  'auto'    oneDNN on CPU when its library builds and loads and oneDNN makes the layer's
            primitive here, for float32, and for bfloat16 where oneDNN's instruction set has
            bf16 arithmetic (AVX512-BF16, AMX); XLA's everywhere else (GPU, TPU, float64
            checks, a machine without a compiler or the oneDNN wheels, bfloat16 on an AVX2 or
            plain AVX-512 CPU, a shape oneDNN refuses). Each fallback is logged once.
  'xla'     always `lax.conv_general_dilated`.
  'onednn'  oneDNN, or a one-line error saying why it cannot run here, raised before compiling.

`conv_general_dilated(impl, dtype)` returns a drop-in for `lax.conv_general_dilated` (the
callable `flax.linen.Conv` accepts as `conv_general_dilated`). The choice is made when the
model is traced, on the default backend, layer by layer: oneDNN is asked whether it can make
each layer's primitives (videmo/ops/onednn_conv.py, `refusal`), once per shape and dtype.
Convolutions the oneDNN op does not take (dilation, groups, layouts other than NHWC/HWIO)
always go to XLA. `traced_paths()` counts, per dtype, the layers traced on each path.
"""

from __future__ import annotations

import collections
import functools
import logging

import jax
import jax.numpy as jnp
from jax import lax

from videmo.ops import native_build, onednn_conv

log = logging.getLogger(__name__)

CONV_IMPLS = ("auto", "xla", "onednn")
_NHWC = lax.ConvDimensionNumbers(lhs_spec=(0, 3, 1, 2), rhs_spec=(3, 2, 0, 1), out_spec=(0, 3, 1, 2))
_PROBE = dict(x_shape=(1, 8, 8, 16), w_shape=(3, 3, 16, 16), strides=(1, 1), padding=((1, 1), (1, 1)))
_traced = collections.defaultdict(collections.Counter)  # dtype name -> {'onednn' | 'xla': layers traced}


def check_conv_impl(impl: str) -> None:
  if impl not in CONV_IMPLS:
    raise ValueError(f"conv_impl must be one of {CONV_IMPLS}, got {impl!r}")


def unavailable_reason(dtype) -> str | None:
  """Why oneDNN cannot run a `dtype` convolution on the default backend here (None: it can).

  Beyond the backend, the dtype and the library, oneDNN is asked to make the primitives of a
  small 3x3 convolution (forward and both gradients) in `dtype` on this CPU.
  """
  dtype = jnp.dtype(dtype)
  if jax.default_backend() != "cpu":
    return f"the default backend is {jax.default_backend()}, not cpu"
  if dtype not in (jnp.float32, jnp.bfloat16):
    return f"oneDNN takes float32 or bfloat16, not {dtype.name}"
  if native_build.load() is None:
    return "the oneDNN library could not be built or loaded"
  return onednn_conv.refusal(dtype=dtype, **_PROBE)


def auto_skip_reason(dtype) -> str | None:
  """Why 'auto' uses XLA for `dtype` convolutions here (None: oneDNN, layer by layer)."""
  reason = unavailable_reason(dtype)
  if reason is None and jnp.dtype(dtype) == jnp.bfloat16:
    isa = native_build.effective_cpu_isa()
    if not native_build.isa_has_native_bf16(isa):
      reason = f"oneDNN would emulate bf16 with this CPU's instruction set ({isa})"
  return reason


@functools.cache
def _log_fallback(dtype_name: str, reason: str) -> None:
  """One warning line per dtype and reason: '<dtype> convolutions: XLA (<why>)'."""
  if dtype_name == "bfloat16" and "has no bfloat16" in reason:
    log.warning("bf16 convolutions: XLA (oneDNN has no bf16 kernel for this CPU: instruction set %s)",
                native_build.effective_cpu_isa())
  else:
    log.warning("%s convolutions: XLA (%s)", "bf16" if dtype_name == "bfloat16" else dtype_name, reason)


def resolve(impl: str, dtype) -> str:
  """'auto' / 'xla' / 'onednn' -> the path that runs: 'xla' or 'onednn' (errors if 'onednn' cannot).

  The dtype's path as a whole; a layer whose shape oneDNN refuses still goes to XLA under
  'auto' (and raises under 'onednn') when it is traced.
  """
  check_conv_impl(impl)
  if impl == "xla":
    return "xla"
  if impl == "onednn":
    reason = unavailable_reason(dtype)
    if reason is not None:
      raise ValueError(f"model.conv_impl='onednn' cannot run here: {reason}; use 'auto' or 'xla'")
    return "onednn"
  reason = auto_skip_reason(dtype)
  if reason is None:
    return "onednn"
  if jax.default_backend() == "cpu" and native_build.load() is not None:
    _log_fallback(jnp.dtype(dtype).name, reason)  # the library-absent case has its own warning
  return "xla"


def traced_paths() -> dict[str, dict[str, int]]:
  """dtype name -> {'onednn' | 'xla': the number of convolution layers traced on that path}."""
  return {dtype: dict(counts) for dtype, counts in _traced.items()}


def _xla(lhs, rhs, *args, **kwargs):
  _traced[jnp.dtype(lhs.dtype).name]["xla"] += 1
  return lax.conv_general_dilated(lhs, rhs, *args, **kwargs)


def _onednn_or_xla(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                   dimension_numbers=None, feature_group_count=1, precision=None, *, strict=False,
                   **kwargs):
  """lax.conv_general_dilated's signature; oneDNN for what it takes and can make here, XLA for the rest.

  strict (conv_impl='onednn'): a layer oneDNN refuses raises `onednn_conv.Refused` instead.
  """
  plain = (all(d == 1 for d in (lhs_dilation or (1, 1))) and all(d == 1 for d in (rhs_dilation or (1, 1)))
           and feature_group_count == 1 and lhs.ndim == 4 and not kwargs
           and lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers) == _NHWC
           and lhs.dtype == rhs.dtype)
  if plain:
    try:
      out = onednn_conv.conv2d(lhs, rhs, window_strides, padding)
      _traced[jnp.dtype(lhs.dtype).name]["onednn"] += 1
      return out
    except onednn_conv.Refused as err:
      if strict:
        raise ValueError(f"model.conv_impl='onednn' cannot run here: {err}; use 'auto' or 'xla'") from None
      _log_fallback(jnp.dtype(lhs.dtype).name, str(err))
  return _xla(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
              feature_group_count, precision=precision, **kwargs)


def conv_general_dilated(impl: str, dtype):
  """The convolution function for `conv_impl` and the model's computation dtype."""
  if resolve(impl, dtype) == "onednn":
    return functools.partial(_onednn_or_xla, strict=impl == "onednn")
  return _xla
