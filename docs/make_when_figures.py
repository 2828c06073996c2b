"""Draws the temporal phase diagram of docs/synthemo_when_where.md from the when-grid's runs.

    # after `videmo sweep table --plan configs/sweeps/synthemo_when.py --workdir runs/synthemo_when`:
    cp runs/synthemo_when/runs.csv runs/synthemo_when/results.md docs/synthemo_when_where/grid/
    python docs/make_when_figures.py --runs docs/synthemo_when_where/grid/runs.csv \\
        --out docs/synthemo_when_where/grid
    python docs/generate_numbers.py   # the orderings table on the page, from grid/results.md

Reads the sweep's per-run CSV (one line per run: row 'w5% d0 TP', seed, war, ...) and writes
into --out:

- `grid_accuracy.png`: validation WAR against the window's share of the clip (log axis), one
  line per temporal pooling at the mean over seeds, its band the exact 95% t interval of that
  mean; one panel without distractors, one with.
- `grid_differences.png`: TP − AVG and TP − MAX against the window share, paired by seed, each
  with its exact 95% t interval (videmo.sweep.statistics.paired_t); the dotted line marks where
  the mean difference crosses zero (linear between neighbouring shares), when it does.
- `grid_differences.csv`: those paired differences per cell (n seeds, mean, interval, p),
  in percentage points, and the crossings.

A cell with a single seed gets its mean and no band.
"""

from __future__ import annotations

import argparse
import csv
import math
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from videmo.sweep import statistics

POOLINGS = ("AVG", "MEAN", "TP", "MAX", "LSTM")
COMPARED = ("AVG", "MAX")  # TP minus each
_ROW = re.compile(r"^w(?P<share>[0-9.]+)% d(?P<rate>[0-9.]+) (?P<pooling>\S+)$")


def read_runs(path: Path) -> dict[tuple[float, float, str], dict[int, float]]:
  """(window share, distractor rate, pooling) -> seed -> WAR, from the sweep's runs.csv."""
  runs: dict = defaultdict(dict)
  with open(path, newline="") as f:
    for line in csv.DictReader(f):
      match = _ROW.match(line["row"])
      if match is None or not line.get("war"):
        continue
      key = (float(match["share"]) / 100, float(match["rate"]) / 100, match["pooling"])
      runs[key][int(line["seed"])] = float(line["war"])
  if not runs:
    raise SystemExit(f"{path}: no finished run of the when-grid (rows named like 'w5% d0 TP')")
  return dict(runs)


def mean_interval(values) -> tuple[float, float, float]:
  """(mean, low, high) of the mean of `values`: the exact t interval (NaN bounds below 2 values)."""
  result = statistics.paired_t(list(values))
  return result.mean, result.low, result.high


def differences(runs) -> list[dict]:
  """One line per (rate, share, other): TP − other paired by the seeds both have, in points."""
  lines = []
  for rate in sorted({k[1] for k in runs}):
    for share in sorted({k[0] for k in runs if k[1] == rate}):
      tp = runs.get((share, rate, "TP"), {})
      for other in COMPARED:
        theirs = runs.get((share, rate, other), {})
        seeds = sorted(set(tp) & set(theirs))
        if not seeds:
          continue
        result = statistics.paired_t([100 * (tp[s] - theirs[s]) for s in seeds])
        lines.append(dict(distractors=rate, window_share=share, comparison=f"TP - {other}", seeds=len(seeds),
                          mean=result.mean, low=result.low, high=result.high, p=result.p))
  return lines


def crossing(points: list[tuple[float, float]]) -> float | None:
  """The first share where a mean difference, linear in log(share) between neighbours, reaches 0."""
  for (x0, y0), (x1, y1) in zip(points, points[1:]):
    if y0 == 0:
      return x0
    if (y0 > 0) != (y1 > 0) and y1 != y0:
      t = y0 / (y0 - y1)
      return float(np.exp(np.log(x0) + t * (np.log(x1) - np.log(x0))))
  return points[-1][0] if points and points[-1][1] == 0 else None


