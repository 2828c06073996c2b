"""What every reader of a published VGG16 weight file shares: the result type, the error, the
constants of the releases, and the checks that make every reader strict in the same words.

  SourceWeights     one file's weights in Flax layouts (conv kernel [3, 3, C_in, C_out] HWIO,
                    bias [C_out], float32), in the file's own channel order, with its convention.
  WeightFormat      one entry of the `--format` registry (`videmo.weights.formats.formats()`).
  WeightFileError   a file cannot be converted; the one-line message says what was expected.
  conv_plan         (name, C_in, C_out) of VGG16's 13 convolutions, as `videmo.models.vgg` builds.
  as_float32, check_shape, fc_from_dense, check_vggface_head, guess_network, shape_str
                    the shared checks and the one way shapes are written in messages ([3,3,3,64]).

This module needs numpy only (`conv_plan` imports the model's layer table when called), so
`videmo.weights.converted`, which uses the error type and FC_NAMES, stays import-light.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from videmo.models.input_convention import InputConvention

VGGFACE_CAFFE_CONVENTION = InputConvention("BGR", 1.0, (93.5940, 104.7624, 129.1863),
                                           (1.0, 1.0, 1.0))
TORCHVISION_FEATURES_CONVENTION = InputConvention(
    "RGB", 1.0 / 255.0, (0.48235, 0.45882, 0.40784), (1.0 / 255.0,) * 3)
FC_NAMES = ("fc6", "fc7", "fc8")
VGGFACE_CLASSES = 2622


class WeightFileError(ValueError):
  """A weight file cannot be converted; the (one-line) message says what was expected."""


Layer = tuple[np.ndarray, np.ndarray]  # (kernel, bias)


@dataclasses.dataclass
class SourceWeights:
  """Weights read from a published file, in Flax layouts and the file's own channel order.

  conv: name -> (kernel [3, 3, C_in, C_out], bias [C_out]) float32, for all of VGG16_LAYER_NAMES.
  fc: None unless asked for: fc6 ([k, k, 512, N6], [N6]), fc7 ([N6, N7], [N7]),
    fc8 ([N7, N8], [N8]).
  convention: the normalisation the release expects (channel order as in the file).
  """

  format: str
  path: Path
  container: str
  conv: dict[str, Layer]
  fc: dict[str, Layer] | None
  convention: InputConvention
  class_names: list[str] | None = None
  image_size: int | None = None
  notes: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class WeightFormat:
  name: str
  filename: str
  url: str
  description: str
  kind: str  # container kind `sniff` must find: torch, mat, caffe
  reader: Callable[[Path, bool], SourceWeights]


def conv_plan() -> list[tuple[str, int, int]]:
  """(name, C_in, C_out) for the 13 convolutions of VGG16."""
  from videmo.models.vgg import VGG16_BLOCKS, VGG16_LAYER_NAMES  # deferred: vgg imports flax

  plan, c_in = [], 3
  for name, c_out in zip(VGG16_LAYER_NAMES, (c for block in VGG16_BLOCKS for c in block)):
    plan.append((name, c_in, c_out))
    c_in = c_out
  return plan


def shape_str(a: np.ndarray | Iterable[int]) -> str:
  """An array's shape (or a shape) as written in messages: [3,3,3,64]."""
  return "[" + ",".join(str(d) for d in (a.shape if hasattr(a, "shape") else a)) + "]"


def guess_network(names: list[str]) -> str:
  """A short guess at which network a list of parameter / layer names belongs to."""
  joined = " ".join(names)
  shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
  if not names:
    return "an empty network (no parameters found)"
  if any(s in joined for s in ("layer1.0.", "res2a", "layer4.")):
    return f"a ResNet (found {shown})"
  if any(s in joined for s in ("running_mean", "running_var", "/bn", "_bn")):
    return f"a network with batch normalisation, e.g. vgg16_bn (found {shown})"
  if "features.34." in joined or "conv5_4" in joined:
    return f"VGG19 (found {'conv5_4' if 'conv5_4' in joined else 'features.34.weight'})"
  if "inception" in joined.lower() or "mixed" in joined.lower():
    return f"an Inception / GoogLeNet (found {shown})"
  if "conv1" in names or "conv1.weight" in names or (
      "features.0.weight" in names and "features.28.weight" not in names):
    return f"AlexNet / CaffeNet / VGG-M, not VGG16 (found {shown})"
  return f"another network (found {shown})"


