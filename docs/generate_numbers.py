"""Every measured number that appears in more than one place, written from its one source file.

    python docs/generate_numbers.py           # rewrite the copies
    python docs/generate_numbers.py --check   # exit 1, naming each stale copy (tests/test_docs_numbers.py)

Sources (committed, each written by the command that measured it):
  docs/synthemo_tables/results.csv, runs.csv, results.md
                                     `videmo sweep table` of configs/sweeps/synthemo_evidence.py
  docs/synthemo_tables/attention_stage1/runs.csv
                                     `videmo sweep table` of configs/sweeps/synthemo_tables.py (the
                                     3-seed variant whose stage 1 has attention)
  docs/synthemo_main_job.csv         the main job (`videmo train --config=configs/synthemo.py`),
                                     one line per seed
  docs/synthemo_when_where/grid/results.md, runs.csv
                                     `videmo sweep table` of configs/sweeps/synthemo_when.py

Copies:
  README.md                the results table and the main job's line (between
                           <!-- numbers:NAME --> and <!-- /numbers --> markers)
  docs/synthemo.md         the main job's table (markers as above)
  docs/synthemo_tables.md  its tables (markers as above)
  docs/synthemo_when_where.md  the localisation table of the tables' attention rows and the
                           when-grid's orderings (markers as above)
  configs/table*.py        each docstring's "measured: validation WAR ..." sentence
  configs/synthemo.py      its docstring's "stills accuracy ... validation WAR ..." sentence
"""

from __future__ import annotations

import argparse
import csv
import math
import re
import statistics as pystats
import sys
from pathlib import Path

from scipy import stats

REPO = Path(__file__).resolve().parents[1]
TABLES_DIR = REPO / "docs" / "synthemo_tables"
TABLES_CSV = TABLES_DIR / "results.csv"
TABLES_RUNS_CSV = TABLES_DIR / "runs.csv"
TABLES_MD = TABLES_DIR / "results.md"
ATTENTION_STAGE1_RUNS_CSV = TABLES_DIR / "attention_stage1" / "runs.csv"
MAIN_JOB_CSV = REPO / "docs" / "synthemo_main_job.csv"
GRID_MD = REPO / "docs" / "synthemo_when_where" / "grid" / "results.md"
GRID_RUNS_CSV = GRID_MD.with_name("runs.csv")

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


# docs/synthemo_tables.md's Table 1 and Table 2: (results.csv row, the paper's name, heads, penalty).
TABLE1_ROWS = (
    ("TP", "VGG16 + TP", "–", "–"),
    ("SHIFT", "+ SHIFT (attention clusters, 2 units)", "2", "–"),
    ("SA1 reg0", "+ SA", "1", "0"),
    ("SA2 reg0.1", "+ SA", "2", "0.1"),
    ("SA2 reg1", "+ SA (the paper's model)", "2", "1"),
    ("SA4 reg0.1", "+ SA", "4", "0.1"),
    ("SA4 reg1", "+ SA", "4", "1"),
    ("SA2 reg0", "+ SA (added: the penalty's zero at 2 heads)", "2", "0"),
)
TABLE2_ROWS = (
    ("LSTM", "VGG16 + LSTM"),
    ("AVG", "VGG16 + AVG (trained as eq. 7)"),
    ("TP", "VGG16 + TP"),
    ("SA2 reg1", "VGG16 + TP + SA (2 heads, penalty 1)"),
    ("MAX", "added: max pooling (softmax pooling's τ → 0)"),
    ("MEAN", "added: the mean frame score trained on the clip (τ → ∞)"),
)


def _pct(value: float) -> str:
  return f"{100 * value:.1f}"


def _float(text: str) -> float:
  return float(text) if text not in ("", "nan") else math.nan


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


def read_runs(path: Path) -> list[dict]:
  """runs.csv: one dict per run, numbers parsed (NaN where a run has no value)."""
  with open(path, newline="") as f:
    return [{k: (v if k in ("row", "fold") else int(v) if k == "seed" else _float(v)) for k, v in row.items()}
            for row in csv.DictReader(f)]


