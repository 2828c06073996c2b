"""A work directory (one training run): the names of what it holds, and the paths into it.

Every module that writes or reads a run goes through here:

    WORKDIR/config.json               the run's whole config (written when it starts)
    WORKDIR/input_convention.json     the trunk's input normalisation
    WORKDIR/checkpoints/<step>/       orbax checkpoints (train/checkpoint.py)
    WORKDIR/metrics.json, confusion.png   the final evaluation (train/scoring.py)
    WORKDIR/eval_<split>_<step>.json  `videmo eval`
    WORKDIR/pretrain/                 stage 1 of a two-stage run (a work directory itself)
    WORKDIR/trunk/                    the trained trunk, when exported (a converted-weight folder)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import ml_collections

from videmo.models.input_convention import InputConvention

CONFIG_FILE = "config.json"
CONVENTION_FILE = "input_convention.json"
CHECKPOINTS_DIR = "checkpoints"
METRICS_NAME = "metrics"   # metrics.json (and confusion.png)
PRETRAIN_DIR = "pretrain"
TRUNK_DIR = "trunk"


def checkpoints_dir(workdir: str | os.PathLike) -> Path:
  return Path(workdir).absolute() / CHECKPOINTS_DIR


def step_dir(workdir: str | os.PathLike, step: int) -> Path:
  """WORKDIR/checkpoints/STEP."""
  return checkpoints_dir(workdir) / str(step)


def split_checkpoint_path(path: str | os.PathLike) -> tuple[Path, int | None]:
  """(work directory, step) of a step folder `WORKDIR/checkpoints/<step>`; (path, None) otherwise."""
  path = Path(path).expanduser().absolute()
  if path.name.isdigit() and path.parent.name == CHECKPOINTS_DIR:
    return path.parent.parent, int(path.name)
  return path, None


def write_run_files(workdir: str | os.PathLike, config: ml_collections.ConfigDict,
                    convention: InputConvention) -> None:
  """WORKDIR/config.json and WORKDIR/input_convention.json (the folder is made if needed)."""
  workdir = Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  (workdir / CONVENTION_FILE).write_text(json.dumps(convention.to_dict()))
  (workdir / CONFIG_FILE).write_text(config.to_json_best_effort(indent=2))


def _read(workdir: str | os.PathLike, name: str, asked: str | os.PathLike | None, parse):
  """parse(the JSON of WORKDIR/name); one-line errors name the file (`asked`: what the user gave)."""
  workdir = Path(workdir)
  path = workdir / name
  if not path.is_file():
    raise FileNotFoundError(f"--checkpoint {asked or workdir}: {path} is missing; is {workdir} a videmo "
                            f"work directory (written by `videmo train`)?")
  try:
    return parse(json.loads(path.read_text()))
  except (json.JSONDecodeError, ValueError, TypeError) as err:
    raise ValueError(f"--checkpoint {asked or workdir}: cannot read {path}: {err}") from None


def read_convention(workdir: str | os.PathLike, asked: str | os.PathLike | None = None) -> InputConvention:
  """The run's input convention (WORKDIR/input_convention.json)."""
  return _read(workdir, CONVENTION_FILE, asked, InputConvention.from_dict)


def read_config(workdir: str | os.PathLike, asked: str | os.PathLike | None = None) -> ml_collections.ConfigDict:
  """The run's config (WORKDIR/config.json)."""
  return _read(workdir, CONFIG_FILE, asked, ml_collections.ConfigDict)
