"""A sweep's results: every run's final metrics gathered into tables (CSV, Markdown) and a figure.

    WORKDIR/runs.csv      one line per finished run: row, seed, WAR, UAR, per-class recall,
                          top frame in window, how many frames p(f|S) spreads over, wall time
    WORKDIR/records.jsonl every run's whole record, the clips it got right included: what
                          `videmo sweep table --records FILE` reads back, so that a sweep's
                          pieces run on several machines (or a machine since lost) make one table
    WORKDIR/results.csv   one line per row: mean and standard deviation over its seeds
    WORKDIR/results.md    the same as Markdown, per-class recall, where attention looks, how
                          faithful p(f|S) is, and the plan's comparisons
    WORKDIR/results.png   WAR per row: bars at the mean, error bars of one standard deviation,
                          a dot per seed
    WORKDIR/folds.*       k-fold sweeps: WAR and UAR per fold, mean ± std over folds, the
                          confusion summed over folds (videmo/sweep/folds.py)

Spread is the sample standard deviation over seeds (n - 1); in a k-fold sweep a row's WAR and UAR
are the mean and standard deviation over folds instead (each fold's value the mean over its
seeds). A comparison "A >= B" pairs the runs of A and B by seed (and fold) and reports the mean
difference with its 95% interval (Student's t, exact quantile), its p-value, the p-value Holm-adjusted over the page's comparisons, the interval a
bootstrap over the validation clips gives, and for a comparison not resolved the number of
seeds the measured effect and spread would need (videmo/sweep/statistics.py). It "holds" when
the adjusted p is below 0.05 and A is ahead, is "reversed" when B is, and is "not resolved"
otherwise.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from videmo.sweep import folds as folds_lib
from videmo.sweep import statistics
from videmo.sweep.plan import RUN_RECORD, Plan, Run
from videmo.train import run_dir
from videmo.train.trained_run import TrainedRun


def read_run(run: Run) -> dict | None:
  """A finished run's numbers (None if it has not finished)."""
  if not run.finished():
    return None
  metrics = TrainedRun.open(run.workdir).metrics()
  headline = metrics[metrics["headline_policy"]]
  window = metrics.get("top_frame_in_window") or {}
  spread = metrics.get("frame_importance_spread") or {}
  located = _evaluated(run.workdir, metrics, "localisation")
  seconds = None
  if (run.workdir / RUN_RECORD).is_file():
    seconds = json.loads((run.workdir / RUN_RECORD).read_text()).get("seconds")
  return dict(row=run.row.name, seed=run.seed, fold=run.fold, war=headline["war"], uar=headline["uar"],
              recall=headline["per_class_recall"], classes=metrics["classes"], step=metrics["step"],
              clips=headline["clips_listed"], confusion=headline["confusion"],
              frame_by_importance=window.get("by_importance"), frame_by_evidence=window.get("by_evidence"),
              frame_chance=window.get("chance"), seconds=seconds,
              effective_frames=spread.get("effective_frames"), effective_share=spread.get("effective_share"),
              correct=_correct(metrics), **_localisation(located),
              **_faithfulness(_evaluated(run.workdir, metrics, "frame_importance_faithfulness")))


# Where spatial attention looks (train/localisation.py, SynthEmo with attention): the keys read
# from a run's metrics "localisation" record, each averaged over a row's seeds.
LOCALISATION_KEYS = ("relevance_mass", "relevance_mass_mean_map", "pointing_game", "pointing_game_mean_map",
                     "localisation_chance", "head_overlap")


# Whether p(f|S) says what the model used (train/evaluation.py's deletion and insertion curves
# over the clips with a window): the mean of each curve, for frames ordered by p(f|S), at random
# and by the true window, each averaged over a row's seeds.
FAITHFULNESS_ORDERS = ("importance", "random", "window")
FAITHFULNESS_KEYS = tuple(f"{curve}_{order}" for order in FAITHFULNESS_ORDERS for curve in ("deletion", "insertion"))


def _faithfulness(record: dict | None) -> dict:
  """The run's FAITHFULNESS_KEYS (None each where it has no curves, or no order: p(f|S) is
  left out for average pooling, the whole record for the LSTM)."""
  out = dict.fromkeys(FAITHFULNESS_KEYS)
  for order in FAITHFULNESS_ORDERS:
    curves = (record or {}).get(order)
    if curves:
      out[f"deletion_{order}"], out[f"insertion_{order}"] = curves["deletion_area"], curves["insertion_area"]
  return out


