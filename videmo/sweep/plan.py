"""What a sweep runs: rows (a config plus overrides) x seeds, each in its own work directory.

A plan is either a file (`--plan FILE`, a Python file defining `get_rows()` and `SEEDS`, e.g.
configs/sweeps/synthemo_tables.py) or a grid from the command line (`--config` repeated,
`--seeds 0,1,2`, `--set model.temperature=0.3,1,3`: every config with every combination of
the values). Each row:

  name       the row's label in the table; it runs in WORKDIR/runs/FOLDER/seed-S (Row.folder)
  config     a config file and argument, as for `videmo train` (relative to the current directory)
  overrides  {dotted field: value} applied as --config.FIELD=VALUE
  group      a heading in the table (e.g. 'Table 1'), and `paper`: the paper's number for the row

A config with a stage 1 (`config.pretrain`) runs it with the run's seed in
WORKDIR/pretrain/KEY-seed-S, KEY a hash of the stage-1 config: runs whose stage 1 is the same
config and seed share one pre-trained trunk.

k-fold evaluation (`FOLDS = 5` in a plan file, or `--folds 5`: folds 1..5; `--folds 0-4` or
`--folds 1,2,3` names them) runs every row and seed once per fold K, in
WORKDIR/runs/FOLDER/fold-K/seed-S, with `--config.train_split` the other folds joined by '+'
and `--config.eval_split=fold_K` (train/splits.py; a video_folder dataset names its folds
fold_K). The folds are all the dataset's folds: each run trains on every fold but its own.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import itertools
import json
import re
from pathlib import Path
from typing import Any, Iterable, Sequence

import ml_collections

from videmo.train import run_dir, splits
from videmo.weights import converted

RUNS_DIR = "runs"
PRETRAIN_DIR = "pretrain"       # the sweep's shared stage-1 work directories, one per row and seed
RUN_RECORD = "sweep_run.json"   # written by the sweep: command, wall time, machine


@dataclasses.dataclass(frozen=True)
class Row:
  """One row of the table: a config and its overrides, run once per seed."""

  name: str
  config: str
  overrides: tuple[tuple[str, Any], ...] = ()
  group: str = ""
  paper: float | None = None

  @property
  def folder(self) -> str:
    """The row's folder name: its name with τ spelled 'tau' and anything unusual as '_'."""
    return re.sub(r"[^A-Za-z0-9.=+-]+", "_", self.name.replace("τ", "tau")).strip("_") or "row"


@dataclasses.dataclass(frozen=True)
class Run:
  """One run: a row with a seed, where it runs, and where its stage 1 runs ('' = none); in a
  k-fold sweep, the fold it evaluates on and every fold of the dataset (folds: () = not k-fold)."""

  row: Row
  seed: int
  workdir: Path
  pretrain_dir: str = ""
  fold: int | None = None
  folds: tuple[int, ...] = ()

  @property
  def label(self) -> str:
    return f"{self.row.name}{'' if self.fold is None else f' fold {self.fold}'} seed {self.seed}"

  def finished(self) -> bool:
    return run_dir.is_finished(self.workdir)

  def stage1_done(self) -> bool:
    return not self.pretrain_dir or (run_dir.trunk_dir(self.pretrain_dir) / converted.METADATA_FILE).is_file()

  def command_args(self) -> list[str]:
    """The arguments of `videmo train` for this run."""
    args = [f"--config={self.row.config}", f"--workdir={self.workdir}", f"--config.seed={self.seed}",
            "--config.progress_bar=False"]
    if self.pretrain_dir:
      args += [f"--config.pretrain_workdir={self.pretrain_dir}", f"--config.pretrain.seed={self.seed}",
               "--config.pretrain.progress_bar=False"]
    if self.fold is not None:
      train, evaluation = splits.fold_splits(self.fold, self.folds)
      args += [f"--config.train_split={train}", f"--config.eval_split={evaluation}"]
    args += [f"--config.{field}={format_value(value)}" for field, value in self.row.overrides]
    return args


