"""Readers for the public VGG-Face / VGG16 weight files, into Flax layouts, checked exactly.

Each reader takes one published file and returns `SourceWeights`: the 13 convolutions as
`kernel` [3, 3, C_in, C_out] (HWIO, Flax's layout) and `bias` [C_out] in float32, optionally
the fully connected layers, and the input convention of that release. Channel order is still
the file's own (BGR for Caffe); `videmo.models.pretrained` turns every trunk into an RGB one.

Formats (`--format` of `videmo convert-weights`):

  vggface-pth                 vgg_face_dag.pth, the PyTorch port of VGG-Face (S. Albanie):
                              keys conv1_1.weight [64,3,3,3] ... fc8.bias; RGB 0..255 minus mean.
  vggface-mat                 vgg-face.mat, the MatConvNet release: `layers` cell array of structs
                              (name, type, weights = {filters [H,W,Cin,Cout], biases}) and
                              `meta.normalization.averageImage`; the older vgg_face.mat with a
                              top-level `net` (net.layers, net.normalization) and DagNN files
                              (`params` struct array) are read too. RGB 0..255 minus averageImage.
  vggface-caffe               VGG_FACE.caffemodel, the original Caffe release: a NetParameter
                              protobuf (V1 `layers` or new `layer` messages, legacy or BlobShape
                              blob dimensions), kernels [C_out, C_in, H, W]; BGR 0..255 minus mean.
  torchvision-vgg16           vgg16-397923af.pth, torchvision's ImageNet VGG16 (features.N.weight,
                              classifier.N.weight); RGB in 0..1, ImageNet mean / std.
  torchvision-vgg16-features  vgg16_features-amdegroot-88682ab5.pth, torchvision's
                              IMAGENET1K_FEATURES (same keys, classifier is NaN); RGB 0..255 minus
                              (123.0, 117.0, 104.0).

Fully connected layers come out as fc6 `kernel` [k, k, 512, N6] (a k x k valid convolution on
pool5, k = 7 at 224x224 input), fc7 `kernel` [N6, N7], fc8 `kernel` [N7, N8], each with a
`bias`. Readers never guess: a missing, mis-shaped or unexpected entry, a truncated file or a
file of another network raises `WeightFileError` with one line saying what was expected.
"""

from __future__ import annotations

import dataclasses
import math
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from videmo.models import torch_pickle
from videmo.models.input_convention import IMAGENET_CONVENTION, VGGFACE_CONVENTION, InputConvention
from videmo.models.vgg import VGG16_BLOCKS, VGG16_LAYER_NAMES

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
  plan, c_in = [], 3
  for name, c_out in zip(VGG16_LAYER_NAMES, (c for block in VGG16_BLOCKS for c in block)):
    plan.append((name, c_in, c_out))
    c_in = c_out
  return plan


def read(format_name: str, path: str | Path, keep_fc: bool = False) -> SourceWeights:
  """Read `path` as `format_name` (a key of `formats()`); fc layers only when keep_fc."""
  table = formats()
  if format_name not in table:
    raise WeightFileError(
        f"unknown weight format {format_name!r}; expected one of {', '.join(table)}")
  path = Path(path).expanduser()
  if not path.is_file():
    raise WeightFileError(f"{path}: no such file (expected {table[format_name].filename})")
  fmt = table[format_name]
  kind, found = sniff(path)
  if kind != fmt.kind:
    others = [f.name for f in table.values() if f.kind == kind]
    hint = f"; use --format {' or '.join(others)}" if others else ""
    raise WeightFileError(f"{path.name}: --format {fmt.name} expects {fmt.description}; "
                          f"this file looks like {found}{hint}")
  return fmt.reader(path, keep_fc)


def sniff(path: Path) -> tuple[str, str]:
  """(kind, description) of a file from its first bytes: torch, mat, caffe, hdf5 or unknown."""
  with open(path, "rb") as f:
    head = f.read(520)
  if head.startswith(b"PK\x03\x04"):
    return "torch", "a zip archive (PyTorch >= 1.6 .pth)"
  if head[:2] == b"\x80\x02":
    return "torch", "a pickle (legacy PyTorch .pth)"
  if head[257:262] == b"ustar":
    return "torch", "a tar archive (PyTorch < 0.1.10 .pth, or an archive to extract first)"
  if head[:2] == b"\x1f\x8b":
    return "gzip", "a gzip file (a .tar.gz download: extract it first, e.g. tar xzf FILE)"
  if head.startswith(b"MATLAB"):
    return "mat", f"a MATLAB file ({head[:19].decode('ascii', 'replace')})"
  if head.startswith(b"\x89HDF") or head[512:516] == b"\x89HDF":
    return "hdf5", "an HDF5 file (Keras .h5 or MATLAB v7.3)"
  if head[:1] in (b"\x0a", b"\x12", b"\x1a", b"\x22") or head[:2] == b"\xa2\x06":
    return "caffe", "a protobuf message (Caffe .caffemodel)"
  if head[:4] in (b"\x03\x00\x00\x00", b"\x04\x00\x00\x00"):
    return "unknown", "a Lua Torch .t7 file (not supported; use the .mat or .caffemodel release)"
  return "unknown", f"an unknown format (first bytes {head[:8].hex(' ')})"