def _means_table(summaries: Sequence[dict], keys: Sequence[str], intro: str, header: Sequence[str]) -> list[str]:
  """A Markdown table: `intro`, then one line per row that measured any of `keys`, with its mean of
  each (2 decimals; – where it has none) under `header`. No row measured them: []."""
  measured = [s for s in summaries if any(s.get(f"{key}_n") for key in keys)]
  if not measured:
    return []
  lines = ["", intro, "", "| " + " | ".join(("row", *header)) + " |", "|" + "---|" * (len(header) + 1)]
  for s in measured:
    cells = [f"{s[key]:.2f}" if s.get(f"{key}_n") else "–" for key in keys]
    lines.append(f"| {s['row']} | " + " | ".join(cells) + " |")
  return lines


def faithfulness_lines(summaries: Sequence[dict]) -> list[str]:
  """A Markdown table of the deletion and insertion areas, one line per row that measured them."""
  keys = [f"{curve}_{order}" for curve in ("deletion", "insertion") for order in FAITHFULNESS_ORDERS]
  return _means_table(
      summaries, keys,
      "Frame importance, faithfulness (mean over seeds; over the clips with an expressive window, the "
      "accuracy as frames are removed, deletion, or kept, insertion, in three orders: by p(f|S), at random, "
      "the true window's frames first; each the mean of its curve: a p(f|S) that says what the model "
      "used has a low deletion and a high insertion area, near the window's):",
      ("deletion, p(f\\|S)", "(random)", "(window)", "insertion, p(f\\|S)", "(random)", "(window)"))


def _evaluated(workdir: Path, metrics: dict, key: str) -> dict:
  """The run's `key` record (e.g. "localisation"): its final metrics', else that of a `videmo eval`
  of the same checkpoint on the same split (a run trained before its evaluation measured it)."""
  if metrics.get(key):
    return metrics[key]
  again = run_dir.metrics_path(workdir, run_dir.eval_name(metrics.get("split", ""), metrics.get("step", -1)))
  if again.is_file():
    return json.loads(again.read_text()).get(key) or {}
  return {}


def _localisation(located: dict) -> dict:
  """The run's LOCALISATION_KEYS (None each where it has no localisation record)."""
  if not located:
    return dict.fromkeys(LOCALISATION_KEYS)
  overall, mean_map = located["overall"], located["mean_map"]["overall"]
  return dict(relevance_mass=overall["relevance_mass"], relevance_mass_mean_map=mean_map["relevance_mass"],
              pointing_game=overall["pointing_game"], pointing_game_mean_map=mean_map["pointing_game"],
              localisation_chance=located["chance"]["relevance_mass"],
              head_overlap=(located.get("head_overlap") or {}).get("min_sum"))


def localisation_lines(summaries: Sequence[dict]) -> list[str]:
  """A Markdown table of where attention looks, one line per row that measured it (none: [])."""
  return _means_table(
      summaries, LOCALISATION_KEYS,
      "Where spatial attention looks (mean over seeds; beside each, the model-free mean map's; "
      "chance: the share of the grid the expression's regions cover; head overlap: the mean over "
      "pairs of heads of the sum of elementwise minima, 0 = disjoint, 1 = the same map):",
      ("relevance mass", "(mean map)", "pointing game", "(mean map)", "chance", "head overlap"))


def _correct(metrics: dict) -> np.ndarray | None:
  """[K] bool: the run got listed clip k right (a clip without a face counts wrong); None for
  records written before clips were recorded."""
  if "clip_labels" not in metrics:
    return None
  return np.asarray(metrics["clip_predictions"]) == np.asarray(metrics["clip_labels"])


def _mean_std(values: Sequence[float | None]) -> tuple[float, float, int]:
  values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
  if not values:
    return float("nan"), float("nan"), 0
  return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else float("nan"), len(values)


def _spread(s: dict) -> str:
  """exp(entropy) of p(f|S), mean over seeds, and its share of the frames the model saw."""
  if not s["effective_frames_n"] or math.isnan(s["effective_frames"]):
    return "–"
  return f"{s['effective_frames']:.1f} ({100 * s['effective_share']:.0f}%)"


def _pct(mean: float, std: float, n: int) -> str:
  if n == 0 or math.isnan(mean):
    return "–"
  return f"{100 * mean:.1f}" + (f" ± {100 * std:.1f}" if n > 1 else "")


