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

What this machine can run: oneDNN makes a primitive per shape, dtype and direction, and may
refuse one (bfloat16 on a CPU without AVX512-BF16 or AMX, where oneDNN 3.2 has no bf16
convolution; an odd shape). `refusal(...)` asks it at trace time, once per key, before any
call is compiled; `conv2d` raises `Refused` (one line, naming oneDNN's instruction set and
what is missing) instead of an INTERNAL error inside the step, and `conv_impl='auto'`
(videmo/ops/conv.py) sends such a layer to XLA's convolution.
"""

from __future__ import annotations

import ctypes
import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import PartitionSpec

from videmo.ops import native_build

Padding = tuple[tuple[int, int], tuple[int, int]]
DIRECTIONS = ("forward", "backward data", "backward weights")  # the library's Kind, in order


class Refused(ValueError):
  """oneDNN cannot make this convolution's primitive on this machine (the message says why)."""


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


@functools.cache
def _direction_refusal(dims: tuple[int, ...], dtype_name: str, kind: int) -> str | None:
  """oneDNN's reason for refusing one direction's primitive (None: it made it, and keeps it)."""
  library = native_build.load()
  message = ctypes.create_string_buffer(512)
  ok = library.VidemoConvSupported((ctypes.c_int64 * len(dims))(*dims), int(dtype_name == "bfloat16"),
                                   kind, message, len(message))
  return None if ok else (message.value.decode(errors="replace") or "no reason given")


def refusal(x_shape: Sequence[int], w_shape: Sequence[int], strides: Sequence[int], padding: Padding,
            dtype) -> str | None:
  """Why oneDNN cannot run this convolution (forward and both gradients) here; None if it can.

  Asked of oneDNN itself, once per (shape, dtype, direction), and cached: the primitives it
  makes are the ones the compiled step then runs. The reason names oneDNN's instruction set
  (ONEDNN_MAX_CPU_ISA caps it) and, for bfloat16, the CPU features it would need.
  """
  dtype_name = jnp.dtype(dtype).name
  if dtype_name not in ("float32", "bfloat16"):
    return f"oneDNN takes float32 or bfloat16, not {dtype_name}"
  (top, bottom), (left, right) = padding
  n, oh, ow, co = output_shape(x_shape, w_shape, strides, padding)
  dims = (n, *x_shape[1:4], *w_shape[:2], co, oh, ow, strides[0], strides[1], top, bottom, left, right)
  dims = tuple(int(d) for d in dims)
  for kind, direction in enumerate(DIRECTIONS):
    reason = _direction_refusal(dims, dtype_name, kind)
    if reason is None:
      continue
    isa = native_build.effective_cpu_isa()
    if dtype_name == "bfloat16" and not native_build.isa_has_native_bf16(isa):
      return (f"oneDNN {native_build.onednn_version()} has no bfloat16 {direction} kernel for this CPU "
              f"(instruction set {isa}; bfloat16 needs AVX512-BF16 (avx512_core_bf16) or AMX): {reason}")
    return (f"oneDNN {native_build.onednn_version()} refuses the {dtype_name} {direction} convolution of "
            f"x {tuple(x_shape)} and w {tuple(w_shape)} (strides {tuple(strides)}, padding {padding}) "
            f"with instruction set {isa}: {reason}")
  return None


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
  the op does not take (rank, dtype, mismatched channels), Refused (a ValueError) where oneDNN
  cannot make the primitive on this machine: all before anything is compiled.
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
  sharded = not (mesh.empty or mesh.size == 1 or x.shape[0] % mesh.size)
  shard_shape = (x.shape[0] // mesh.size, *x.shape[1:]) if sharded else x.shape
  reason = refusal(shard_shape, w.shape, strides, pads, x.dtype)
  if reason is not None:
    raise Refused(reason)
  if not sharded:
    return _conv(x, w, strides, pads)
  batch = PartitionSpec(mesh.axis_names)
  per_shard = jax.shard_map(lambda xs, ws: _conv(xs, ws, strides, pads), mesh=mesh,
                            in_specs=(batch, PartitionSpec()), out_specs=batch, check_vma=False)
  return per_shard(x, w)