def formats() -> dict[str, WeightFormat]:
  """The supported formats, by `--format` name."""
  table = [
      WeightFormat(
          "vggface-pth", "vgg_face_dag.pth",
          "https://www.robots.ox.ac.uk/~albanie/models/pytorch-mcn/vgg_face_dag.pth",
          "the PyTorch port of VGG-Face (vgg_face_dag.pth: keys conv1_1.weight ... fc8.bias)",
          "torch", _read_vggface_pth),
      WeightFormat(
          "vggface-mat", "vgg-face.mat", "https://www.vlfeat.org/matconvnet/models/vgg-face.mat",
          "the MatConvNet VGG-Face release (vgg-face.mat: MATLAB file with layers and meta)", "mat",
          _read_vggface_mat),
      WeightFormat("vggface-caffe", "VGG_FACE.caffemodel",
                   "https://www.robots.ox.ac.uk/~vgg/software/vgg_face/ (vgg_face_caffe.tar.gz)",
                   "the Caffe VGG-Face release (VGG_FACE.caffemodel: a NetParameter protobuf)",
                   "caffe", _read_vggface_caffe),
      WeightFormat(
          "torchvision-vgg16", "vgg16-397923af.pth",
          "https://download.pytorch.org/models/vgg16-397923af.pth",
          "torchvision's ImageNet VGG16 state dict (vgg16-397923af.pth: keys features.N.weight)",
          "torch", _read_torchvision),
      WeightFormat(
          "torchvision-vgg16-features", "vgg16_features-amdegroot-88682ab5.pth",
          "https://download.pytorch.org/models/vgg16_features-amdegroot-88682ab5.pth",
          "torchvision's IMAGENET1K_FEATURES VGG16 (vgg16_features-amdegroot-88682ab5.pth)",
          "torch", _read_torchvision_features),
  ]
  return {f.name: f for f in table}


# ------------------------------------------------------------------------------------------------
# Shared checks


def _shape(a: np.ndarray | tuple) -> str:
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


def _float32(a: Any, what: str, path: Path, notes: list[str]) -> np.ndarray:
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


def _check_shape(a: np.ndarray, expected: tuple[int, ...], what: str, path: Path) -> None:
  if a.shape != expected:
    raise WeightFileError(
        f"{path.name}: expected {what} of shape {_shape(expected)}, found {_shape(a)} "
        f"(not VGG16, or a different layout)")