RECORDS_FILE = "records.jsonl"
_RECORD_KEYS = ("row", "seed", "fold", "war", "uar", "recall", "classes")


def _json_record(record: dict) -> dict:
  """A record as JSON values: the per-clip correctness as a string of 0s and 1s."""
  out = dict(record)
  if out.get("correct") is not None:
    out["correct"] = "".join("1" if c else "0" for c in np.asarray(out["correct"]).tolist())
  return out


def write_records(path: Path, records: Sequence[dict]) -> None:
  """One JSON line per record (floats written exactly: they read back to the same bits)."""
  path.write_text("".join(json.dumps(_json_record(r), allow_nan=True) + "\n" for r in records))


def load_records(path: str | Path) -> list[dict]:
  """The records of a `records.jsonl`, or of a `runs.csv` from before records were written (those
  have no per-clip correctness and no confusion matrix). A one-line ValueError names a bad file."""
  path = Path(path)
  if not path.is_file():
    raise ValueError(f"--records {path}: no such file")
  if path.suffix == ".csv":
    return _records_from_csv(path)
  records = []
  for number, line in enumerate(path.read_text().splitlines(), 1):
    if not line.strip():
      continue
    try:
      record = json.loads(line)
      missing = [k for k in _RECORD_KEYS if k not in record]
      if missing:
        raise ValueError(f"no {', '.join(missing)}")
    except ValueError as err:
      raise ValueError(f"--records {path}, line {number}: not a run record ({err})") from None
    if record.get("correct") is not None:
      record["correct"] = np.frombuffer(record["correct"].encode(), np.uint8) == ord("1")
    records.append(record)
  return records


def _records_from_csv(path: Path) -> list[dict]:
  with path.open(newline="") as f:
    rows = list(csv.DictReader(f))
  records = []
  for number, row in enumerate(rows, 2):
    try:
      value = lambda key: None if row.get(key) in (None, "") else float(row[key])
      classes = [k[len("recall_"):] for k in row if k.startswith("recall_")]
      record = dict(row=row["row"], seed=int(row["seed"]), fold=int(row["fold"]) if row.get("fold") else None)
      record.update({k: value(k) for k in row if k not in record and not k.startswith("recall_")})
      record.update(classes=classes, recall={c: value(f"recall_{c}") for c in classes}, correct=None,
                    confusion=None)
      for key in ("step", "clips"):
        if record.get(key) is not None:
          record[key] = int(record[key])
    except (KeyError, ValueError) as err:
      raise ValueError(f"--records {path}, line {number}: not a run of runs.csv ({err})") from None
    records.append(record)
  return records


def aggregate(plan: Plan, runs: Sequence[Run], earlier: Sequence[dict] = ()) -> tuple[list[dict], list[dict]]:
  """(per-run records of the finished runs, one summary per row in plan order).

  `earlier`: records of runs from an earlier table (`load_records`); one stands in for a run of
  this plan that has not finished here (a run finished here wins), in the plan's order.
  """
  found = {(run.row.name, run.seed, run.fold): read_run(run) for run in runs}
  before = {(r["row"], r["seed"], r["fold"]): r for r in earlier}
  records = [found[key] or before.get(key) for key in found]
  records = [r for r in records if r is not None]
  summaries = []
  for row in plan.rows:
    mine = [r for r in records if r["row"] == row.name]
    runs_of_row = [r["seed"] if r["fold"] is None else f"fold {r['fold']} seed {r['seed']}" for r in mine]
    summary = dict(row=row.name, group=row.group, paper=row.paper, config=row.config,
                   overrides=" ".join(f"{k}={v}" for k, v in row.overrides), seeds=runs_of_row,
                   war_by_seed=[r["war"] for r in mine])
    for key in ("war", "uar", "frame_by_importance", "frame_by_evidence", "frame_chance", "effective_frames",
                "effective_share", "seconds", *LOCALISATION_KEYS, *FAITHFULNESS_KEYS):
      summary[key], summary[key + "_std"], summary[key + "_n"] = _mean_std([r[key] for r in mine])
    if plan.folds:  # WAR and UAR over folds, each fold's the mean over its seeds
      for key in ("war", "uar"):
        summary[key], summary[key + "_std"], summary[key + "_n"] = _mean_std(
            [float(np.mean([r[key] for r in mine if r["fold"] == fold])) for fold in plan.folds
             if any(r["fold"] == fold for r in mine)])
    classes = mine[0]["classes"] if mine else []
    summary["recall"] = {c: _mean_std([r["recall"][c] for r in mine])[0] for c in classes}
    summaries.append(summary)
  return records, summaries


