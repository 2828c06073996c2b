"""Every measured number that appears in more than one place, written from its one source file.

    python docs/generate_numbers.py           # rewrite the copies
    python docs/generate_numbers.py --check   # exit 1, naming each stale copy (tests/test_docs_numbers.py)

Sources (committed, each written by the command that measured it):
  docs/synthemo_tables/results.csv   `videmo sweep table` of configs/sweeps/synthemo_tables.py
  docs/synthemo_main_job.csv         the main job (`videmo train --config=configs/synthemo.py`),
                                     one line per seed

Copies:
  README.md           the results table and the main job's line (between <!-- numbers:NAME -->
                      and <!-- /numbers --> markers)
  docs/synthemo.md    the main job's table (markers as above)
  configs/table*.py   each docstring's "measured: validation WAR ..." sentence
  configs/synthemo.py its docstring's "stills accuracy ... validation WAR ..." sentence
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TABLES_CSV = REPO / "docs" / "synthemo_tables" / "results.csv"
MAIN_JOB_CSV = REPO / "docs" / "synthemo_main_job.csv"

# The README's results table: (results.csv row, config, what the row is).
README_ROWS = (
    ("TP", "configs/table1_tp.py", "VGG16 + TP (no spatial attention)"),
    ("SHIFT", "configs/table1_shift.py", "VGG16 + TP + SHIFT (2 units)"),
    ("SA1 reg0", "configs/table1_sa1_reg0.py", "+ SA, 1 head, penalty 0"),
    ("SA2 reg0.1", "configs/table1_sa2_reg01.py", "+ SA, 2 heads, penalty 0.1"),
    ("SA2 reg1", "configs/table1_sa2_reg1.py", "+ SA, 2 heads, penalty 1 (the paper's model)"),
    ("SA4 reg0.1", "configs/table1_sa4_reg01.py", "+ SA, 4 heads, penalty 0.1"),
    ("SA4 reg1", "configs/table1_sa4_reg1.py", "+ SA, 4 heads, penalty 1"),
    ("LSTM", "configs/table2_lstm.py", "VGG16 + LSTM"),
    ("AVG", "configs/table2_avg.py", "VGG16 + AVG"),
)


def _pct(value: float) -> str:
  return f"{100 * value:.1f}"


def tables() -> dict[str, dict]:
  """results.csv rows by row name, with war, war_std, seeds and per-seed WARs parsed."""
  rows = {}
  with open(TABLES_CSV, newline="") as f:
    for row in csv.DictReader(f):
      row["war"], row["war_std"] = float(row["war"]), float(row["war_std"])
      row["seed_list"] = row["seeds"].split()
      row["war_list"] = [float(v) for v in row["war_by_seed"].split()]
      rows[row["row"]] = row
  return rows


def main_job() -> list[dict]:
  with open(MAIN_JOB_CSV, newline="") as f:
    return [dict(row, stills_accuracy=float(row["stills_accuracy"]), war=float(row["war"]), uar=float(row["uar"]))
            for row in csv.DictReader(f)]


def readme_table(rows: dict[str, dict]) -> str:
  n = {len(rows[name]["seed_list"]) for name, _, _ in README_ROWS}
  lines = ["| config | model | paper's AFEW val. accuracy | SynthEmo WAR (measured) |", "|---|---|---|---|"]
  for name, config, what in README_ROWS:
    row = rows[name]
    lines.append(f"| `{config}` | {what} | {float(row['paper']):.1f}% | "
                 f"{_pct(row['war'])} ± {_pct(row['war_std'])}% |")
  seeds = "/".join(str(k) for k in sorted(n))
  lines.append("")
  lines.append(f"SynthEmo: mean ± std of validation WAR over {seeds} seeds "
               f"([docs/synthemo_tables/results.csv](docs/synthemo_tables/results.csv)).")
  return "\n".join(lines)


def main_job_line(runs: list[dict]) -> str:
  first = runs[0]
  others = "; ".join(f"{_pct(r['war'])}% with `--config.seed={r['seed']} --config.pretrain.seed={r['seed']}`"
                     for r in runs[1:])
  return (f"Expected: the last line reads **validation WAR {_pct(first['war'])}%, UAR {_pct(first['uar'])}%** "
          f"(chance 14.3%; {others}), a few minutes on 2 CPU cores ([docs/benchmarks.md](docs/benchmarks.md)).")


def synthemo_md_table(runs: list[dict]) -> str:
  lines = ["| seed | stills accuracy after stage 1 | validation WAR / UAR after stage 2 | wall time, all included |",
           "|---|---|---|---|"]
  for r in runs:
    lines.append(f"| {r['seed']} | {_pct(r['stills_accuracy'])}% | {_pct(r['war'])}% / {_pct(r['uar'])}% | "
                 f"{r['wall_time']} |")
  return "\n".join(lines)


def _replace_marked(text: str, name: str, body: str, path: Path) -> str:
  pattern = re.compile(rf"(<!-- numbers:{re.escape(name)} -->\n).*?(<!-- /numbers -->)", re.S)
  if not pattern.search(text):
    raise SystemExit(f"{path}: no <!-- numbers:{name} --> ... <!-- /numbers --> block")
  return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)


_TABLE_SENTENCE = re.compile(r"measured: validation WAR [\d.]+% ± [\d.]+(\s+)\(mean ± std over seeds [^:]+: [^;]+;")
_MAIN_JOB_SENTENCE = re.compile(r"stills accuracy [\d.]+% / [\d.]+% after stage 1 and validation WAR [\d.]+% / [\d.]+%")


def config_docstring(text: str, row: dict, path: Path) -> str:
  if not _TABLE_SENTENCE.search(text):
    raise SystemExit(f"{path}: no 'measured: validation WAR ...' sentence")
  seeds = row["seed_list"]
  words = ", ".join(seeds)
  per_seed = ", ".join(f"{_pct(v)}%" for v in row["war_list"])
  return _TABLE_SENTENCE.sub(lambda m: f"measured: validation WAR {_pct(row['war'])}% ± {_pct(row['war_std'])}"
                             f"{m.group(1)}(mean ± std over seeds {words}: {per_seed};", text)


def expected_files() -> dict[Path, str]:
  """Each copy's path -> its text with the numbers written from the sources."""
  rows, runs = tables(), main_job()
  out = {}
  readme = REPO / "README.md"
  text = readme.read_text()
  text = _replace_marked(text, "results-table", readme_table(rows), readme)
  out[readme] = _replace_marked(text, "main-job", main_job_line(runs), readme)
  synthemo_md = REPO / "docs" / "synthemo.md"
  out[synthemo_md] = _replace_marked(synthemo_md.read_text(), "main-job", synthemo_md_table(runs), synthemo_md)
  for name, config, _ in README_ROWS:
    path = REPO / config
    out[path] = config_docstring(path.read_text(), rows[name], path)
  path = REPO / "configs" / "synthemo.py"
  text = path.read_text()
  if not _MAIN_JOB_SENTENCE.search(text):
    raise SystemExit(f"{path}: no 'stills accuracy ... validation WAR ...' sentence")
  out[path] = _MAIN_JOB_SENTENCE.sub(
      " / ".join(f"{_pct(r['stills_accuracy'])}%" for r in runs).join(("stills accuracy ", " after stage 1 and "))
      + "validation WAR " + " / ".join(f"{_pct(r['war'])}%" for r in runs), text)
  return out


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a copy is stale")
  args = parser.parse_args(argv)
  stale = [path for path, text in expected_files().items() if path.read_text() != text]
  if args.check:
    for path in stale:
      print(f"stale: {path.relative_to(REPO)} (run python docs/generate_numbers.py)")
    return 1 if stale else 0
  for path, text in expected_files().items():
    if path in stale:
      path.write_text(text)
      print(f"wrote {path.relative_to(REPO)}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