def format_value(value: Any) -> str:
  """A Python value as config_flags parses it back: 0.3 -> '0.3', True -> 'True', (1, 2) -> '(1, 2)'."""
  return value if isinstance(value, str) else repr(value)


def parse_value(text: str) -> Any:
  """'0.3' -> 0.3, '4' -> 4, 'True' -> True, anything else stays a string."""
  for kind in (int, float):
    try:
      return kind(text)
    except ValueError:
      pass
  return {"True": True, "False": False}.get(text, text)


def parse_seeds(text: str) -> tuple[int, ...]:
  """'0,1,2' or '0-2' -> (0, 1, 2)."""
  try:
    if "-" in text:
      low, high = (int(v) for v in text.split("-"))
      seeds = tuple(range(low, high + 1))
    else:
      seeds = tuple(int(v) for v in text.split(",") if v.strip())
  except ValueError:
    raise ValueError(f"--seeds must be like 0,1,2 or 0-2, got {text!r}") from None
  if not seeds or min(seeds) < 0:
    raise ValueError(f"--seeds must name at least one seed >= 0, got {text!r}")
  return seeds


def parse_folds(text: str | int | Sequence[int]) -> tuple[int, ...]:
  """The dataset's folds: 5 or '5' -> (1, 2, 3, 4, 5); '0-4' -> (0, ..., 4); '1,2,3' or a list as given."""
  if isinstance(text, int) or (isinstance(text, str) and text.strip().isdigit()):
    folds = tuple(range(1, int(text) + 1))
  elif isinstance(text, str):
    try:
      folds = parse_seeds(text)
    except ValueError:
      raise ValueError(f"--folds must be a count (5: folds 1..5) or fold numbers like 0-4 or 1,2,3, "
                       f"got {text!r}") from None
  else:
    folds = tuple(int(f) for f in text)
  if len(folds) < 2 or len(set(folds)) != len(folds) or min(folds) < 0:
    raise ValueError(f"--folds must name at least 2 distinct folds >= 0 (every fold of the dataset), got {text!r}")
  return folds


def grid_rows(configs: Sequence[str], sets: Sequence[str]) -> list[Row]:
  """Every config with every combination of the --set values ('field=v1,v2,...')."""
  axes = []
  for item in sets:
    field, sep, values = item.partition("=")
    if not sep or not field or not values:
      raise ValueError(f"--set must be FIELD=VALUE[,VALUE...], got {item!r}")
    axes.append([(field.strip(), parse_value(v.strip())) for v in values.split(",")])
  rows = []
  for config in configs:
    path, _, arg = config.partition(":")
    stem = Path(path).stem + (f"-{arg}" if arg else "")
    for combo in itertools.product(*axes):
      suffix = "".join(f".{field.split('.')[-1]}={value}" for field, value in combo)
      rows.append(Row(name=stem + suffix, config=config, overrides=tuple(combo)))
  return rows


@dataclasses.dataclass(frozen=True)
class Plan:
  """A sweep's rows and seeds, the orderings its table tests ((better, worse) row names) and, for
  k-fold evaluation, the dataset's folds (() = one run per row and seed)."""

  rows: tuple[Row, ...]
  seeds: tuple[int, ...]
  comparisons: tuple[tuple[str, str], ...] = ()
  folds: tuple[int, ...] = ()