def compare(records: Sequence[dict], better: str, worse: str, family: int = 1) -> dict:
  """Paired-by-seed (and fold) WAR difference better - worse: the paired t result, pairs where
  better >= worse, the clip-bootstrap interval over the pairs with per-clip records
  (`clip_seeds` of them; None without any, or across folds, which hold other clips) and the
  pairs needed at 0.05 / `family` (Bonferroni over the page's comparisons: enough for Holm too)."""
  a = {(r.get("fold"), r["seed"]): r for r in records if r["row"] == better}
  b = {(r.get("fold"), r["seed"]): r for r in records if r["row"] == worse}
  seeds = sorted(set(a) & set(b), key=lambda key: (key[0] is not None, key))
  diffs = [a[s]["war"] - b[s]["war"] for s in seeds]
  result = statistics.paired_t(diffs)
  clips, with_clips = None, [s for s in seeds if a[s]["correct"] is not None and b[s]["correct"] is not None]
  if with_clips and len({fold for fold, _ in seeds}) == 1:
    clips = statistics.clip_bootstrap(np.stack([a[s]["correct"] for s in with_clips]),
                                      np.stack([b[s]["correct"] for s in with_clips]))
  return dict(better=better, worse=worse, seeds=len(seeds), wins=int(np.sum(np.asarray(diffs) >= 0)),
              t=result, clips=clips, clip_seeds=len(with_clips) if clips is not None else 0,
              needed=statistics.seeds_needed(diffs, alpha=0.05 / family))


def comparisons(plan: Plan, records: Sequence[dict]) -> list[dict]:
  """Every comparison of the plan, with its Holm-adjusted p and verdict over the whole family."""
  found = [compare(records, better, worse, len(plan.comparisons)) for better, worse in plan.comparisons]
  for c, adjusted in zip(found, statistics.holm([c["t"].p for c in found])):
    c["holm_p"] = adjusted
    c["verdict"] = statistics.verdict(c["t"], adjusted)
  return found


def comparison_table(found: Sequence[dict]) -> list[str]:
  """The comparisons as Markdown lines."""
  points = lambda v: "–" if v is None or math.isnan(v) else f"{100 * v:+.1f}"
  p_text = lambda v: "–" if math.isnan(v) else (f"{v:.2g}" if v >= 1e-4 else "<1e-4")
  lines = ["| ordering | seeds | A ≥ B in | mean A − B, points | 95% interval (t, seeds) | "
           "95% interval (clips) | p | Holm p | verdict | seeds needed |", "|---|---|---|---|---|---|---|---|---|---|"]
  for c in found:
    t = c["t"]
    seeds_interval = "–" if math.isnan(t.low) else f"{points(t.low)} … {points(t.high)}"
    clip_interval = "–" if c["clips"] is None else f"{points(c['clips'][0])} … {points(c['clips'][1])}"
    if c["clips"] is not None and c["clip_seeds"] < c["seeds"]:  # some runs' records lack their clips
      clip_interval += f" ({c['clip_seeds']} of {c['seeds']} seeds)"
    needed = ("" if c["verdict"] != "not resolved" or c["seeds"] < 2
              else str(c["needed"]) if c["needed"] is not None else f"> {statistics.NEEDED_LIMIT}")
    lines.append(f"| {c['better']} ≥ {c['worse']} | {c['seeds']} | {c['wins']} of {c['seeds']} | {points(t.mean)} | "
                 f"{seeds_interval} | {clip_interval} | {p_text(t.p)} | {p_text(c['holm_p'])} | {c['verdict']} | "
                 f"{needed} |")
  return lines


