"""A sweep's results: every run's final metrics gathered into tables (CSV, Markdown) and a figure.

    WORKDIR/runs.csv      one line per finished run: row, seed, WAR, UAR, per-class recall,
                          top frame in window, wall time
    WORKDIR/results.csv   one line per row: mean and standard deviation over its seeds
    WORKDIR/results.md    the same as Markdown, per-class recall, and the plan's comparisons
    WORKDIR/results.png   WAR per row: bars at the mean, error bars of one standard deviation,
                          a dot per seed

Spread is the sample standard deviation over seeds (n - 1). A comparison "A >= B" pairs the runs
of A and B by seed and reports the mean difference with its 95% confidence interval (Student's t
over the paired differences); it "holds" when the whole interval is above 0, is "reversed" when
it is below 0, and is "not resolved" otherwise.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from videmo.sweep.plan import RUN_RECORD, Plan, Run
from videmo.train import run_dir

# Two-sided 95% quantiles of Student's t by degrees of freedom (1..10); 1.96 beyond.
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228)


def _t95(df: int) -> float:
  return _T95[df - 1] if df <= len(_T95) else 1.96


def read_run(run: Run) -> dict | None:
  """A finished run's numbers (None if it has not finished)."""
  if not run.finished():
    return None
  metrics = run_dir.read_metrics(run.workdir)
  headline = metrics[metrics["headline_policy"]]
  window = metrics.get("top_frame_in_window") or {}
  seconds = None
  if (run.workdir / RUN_RECORD).is_file():
    seconds = json.loads((run.workdir / RUN_RECORD).read_text()).get("seconds")
  return dict(row=run.row.name, seed=run.seed, war=headline["war"], uar=headline["uar"],
              recall=headline["per_class_recall"], classes=metrics["classes"], step=metrics["step"],
              frame_by_importance=window.get("by_importance"), frame_by_evidence=window.get("by_evidence"),
              frame_chance=window.get("chance"), seconds=seconds)


def _mean_std(values: Sequence[float | None]) -> tuple[float, float, int]:
  values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
  if not values:
    return float("nan"), float("nan"), 0
  return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else float("nan"), len(values)


def _pct(mean: float, std: float, n: int) -> str:
  if n == 0 or math.isnan(mean):
    return "–"
  return f"{100 * mean:.1f}" + (f" ± {100 * std:.1f}" if n > 1 else "")


def aggregate(plan: Plan, runs: Sequence[Run]) -> tuple[list[dict], list[dict]]:
  """(per-run records of the finished runs, one summary per row in plan order)."""
  records = [r for r in (read_run(run) for run in runs) if r is not None]
  summaries = []
  for row in plan.rows:
    mine = [r for r in records if r["row"] == row.name]
    summary = dict(row=row.name, group=row.group, paper=row.paper, config=row.config,
                   overrides=" ".join(f"{k}={v}" for k, v in row.overrides), seeds=[r["seed"] for r in mine],
                   war_by_seed=[r["war"] for r in mine])
    for key in ("war", "uar", "frame_by_importance", "frame_by_evidence", "frame_chance", "seconds"):
      summary[key], summary[key + "_std"], summary[key + "_n"] = _mean_std([r[key] for r in mine])
    classes = mine[0]["classes"] if mine else []
    summary["recall"] = {c: _mean_std([r["recall"][c] for r in mine])[0] for c in classes}
    summaries.append(summary)
  return records, summaries


def compare(records: Sequence[dict], better: str, worse: str) -> dict:
  """Paired-by-seed WAR difference better - worse: mean, 95% interval, seeds where better >= worse, verdict."""
  a = {r["seed"]: r["war"] for r in records if r["row"] == better}
  b = {r["seed"]: r["war"] for r in records if r["row"] == worse}
  seeds = sorted(set(a) & set(b))
  diffs = np.array([a[s] - b[s] for s in seeds])
  out = dict(better=better, worse=worse, seeds=len(seeds), wins=int(np.sum(diffs >= 0)) if len(seeds) else 0)
  if len(seeds) < 2:
    return dict(out, mean=float(diffs.mean()) if len(seeds) else float("nan"), low=float("nan"),
                high=float("nan"), verdict="not resolved (fewer than 2 seeds)")
  half = _t95(len(seeds) - 1) * diffs.std(ddof=1) / math.sqrt(len(seeds))
  mean = float(diffs.mean())
  verdict = "holds" if mean - half > 0 else "reversed" if mean + half < 0 else "not resolved"
  return dict(out, mean=mean, low=mean - half, high=mean + half, verdict=verdict)


