"""`videmo train`, and the config command line it shares with `videmo eval` and `videmo bench` (absl + ml_collections).

    videmo train --config=configs/synthemo.py --workdir=runs/synthemo
    videmo train --config=configs/table1_sa2_reg1.py:gpu --workdir=runs/sa2 \
        --config.init.weights=~/weights/vgg_face --config.batch_size=32
    videmo eval --config=configs/synthemo.py --checkpoint=runs/synthemo [--split=validation] [--report=DIR]

`--config.FIELD=VALUE` overrides any field; a field that does not exist is an error.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from absl import flags
from ml_collections import config_flags

from videmo.ops import host_memory

def parse_command_line(prog: str, argv: list[str], required: tuple[str, ...]) -> flags.FlagValues:
  """Parse one command line into a fresh set of flags (config_flags defines one flag per
  override it sees, so a set of flags serves a single parse)."""
  for i, arg in enumerate(argv):
    path = arg[len("--config="):] if arg.startswith("--config=") else (
        argv[i + 1] if arg == "--config" and i + 1 < len(argv) else None)
    if path is not None and not Path(path.split(":")[0]).expanduser().is_file():
      raise SystemExit(f"{prog}: --config file {path.split(':')[0]} does not exist (see configs/*.py)")
  values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "experiment config file (configs/*.py[:arg])",
                                  flag_values=values, lock_config=True, sys_argv=[prog] + list(argv))
  flags.DEFINE_string("workdir", None, "train: where checkpoints, TensorBoard events and metrics.json go",
                      flag_values=values)
  flags.DEFINE_string("checkpoint", None, "eval: a work directory (latest step) or WORKDIR/checkpoints/STEP",
                      flag_values=values)
  flags.DEFINE_string("split", None, "eval: the split to evaluate (default: the config's eval_split)",
                      flag_values=values)
  flags.DEFINE_string("report", None, "eval: also write a figure per clip and index.html to this folder "
                      "(misclassified clips first)", flag_values=values)
  flags.DEFINE_integer("report_clips", 0, "eval: report only the first N clips in report order (0 = all)",
                       lower_bound=0, flag_values=values)
  flags.DEFINE_enum("log_level", "WARNING", ["DEBUG", "INFO", "WARNING"], "console log level",
                    flag_values=values)
  try:
    values([prog] + list(argv))
  except flags.Error as err:  # one line: a config file's own error is the last line of a traceback
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    raise SystemExit(f"{prog}: {lines[-1] if len(lines) > 1 else lines[0]}") from None
  except (AttributeError, KeyError) as err:  # config_flags: an override of a field that does not exist
    field = str(err).strip("\"'")
    raise SystemExit(f"{prog}: the config has no field {field!r} (check the --config.FIELD overrides)") from None
  except (ValueError, TypeError) as err:  # config_flags: a value of the wrong type for its field
    raise SystemExit(f"{prog}: bad --config override: {err}") from None
  try:
    loaded = values.config
  except OSError as err:  # the config file failed to load (its own error is chained)
    raise SystemExit(f"{prog}: --config could not be loaded: {err.__cause__ or err}") from None
  if loaded is None:
    raise SystemExit(f"{prog}: --config is required, e.g. --config=configs/synthemo.py")
  for name in required:
    if not values[name].value:
      raise SystemExit(f"{prog}: --{name} is required")
  return values


# The fastest XLA:CPU flags measured for videmo's training step (docs/benchmarks.md): XLA's own
# (Eigen) convolutions instead of YNNPACK's, for the convolutions oneDNN does not take over.
# XLA reads the flags when its backend starts; other platforms ignore them.
FAST_CPU_XLA_FLAGS = "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution"


def use_fast_cpu_xla_flags() -> bool:
  """Set XLA_FLAGS to FAST_CPU_XLA_FLAGS unless the user has set XLA_FLAGS (entry points only,
  before JAX starts its backend). Returns whether it set them."""
  if "XLA_FLAGS" in os.environ:
    return False
  os.environ["XLA_FLAGS"] = FAST_CPU_XLA_FLAGS
  return True


def setup_logging(level: str) -> None:
  """The console log format and level of a command (entry points only)."""
  logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")


def train_main(argv: list[str]) -> int:
  args = parse_command_line("videmo train", argv, ("workdir",))
  setup_logging(args.log_level)
  use_fast_cpu_xla_flags()
  host_memory.reuse_freed_buffers()
  from videmo.train import loop

  try:
    loop.train_and_evaluate(args.config, args.workdir)
  except (ValueError, FileNotFoundError, loop.NonFiniteLossError) as err:
    print(f"videmo train: {err}", file=sys.stderr)
    return 1
  return 0