def _write_csv(path: Path, rows: list[dict]) -> None:
  if not rows:
    path.write_text("")
    return
  with path.open("w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)


def _flat_run(r: dict) -> dict:
  flat = {k: v for k, v in r.items() if k not in ("recall", "classes", "correct", "confusion")}
  flat.update({f"recall_{c}": r["recall"][c] for c in r["classes"]})
  return flat


def _flat_summary(s: dict) -> dict:
  flat = {k: v for k, v in s.items() if k not in ("recall", "seeds", "war_by_seed")}
  flat["seeds"] = " ".join(map(str, s["seeds"]))
  flat["war_by_seed"] = " ".join(f"{v:.4f}" for v in s["war_by_seed"])
  flat.update({f"recall_{c}": v for c, v in s["recall"].items()})
  return flat


def markdown(plan: Plan, records: Sequence[dict], summaries: Sequence[dict]) -> str:
  """The results as Markdown: the main table, per-class recall, k-fold results, the comparisons."""
  lines = ["| group | row | paper (AFEW) | WAR % (mean ± std) | WAR % by seed | UAR % | "
           "top frame in window % (p(f|S)) | (score of ĉ) | chance | p(f|S) spread: frames (% of seen) | s per run |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
  for s in summaries:
    by_seed = ", ".join(f"{seed}: {100 * war:.1f}" for seed, war in zip(s["seeds"], s["war_by_seed"]))
    seconds = f"{s['seconds']:.0f}" if s["seconds_n"] else "–"
    lines.append(f"| {s['group']} | {s['row']} | {'' if s['paper'] is None else s['paper']} | "
                 f"{_pct(s['war'], s['war_std'], s['war_n'])} | {by_seed} | {_pct(s['uar'], s['uar_std'], s['uar_n'])} | "
                 f"{_pct(s['frame_by_importance'], s['frame_by_importance_std'], s['frame_by_importance_n'])} | "
                 f"{_pct(s['frame_by_evidence'], s['frame_by_evidence_std'], s['frame_by_evidence_n'])} | "
                 f"{_pct(s['frame_chance'], float('nan'), min(1, s['frame_chance_n']))} | {_spread(s)} | {seconds} |")
  classes = next((list(s["recall"]) for s in summaries if s["recall"]), [])
  if classes:
    lines += ["", "Per-class recall, % (mean over seeds):", "",
              "| row | " + " | ".join(classes) + " |", "|---|" + "---|" * len(classes)]
    for s in summaries:
      if s["recall"]:
        lines.append(f"| {s['row']} | " + " | ".join(f"{100 * s['recall'][c]:.0f}" for c in classes) + " |")
  lines += localisation_lines(summaries)
  lines += faithfulness_lines(summaries)
  if plan.folds:
    lines += folds_lib.markdown_lines(folds_lib.fold_summaries([r.name for r in plan.rows], plan.folds, records))
  if plan.comparisons:
    lines += ["", "Orderings (WAR, paired by seed: the mean difference with its 95% interval over seeds "
              "(exact t) and over the validation clips (bootstrap); the verdict follows the Holm-adjusted p "
              "over these comparisons; for one not resolved, the paired seeds the measured effect and spread "
              "would need for 80% power at 0.05 divided by the number of comparisons):", ""]
    lines += comparison_table(comparisons(plan, records))
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


def write_tables(plan: Plan, runs: Sequence[Run], workdir: str | Path, earlier: Sequence[dict] = ()) -> dict:
  """Writes runs.csv, records.jsonl, results.csv, results.md and results.png in WORKDIR (and in a
  k-fold sweep folds.csv, folds_confusion.csv and folds.png); returns their paths, how many runs
  had finished (here or in `earlier`, see `aggregate`), the k-fold tables' and the comparisons'
  Markdown lines."""
  workdir = Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  records, summaries = aggregate(plan, runs, earlier)
  _write_csv(workdir / "runs.csv", [_flat_run(r) for r in records])
  write_records(workdir / RECORDS_FILE, records)
  _write_csv(workdir / "results.csv", [_flat_summary(s) for s in summaries])
  (workdir / "results.md").write_text(markdown(plan, records, summaries))
  classes = records[0]["classes"] if records else []
  plot(summaries, records, workdir / "results.png", chance=1 / len(classes) if classes else None)
  table = comparison_table(comparisons(plan, records)) if plan.comparisons else []
  files = [workdir / n for n in ("runs.csv", RECORDS_FILE, "results.csv", "results.md", "results.png")]
  fold_lines = []
  if plan.folds:
    found = folds_lib.fold_summaries([r.name for r in plan.rows], plan.folds, records)
    files += folds_lib.write(found, workdir)
    fold_lines = folds_lib.markdown_lines(found)
  return dict(finished=len(records), total=len(runs), comparisons=table, folds=fold_lines, files=files)
