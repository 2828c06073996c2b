"""Reader of the original Caffe VGG-Face release (`--format vggface-caffe`), without Caffe.

VGG_FACE.caffemodel is a NetParameter protobuf, parsed here from the wire format (no protobuf
package, no .proto file): V1 `layers` (as VGG_FACE.caffemodel), new-style `layer` messages and
V0 layers; blob dimensions from BlobShape or the legacy num/channels/height/width; data packed
or not, float or double. Kernels [C_out, C_in, H, W] become HWIO. The channel order stays BGR
(`common.VGGFACE_CAFFE_CONVENTION`: BGR 0..255 minus the mean pixel); `formats.to_rgb` makes
the trunk RGB. A file that ends inside a message is reported as truncated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np

from videmo.weights.common import (FC_NAMES, VGGFACE_CAFFE_CONVENTION, SourceWeights,
                                   WeightFileError, as_float32, check_shape, check_vggface_head,
                                   conv_plan, fc_from_dense, guess_network, shape_str)


class _Truncated(Exception):
  pass


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
  result = shift = 0
  while True:
    if pos >= len(buf):
      raise _Truncated
    byte = buf[pos]
    pos += 1
    result |= (byte & 0x7F) << shift
    if byte < 0x80:
      return result, pos
    shift += 7
    if shift > 70:
      raise WeightFileError("malformed varint")


def _next_field(buf: memoryview, pos: int, end: int) -> tuple[int, int, Any, int]:
  """(field number, wire type, value, next position); value is an int, or (start, end) of bytes."""
  key, pos = _varint(buf, pos)
  number, wire = key >> 3, key & 7
  if wire == 0:
    value, pos = _varint(buf, pos)
  elif wire == 1:
    value, pos = (pos, pos + 8), pos + 8
  elif wire == 2:
    length, pos = _varint(buf, pos)
    value, pos = (pos, pos + length), pos + length
  elif wire == 5:
    value, pos = (pos, pos + 4), pos + 4
  else:
    raise WeightFileError(f"unsupported protobuf wire type {wire} (field {number})")
  if pos > end:
    raise _Truncated
  return number, wire, value, pos


def _fields(buf: memoryview, start: int, end: int) -> Iterator[tuple[int, int, Any]]:
  """(field number, wire type, value) of each field of the message buf[start:end]."""
  pos = start
  while pos < end:
    number, wire, value, pos = _next_field(buf, pos, end)
    yield number, wire, value


def _blob(buf: memoryview, start: int, end: int) -> np.ndarray:
  """A BlobProto: data (packed or not) or double_data, shaped by `shape` or legacy num/c/h/w."""
  chunks: list[np.ndarray] = []
  shape: list[int] = []
  legacy = [0, 0, 0, 0]
  pos = start
  while pos < end:
    number, wire, value, pos = _next_field(buf, pos, end)
    if number in (5, 8) and wire == 2:  # packed float / double
      s, e = value
      dtype = np.dtype("<f4" if number == 5 else "<f8")
      chunks.append(np.frombuffer(buf, dtype=dtype, count=(e - s) // dtype.itemsize, offset=s))
    elif number == 5 and wire == 5:  # unpacked floats: a run of 5-byte records [0x2d, f32]
      s = value[0] - 1
      n = (end - s) // 5
      records = np.frombuffer(buf, np.uint8, count=n * 5, offset=s).reshape(n, 5)
      is_float = records[:, 0] == 0x2D
      run = n if is_float.all() else int(np.argmin(is_float))
      chunks.append(np.ascontiguousarray(records[:run, 1:]).view("<f4").reshape(-1))
      pos = s + 5 * run
    elif number == 7 and wire == 2:  # BlobShape { repeated int64 dim = 1 (packed) }
      for n2, w2, v2 in _fields(buf, *value):
        if n2 == 1 and w2 == 0:
          shape.append(v2)
        elif n2 == 1 and w2 == 2:
          p, e2 = v2
          while p < e2:
            d, p = _varint(buf, p)
            shape.append(d)
    elif 1 <= number <= 4 and wire == 0:  # num, channels, height, width (deprecated)
      legacy[number - 1] = value
  data = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
  dims = shape or (legacy if any(legacy) else [data.size])
  if int(np.prod(dims)) != data.size:
    raise WeightFileError(f"a blob of shape {dims} holds {data.size} values")
  return data.reshape(dims)


# V1LayerParameter.type enum values that carry weights.
_V1_TYPES = {4: "Convolution", 14: "InnerProduct"}


def _caffe_layers(buf: memoryview) -> tuple[str, list[tuple[str, str, list[np.ndarray]]]]:
  """(container, [(layer name, type, blobs)]) of a NetParameter."""
  layers = []
  kinds = set()
  for number, wire, value in _fields(buf, 0, len(buf)):
    if wire != 2 or number not in (2, 100):
      continue
    name, type_, blobs = "", "", []
    kinds.add("layer" if number == 100 else "layers")
    for n, w, v in _fields(buf, *value):
      if number == 100:  # LayerParameter: name 1, type 2 (string), blobs 7
        if n == 1 and w == 2:
          name = bytes(buf[v[0]:v[1]]).decode("utf-8", "replace")
        elif n == 2 and w == 2:
          type_ = bytes(buf[v[0]:v[1]]).decode("utf-8", "replace")
        elif n == 7 and w == 2:
          blobs.append(_blob(buf, *v))
      else:  # V1LayerParameter: name 4, type 5 (enum), blobs 6; V0 in 1: name 1, type 2, blobs 50
        if n == 4 and w == 2:
          name = bytes(buf[v[0]:v[1]]).decode("utf-8", "replace")
        elif n == 5 and w == 0:
          type_ = _V1_TYPES.get(v, f"V1 type {v}")
        elif n == 6 and w == 2:
          blobs.append(_blob(buf, *v))
        elif n == 1 and w == 2:
          kinds.add("V0 layer")
          for n0, w0, v0 in _fields(buf, *v):
            if n0 == 1 and w0 == 2:
              name = bytes(buf[v0[0]:v0[1]]).decode("utf-8", "replace")
            elif n0 == 2 and w0 == 2:
              type_ = bytes(buf[v0[0]:v0[1]]).decode("utf-8", "replace")
            elif n0 == 50 and w0 == 2:
              blobs.append(_blob(buf, *v0))
    layers.append((name, type_, blobs))
  return "Caffe NetParameter (" + ", ".join(sorted(kinds)) + ")", layers


def read_vggface_caffe(path: Path, keep_fc: bool) -> SourceWeights:
  notes: list[str] = []
  raw = path.read_bytes()
  try:
    container, layers = _caffe_layers(memoryview(raw))
  except _Truncated:
    raise WeightFileError(
        f"{path.name}: expected a complete Caffe NetParameter (VGG_FACE.caffemodel is "
        f"about 580 MB); the protobuf ends inside a message: truncated") from None
  except WeightFileError as e:
    raise WeightFileError(f"{path.name}: expected a Caffe NetParameter protobuf, but {e}") from None
  by_name = {name: blobs for name, _, blobs in layers if blobs}
  names = [name for name, _, _ in layers if name]
  if not layers:
    raise WeightFileError(
        f"{path.name}: expected a Caffe NetParameter with layers (fields 'layer' or "
        f"'layers'); found none")
  conv = {}
  for name, c_in, c_out in conv_plan():
    if name not in by_name:
      hint = (" (a deploy .prototxt has no weights; use the .caffemodel)"
              if names and not by_name else "")
      raise WeightFileError(
          f"{path.name}: expected layer {name} with weights {shape_str((c_out, c_in, 3, 3))}; "
          f"this file looks like {guess_network(names)}{hint}")
    blobs = by_name[name]
    if len(blobs) != 2:
      raise WeightFileError(f"{path.name}: expected layer {name} with 2 blobs (weights, bias), "
                            f"found {len(blobs)}")
    w, b = blobs
    check_shape(w, (c_out, c_in, 3, 3), f"{name} weights", path)
    if b.size != c_out:
      raise WeightFileError(
          f"{path.name}: expected {name} bias of {c_out} values, found {shape_str(b)}")
    w = as_float32(w, f"{name} weights", path, notes)
    conv[name] = (np.ascontiguousarray(w.transpose(2, 3, 1, 0)),
                  as_float32(b, f"{name} bias", path, notes).reshape(-1))
  present = [n for n in FC_NAMES if n in by_name]
  fc_out = None
  if "fc8" in by_name:
    w8 = by_name["fc8"][0]
    fc_out = int(w8.reshape(-1, w8.shape[-1]).shape[0]) if w8.ndim else None
  check_vggface_head(fc_out, path, "vggface-caffe", notes)
  fc = None
  if keep_fc:
    if len(present) != 3 or any(len(by_name[n]) != 2 for n in present):
      raise WeightFileError(
          f"{path.name}: fc layers requested, but expected layers fc6, fc7, fc8 with "
          f"2 blobs each; found {present or 'none'}")
    dense = {}
    for n in FC_NAMES:
      w, b = by_name[n]
      if w.ndim == 4 and w.shape[:2] == (1, 1):  # legacy dims (1, 1, out, in)
        w = w[0, 0]
      dense[n] = (w, b)
    fc = fc_from_dense(dense, path, notes)
  elif present:
    notes.append(f"fully connected layers {', '.join(present)} dropped (keep them with --keep-fc)")
  return SourceWeights("vggface-caffe", path, container, conv, fc, VGGFACE_CAFFE_CONVENTION,
                       image_size=224, notes=notes)
