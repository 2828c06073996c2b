"""A 2-D convolution that runs oneDNN's kernels on CPU: one JAX op with a custom VJP.

`conv2d(x, w, strides, padding)`:
  x [N, H, W, Ci] (NHWC), w [KH, KW, Ci, Co] (HWIO), float32 or bfloat16 (the same for both)
  -> y [N, OH, OW, Co], the value of `lax.conv_general_dilated(x, w, strides, padding,
     dimension_numbers=("NHWC", "HWIO", "NHWC"))`.

Forward, gradient of the input and gradient of the weights are the three XLA FFI targets of
onednn_conv.cc (built and registered by native_build.py). The op works under `jit`, `grad`
and `vmap` (a vmapped axis runs as a loop over calls).

Data parallelism: XLA's SPMD partitioner cannot see into a custom call and would gather its
operands onto every device. So when the op is traced under a mesh (`jax.sharding.
use_abstract_mesh`, as videmo's train and eval steps are), it runs inside `shard_map` with the
batch axis split over all of the mesh's axes and the kernel replicated: each device convolves
its own shard, and the kernel's gradient is summed across devices by shard_map's transpose.
This assumes a data-parallel mesh (videmo's `data` axis), the only kind videmo builds.
"""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import numpy as np
from jax import lax
from jax.sharding import PartitionSpec

from videmo.ops import native_build

Padding = tuple[tuple[int, int], tuple[int, int]]


def available() -> bool:
  """Whether the oneDNN library is built and loaded (builds it at the first call)."""
  return native_build.load() is not None


def explicit_padding(x_shape: Sequence[int], w_shape: Sequence[int], strides: Sequence[int],
                     padding: str | Sequence[tuple[int, int]]) -> Padding:
  """'SAME' / 'VALID' / ((top, bottom), (left, right)) -> explicit pads for NHWC x and HWIO w."""
  if isinstance(padding, str):
    padding = lax.padtype_to_pads(tuple(x_shape[1:3]), tuple(w_shape[:2]), tuple(strides), padding)
  (top, bottom), (left, right) = padding
  return (int(top), int(bottom)), (int(left), int(right))


def output_shape(x_shape: Sequence[int], w_shape: Sequence[int], strides: Sequence[int],
                 padding: Padding) -> tuple[int, int, int, int]:
  """[N, OH, OW, Co] of the convolution."""
  n, h, w, _ = x_shape
  kh, kw, _, co = w_shape
  (top, bottom), (left, right) = padding
  return n, (h + top + bottom - kh) // strides[0] + 1, (w + left + right - kw) // strides[1] + 1, co


def _attributes(strides: Sequence[int], padding: Padding) -> dict[str, np.int64]:
  (top, bottom), (left, right) = padding
  return dict(stride_h=np.int64(strides[0]), stride_w=np.int64(strides[1]), pad_top=np.int64(top),
              pad_bottom=np.int64(bottom), pad_left=np.int64(left), pad_right=np.int64(right))


def _ffi(target: str, shape: Sequence[int], dtype, a: jax.Array, b: jax.Array,
         strides: Sequence[int], padding: Padding) -> jax.Array:
  call = jax.ffi.ffi_call(target, jax.ShapeDtypeStruct(tuple(shape), dtype), vmap_method="sequential")
  return call(a, b, **_attributes(strides, padding))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv(x: jax.Array, w: jax.Array, strides: tuple[int, int], padding: Padding) -> jax.Array:
  return _ffi("videmo_onednn_conv_fwd", output_shape(x.shape, w.shape, strides, padding), x.dtype,
              x, w, strides, padding)


def _conv_forward(x, w, strides, padding):
  return _conv(x, w, strides, padding), (x, w)


def _conv_backward(strides, padding, residuals, dy):
  x, w = residuals
  dy = dy.astype(x.dtype)
  dx = _ffi("videmo_onednn_conv_bwd_data", x.shape, x.dtype, dy, w, strides, padding)
  dw = _ffi("videmo_onednn_conv_bwd_weights", w.shape, w.dtype, x, dy, strides, padding)
  return dx, dw


_conv.defvjp(_conv_forward, _conv_backward)


def conv2d(x: jax.Array, w: jax.Array, strides: Sequence[int] = (1, 1),
           padding: str | Sequence[tuple[int, int]] = "SAME") -> jax.Array:
  """x [N, H, W, Ci], w [KH, KW, Ci, Co] -> [N, OH, OW, Co] through oneDNN (see module doc).

  Raises NativeUnavailable if the library cannot be built or loaded, ValueError on operands
  the op does not take (rank, dtype, mismatched channels).
  """
  if native_build.load() is None:
    raise native_build.NativeUnavailable("the oneDNN convolution library is not available (see the warning above)")
  if x.ndim != 4 or w.ndim != 4 or x.shape[3] != w.shape[2]:
    raise ValueError(f"conv2d takes x [N, H, W, Ci] and w [KH, KW, Ci, Co]; got {x.shape} and {w.shape}")
  if x.dtype != w.dtype or x.dtype.name not in ("float32", "bfloat16"):
    raise ValueError(f"conv2d takes float32 or bfloat16 x and w of one dtype; got {x.dtype} and {w.dtype}")
  strides = (int(strides[0]), int(strides[1]))
  pads = explicit_padding(x.shape, w.shape, strides, padding)
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty or mesh.size == 1 or x.shape[0] % mesh.size:
    return _conv(x, w, strides, pads)
  batch = PartitionSpec(mesh.axis_names)
  per_shard = jax.shard_map(lambda xs, ws: _conv(xs, ws, strides, pads), mesh=mesh,
                            in_specs=(batch, PartitionSpec()), out_specs=batch, check_vma=False)
  return per_shard(x, w)
