"""Reader of MatConvNet's VGG-Face release (`--format vggface-mat`), with scipy.io.

  vgg-face.mat      the current release: a `layers` cell array of structs (name, type,
                    weights = {filters [H,W,Cin,Cout], biases}) and `meta` (normalization.
                    averageImage, imageSize; classes.description).
  vgg_face.mat      the older release: everything under a top-level `net` (net.layers,
                    net.normalization); layers before MatConvNet beta-12 hold `filters`/`biases`.
  DagNN files       `layers` name their parameters, a `params` struct array holds the values.

MatConvNet already stores HWIO kernels, so conv layers are only checked and made float32. The
input convention is RGB 0..255 minus averageImage, read from the file (its per-channel mean
when it is a whole [H,W,3] image). MATLAB v7.3 (HDF5) files are refused with how to re-save them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from videmo.models.input_convention import InputConvention
from videmo.weights.common import (FC_NAMES, VGGFACE_CLASSES, Layer, SourceWeights,
                                   WeightFileError, as_float32, check_shape, conv_plan,
                                   guess_network, shape_str)


def _one(x: Any) -> Any:
  """Unwrap MATLAB's 1x1 cells / struct arrays as loaded by scipy (struct_as_record=False)."""
  while isinstance(x, np.ndarray) and x.dtype == object and x.size == 1:
    x = x.reshape(-1)[0]
  return x


def _text(x: Any) -> str:
  x = _one(x)
  if isinstance(x, str):
    return x
  if isinstance(x, np.ndarray) and x.dtype.kind == "U":
    return "".join(str(s) for s in x.reshape(-1))
  return ""


def _items(x: Any) -> list[Any]:
  """The elements of a MATLAB cell array or struct array, in order."""
  if isinstance(x, np.ndarray) and x.dtype == object:
    return [_one(v) for v in x.reshape(-1, order="F")]
  return [x]


def _field(struct: Any, name: str) -> Any:
  return getattr(struct, name, None) if struct is not None else None


