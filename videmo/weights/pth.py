"""Readers of PyTorch state dicts (`.pth`): the VGG-Face port and torchvision's two VGG16s.

  vggface-pth                 vgg_face_dag.pth, the PyTorch port of VGG-Face (S. Albanie):
                              keys conv1_1.weight [64,3,3,3] ... fc8.bias; RGB 0..255 minus mean.
  torchvision-vgg16           vgg16-397923af.pth, torchvision's ImageNet VGG16 (features.N.weight,
                              classifier.N.weight); RGB in 0..1, ImageNet mean / std.
  torchvision-vgg16-features  vgg16_features-amdegroot-88682ab5.pth, torchvision's
                              IMAGENET1K_FEATURES (same keys, classifier is NaN); RGB 0..255 minus
                              (123.0, 117.0, 104.0).

Files are read by `videmo.weights.torch_pickle` (numpy only, no code from the file). A checkpoint
that wraps its state dict ('state_dict', 'model', ...) or was saved from DataParallel ('module.'
prefixes) is unwrapped, with a note. Torch kernels [C_out, C_in, 3, 3] become HWIO; fc layers
go through `common.fc_from_dense`. Any missing, unexpected or mis-shaped key raises
`WeightFileError`, naming the format whose layout the file has when it is another one here.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from videmo.models.input_convention import IMAGENET_CONVENTION, VGGFACE_CONVENTION
from videmo.weights import torch_pickle
from videmo.weights.common import (FC_NAMES, TORCHVISION_FEATURES_CONVENTION, Layer, SourceWeights,
                                   WeightFileError, as_float32, check_shape, check_vggface_head,
                                   conv_plan, fc_from_dense, guess_network, shape_str)


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
            f"{shape_str((c_out, c_in, 3, 3))}; this file has {probe_key}, the layout of "
            f"--format {probe_format}")
      raise WeightFileError(
          f"{path.name}: expected key {key} of shape {shape_str((c_out, c_in, 3, 3))} "
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
    check_shape(w, (c_out, c_in, 3, 3), f"{prefix}.weight", path)
    b = sd.get(prefix + ".bias")
    if b is None:
      raise WeightFileError(
          f"{path.name}: expected key {prefix}.bias of shape [{c_out}], not found")
    check_shape(b, (c_out,), f"{prefix}.bias", path)
    w = as_float32(w, f"{prefix}.weight", path, notes)
    conv[name] = (np.ascontiguousarray(w.transpose(2, 3, 1, 0)),
                  as_float32(b, f"{prefix}.bias", path, notes))
  present = [n for n in FC_NAMES if fc_keys[n] + ".weight" in sd]
  fc_out = sd[fc_keys["fc8"] + ".weight"].shape[0] if "fc8" in present else None
  fc = None
  if keep_fc:
    if len(present) != 3 or any(fc_keys[n] + ".bias" not in sd for n in FC_NAMES):
      raise WeightFileError(
          f"{path.name}: fc layers requested, but expected keys "
          f"{', '.join(fc_keys[n] + '.weight/.bias' for n in FC_NAMES)}; found only "
          f"{present or 'none'}")
    fc = fc_from_dense(
        {n: (sd[fc_keys[n] + ".weight"], sd[fc_keys[n] + ".bias"]) for n in FC_NAMES}, path, notes)
  elif present:
    notes.append(f"fully connected layers {', '.join(present)} dropped (keep them with --keep-fc)")
  return conv, fc, fc_out


def _container(path: Path) -> str:
  """Which of torch.save's containers `path` is, decided as `torch_pickle.load` decides."""
  if zipfile.is_zipfile(path):
    return "torch zip"
  with open(path, "rb") as f:
    head = f.read(262)
  return "torch tar" if head[257:262] == b"ustar" else "torch legacy stream"


def read_vggface_pth(path: Path, keep_fc: bool) -> SourceWeights:
  notes: list[str] = []
  sd = _state_dict(path, notes)
  conv, fc, fc_out = _from_state_dict(
      path, sd, "vggface-pth", {n: n for n, _, _ in conv_plan()}, {n: n for n in FC_NAMES},
      keep_fc, notes, ("features.0.weight", "torchvision-vgg16"))
  check_vggface_head(fc_out, path, "vggface-pth", notes)
  return SourceWeights("vggface-pth", path, _container(path), conv, fc, VGGFACE_CONVENTION,
                       image_size=224, notes=notes)


_TORCHVISION_CONV_INDEX = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
_TORCHVISION_FC_INDEX = (0, 3, 6)


def _read_torchvision_any(path: Path, keep_fc: bool, fmt: str) -> SourceWeights:
  notes: list[str] = []
  sd = _state_dict(path, notes)
  conv_keys = {n: f"features.{i}" for (n, _, _), i in zip(conv_plan(), _TORCHVISION_CONV_INDEX)}
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


def read_torchvision(path: Path, keep_fc: bool) -> SourceWeights:
  return _read_torchvision_any(path, keep_fc, "torchvision-vgg16")


def read_torchvision_features(path: Path, keep_fc: bool) -> SourceWeights:
  return _read_torchvision_any(path, keep_fc, "torchvision-vgg16-features")

