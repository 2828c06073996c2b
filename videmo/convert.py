"""`videmo convert-weights`: published VGG-Face / VGG16 weights -> a converted directory.

    videmo convert-weights --format vggface-mat --input vgg-face.mat --output weights/vggface
    videmo convert-weights --format vggface-pth --input vgg_face_dag.pth --output weights/vggface \\
        --keep-fc --check face.jpg

The directory holds params.npz (the trunk, optionally fc6-fc8) and metadata.json (the input
convention and where the weights came from); see `videmo.weights.converted`. Train with
`--config.init.weights=weights/vggface`.

`--check IMAGE` runs the whole network (trunk, pool5, fc6, fc7, fc8, softmax) on the image,
resized so its shorter side is 32*k (k x k = fc6's pool5 grid: 224 for VGG-Face) and centre-
cropped, and prints the top classes: for the real VGG-Face weights and a face of one of its
2,622 identities, that identity should be first -- the end-to-end test that the weights, the
layouts and the input convention are all right. Class names are printed when the file has
them (vgg-face.mat does) or `--names FILE` gives them (one per line), else 0-based indices.

Errors (wrong --format, truncated file, another network) are one line on stderr; exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from videmo.models.input_convention import InputConvention
from videmo.weights import converted, formats
from videmo.weights.common import WeightFileError


def _path(text: str) -> Path:
  return Path(text).expanduser()  # also for --input=~/x, which the shell leaves alone


def _parser() -> argparse.ArgumentParser:
  table = formats.formats()
  epilog = "formats:\n" + "\n".join(f"  {f.name:<27} {f.filename}\n  {'':<27} from {f.url}"
                                     for f in table.values())
  p = argparse.ArgumentParser(
      prog="videmo convert-weights", formatter_class=argparse.RawDescriptionHelpFormatter,
      description="Convert published VGG-Face / VGG16 weights into a directory videmo loads "
                  "(trunk parameters + the input convention they expect).", epilog=epilog)
  p.add_argument("--format", required=True, choices=list(table), help="the format of --input")
  p.add_argument("--input", required=True, type=_path, help="the published weight file")
  p.add_argument("--output", required=True, type=_path, help="directory to write")
  p.add_argument("--keep-fc", action="store_true",
                 help="also store fc6, fc7, fc8 (the paper's model does not use them)")
  p.add_argument("--check", metavar="IMAGE", type=_path,
                 help="classify IMAGE with the full network and print the top classes")
  p.add_argument("--names", metavar="FILE", type=_path,
                 help="class names for --check, one per line (e.g. names.txt of the Caffe release)")
  p.add_argument("--top", type=int, default=5, help="how many classes --check prints (default 5)")
  p.add_argument("--force", action="store_true", help="overwrite converted weights in --output")
  return p


def prepare_image(path: str | Path, size: int) -> np.ndarray:
  """An image file -> uint8 RGB [size, size, 3]: shorter side resized to size, centre crop."""
  from PIL import Image  # deferred: only --check needs it
  try:
    with Image.open(path) as im:
      im = im.convert("RGB")
      w, h = im.size
      s = size / min(w, h)
      im = im.resize((max(size, round(w * s)), max(size, round(h * s))), Image.Resampling.BILINEAR)
      w, h = im.size
      left, top = (w - size) // 2, (h - size) // 2
      return np.asarray(im.crop((left, top, left + size, top + size)), np.uint8)
  except OSError as e:
    raise WeightFileError(f"{path}: cannot read the --check image ({e})") from None


def classify(trunk: dict, fc: dict, convention: InputConvention, image: np.ndarray) -> np.ndarray:
  """Class probabilities [N8] of the full network on one uint8 RGB image [S, S, 3], S = 32 * k.

  trunk: VGG16 params (conv1_1 ... conv5_3); fc: {'fc6': {'kernel' [k,k,512,N6], 'bias'}, 'fc7':
  {'kernel' [N6,N7], ...}, 'fc8': {...}}. The trunk runs in Flax; pool5 and the fc layers in numpy.
  """
  import jax  # deferred: keeps `videmo convert-weights --help` instant

  from videmo.models.vgg import VGG16
  k = fc["fc6"]["kernel"].shape[0]
  if image.shape != (32 * k, 32 * k, 3):
    raise ValueError(
        f"image must be [{32 * k}, {32 * k}, 3] for fc6's {k}x{k} grid, got {image.shape}")
  x = convention.normalize(image[None])
  conv5_3 = np.asarray(jax.jit(VGG16().apply)({"params": trunk}, x), np.float64)  # [1, 2k, 2k, 512]
  pool5 = conv5_3.reshape(1, k, 2, k, 2, -1).max(axis=(2, 4))  # [1, k, k, 512]
  h = np.einsum("nhwc,hwco->no", pool5, fc["fc6"]["kernel"]) + fc["fc6"]["bias"]
  h = np.maximum(h, 0) @ fc["fc7"]["kernel"] + fc["fc7"]["bias"]
  logits = np.maximum(h, 0) @ fc["fc8"]["kernel"] + fc["fc8"]["bias"]
  e = np.exp(logits[0] - logits[0].max())
  return e / e.sum()


def _nested(layers: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict:
  return {name: {"kernel": k, "bias": b} for name, (k, b) in layers.items()}


def _read_names(path: Path, count: int) -> list[str]:
  try:
    text = path.read_text(encoding="utf-8", errors="replace")
  except OSError as e:
    raise WeightFileError(f"{path}: cannot read the --names file ({e})") from None
  names = [line.strip() for line in text.splitlines() if line.strip()]
  if len(names) != count:
    raise WeightFileError(f"{path}: expected {count} class names (one per line, for fc8's {count} "
                          f"outputs), found {len(names)}")
  return names


def run(args: argparse.Namespace) -> int:
  want_fc = args.keep_fc or args.check is not None
  converted.check_output_dir(args.output, args.force)
  if args.check is not None and not args.check.is_file():
    raise WeightFileError(f"{args.check}: expected an image file for --check, not found")
  source = formats.to_rgb(formats.read(args.format, args.input, keep_fc=want_fc))
  n_params = sum(k.size + b.size for k, b in source.conv.values())
  print(f"read {source.path.name} as {source.format} ({source.container}): "
        f"{len(source.conv)} conv layers, {n_params:,} parameters"
        + (f"; fc layers {', '.join(source.fc)}" if source.fc else ""))
  for note in source.notes:
    if args.keep_fc or "dropped" not in note:
      print(f"  note: {note}")
  out = converted.save_converted(args.output, source, keep_fc=args.keep_fc, overwrite=args.force)
  print(f"wrote {out / converted.PARAMS_FILE} and {out / converted.METADATA_FILE}"
        + (" (with fc6-fc8)" if args.keep_fc else " (trunk only; --keep-fc keeps fc6-fc8)"))
  print(f"input convention, stored with the weights: {source.convention.describe()}")
  print(f"use it with: --config.init.weights={out}")
  if args.check is not None:
    if args.keep_fc:  # check what was written, not what is in memory
      trunk, convention, extras = converted.load_converted(out)
      fc, names = extras["fc"], extras["class_names"]
    else:
      trunk, fc = _nested(source.conv), _nested(source.fc)
      convention, names = source.convention, source.class_names
    size = 32 * fc["fc6"]["kernel"].shape[0]
    probs = classify(trunk, fc, convention, prepare_image(args.check, size))
    if args.names is not None:
      names = _read_names(args.names, probs.size)
    top = np.argsort(-probs)[: max(1, args.top)]
    print(f"--check {args.check}: top {len(top)} of {probs.size} classes "
          f"(image resized and centre-cropped to {size}x{size}; 0-based indices)")
    for rank, c in enumerate(top, 1):
      name = f"  {names[c]}" if names else ""
      print(f"  {rank}. class {int(c):>5}  p={probs[c]:.4f}{name}")
  return 0


def main(argv: list[str]) -> int:
  parser = _parser()
  args = parser.parse_args(argv)
  if args.names is not None and args.check is None:
    parser.error("--names is only used by --check")
  try:
    return run(args)
  except WeightFileError as e:
    print(f"videmo convert-weights: error: {e}", file=sys.stderr)
    return 2


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