def load_plan_file(path: str | Path) -> Plan:
  """A plan file's `get_rows()` -> [dict(name, config, overrides, group, paper)], `SEEDS`,
  `COMPARISONS` ([(row A, row B)]: the table tests A >= B) and `FOLDS` (k-fold: a count or the
  fold numbers; absent: none)."""
  path = Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"sweep plan {path} does not exist")
  spec = importlib.util.spec_from_file_location(f"videmo_sweep_plan_{path.stem}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, "get_rows"):
    raise ValueError(f"sweep plan {path} defines no get_rows()")
  rows = []
  for entry in module.get_rows():
    entry = dict(entry)
    unknown = set(entry) - {"name", "config", "overrides", "group", "paper"}
    if unknown or "name" not in entry or "config" not in entry:
      raise ValueError(f"sweep plan {path}: a row needs name and config (and may have overrides, group, "
                       f"paper), got {sorted(entry)}")
    rows.append(Row(name=entry["name"], config=entry["config"],
                    overrides=tuple(sorted(dict(entry.get("overrides", {})).items())),
                    group=entry.get("group", ""), paper=entry.get("paper")))
  names = [row.name for row in rows]
  folders = [row.folder for row in rows]
  duplicates = sorted({row.name for row in rows if names.count(row.name) > 1 or folders.count(row.folder) > 1})
  if duplicates:
    raise ValueError(f"sweep plan {path}: row names (and their folders) must be unique, repeated: {duplicates}")
  comparisons = tuple(tuple(pair) for pair in getattr(module, "COMPARISONS", ()))
  for pair in comparisons:
    if len(pair) != 2 or any(name not in names for name in pair):
      raise ValueError(f"sweep plan {path}: COMPARISONS must be pairs of row names, got {pair}")
  folds = getattr(module, "FOLDS", None)
  try:
    folds = parse_folds(folds) if folds else ()
  except ValueError as err:
    raise ValueError(f"sweep plan {path}: FOLDS: {err}") from None
  return Plan(tuple(rows), tuple(getattr(module, "SEEDS", (0,))), comparisons, folds)


def load_config(ref: str) -> ml_collections.ConfigDict:
  """The config of 'path/to/config.py[:arg]', as `videmo train --config` loads it."""
  path, _, arg = ref.partition(":")
  if not Path(path).is_file():
    raise FileNotFoundError(f"config file {path} does not exist")
  spec = importlib.util.spec_from_file_location(f"videmo_sweep_config_{Path(path).stem}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg) if arg else module.get_config()


def _with_overrides(config: ml_collections.ConfigDict, overrides: Iterable[tuple[str, Any]]) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict(config.to_dict())
  for field, value in overrides:
    *parents, leaf = field.split(".")
    node = config
    for name in parents:
      if name not in node:
        raise ValueError(f"override {field}: the config has no field {name!r}")
      node = node[name]
    if node is None or leaf not in node:
      raise ValueError(f"override {field}: the config has no field {field!r}")
    node[leaf] = value
  return config


def stage1_key(config: ml_collections.ConfigDict) -> str:
  """A short hash of a stage-1 config (its seed excluded): equal stage 1s share a key."""
  settings = config.to_dict()
  settings.pop("seed", None)
  text = json.dumps(settings, sort_keys=True, default=str)
  return hashlib.sha256(text.encode()).hexdigest()[:10]


def plan_runs(rows: Sequence[Row], seeds: Sequence[int], workdir: str | Path, folds: Sequence[int] = ()) -> list[Run]:
  """Every row x seed (x fold, with `folds`), seed-major (all rows of seed 0, then seed 1, ...;
  within a seed, fold by fold), so a sweep cut short still has every row at its first seeds.
  Checks each config and override by loading it."""
  workdir = Path(workdir).absolute()
  folds = tuple(folds)
  keys = {}
  for row in rows:
    if folds and any(field in ("train_split", "eval_split") for field, _ in row.overrides):
      raise ValueError(f"row {row.name!r} sets train_split or eval_split, which a k-fold sweep sets for each fold")
    config = _with_overrides(load_config(row.config), row.overrides)
    keys[row] = stage1_key(config.pretrain) if config.get("pretrain") is not None else ""
  runs = []
  for seed in seeds:
    for fold in folds or (None,):
      for row in rows:
        pretrain = str(workdir / PRETRAIN_DIR / f"{keys[row]}-seed-{seed}") if keys[row] else ""
        folder = workdir / RUNS_DIR / row.folder / ("" if fold is None else f"fold-{fold}")
        runs.append(Run(row, seed, folder / f"seed-{seed}", pretrain, fold, folds if fold is not None else ()))
  return runs