def _fc_from_dense(weights: dict[str, tuple[np.ndarray, np.ndarray]], path: Path,
                   notes: list[str], fc6_in: int = 512) -> dict[str, Layer]:
  """fc layers given as torch/Caffe dense weights [out, in] (fc6's input flattened C, H, W).

  fc6 may also be [out, 512, k, k]; fc7/fc8 [out, in, 1, 1]. Returns the canonical layouts.
  """
  out: dict[str, Layer] = {}
  prev = None
  for name in FC_NAMES:
    w, b = weights[name]
    w = _float32(w, f"{name} weight", path, notes)
    b = _float32(b, f"{name} bias", path, notes).reshape(-1)
    if name == "fc6":
      if w.ndim == 2:
        k = math.isqrt(w.shape[1] // fc6_in) if w.shape[1] % fc6_in == 0 else 0
        if k == 0 or k * k * fc6_in != w.shape[1]:
          raise WeightFileError(
              f"{path.name}: expected fc6 weight [N, 512*k*k] (k*k pool5 cells of 512 "
              f"channels, 25088 at 224x224), found {_shape(w)}")
        w = w.reshape(w.shape[0], fc6_in, k, k)
      if w.ndim != 4 or w.shape[1] != fc6_in or w.shape[2] != w.shape[3]:
        raise WeightFileError(f"{path.name}: expected fc6 weight [N, 512, k, k] or [N, 512*k*k], "
                              f"found {_shape(w)}")
      kernel = np.ascontiguousarray(w.transpose(2, 3, 1, 0))  # [k, k, 512, N6]
    else:
      if w.ndim == 4 and w.shape[2:] == (1, 1):
        w = w[:, :, 0, 0]
      if w.ndim != 2 or w.shape[1] != prev:
        raise WeightFileError(f"{path.name}: expected {name} weight [N, {prev}] (its input is the "
                              f"previous layer's {prev} outputs), found {_shape(w)}")
      kernel = np.ascontiguousarray(w.T)  # [in, out]
    if b.shape != (kernel.shape[-1],):
      raise WeightFileError(f"{path.name}: expected {name} bias of shape [{kernel.shape[-1]}], "
                            f"found {_shape(b)}")
    out[name] = (kernel, b)
    prev = kernel.shape[-1]
  return out


def _check_vggface_head(fc_out: int | None, path: Path, fmt: str, notes: list[str]) -> None:
  if fc_out is None:
    return
  if fc_out == 1000:
    raise WeightFileError(
        f"{path.name}: --format {fmt} expects VGG-Face (fc8 with {VGGFACE_CLASSES} "
        f"identities); this file's fc8 has 1000 outputs, i.e. an ImageNet VGG16 whose "
        f"mean pixel differs (use torchvision-vgg16 for torchvision's file)")
  if fc_out != VGGFACE_CLASSES:
    notes.append(f"fc8 has {fc_out} outputs, not VGG-Face's {VGGFACE_CLASSES} (a fine-tuned head?)")


# ------------------------------------------------------------------------------------------------
# PyTorch state dicts


def _state_dict(path: Path, notes: list[str]) -> dict[str, np.ndarray]:
  try:
    obj = torch_pickle.load(path)
  except torch_pickle.TorchFileError as e:
    raise WeightFileError(f"{path.name}: {e}") from None
  except (OSError, zipfile.BadZipFile, EOFError) as e:
    raise WeightFileError(
        f"{path.name}: expected a readable torch.save file ({e}): truncated or corrupt") from None
  if isinstance(obj, dict) and not all(isinstance(v, np.ndarray) for v in obj.values()):
    for key in ("state_dict", "model", "net", "params"):
      inner = obj.get(key)
      if isinstance(inner, dict) and inner and all(
          isinstance(v, np.ndarray) for v in inner.values()):
        notes.append(f"weights taken from the checkpoint's {key!r} entry")
        obj = inner
        break
  if not isinstance(obj, dict) or not obj or not all(
      isinstance(v, np.ndarray) for v in obj.values()):
    what = f"a dict with keys {list(obj)[:4]}" if isinstance(obj, dict) else type(obj).__name__
    raise WeightFileError(
        f"{path.name}: expected a state dict (parameter names -> tensors), found {what}")
  sd = {str(k): v for k, v in obj.items()}
  if all(k.startswith("module.") for k in sd):
    notes.append("stripped the 'module.' prefix (saved from DataParallel)")
    sd = {k[len("module."):]: v for k, v in sd.items()}
  return sd


def _from_state_dict(
    path: Path, sd: dict[str, np.ndarray], fmt: str, conv_keys: dict[str, str],
    fc_keys: dict[str, str], keep_fc: bool, notes: list[str],
    other_layout: tuple[str, str]) -> tuple[dict[str, Layer], dict[str, Layer] | None, int | None]:
  """conv and fc layers from a torch state dict with keys `<prefix>.weight` / `<prefix>.bias`."""
  names = list(sd)
  probe_key, probe_format = other_layout
  for name, c_in, c_out in conv_plan():
    key = conv_keys[name] + ".weight"
    if key not in sd:
      if probe_key in sd and not any(k + ".weight" in sd for k in conv_keys.values()):
        raise WeightFileError(
            f"{path.name}: --format {fmt} expects key {key} of shape "
            f"{_shape((c_out, c_in, 3, 3))}; this file has {probe_key}, the layout of "
            f"--format {probe_format}")
      raise WeightFileError(
          f"{path.name}: expected key {key} of shape {_shape((c_out, c_in, 3, 3))} "
          f"for VGG16's {name}; this file looks like {guess_network(names)}")
  known = {
      p + s for p in list(conv_keys.values()) + list(fc_keys.values()) for s in (".weight", ".bias")
  }
  unexpected = [k for k in names if k not in known]
  if unexpected:
    raise WeightFileError(
        f"{path.name}: unexpected keys {unexpected[:3]} for VGG16 (expected only "
        f"{conv_keys['conv1_1']}.weight ... and {fc_keys['fc8']}.bias); this file looks "
        f"like {guess_network(names)}")
  conv = {}
  for name, c_in, c_out in conv_plan():
    prefix = conv_keys[name]
    w = sd[prefix + ".weight"]
    _check_shape(w, (c_out, c_in, 3, 3), f"{prefix}.weight", path)
    b = sd.get(prefix + ".bias")
    if b is None:
      raise WeightFileError(
          f"{path.name}: expected key {prefix}.bias of shape [{c_out}], not found")
    _check_shape(b, (c_out,), f"{prefix}.bias", path)
    w = _float32(w, f"{prefix}.weight", path, notes)
    conv[name] = (np.ascontiguousarray(w.transpose(2, 3, 1,
                                                   0)), _float32(b, f"{prefix}.bias", path, notes))
  present = [n for n in FC_NAMES if fc_keys[n] + ".weight" in sd]
  fc_out = sd[fc_keys["fc8"] + ".weight"].shape[0] if "fc8" in present else None
  fc = None
  if keep_fc:
    if len(present) != 3 or any(fc_keys[n] + ".bias" not in sd for n in FC_NAMES):
      raise WeightFileError(
          f"{path.name}: fc layers requested, but expected keys "
          f"{', '.join(fc_keys[n] + '.weight/.bias' for n in FC_NAMES)}; found only "
          f"{present or 'none'}")
    fc = _fc_from_dense(
        {n: (sd[fc_keys[n] + ".weight"], sd[fc_keys[n] + ".bias"]) for n in FC_NAMES}, path, notes)
  elif present:
    notes.append(f"fully connected layers {', '.join(present)} dropped (keep them with --keep-fc)")
  return conv, fc, fc_out


def _container(path: Path) -> str:
  if zipfile.is_zipfile(path):
    return "torch zip"
  return "torch tar" if sniff(path)[1].startswith("a tar") else "torch legacy stream"


def _read_vggface_pth(path: Path, keep_fc: bool) -> SourceWeights:
  notes: list[str] = []
  sd = _state_dict(path, notes)
  conv, fc, fc_out = _from_state_dict(
      path, sd, "vggface-pth", {n: n for n in VGG16_LAYER_NAMES}, {n: n for n in FC_NAMES},
      keep_fc, notes, ("features.0.weight", "torchvision-vgg16"))
  _check_vggface_head(fc_out, path, "vggface-pth", notes)
  return SourceWeights("vggface-pth", path, _container(path), conv, fc, VGGFACE_CONVENTION,
                       image_size=224, notes=notes)


_TORCHVISION_CONV_INDEX = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
_TORCHVISION_FC_INDEX = (0, 3, 6)


def _read_torchvision_any(path: Path, keep_fc: bool, fmt: str) -> SourceWeights:
  notes: list[str] = []
  sd = _state_dict(path, notes)
  conv_keys = {n: f"features.{i}" for n, i in zip(VGG16_LAYER_NAMES, _TORCHVISION_CONV_INDEX)}
  fc_keys = {n: f"classifier.{i}" for n, i in zip(FC_NAMES, _TORCHVISION_FC_INDEX)}
  # The FEATURES release is told apart by its classifier: present but NaN.
  classifier = [sd[k] for k in sd if k.startswith("classifier.")]
  nan_head = bool(classifier) and any(
      not np.all(np.isfinite(np.asarray(a, np.float32))) for a in classifier)
  if fmt == "torchvision-vgg16" and nan_head:
    raise WeightFileError(
        f"{path.name}: --format torchvision-vgg16 expects vgg16-397923af.pth with a "
        f"finite classifier; this file's classifier is NaN, as in "
        f"vgg16_features-amdegroot-88682ab5.pth: use --format torchvision-vgg16-features")
  if fmt == "torchvision-vgg16-features" and classifier and not nan_head:
    raise WeightFileError(
        f"{path.name}: --format torchvision-vgg16-features expects "
        f"vgg16_features-amdegroot-88682ab5.pth, whose classifier is NaN; this file's "
        f"classifier is finite, as in vgg16-397923af.pth: use --format torchvision-vgg16")
  if nan_head:
    if keep_fc:
      raise WeightFileError(f"{path.name}: expected usable fc layers for --keep-fc; this release's "
                            f"classifier is NaN (features only)")
    sd = {k: v for k, v in sd.items() if not k.startswith("classifier.")}
    notes.append("classifier (NaN in this release) dropped")
  conv, fc, _ = _from_state_dict(path, sd, fmt, conv_keys, fc_keys, keep_fc, notes,
                                 ("conv1_1.weight", "vggface-pth"))
  convention = (IMAGENET_CONVENTION if fmt == "torchvision-vgg16" else
                TORCHVISION_FEATURES_CONVENTION)
  return SourceWeights(fmt,
                       path,
                       _container(path),
                       conv,
                       fc,
                       convention,
                       image_size=224,
                       notes=notes)


def _read_torchvision(path: Path, keep_fc: bool) -> SourceWeights:
  return _read_torchvision_any(path, keep_fc, "torchvision-vgg16")


def _read_torchvision_features(path: Path, keep_fc: bool) -> SourceWeights:
  return _read_torchvision_any(path, keep_fc, "torchvision-vgg16-features")


# ------------------------------------------------------------------------------------------------
# MatConvNet


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


def _read_vggface_mat(path: Path, keep_fc: bool) -> SourceWeights:
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
                            f"{_shape((3, 3, c_in, c_out))}; this file looks like "
                            f"{guess_network([n for n in layer_names if n])}")
    if len(weights[name]) != 2:
      raise WeightFileError(f"{path.name}: expected {name} weights {{filters, biases}}, found "
                            f"{len(weights[name])} arrays")
    filters, biases = weights[name]
    _check_shape(filters, (3, 3, c_in, c_out), f"{name} filters", path)
    if biases.size != c_out:
      raise WeightFileError(
          f"{path.name}: expected {name} biases of {c_out} values, found {_shape(biases)}")
    conv[name] = (_float32(filters, f"{name} filters", path, notes),
                  _float32(biases, f"{name} biases", path, notes).reshape(-1))
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
    notes.append(f"averageImage is a {_shape(average)} image; using its per-channel mean")
  else:
    raise WeightFileError(
        f"{path.name}: expected averageImage of 3 values or [H,W,3], found {_shape(average)}")
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
    filters = _float32(filters, f"{name} filters", path, notes)
    if filters.ndim == 2:  # MATLAB drops trailing singleton dims only; [1,1,in,out] stays 4-D
      filters = filters[None, None]
    square = filters.ndim == 4 and filters.shape[0] == filters.shape[1]
    if not square or filters.shape[2] != prev or (name != "fc6" and filters.shape[:2] != (1, 1)):
      want = "[k,k,512,N]" if name == "fc6" else f"[1,1,{prev},N]"
      raise WeightFileError(f"{path.name}: expected {name} filters {want}, found {_shape(filters)}")
    b = _float32(biases, f"{name} biases", path, notes).reshape(-1)
    if b.shape != (filters.shape[-1],):
      raise WeightFileError(f"{path.name}: expected {name} biases of {filters.shape[-1]} values, "
                            f"found {_shape(b)}")
    kernel = filters if name == "fc6" else filters[0, 0]
    out[name] = (np.ascontiguousarray(kernel), b)
    prev = filters.shape[-1]
  return out