def as_float32(a: Any, what: str, path: Path, notes: list[str]) -> np.ndarray:
  """`a` as a contiguous float32 array; refuses integers and NaN / inf, notes a conversion."""
  a = np.asarray(a)
  if a.dtype.kind not in "fV" and a.dtype.name != "bfloat16":
    raise WeightFileError(
        f"{path.name}: expected floating-point weights for {what}, found {a.dtype}")
  note = f"weights stored as {a.dtype}, converted to float32"
  if a.dtype != np.float32 and note not in notes:
    notes.append(note)
  a = np.ascontiguousarray(a, dtype=np.float32)
  if not np.all(np.isfinite(a)):
    raise WeightFileError(
        f"{path.name}: {what} contains NaN or infinite values; expected finite weights")
  return a


def check_shape(a: np.ndarray, expected: tuple[int, ...], what: str, path: Path) -> None:
  if a.shape != expected:
    raise WeightFileError(
        f"{path.name}: expected {what} of shape {shape_str(expected)}, found {shape_str(a)} "
        f"(not VGG16, or a different layout)")


def fc_from_dense(weights: dict[str, tuple[np.ndarray, np.ndarray]], path: Path,
                  notes: list[str], fc6_in: int = 512) -> dict[str, Layer]:
  """fc layers given as torch/Caffe dense weights [out, in] (fc6's input flattened C, H, W).

  fc6 may also be [out, 512, k, k]; fc7/fc8 [out, in, 1, 1]. Returns the canonical layouts.
  """
  out: dict[str, Layer] = {}
  prev = None
  for name in FC_NAMES:
    w, b = weights[name]
    w = as_float32(w, f"{name} weight", path, notes)
    b = as_float32(b, f"{name} bias", path, notes).reshape(-1)
    if name == "fc6":
      if w.ndim == 2:
        k = math.isqrt(w.shape[1] // fc6_in) if w.shape[1] % fc6_in == 0 else 0
        if k == 0 or k * k * fc6_in != w.shape[1]:
          raise WeightFileError(
              f"{path.name}: expected fc6 weight [N, 512*k*k] (k*k pool5 cells of 512 "
              f"channels, 25088 at 224x224), found {shape_str(w)}")
        w = w.reshape(w.shape[0], fc6_in, k, k)
      if w.ndim != 4 or w.shape[1] != fc6_in or w.shape[2] != w.shape[3]:
        raise WeightFileError(f"{path.name}: expected fc6 weight [N, 512, k, k] or [N, 512*k*k], "
                              f"found {shape_str(w)}")
      kernel = np.ascontiguousarray(w.transpose(2, 3, 1, 0))  # [k, k, 512, N6]
    else:
      if w.ndim == 4 and w.shape[2:] == (1, 1):
        w = w[:, :, 0, 0]
      if w.ndim != 2 or w.shape[1] != prev:
        raise WeightFileError(f"{path.name}: expected {name} weight [N, {prev}] (its input is the "
                              f"previous layer's {prev} outputs), found {shape_str(w)}")
      kernel = np.ascontiguousarray(w.T)  # [in, out]
    if b.shape != (kernel.shape[-1],):
      raise WeightFileError(f"{path.name}: expected {name} bias of shape [{kernel.shape[-1]}], "
                            f"found {shape_str(b)}")
    out[name] = (kernel, b)
    prev = kernel.shape[-1]
  return out


def check_vggface_head(fc_out: int | None, path: Path, fmt: str, notes: list[str]) -> None:
  """Refuses an ImageNet head (1000 outputs) under a VGG-Face format; notes another size."""
  if fc_out is None:
    return
  if fc_out == 1000:
    raise WeightFileError(
        f"{path.name}: --format {fmt} expects VGG-Face (fc8 with {VGGFACE_CLASSES} "
        f"identities); this file's fc8 has 1000 outputs, i.e. an ImageNet VGG16 whose "
        f"mean pixel differs (use torchvision-vgg16 for torchvision's file)")
  if fc_out != VGGFACE_CLASSES:
    notes.append(f"fc8 has {fc_out} outputs, not VGG-Face's {VGGFACE_CLASSES} (a fine-tuned head?)")
