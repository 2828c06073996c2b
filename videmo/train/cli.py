"""`videmo train`, and the config command line it shares with `videmo eval` and `videmo bench` (absl + ml_collections).

    videmo train --config=configs/synthemo.py --workdir=runs/synthemo
    videmo train --config=configs/table1_sa2_reg1.py:gpu --workdir=runs/sa2 \
        --config.init.weights=~/weights/vgg_face --config.batch_size=32
    videmo eval --config=configs/synthemo.py --checkpoint=runs/synthemo [--split=validation] [--report=DIR]

`--config.FIELD=VALUE` overrides any field; a field that does not exist is an error.
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from pathlib import Path

from absl import flags
from ml_collections import config_flags

from videmo import process_setup
from videmo.process_setup import setup_logging  # videmo eval calls it as cli.setup_logging


def parse_command_line(prog: str, argv: list[str], required: tuple[str, ...]) -> flags.FlagValues:
  """Parse one command line into a fresh set of flags (config_flags defines one flag per
  override it sees, so a set of flags serves a single parse)."""
  config_file = None
  for i, arg in enumerate(argv):
    path = arg[len("--config="):] if arg.startswith("--config=") else (
        argv[i + 1] if arg == "--config" and i + 1 < len(argv) else None)
    if path is not None and not Path(path.split(":")[0]).expanduser().is_file():
      raise SystemExit(f"{prog}: --config file {path.split(':')[0]} does not exist (see configs/*.py)")
    config_file = Path(path.split(":")[0]).expanduser() if path is not None else config_file
  values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "experiment config file (configs/*.py[:arg])",
                                  flag_values=values, lock_config=True, sys_argv=[prog] + list(argv))
  flags.DEFINE_string("workdir", None, "train: where checkpoints, TensorBoard events and the final metrics go",
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
  except (AttributeError, KeyError) as err:  # a field that does not exist, in an override or the file
    raise SystemExit(f"{prog}: {_missing_field(err, argv, config_file)}") from None
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


def _missing_field(err: BaseException, argv: list[str], config_file: Path | None) -> str:
  """One line for a KeyError/AttributeError met while loading the config and its overrides.

  ml_collections raises KeyError (wrapped in an AttributeError for attribute access) whose text
  is the field's quoted name, or 'Key "name" does not exist ...', then a line 'Did you mean
  "other" ...'; str() of a KeyError is its repr, which would escape all of it. The message names
  the override (as its dotted path) or, when the config file itself touched the field, the file
  and line.
  """
  inner = err.args[0] if err.args and isinstance(err.args[0], BaseException) else err
  text = str(inner.args[0]) if inner.args else str(inner)
  frames = traceback.extract_tb(err.__traceback__)
  from_config_dict = any(f"ml_collections{os.sep}config_dict" in frame.filename for frame in frames)
  lines = text.splitlines() or [""]
  key = re.match(r'Key "(.+?)" does not exist', lines[0])
  name = key.group(1) if key else lines[0].strip().strip("\"'")
  hint = re.search(r'Did you mean "(.+?)"', text)
  in_file = None
  if config_file is not None and any(_same_file(frame.filename, config_file) for frame in frames):
    user = [frame for frame in frames if f"{os.sep}ml_collections{os.sep}" not in frame.filename]
    in_file = f"{user[-1].filename}, line {user[-1].lineno}" if user else str(config_file)
  if not from_config_dict:  # not a missing field: the config file's own error, in one line
    where = in_file or (str(config_file) if config_file else "--config")
    return f"--config could not be loaded: {where}: {type(inner).__name__}: {lines[0]}"
  if in_file:
    suggestion = f" (did you mean {hint.group(1)!r}?)" if hint else ""
    return f"--config file {in_file}: the config has no field {name!r}{suggestion}"
  prefix: list[str] = []
  for arg in argv:
    if arg.startswith("--config."):
      parts = arg[len("--config."):].split("=", 1)[0].split(".")
      if name in parts:
        prefix = parts[:parts.index(name)]
        break
  field = ".".join(prefix + [name])
  suggestion = f" (did you mean {'.'.join(prefix + [hint.group(1)])!r}?)" if hint else ""
  return f"the config has no field {field!r}{suggestion}"


def _same_file(filename: str, path: Path) -> bool:
  try:
    return os.path.samefile(filename, path)
  except OSError:
    return False


def train_main(argv: list[str]) -> int:
  args = parse_command_line("videmo train", argv, ("workdir",))
  setup_logging(args.log_level)
  process_setup.use_fast_cpu_xla_flags()
  process_setup.reuse_freed_buffers()
  from videmo.train import loop

  try:
    loop.train_and_evaluate(args.config, args.workdir)
  except (ValueError, FileNotFoundError, loop.NonFiniteLossError) as err:
    print(f"videmo train: {err}", file=sys.stderr)
    return 1
  return 0
