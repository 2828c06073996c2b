"""k-fold results: WAR and UAR per fold, their mean ± std over folds, the confusion matrix summed over folds.

A fold's WAR and UAR are the mean over its finished runs (its seeds; the protocols of DFEW and
MAFW quote one run per fold); the mean and the sample standard deviation (n - 1) are over the
folds, as those datasets' results are quoted; the confusion matrix is the sum of every run's
(rows true, columns predicted; the headline no-face policy's, so a clip without a face counts in
no column under 'wrong').

    WORKDIR/folds.csv            one line per row and fold (row, fold, war, uar, runs, clips), then
                                 the row's 'mean' and 'std' lines
    WORKDIR/folds_confusion.csv  per row, the summed confusion: one line per true class
    WORKDIR/folds.png            per row: WAR and UAR by fold with their means, and the summed confusion
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Sequence

import numpy as np

FILES = ("folds.csv", "folds_confusion.csv", "folds.png")


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
  values = [v for v in values if not math.isnan(v)]
  if not values:
    return math.nan, math.nan
  return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else math.nan


def fold_summaries(rows: Sequence[str], folds: Sequence[int], records: Sequence[dict]) -> list[dict]:
  """Per row (in order) with a finished run: dict(row, classes [E], folds: [dict(fold, war, uar,
  runs, clips)] for the finished folds, war, war_std, uar, uar_std (over those folds), n (their
  number), of (len(folds)), confusion [E, E] int (summed over every run of the row))."""
  out = []
  for row in rows:
    mine = [r for r in records if r["row"] == row and r.get("fold") is not None]
    if not mine:
      continue
    per_fold = []
    for fold in folds:
      runs = [r for r in mine if r["fold"] == fold]
      if runs:
        per_fold.append(dict(fold=fold, war=float(np.mean([r["war"] for r in runs])),
                             uar=float(np.mean([r["uar"] for r in runs])), runs=len(runs),
                             clips=int(np.mean([r["clips"] for r in runs]))))
    war, war_std = _mean_std([f["war"] for f in per_fold])
    uar, uar_std = _mean_std([f["uar"] for f in per_fold])
    confusion = np.sum([np.asarray(r["confusion"], np.int64) for r in mine], axis=0)
    out.append(dict(row=row, classes=list(mine[0]["classes"]), folds=per_fold, war=war, war_std=war_std,
                    uar=uar, uar_std=uar_std, n=len(per_fold), of=len(folds), confusion=confusion))
  return out


def _pct(value: float, std: float = math.nan) -> str:
  if math.isnan(value):
    return "–"
  return f"{100 * value:.1f}" + ("" if math.isnan(std) else f" ± {100 * std:.1f}")


def markdown_lines(summaries: Sequence[dict]) -> list[str]:
  """Per row: a table of WAR and UAR by fold with the mean ± std over folds, and the summed
  confusion matrix (Markdown; what `videmo sweep table` prints and results.md holds)."""
  lines = []
  for s in summaries:
    lines += ["", f"k-fold: {s['row']}, {s['n']} of {s['of']} folds finished (a fold's value: the mean over its "
                  f"seeds; mean ± std over folds):", "",
              "| fold | WAR % | UAR % | clips |", "|---|---|---|---|"]
    lines += [f"| {f['fold']} | {_pct(f['war'])} | {_pct(f['uar'])} | {f['clips']} |" for f in s["folds"]]
    lines.append(f"| mean ± std | {_pct(s['war'], s['war_std'])} | {_pct(s['uar'], s['uar_std'])} | "
                 f"{sum(f['clips'] for f in s['folds'])} |")
    lines += ["", f"Confusion summed over the {s['n']} folds (rows true, columns predicted):", "",
              "| true \\ predicted | " + " | ".join(s["classes"]) + " |", "|---|" + "---|" * len(s["classes"])]
    lines += [f"| {name} | " + " | ".join(str(int(v)) for v in row) + " |"
              for name, row in zip(s["classes"], s["confusion"])]
  return lines


def write_csvs(summaries: Sequence[dict], workdir: Path) -> None:
  """folds.csv and folds_confusion.csv in `workdir` (see the module docstring)."""
  with (workdir / FILES[0]).open("w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["row", "fold", "war", "uar", "runs", "clips"])
    for s in summaries:
      for fold in s["folds"]:
        writer.writerow([s["row"], fold["fold"], fold["war"], fold["uar"], fold["runs"], fold["clips"]])
      writer.writerow([s["row"], "mean", s["war"], s["uar"], s["n"], sum(f["clips"] for f in s["folds"])])
      writer.writerow([s["row"], "std", s["war_std"], s["uar_std"], s["n"], ""])
  with (workdir / FILES[1]).open("w", newline="") as f:
    writer = csv.writer(f)
    classes = summaries[0]["classes"] if summaries else []
    writer.writerow(["row", "true"] + [f"predicted_{c}" for c in classes])
    for s in summaries:
      for name, row in zip(s["classes"], s["confusion"]):
        writer.writerow([s["row"], name] + [int(v) for v in row])


def plot(summaries: Sequence[dict], path: Path) -> None:
  """One line of two panels per row: WAR and UAR by fold (bars) with their means over folds
  (dashed), and the confusion matrix summed over folds (row-normalised colours, counts).

  Drawn on a matplotlib Figure with its own Agg canvas: no backend chosen, no global state.
  """
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure

  count = max(1, len(summaries))
  classes = max((len(s["classes"]) for s in summaries), default=2)
  fig = Figure(figsize=(5.0 + 0.55 * classes, (2.4 + 0.3 * classes) * count))
  FigureCanvasAgg(fig)
  axes = fig.subplots(count, 2, squeeze=False, gridspec_kw=dict(width_ratios=(1.3, 1.0)))
  for (bars, matrix), s in zip(axes, summaries):
    x = np.arange(len(s["folds"]))
    for offset, key, colour in ((-0.2, "war", "tab:blue"), (0.2, "uar", "tab:orange")):
      bars.bar(x + offset, [100 * f[key] for f in s["folds"]], width=0.4, color=colour, alpha=0.7,
               label=f"{key.upper()} {_pct(s[key], s[key + '_std'])}%")
      if not math.isnan(s[key]):
        bars.axhline(100 * s[key], color=colour, linestyle="--", linewidth=1)
    bars.set_xticks(x, [f"fold {f['fold']}" for f in s["folds"]])
    bars.set_ylim(0, 120)
    bars.set_yticks(range(0, 101, 20))
    bars.set_ylabel("%")
    bars.set_title(f"{s['row']}: {s['n']} of {s['of']} folds (dashed: mean)", fontsize=9)
    bars.legend(loc="upper center", ncol=2, fontsize=7)
    confusion = np.asarray(s["confusion"])
    totals = confusion.sum(1, keepdims=True)
    shares = np.divide(confusion, totals, out=np.zeros(confusion.shape, float), where=totals > 0)
    matrix.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (i, j), value in np.ndenumerate(confusion):
      matrix.text(j, i, str(int(value)), ha="center", va="center", fontsize=7,
                  color="white" if shares[i, j] > 0.5 else "black")
    matrix.set_xticks(range(len(s["classes"])), s["classes"], rotation=45, ha="right", fontsize=7)
    matrix.set_yticks(range(len(s["classes"])), s["classes"], fontsize=7)
    matrix.set_xlabel("predicted", fontsize=8)
    matrix.set_ylabel("true", fontsize=8)
    matrix.set_title("confusion summed over folds", fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=110)


def write(summaries: Sequence[dict], workdir: str | Path) -> list[Path]:
  """folds.csv, folds_confusion.csv and folds.png in `workdir`; returns their paths."""
  workdir = Path(workdir)
  write_csvs(summaries, workdir)
  plot(summaries, workdir / FILES[2])
  return [workdir / name for name in FILES]