def _interval(values: list[float]) -> tuple[float, float, float]:
  """(mean, low, high): the mean of `values` with its 95% Student-t interval."""
  mean = pystats.fmean(values)
  half = stats.t.ppf(0.975, len(values) - 1) * pystats.stdev(values) / math.sqrt(len(values))
  return mean, mean - half, mean + half


def _points(mean: float, low: float, high: float) -> str:
  return f"{100 * mean:+.1f} ({100 * low:+.1f} … {100 * high:+.1f})"


def _row_cells(row: dict) -> str:
  """WAR mean ± std | its 95% interval (t) | seeds | p(f|S) spread."""
  n = int(float(row["war_n"]))
  half = stats.t.ppf(0.975, n - 1) * row["war_std"] / math.sqrt(n)
  spread = (f"{float(row['effective_frames']):.1f} ({100 * float(row['effective_share']):.0f}%)"
            if row["effective_frames"] not in ("", "nan") else "–")
  return (f"{_pct(row['war'])} ± {_pct(row['war_std'])} | {_pct(row['war'] - half)} … {_pct(row['war'] + half)} | "
          f"{n} | {spread}")


def table1(rows: dict[str, dict]) -> str:
  lines = ["| row (Table 1) | heads | penalty | paper, AFEW | SynthEmo WAR, % | 95% interval of the mean | seeds | "
           "p(f\\|S) spread: frames (% of seen) |", "|---|---|---|---|---|---|---|---|"]
  for name, what, heads, penalty in TABLE1_ROWS:
    row = rows[name]
    paper = row["paper"] or "–"
    lines.append(f"| {what} | {heads} | {penalty} | {paper} | {_row_cells(row)} |")
  return "\n".join(lines)


def table2(rows: dict[str, dict]) -> str:
  lines = ["| row (Table 2) | paper, AFEW | SynthEmo WAR, % | 95% interval of the mean | seeds | "
           "p(f\\|S) spread: frames (% of seen) |", "|---|---|---|---|---|---|"]
  for name, what in TABLE2_ROWS:
    row = rows[name]
    lines.append(f"| {what} | {row['paper'] or '–'} | {_row_cells(row)} |")
  return "\n".join(lines)


def frames_table(rows: dict[str, dict]) -> str:
  """Which frame mattered: both top-frame measures, beside chance."""
  cell = lambda row, key: ("–" if row[key] in ("", "nan") else
                           f"{_pct(float(row[key]))} ± {_pct(float(row[key + '_std']))}")
  lines = ["| row | top frame by p(f\\|S) in window, % | top frame by o_fĉ in window, % |", "|---|---|---|"]
  for name, row in rows.items():
    lines.append(f"| {name} | {cell(row, 'frame_by_importance')} | {cell(row, 'frame_by_evidence')} |")
  chance = {_pct(float(row["frame_chance"])) for row in rows.values()}
  lines += ["", f"A frame drawn at random lies inside the window {'/'.join(sorted(chance))}% of the time."]
  return "\n".join(lines)


def results_md_table(intro: str, path: Path | None = None) -> str:
  """The Markdown table that follows the paragraph starting with `intro` in a sweep's results.md
  (the tables' by default), the paragraph included."""
  path = path or TABLES_MD
  text = path.read_text()
  at = text.find(intro)
  if at < 0:
    raise SystemExit(f"{path}: no paragraph starting {intro!r}")
  block = text[at:].split("\n\n")
  return "\n\n".join(block[:2]).rstrip()


def grid_status() -> str:
  """How far the when-grid has run: its finished runs, per seed, from grid/runs.csv."""
  runs = read_runs(GRID_RUNS_CSV)
  rows = len([line for line in GRID_MD.read_text().split("\n\n")[0].splitlines()[2:] if line.startswith("|")])
  per_seed: dict[int, int] = {}
  for run in runs:
    per_seed[int(run["seed"])] = per_seed.get(int(run["seed"]), 0) + 1
  seeds = "; ".join(f"seed {seed}: {count} of the {rows} rows" for seed, count in sorted(per_seed.items()))
  return f"Finished: {len(runs)} runs ({seeds})."