def write_differences(path: Path, lines: list[dict]) -> None:
  with open(path, "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["distractors", "window_share", "comparison", "seeds", "mean", "low", "high", "p"])
    for line in lines:
      writer.writerow([line["distractors"], line["window_share"], line["comparison"], line["seeds"],
                       *(_fmt(line[k]) for k in ("mean", "low", "high", "p"))])
    for rate in sorted({line["distractors"] for line in lines}):
      for comparison in sorted({line["comparison"] for line in lines}):
        points = [(l["window_share"], l["mean"]) for l in lines if l["distractors"] == rate and l["comparison"] == comparison]
        where = crossing(points)
        writer.writerow([rate, "crosses zero at" if where is not None else "does not cross zero", comparison,
                         "", _fmt(where) if where is not None else "", "", "", ""])


def _fmt(value: float) -> str:
  return "" if value is None or math.isnan(value) else f"{value:.4g}"


def draw(runs, lines: list[dict], out: Path) -> list[Path]:
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  rates = sorted({k[1] for k in runs})
  shares = sorted({k[0] for k in runs})
  seeds = sorted({len(values) for values in runs.values()})  # seeds per cell: the fewest, the most
  label = lambda rate: "no distractors" if rate == 0 else f"{100 * rate:g}% distractors"
  fig, axes = plt.subplots(1, len(rates), figsize=(5.2 * len(rates), 4), sharey=True, squeeze=False)
  for ax, rate in zip(axes[0], rates):
    for pooling in POOLINGS:
      cells = [(share, mean_interval(runs[(share, rate, pooling)].values())) for share in shares
               if (share, rate, pooling) in runs]
      if not cells:
        continue
      x = [c[0] for c in cells]
      mean, low, high = (np.array([c[1][i] for c in cells]) * 100 for i in range(3))
      (line,) = ax.plot(x, mean, marker="o", label=pooling)
      ax.fill_between(x, low, high, color=line.get_color(), alpha=0.15, linewidth=0)
    ax.set_xscale("log")
    ax.set_xticks(shares, [f"{100 * s:g}%" for s in shares])
    ax.minorticks_off()
    ax.set_xlabel("expressive window's share of the clip")
    ax.set_title(label(rate), fontsize=10)
    ax.grid(alpha=0.3)
  axes[0][0].set_ylabel("validation WAR (%)")
  axes[0][-1].legend(fontsize=8)
  fig.suptitle(f"Accuracy per temporal pooling: mean over {_seeds_text(seeds)}, band: 95% t interval", fontsize=10)
  fig.tight_layout()
  accuracy = out / "grid_accuracy.png"
  fig.savefig(accuracy, dpi=100)
  plt.close(fig)

  fig, axes = plt.subplots(1, len(COMPARED), figsize=(5.2 * len(COMPARED), 4), sharey=True, squeeze=False)
  for ax, other in zip(axes[0], COMPARED):
    for rate in rates:
      mine = [l for l in lines if l["distractors"] == rate and l["comparison"] == f"TP - {other}"]
      if not mine:
        continue
      x = [l["window_share"] for l in mine]
      (line,) = ax.plot(x, [l["mean"] for l in mine], marker="o", label=label(rate))
      ax.fill_between(x, [l["low"] for l in mine], [l["high"] for l in mine], color=line.get_color(), alpha=0.15,
                      linewidth=0)
      where = crossing(list(zip(x, [l["mean"] for l in mine])))
      if where is not None:
        ax.axvline(where, color=line.get_color(), linestyle=":", linewidth=1)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xticks(shares, [f"{100 * s:g}%" for s in shares])
    ax.minorticks_off()
    ax.set_xlabel("expressive window's share of the clip")
    ax.set_title(f"TP − {other}, paired by seed", fontsize=10)
    ax.grid(alpha=0.3)
  axes[0][0].set_ylabel("difference in WAR (points)")
  axes[0][-1].legend(fontsize=8)
  fig.suptitle(f"Where softmax pooling helps: {_seeds_text(seeds)}, band: 95% t interval, dotted: the mean's zero",
               fontsize=10)
  fig.tight_layout()
  diffs = out / "grid_differences.png"
  fig.savefig(diffs, dpi=100)
  plt.close(fig)
  return [accuracy, diffs]


def _seeds_text(counts: list[int]) -> str:
  """'3 seeds', or '2-3 seeds per cell' while some cells have fewer (a grid part-way through a seed)."""
  low, high = min(counts), max(counts)
  return (f"{high} seed" + ("s" if high != 1 else "")) if low == high else f"{low}-{high} seeds per cell"


def main(argv: list[str]) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--runs", type=Path, required=True, help="the when-grid's per-run CSV (the sweep's runs.csv)")
  parser.add_argument("--out", type=Path, required=True, help="the folder for the figures and grid_differences.csv")
  args = parser.parse_args(argv)
  if not args.runs.is_file():
    parser.error(f"no per-run CSV at {args.runs}: run `videmo sweep table` on the when-grid and copy its runs.csv")
  runs = read_runs(args.runs)
  lines = differences(runs)
  args.out.mkdir(parents=True, exist_ok=True)
  write_differences(args.out / "grid_differences.csv", lines)
  print(f"wrote {args.out / 'grid_differences.csv'}")
  for path in draw(runs, lines, args.out):
    print(f"wrote {path}")
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