def read_vggface_mat(path: Path, keep_fc: bool) -> SourceWeights:
  notes: list[str] = []
  with open(path, "rb") as f:
    header = f.read(128)
  if b"MATLAB 7.3" in header[:20]:
    raise WeightFileError(
        f"{path.name}: expected a MATLAB v5/v7 file; this is MATLAB v7.3 (HDF5), which "
        f"scipy cannot read: re-save it in MATLAB with save(file, '-struct', 'net', '-v7')")
  try:
    import scipy.io  # deferred: only this format needs scipy
    data = scipy.io.loadmat(str(path), struct_as_record=False, squeeze_me=False)
  except Exception as e:  # noqa: BLE001 -- scipy raises many types for damaged files
    raise WeightFileError(
        f"{path.name}: expected a complete MATLAB v5/v7 file, but scipy cannot read it "
        f"({type(e).__name__}: {str(e)[:80]}): truncated or corrupt") from None
  data = {k: v for k, v in data.items() if not k.startswith("__")}
  container = "MatConvNet simplenn"
  net: Any = data
  get = data.get
  if "layers" not in data and "net" in data:  # the older release: everything under `net`
    net = _one(data["net"])
    container = "MatConvNet simplenn (net.*)"
    get = lambda k: _field(net, k)  # noqa: E731
  layers_raw = get("layers")
  if layers_raw is None:
    raise WeightFileError(
        f"{path.name}: expected a MatConvNet network (variables 'layers' and 'meta', or "
        f"'net'); found variables {sorted(data)[:5]}")
  layers = _items(layers_raw)
  params_raw = get("params")
  weights: dict[str, list[np.ndarray]] = {}
  layer_names = []
  if params_raw is not None:  # DagNN: layers name their params, params hold the values
    container = "MatConvNet DagNN"
    values = {_text(_field(p, "name")): _field(p, "value") for p in _items(params_raw)}
    for layer in layers:
      name = _text(_field(layer, "name"))
      layer_names.append(name)
      pnames = [_text(p) for p in _items(_field(layer, "params"))] if _field(
          layer, "params") is not None else []
      if pnames and all(p in values for p in pnames):
        weights[name] = [np.asarray(_one(values[p])) for p in pnames]
  else:
    for layer in layers:
      name = _text(_field(layer, "name"))
      layer_names.append(name)
      if _text(_field(layer, "type")) != "conv":
        continue
      if _field(layer, "weights") is not None:
        weights[name] = [np.asarray(_one(w)) for w in _items(_field(layer, "weights"))]
      elif _field(layer, "filters") is not None:  # MatConvNet before beta-12
        weights[name] = [
            np.asarray(_one(_field(layer, "filters"))),
            np.asarray(_one(_field(layer, "biases")))
        ]
  conv = {}
  for name, c_in, c_out in conv_plan():
    if name not in weights:
      raise WeightFileError(f"{path.name}: expected a conv layer named {name} with filters "
                            f"{shape_str((3, 3, c_in, c_out))}; this file looks like "
                            f"{guess_network([n for n in layer_names if n])}")
    if len(weights[name]) != 2:
      raise WeightFileError(f"{path.name}: expected {name} weights {{filters, biases}}, found "
                            f"{len(weights[name])} arrays")
    filters, biases = weights[name]
    check_shape(filters, (3, 3, c_in, c_out), f"{name} filters", path)
    if biases.size != c_out:
      raise WeightFileError(
          f"{path.name}: expected {name} biases of {c_out} values, found {shape_str(biases)}")
    conv[name] = (as_float32(filters, f"{name} filters", path, notes),
                  as_float32(biases, f"{name} biases", path, notes).reshape(-1))
  meta = _one(get("meta")) if get("meta") is not None else net
  normalization = _one(_field(meta, "normalization"))
  average = _field(normalization, "averageImage")
  if average is None:
    raise WeightFileError(
        f"{path.name}: expected meta.normalization.averageImage (the mean pixel); "
        f"not found")
  average = np.asarray(_one(average), np.float64)
  if average.size == 3:
    mean = tuple(average.reshape(-1))
  elif average.ndim == 3 and average.shape[-1] == 3:
    mean = tuple(average.reshape(-1, 3).mean(axis=0))
    notes.append(f"averageImage is a {shape_str(average)} image; using its per-channel mean")
  else:
    raise WeightFileError(
        f"{path.name}: expected averageImage of 3 values or [H,W,3], found {shape_str(average)}")
  image_size = _field(normalization, "imageSize")
  image_size = int(np.asarray(_one(image_size)).reshape(-1)[0]) if image_size is not None else None
  classes = _one(_field(meta, "classes"))
  class_names = None
  for key in ("description", "name"):
    if _field(classes, key) is not None:
      class_names = [_text(c) for c in _items(_field(classes, key))]
      break
  present = [n for n in FC_NAMES if n in weights]
  fc_out = int(weights["fc8"][1].size) if "fc8" in weights else None
  if fc_out == 1000:  # e.g. imagenet-vgg-verydeep-16.mat: fine, the file carries its own mean
    notes.append(
        "fc8 has 1000 outputs: an ImageNet VGG16, not VGG-Face; its own averageImage is used")
  elif fc_out is not None and fc_out != VGGFACE_CLASSES:
    notes.append(f"fc8 has {fc_out} outputs, not VGG-Face's {VGGFACE_CLASSES} (a fine-tuned head?)")
  fc = None
  if keep_fc:
    if len(present) != 3:
      raise WeightFileError(
          f"{path.name}: fc layers requested, but expected conv layers fc6, fc7, fc8; "
          f"found {present or 'none'}")
    fc = _fc_from_matconvnet({n: weights[n] for n in FC_NAMES}, path, notes)
  elif present:
    notes.append(f"fully connected layers {', '.join(present)} dropped (keep them with --keep-fc)")
  if class_names is not None and fc_out is not None and len(class_names) != fc_out:
    notes.append(f"{len(class_names)} class names for {fc_out} outputs; names ignored")
    class_names = None
  convention = InputConvention("RGB", 1.0, mean, (1.0, 1.0, 1.0))
  return SourceWeights("vggface-mat", path, container, conv, fc, convention, class_names,
                       image_size, notes)


def _fc_from_matconvnet(weights: dict[str, list[np.ndarray]], path: Path,
                        notes: list[str]) -> dict[str, Layer]:
  out: dict[str, Layer] = {}
  prev = 512
  for name in FC_NAMES:
    filters, biases = weights[name]
    filters = as_float32(filters, f"{name} filters", path, notes)
    if filters.ndim == 2:  # MATLAB drops trailing singleton dims only; [1,1,in,out] stays 4-D
      filters = filters[None, None]
    square = filters.ndim == 4 and filters.shape[0] == filters.shape[1]
    if not square or filters.shape[2] != prev or (name != "fc6" and filters.shape[:2] != (1, 1)):
      want = "[k,k,512,N]" if name == "fc6" else f"[1,1,{prev},N]"
      raise WeightFileError(
          f"{path.name}: expected {name} filters {want}, found {shape_str(filters)}")
    b = as_float32(biases, f"{name} biases", path, notes).reshape(-1)
    if b.shape != (filters.shape[-1],):
      raise WeightFileError(f"{path.name}: expected {name} biases of {filters.shape[-1]} values, "
                            f"found {shape_str(b)}")
    kernel = filters if name == "fc6" else filters[0, 0]
    out[name] = (np.ascontiguousarray(kernel), b)
    prev = filters.shape[-1]
  return out

