"""The `--format` registry of `videmo convert-weights`: which published file is read how, and
the one path from a published file to a converted directory.

  formats()         name -> WeightFormat (file name, download address, description, reader).
  read              one file as one format, after `sniff` has checked its container kind.
  sniff             a file's container kind from its first bytes (torch, mat, caffe, ...).
  to_rgb            a BGR release (Caffe) as the same network taking RGB input.
  convert_weights   read, to_rgb, `converted.save_converted`: what the command does.

Formats (`--format`), each read by its own module:

  vggface-pth                 vgg_face_dag.pth, the PyTorch port of VGG-Face (S. Albanie):
                              keys conv1_1.weight [64,3,3,3] ... fc8.bias; RGB 0..255 minus mean.
                              (`videmo.weights.pth`)
  vggface-mat                 vgg-face.mat, the MatConvNet release: `layers` cell array of structs
                              (name, type, weights = {filters [H,W,Cin,Cout], biases}) and
                              `meta.normalization.averageImage`; the older vgg_face.mat with a
                              top-level `net` (net.layers, net.normalization) and DagNN files
                              (`params` struct array) are read too. RGB 0..255 minus averageImage.
                              (`videmo.weights.matconvnet`)
  vggface-caffe               VGG_FACE.caffemodel, the original Caffe release: a NetParameter
                              protobuf (V1 `layers` or new `layer` messages, legacy or BlobShape
                              blob dimensions), kernels [C_out, C_in, H, W]; BGR 0..255 minus mean.
                              (`videmo.weights.caffe`)
  torchvision-vgg16           vgg16-397923af.pth, torchvision's ImageNet VGG16 (features.N.weight,
                              classifier.N.weight); RGB in 0..1, ImageNet mean / std. (`pth`)
  torchvision-vgg16-features  vgg16_features-amdegroot-88682ab5.pth, torchvision's
                              IMAGENET1K_FEATURES (same keys, classifier is NaN); RGB 0..255 minus
                              (123.0, 117.0, 104.0). (`pth`)

Every reader returns `SourceWeights`: the 13 convolutions as `kernel` [3, 3, C_in, C_out] (HWIO,
Flax's layout) and `bias` [C_out] in float32, optionally the fully connected layers, and the
input convention of that release, in the file's own channel order. Fully connected layers come
out as fc6 `kernel` [k, k, 512, N6] (a k x k valid convolution on pool5, k = 7 at 224x224
input), fc7 `kernel` [N6, N7], fc8 `kernel` [N7, N8], each with a `bias`. Readers never guess:
a missing, mis-shaped or unexpected entry, a truncated file or a file of another network raises
`WeightFileError` with one line saying what was expected.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from videmo.weights import caffe, converted, matconvnet, pth
from videmo.weights.common import SourceWeights, WeightFileError, WeightFormat


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
          "torch", pth.read_vggface_pth),
      WeightFormat(
          "vggface-mat", "vgg-face.mat", "https://www.vlfeat.org/matconvnet/models/vgg-face.mat",
          "the MatConvNet VGG-Face release (vgg-face.mat: MATLAB file with layers and meta)", "mat",
          matconvnet.read_vggface_mat),
      WeightFormat("vggface-caffe", "VGG_FACE.caffemodel",
                   "https://www.robots.ox.ac.uk/~vgg/software/vgg_face/ (vgg_face_caffe.tar.gz)",
                   "the Caffe VGG-Face release (VGG_FACE.caffemodel: a NetParameter protobuf)",
                   "caffe", caffe.read_vggface_caffe),
      WeightFormat(
          "torchvision-vgg16", "vgg16-397923af.pth",
          "https://download.pytorch.org/models/vgg16-397923af.pth",
          "torchvision's ImageNet VGG16 state dict (vgg16-397923af.pth: keys features.N.weight)",
          "torch", pth.read_torchvision),
      WeightFormat(
          "torchvision-vgg16-features", "vgg16_features-amdegroot-88682ab5.pth",
          "https://download.pytorch.org/models/vgg16_features-amdegroot-88682ab5.pth",
          "torchvision's IMAGENET1K_FEATURES VGG16 (vgg16_features-amdegroot-88682ab5.pth)",
          "torch", pth.read_torchvision_features),
  ]
  return {f.name: f for f in table}


# ------------------------------------------------------------------------------------------------
# From a published file to a converted directory


def to_rgb(source: SourceWeights) -> SourceWeights:
  """The same network taking RGB input: for a BGR source, conv1_1's input channels are reversed.

  conv1_1 kernel [3, 3, 3, 64]: axis 2 indexes the input channel, so reversing it makes the
  layer compute on RGB pixels exactly what it computed on BGR ones; mean/std are reordered too.
  """
  if source.convention.channel_order == "RGB":
    return source
  conv = dict(source.conv)
  kernel, bias = conv["conv1_1"]
  conv["conv1_1"] = (np.ascontiguousarray(kernel[:, :, ::-1, :]), bias)
  return dataclasses.replace(
      source,
      conv=conv,
      convention=source.convention.as_rgb(),
      notes=source.notes +
      [f"first layer converted from {source.convention.channel_order} to RGB input"])


def convert_weights(format_name: str, input_path: str | Path, output_dir: str | Path,
                    keep_fc: bool = False, overwrite: bool = False) -> SourceWeights:
  """Read a published weight file, make it RGB, write DIR/params.npz + DIR/metadata.json.

  Returns the (RGB) weights that were written. Raises WeightFileError (one line) on any problem.
  """
  converted.check_output_dir(output_dir, overwrite)
  source = to_rgb(read(format_name, input_path, keep_fc=keep_fc))
  converted.save_converted(output_dir, source, keep_fc=keep_fc, overwrite=overwrite)
  return source