def stage1_table(new: list[dict], old: list[dict]) -> str:
  """Each row shared by both plans: WAR after the attention stage 1 and after the neutral one,
  on the seeds both ran, paired by seed; then "+SA ≥ TP" under each."""
  by = lambda records: {(r["row"], r["seed"]): r["war"] for r in records}
  a, b = by(old), by(new)
  seeds = sorted({s for _, s in a} & {s for _, s in b})
  names = [name for name in dict.fromkeys(r["row"] for r in new) if all((name, s) in a for s in seeds)]
  lines = [f"| row | WAR %, stage 1 with attention (seeds {', '.join(map(str, seeds))}) | "
           f"WAR %, neutral stage 1 (the same seeds) | neutral − attention, points (95% interval, t) |",
           "|---|---|---|---|"]
  for name in names:
    before, after = [a[name, s] for s in seeds], [b[name, s] for s in seeds]
    lines.append(f"| {name} | {_pct(pystats.fmean(before))} | {_pct(pystats.fmean(after))} | "
                 f"{_points(*_interval([y - x for x, y in zip(before, after)]))} |")
  all_seeds = sorted({s for name, s in b if name == "TP"})
  lines += ["", "| “+SA ≥ TP” (SA2 reg1 − TP, paired by seed) | seeds | mean, points (95% interval, t) |",
            "|---|---|---|"]
  for label, wars, chosen in (("stage 1 with attention", a, seeds), ("neutral stage 1, the same seeds", b, seeds),
                              ("neutral stage 1, every seed", b, all_seeds)):
    diffs = [wars["SA2 reg1", s] - wars["TP", s] for s in chosen]
    lines.append(f"| {label} | {len(chosen)} | {_points(*_interval(diffs))} |")
  change = [(a["SA2 reg1", s] - a["TP", s]) - (b["SA2 reg1", s] - b["TP", s]) for s in seeds]
  lines.append(f"| what the attention stage 1 adds to it (paired by seed) | {len(seeds)} | {_points(*_interval(change))} |")
  return "\n".join(lines)


def sweep_time(records: list[dict]) -> str:
  seconds = [r["seconds"] for r in records]
  return (f"{len(records)} runs, {sum(seconds) / 3600:.1f} hours of wall time in all (the sum of the runs' "
          f"times, each seed's stage 1 included in its first run; median {pystats.median(seconds):.0f} s a run)")


def tables_page(rows: dict[str, dict]) -> dict[str, str]:
  """docs/synthemo_tables.md's blocks: marker name -> text."""
  new = read_runs(TABLES_RUNS_CSV)
  return {
      "table1": table1(rows),
      "table2": table2(rows),
      "orderings": results_md_table("Orderings (WAR"),
      "frames": frames_table(rows),
      "faithfulness": results_md_table("Frame importance, faithfulness"),
      "recall": results_md_table("Per-class recall"),
      "stage1": stage1_table(new, read_runs(ATTENTION_STAGE1_RUNS_CSV)),
      "time": sweep_time(new),
  }


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
  lines.append(f"SynthEmo: mean ± std of validation WAR over {seeds} paired seeds, every row's trunk pre-trained "
               f"by the same stage 1 ([docs/synthemo_tables/results.csv](docs/synthemo_tables/results.csv)).")
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
  page = REPO / "docs" / "synthemo_tables.md"
  text = page.read_text()
  for name, body in tables_page(rows).items():
    text = _replace_marked(text, name, body, page)
  out[page] = text
  page = REPO / "docs" / "synthemo_when_where.md"
  text = _replace_marked(page.read_text(), "localisation", results_md_table("Where spatial attention looks"), page)
  text = _replace_marked(text, "grid-status", grid_status(), page)
  out[page] = _replace_marked(text, "grid-orderings", results_md_table("Orderings", GRID_MD), page)
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
