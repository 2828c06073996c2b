"""`videmo export`: a trained network written to one file for any number of frames.

    videmo export --checkpoint runs/synthemo --format onnx synthemo.onnx          # onnxruntime, no JAX
    videmo export --checkpoint runs/synthemo/checkpoints/700 --format stablehlo synthemo.stablehlo

--checkpoint is a work directory (its latest step) or WORKDIR/checkpoints/STEP. The file
takes face crops uint8 [1, T, C, C, 3] and a mask bool [1, T] and gives log p(c|S) [1, E],
p(f|S) [1, T], the attention maps [1, T, N, L] (models with attention) and the frame scores
[1, T, E] (docs/predict.md, "Exported models"). Errors are one line; exit status 0 or 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

FORMATS: tuple[str, ...] = ("onnx", "stablehlo")


def parse_args(argv: list[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(prog="videmo export", description=__doc__.split("\n\n")[0])
  parser.add_argument("out", metavar="OUT", help="the file to write (e.g. model.onnx)")
  parser.add_argument("--checkpoint", required=True, help="a work directory (latest step) or WORKDIR/checkpoints/STEP")
  parser.add_argument("--format", default="onnx", help=f"one of {', '.join(FORMATS)} (default onnx)")
  return parser.parse_args(argv)


def export(checkpoint: str, fmt: str, out: str | Path) -> str:
  """Export and return the line to print; FileNotFoundError, ValueError or ImportError (one line) on failure."""
  if fmt not in FORMATS:
    raise ValueError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
  from videmo.export import network, onnx_format, stablehlo_format

  if fmt == "onnx":
    onnx_format.require()  # before the slow part
  out = Path(out).expanduser()
  if out.is_dir():
    raise ValueError(f"OUT {out} is a directory; give a file name (e.g. {out / 'model.onnx'})")
  run = network.load(checkpoint)
  if fmt == "onnx":
    onnx_format.check_convertible(run)
  out.parent.mkdir(parents=True, exist_ok=True)
  (onnx_format if fmt == "onnx" else stablehlo_format).write(run, out)
  inputs = f"frames uint8 [1, T, {run.crop_size}, {run.crop_size}, 3], mask bool [1, T]"
  outputs = ", ".join(f"{name} {shape}" for name, shape in run.output_shapes().items())
  written = f"{out} and {stablehlo_format.sidecar(out)}" if fmt == "stablehlo" else f"{out}"
  return (f"videmo export: wrote {written} ({fmt}, {out.stat().st_size / 2**20:.1f} MiB, step {run.step}): "
          f"{inputs} -> {outputs}")


def main(argv: list[str]) -> int:
  args = parse_args(argv)
  try:
    print(export(args.checkpoint, args.format, args.out))
  except (FileNotFoundError, ValueError, ImportError) as err:
    print(f"videmo export: {err}", file=sys.stderr)
    return 1
  return 0
