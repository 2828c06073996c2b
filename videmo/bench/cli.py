"""`videmo bench` (also `python -m videmo.bench`): how fast the training step runs, and why.

    videmo bench --config configs/synthemo.py
    videmo bench --config configs/synthemo.py --config.model.trunk_width_divisor=1 --size 112 --batch-size 2
    videmo bench --config configs/table1_sa2_reg1.py:gpu --find-max-batch --json runs/bench.json

Times the jitted train step of a config (the one `videmo train` runs) on a synthetic batch,
and prints s/step, clips/s, frames/s, FLOPs (analytic and XLA's), MFU, peak memory, compile
time, the input pipeline's speed and, when PyTorch is installed (`pip install -e ".[bench]"`),
the same model and step in PyTorch timed in alternation with it. The config is loaded as
`videmo train` loads it: `--config FILE[:hardware]` and any `--config.FIELD=VALUE`.
"""

from __future__ import annotations

import argparse
import os
import sys

EPILOG = """config: --config FILE[:hardware] and --config.FIELD=VALUE overrides, as for `videmo train`.
Sizes and options below override the config's (batch_size, input.num_frames, input.crop_size,
model.dtype, model.remat). Figures and their meaning: docs/benchmarks.md."""


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="videmo bench", description=__doc__.split("\n\n")[0],
                                   epilog=EPILOG, allow_abbrev=False)
  parser.add_argument("--batch-size", type=int, help="clips per step (default: the config's batch_size)")
  parser.add_argument("--frames", type=int, help="frames per clip (default: the config's input.num_frames)")
  parser.add_argument("--size", type=int, help="frame size S for S x S crops (default: input.crop_size)")
  parser.add_argument("--dtype", choices=("float32", "bfloat16"),
                      help="compute dtype (parameters stay float32; default: the config's model.dtype)")
  parser.add_argument("--remat", action="store_true", help="recompute the trunk in the backward pass")
  parser.add_argument("--repeats", type=int, default=5, help="timed steps (pairs with PyTorch) after warm-up (5)")
  parser.add_argument("--peak-tflops", default="measure",
                      help="peak for MFU: 'measure' (this device's matmul rate, default), a number of "
                           "TFLOP/s (e.g. a datasheet's), or 'none'")
  parser.add_argument("--breakdown", action="store_true",
                      help="also time the step's parts: trunk forward, trunk fwd+bwd, head, optimiser")
  parser.add_argument("--profile", metavar="DIR",
                      help="also trace a few steps with JAX's profiler into DIR (TensorBoard's profile "
                           "plugin reads it) and summarise where the device time goes")
  parser.add_argument("--profile-steps", type=int, default=3, help="steps traced with --profile (3)")
  parser.add_argument("--no-pipeline", action="store_true", help="skip timing the input pipeline")
  parser.add_argument("--pipeline-batches", type=int, default=10, help="batches timed from the pipeline (10)")
  parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
  parser.add_argument("--torch-contiguous", action="store_true",
                      help="PyTorch in its default NCHW layout instead of channels_last")
  parser.add_argument("--torch-compile", action="store_true", help="torch.compile the PyTorch model")
  parser.add_argument("--find-max-batch", action="store_true",
                      help="find the largest batch that fits in memory (doubling, then bisection)")
  parser.add_argument("--max-batch", type=int, help="cap for --find-max-batch (default 64 on CPU, 4096 elsewhere)")
  parser.add_argument("--xla-flags", default="",
                      help="flags added to XLA_FLAGS before JAX starts (default: videmo train's CPU flags "
                           "when XLA_FLAGS is unset), e.g. "
                           "'--xla_cpu_experimental_ynn_fusion_type=-individual_convolution'")
  parser.add_argument("--json", metavar="OUT", help="also write every figure to this JSON file")
  return parser


def main(argv: list[str] | None = None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  parser = _parser()
  args, rest = parser.parse_known_args(argv)
  unknown = [a for a in rest if a.startswith("-") and not (a == "--config" or a.startswith("--config=")
                                                          or a.startswith("--config."))]
  if unknown:
    parser.error(f"unrecognised arguments: {' '.join(unknown)}")
  for name in ("batch_size", "frames", "size", "repeats", "pipeline_batches", "max_batch",
               "profile_steps"):
    value = getattr(args, name)
    if value is not None and value < 1:
      parser.error(f"--{name.replace('_', '-')} must be a positive integer, got {value}")
  from videmo import process_setup
  from videmo.train.cli import parse_command_line

  if args.xla_flags:
    _add_xla_flags(args.xla_flags)
  else:
    process_setup.use_fast_cpu_xla_flags()  # what `videmo train` runs with, unless XLA_FLAGS is set
  process_setup.reuse_freed_buffers()  # as `videmo train` does

  from videmo.bench import peaks

  try:
    peak = peaks.parse_peak(args.peak_tflops)
  except ValueError as err:
    parser.error(str(err))
  parsed = parse_command_line("videmo bench", rest, ())
  process_setup.setup_logging(parsed.log_level)
  config = parsed.config
  config_name = next((a.split("=", 1)[1] if "=" in a else rest[i + 1]) for i, a in enumerate(rest)
                     if a == "--config" or a.startswith("--config="))

  from videmo.bench import harness, report, runner

  try:
    config = harness.bench_config(config, batch_size=args.batch_size, num_frames=args.frames, size=args.size,
                                  dtype=args.dtype, remat=True if args.remat else None)
  except ValueError as err:
    print(f"videmo bench: {err}", file=sys.stderr)
    return 1
  options = runner.Options(
      repeats=args.repeats, peak=peak, torch=not args.no_torch, torch_channels_last=not args.torch_contiguous,
      torch_compile=args.torch_compile, breakdown=args.breakdown, pipeline=not args.no_pipeline,
      pipeline_batches=args.pipeline_batches, find_max_batch=args.find_max_batch, max_batch=args.max_batch,
      profile_dir=args.profile, profile_steps=args.profile_steps)
  try:
    results = runner.run(config, config_name, options)
  except ValueError as err:
    print(f"videmo bench: {err}", file=sys.stderr)
    return 1
  print(report.format_report(results))
  if args.json:
    print(f"wrote {report.write_json(results, args.json)}")
  return 0


def _add_xla_flags(flags: str) -> None:
  """Append to XLA_FLAGS; it only counts before JAX's backend starts (a fresh process)."""
  if "jax" in sys.modules:
    print("videmo bench: --xla-flags counts only if JAX has not started its backend in this process "
          "(run `videmo bench` as its own command)", file=sys.stderr)
  os.environ["XLA_FLAGS"] = " ".join(filter(None, [os.environ.get("XLA_FLAGS", ""), flags]))