def _write_csv(path: Path, rows: list[dict]) -> None:
  if not rows:
    path.write_text("")
    return
  with path.open("w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)


def _flat_run(r: dict) -> dict:
  flat = {k: v for k, v in r.items() if k not in ("recall", "classes")}
  flat.update({f"recall_{c}": r["recall"][c] for c in r["classes"]})
  return flat


def _flat_summary(s: dict) -> dict:
  flat = {k: v for k, v in s.items() if k not in ("recall", "seeds", "war_by_seed")}
  flat["seeds"] = " ".join(map(str, s["seeds"]))
  flat["war_by_seed"] = " ".join(f"{v:.4f}" for v in s["war_by_seed"])
  flat.update({f"recall_{c}": v for c, v in s["recall"].items()})
  return flat


def markdown(plan: Plan, records: Sequence[dict], summaries: Sequence[dict]) -> str:
  """The results as Markdown: the main table, per-class recall, the comparisons."""
  lines = ["| group | row | paper (AFEW) | WAR % (mean ± std) | WAR % by seed | UAR % | "
           "top frame in window % (p(f|S)) | (score of ĉ) | chance | s per run |",
           "|---|---|---|---|---|---|---|---|---|---|"]
  for s in summaries:
    by_seed = ", ".join(f"{seed}: {100 * war:.1f}" for seed, war in zip(s["seeds"], s["war_by_seed"]))
    seconds = f"{s['seconds']:.0f}" if s["seconds_n"] else "–"
    lines.append(f"| {s['group']} | {s['row']} | {'' if s['paper'] is None else s['paper']} | "
                 f"{_pct(s['war'], s['war_std'], s['war_n'])} | {by_seed} | {_pct(s['uar'], s['uar_std'], s['uar_n'])} | "
                 f"{_pct(s['frame_by_importance'], s['frame_by_importance_std'], s['frame_by_importance_n'])} | "
                 f"{_pct(s['frame_by_evidence'], s['frame_by_evidence_std'], s['frame_by_evidence_n'])} | "
                 f"{_pct(s['frame_chance'], float('nan'), min(1, s['frame_chance_n']))} | {seconds} |")
  classes = next((list(s["recall"]) for s in summaries if s["recall"]), [])
  if classes:
    lines += ["", "Per-class recall, % (mean over seeds):", "",
              "| row | " + " | ".join(classes) + " |", "|---|" + "---|" * len(classes)]
    for s in summaries:
      if s["recall"]:
        lines.append(f"| {s['row']} | " + " | ".join(f"{100 * s['recall'][c]:.0f}" for c in classes) + " |")
  if plan.comparisons:
    lines += ["", "Orderings (WAR, paired by seed; 95% interval of the mean difference):", "",
              "| ordering | seeds | A ≥ B in | mean A − B, points | 95% interval | verdict |", "|---|---|---|---|---|---|"]
    for better, worse in plan.comparisons:
      c = compare(records, better, worse)
      interval = "–" if math.isnan(c["low"]) else f"{100 * c['low']:+.1f} … {100 * c['high']:+.1f}"
      mean = "–" if math.isnan(c["mean"]) else f"{100 * c['mean']:+.1f}"
      lines.append(f"| {better} ≥ {worse} | {c['seeds']} | {c['wins']} of {c['seeds']} | {mean} | {interval} | {c['verdict']} |")
  return "\n".join(lines) + "\n"


def plot(summaries: Sequence[dict], records: Sequence[dict], path: Path, chance: float | None = None) -> None:
  """WAR per row: a bar at the mean, one standard deviation either side, a dot per seed.

  Drawn on a matplotlib Figure with its own Agg canvas, not through pyplot: no backend is
  chosen and no global figure is kept, so the process's matplotlib state is left as it was.
  """
  from matplotlib import colormaps
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure

  shown = [s for s in summaries if s["war_n"]]
  groups = list(dict.fromkeys(s["group"] for s in shown))
  colours = colormaps["tab10"]
  fig = Figure(figsize=(7.5, 0.42 * len(shown) + 1.4))
  FigureCanvasAgg(fig)
  ax = fig.subplots()
  for i, s in enumerate(shown):
    colour = colours(groups.index(s["group"]) % 10)
    std = s["war_std"] if s["war_n"] > 1 else 0.0
    ax.barh(i, 100 * s["war"], xerr=100 * std, color=colour, alpha=0.55, capsize=3,
            label=s["group"] if s["group"] and s is next(x for x in shown if x["group"] == s["group"]) else None)
    seeds = [r["war"] for r in records if r["row"] == s["row"]]
    ax.plot([100 * v for v in seeds], [i] * len(seeds), "k.", markersize=4)
  if chance:
    ax.axvline(100 * chance, color="grey", linestyle=":", linewidth=1, label="chance")
  ax.set_yticks(range(len(shown)), [s["row"] for s in shown])
  ax.invert_yaxis()
  ax.set_xlabel("validation WAR, % (bar: mean over seeds; line: ± 1 std; dots: seeds)")
  if any(groups) or chance:
    ax.legend(loc="lower right", fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)


def write_tables(plan: Plan, runs: Sequence[Run], workdir: str | Path) -> dict:
  """Writes runs.csv, results.csv, results.md and results.png in WORKDIR; returns their paths
  and how many runs had finished."""
  workdir = Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  records, summaries = aggregate(plan, runs)
  _write_csv(workdir / "runs.csv", [_flat_run(r) for r in records])
  _write_csv(workdir / "results.csv", [_flat_summary(s) for s in summaries])
  (workdir / "results.md").write_text(markdown(plan, records, summaries))
  classes = records[0]["classes"] if records else []
  plot(summaries, records, workdir / "results.png", chance=1 / len(classes) if classes else None)
  return dict(finished=len(records), total=len(runs), files=[workdir / n for n in
                                                             ("runs.csv", "results.csv", "results.md", "results.png")])