# ------------------------------------------------------------------------------------------------
# Caffe: NetParameter protobuf, parsed from the wire format (no protobuf or Caffe needed)


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


def _read_vggface_caffe(path: Path, keep_fc: bool) -> SourceWeights:
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
          f"{path.name}: expected layer {name} with weights {_shape((c_out, c_in, 3, 3))}; "
          f"this file looks like {guess_network(names)}{hint}")
    blobs = by_name[name]
    if len(blobs) != 2:
      raise WeightFileError(f"{path.name}: expected layer {name} with 2 blobs (weights, bias), "
                            f"found {len(blobs)}")
    w, b = blobs
    _check_shape(w, (c_out, c_in, 3, 3), f"{name} weights", path)
    if b.size != c_out:
      raise WeightFileError(
          f"{path.name}: expected {name} bias of {c_out} values, found {_shape(b)}")
    conv[name] = (np.ascontiguousarray(
        _float32(w, f"{name} weights", path,
                 notes).transpose(2, 3, 1, 0)), _float32(b, f"{name} bias", path,
                                                         notes).reshape(-1))
  present = [n for n in FC_NAMES if n in by_name]
  fc_out = None
  if "fc8" in by_name:
    w8 = by_name["fc8"][0]
    fc_out = int(w8.reshape(-1, w8.shape[-1]).shape[0]) if w8.ndim else None
  _check_vggface_head(fc_out, path, "vggface-caffe", notes)
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
    fc = _fc_from_dense(dense, path, notes)
  elif present:
    notes.append(f"fully connected layers {', '.join(present)} dropped (keep them with --keep-fc)")
  return SourceWeights("vggface-caffe", path, container, conv, fc, VGGFACE_CAFFE_CONVENTION,
                       image_size=224, notes=notes)
