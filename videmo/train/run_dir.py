"""A work directory (one training run): the names of what it holds, and the paths into it.

Every module that writes or reads a run goes through here; no other module spells a name:

    WORKDIR/config.json               the run's whole config (written when it starts)
    WORKDIR/input_convention.json     the trunk's input normalisation
    WORKDIR/checkpoints/<step>/       orbax checkpoints (train/checkpoint.py), each with
                                      videmo_manifest.json: its files' sizes and CRC-32s
    WORKDIR/metrics.json, confusion.png   the final evaluation (train/evaluation.py)
    WORKDIR/eval_<split>_<step>.json  `videmo eval`
    WORKDIR/pretrain/                 stage 1 of a two-stage run (a work directory itself)
    WORKDIR/trunk/                    the trained trunk, when exported (a converted-weight folder)
    WORKDIR/train.lock                held by the `videmo train` process writing the run
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
MANIFEST_FILE = "videmo_manifest.json"  # in each step folder
METRICS_NAME = "metrics"   # metrics.json (and confusion.png)
METRICS_FILE = f"{METRICS_NAME}.json"
FINAL_CONFUSION_FILE = "confusion.png"
PRETRAIN_DIR = "pretrain"
TRUNK_DIR = "trunk"
LOCK_FILE = "train.lock"


def metrics_path(workdir: str | os.PathLike, name: str = METRICS_NAME) -> Path:
  """WORKDIR/NAME.json: the final metrics (default) or a `videmo eval` record."""
  return Path(workdir) / f"{name}.json"


def confusion_path(workdir: str | os.PathLike, name: str = METRICS_NAME) -> Path:
  """The confusion-matrix figure beside NAME.json (confusion.png for the final metrics)."""
  return Path(workdir) / (FINAL_CONFUSION_FILE if name == METRICS_NAME else f"{name}_confusion.png")


def eval_name(split: str, step: int) -> str:
  """The name of a `videmo eval` record: eval_SPLIT_STEP."""
  return f"eval_{split}_{step}"


def config_path(workdir: str | os.PathLike) -> Path:
  return Path(workdir) / CONFIG_FILE


def lock_path(workdir: str | os.PathLike) -> Path:
  return Path(workdir) / LOCK_FILE


def trunk_dir(workdir: str | os.PathLike) -> Path:
  """WORKDIR/trunk: the exported trunk (a converted-weight folder)."""
  return Path(workdir) / TRUNK_DIR


def is_finished(workdir: str | os.PathLike) -> bool:
  """Whether the run has written its final metrics."""
  return metrics_path(workdir).is_file()


def read_metrics(workdir: str | os.PathLike, name: str = METRICS_NAME) -> dict:
  """The JSON record WORKDIR/NAME.json."""
  return json.loads(metrics_path(workdir, name).read_text())


def class_names_from_metrics(workdir: str | os.PathLike) -> tuple[str, ...]:
  """The class names a run's metrics files record (the final one first), or ()."""
  workdir = Path(workdir)
  for path in [metrics_path(workdir), *sorted(workdir.glob("eval_*.json"))]:
    try:
      classes = json.loads(path.read_text()).get("classes")
    except (OSError, ValueError, AttributeError):
      continue
    if classes:
      return tuple(classes)
  return ()


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


def saved_steps(workdir: str | os.PathLike) -> list[int]:
  """The steps with a committed checkpoint folder, oldest first (orbax renames a folder to its
  step only when it is complete)."""
  directory = checkpoints_dir(workdir)
  if not directory.is_dir():
    return []
  return sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit() and p.is_dir())


def latest_step(workdir: str | os.PathLike) -> int | None:
  steps = saved_steps(workdir)
  return steps[-1] if steps else None


def locate(path: str | os.PathLike) -> tuple[Path, int | None]:
  """(work directory, step or None for the latest) of a work directory, its checkpoints folder or
  a step folder; FileNotFoundError (one line) when the path does not exist."""
  path = Path(path).expanduser().absolute()
  if not path.exists():
    raise FileNotFoundError(f"--checkpoint {path} does not exist")
  workdir, step = split_checkpoint_path(path)
  if step is not None:
    return workdir, step
  if path.name == CHECKPOINTS_DIR and config_path(path.parent).exists():
    return path.parent, None
  return path, None


def write_run_files(workdir: str | os.PathLike, config: ml_collections.ConfigDict,
                    convention: InputConvention) -> None:
  """WORKDIR/config.json and WORKDIR/input_convention.json (the folder is made if needed)."""
  workdir = Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  (workdir / CONVENTION_FILE).write_text(json.dumps(convention.to_dict()))
  config_path(workdir).write_text(config.to_json_best_effort(indent=2))


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
