"""`videmo sweep run | slurm | table`: configs x seeds x overrides, on this machine or a cluster.

    videmo sweep run --plan configs/sweeps/synthemo_tables.py --workdir runs/tables
    videmo sweep run --config configs/table1_tp.py:synthemo --config configs/table2_avg.py:synthemo \
        --seeds 0,1,2 --set model.temperature=0.3,1,3 --workdir runs/grid [--parallel 2]
    videmo sweep slurm --plan ... --workdir ... [--sbatch '#SBATCH --partition=gpu']
    videmo sweep table --plan ... --workdir ...
    videmo sweep run --config configs/table1_sa2_reg1.py --folds 5 --workdir runs/dfew_folds \
        --set dataset=video_folder/dfew    # k-fold: one run per fold, WAR/UAR per fold and mean ± std

`run` skips finished runs and resumes the others, then writes the table; killed, it continues
where it stopped. `--index I` runs only run number I of the plan (SLURM's array tasks do).
`--records FILE` (an earlier table's records.jsonl) adds runs finished elsewhere: `run` skips
them and the table counts them, so a sweep run in pieces on several machines, or on one since
lost, makes one table.
`--folds` (or a plan's FOLDS) runs every row and seed once per fold of the dataset (plan.py).
"""

from __future__ import annotations

import argparse
import sys

from videmo.sweep import collect, execute, plan as plan_lib, slurm


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="videmo sweep", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("action", choices=("run", "slurm", "table", "list"),
                      help="run: train every unfinished run here, then write the table; slurm: write "
                           "SLURM array jobs; table: collect finished runs; list: print the runs")
  parser.add_argument("--workdir", required=True, help="the sweep's folder (runs/, pretrain/, results.*)")
  parser.add_argument("--plan", help="a plan file defining get_rows() and SEEDS (configs/sweeps/*.py)")
  parser.add_argument("--config", action="append", default=[], help="a config file[:arg] (repeatable)")
  parser.add_argument("--set", action="append", default=[], metavar="FIELD=V1,V2",
                      help="a grid axis over a config field (repeatable): every combination runs")
  parser.add_argument("--seeds", help="seeds, e.g. 0,1,2 or 0-2 (default: the plan's SEEDS, or 0)")
  parser.add_argument("--folds", help="k-fold evaluation over the dataset's folds: a count (5: folds 1..5) or "
                                      "fold numbers (0-4, 1,2,3); each run trains on the others (default: the "
                                      "plan's FOLDS, or none)")
  parser.add_argument("--rows", help="only these rows (comma-separated names)")
  parser.add_argument("--parallel", type=int, default=1, help="run: runs at a time (default 1)")
  parser.add_argument("--no-compilation-cache", action="store_true",
                      help="run: do not share compiled programs between runs (default: JAX's persistent cache "
                           "in $JAX_COMPILATION_CACHE_DIR, else ~/.cache/videmo/xla with one folder per host kind)")
  parser.add_argument("--records", action="append", default=[], metavar="FILE",
                      help="run, table: runs from an earlier table (its records.jsonl, or a runs.csv, which "
                           "lacks the clips) stand in for runs of the plan not finished here (repeatable)")
  parser.add_argument("--index", type=int, help="run: only run number INDEX (0-based, `list` order)")
  parser.add_argument("--cpus", type=int, default=8, help="slurm: CPUs per task")
  parser.add_argument("--sbatch", action="append", default=[], help="slurm: an extra '#SBATCH ...' line")
  return parser


def _plan(args) -> plan_lib.Plan:
  if bool(args.plan) == bool(args.config):
    raise ValueError("give either --plan FILE or one or more --config (with --set and --seeds)")
  if args.plan:
    plan = plan_lib.load_plan_file(args.plan)
    if args.set:
      raise ValueError("--set goes with --config; a plan file lists its overrides per row")
  else:
    plan = plan_lib.Plan(tuple(plan_lib.grid_rows(args.config, args.set)), (0,))
  seeds = plan_lib.parse_seeds(args.seeds) if args.seeds else plan.seeds
  folds = plan_lib.parse_folds(args.folds) if args.folds else plan.folds
  rows = plan.rows
  if args.rows:
    wanted = [name.strip() for name in args.rows.split(",")]
    unknown = [name for name in wanted if name not in {row.name for row in rows}]
    if unknown:
      raise ValueError(f"--rows: no row named {', '.join(unknown)} (rows: {', '.join(r.name for r in rows)})")
    rows = tuple(row for row in rows if row.name in wanted)
  return plan_lib.Plan(rows, seeds, tuple(c for c in plan.comparisons
                                          if all(name in {r.name for r in rows} for name in c)), folds)


def _sweep_args(args) -> list[str]:
  out = [f"--plan={args.plan}"] if args.plan else [f"--config={c}" for c in args.config] + [f"--set={s}" for s in args.set]
  if args.seeds:
    out.append(f"--seeds={args.seeds}")
  if args.folds:
    out.append(f"--folds={args.folds}")
  if args.rows:
    out.append(f"--rows={args.rows}")
  return out + [f"--workdir={args.workdir}"]


def main(argv: list[str]) -> int:
  args = _parser().parse_args(argv)
  try:
    plan = _plan(args)
    runs = plan_lib.plan_runs(plan.rows, plan.seeds, args.workdir, plan.folds)
    if args.index is not None and not 0 <= args.index < len(runs):
      raise ValueError(f"--index {args.index} is out of range: the sweep has {len(runs)} runs (0..{len(runs) - 1})")
    earlier = [record for path in args.records for record in collect.load_records(path)]
  except (ValueError, FileNotFoundError) as err:
    print(f"videmo sweep: {err}", file=sys.stderr)
    return 2
  if args.action == "list":
    for i, run in enumerate(runs):
      state = "finished" if run.finished() else "to run"
      print(f"{i:4d}  {run.label:<40}  {state:<9}  videmo train {' '.join(run.command_args())}")
    return 0
  if args.action == "slurm":
    submit = slurm.write_slurm(runs, _sweep_args(args), args.workdir, cpus=args.cpus, sbatch_lines=args.sbatch)
    print(f"wrote {submit.parent}/*.sbatch; submit with: bash {submit}")
    return 0
  failed = 0
  if args.action == "run":
    try:
      done_elsewhere = {(r["row"], r["seed"], r["fold"]) for r in earlier}
      todo = [runs[args.index]] if args.index is not None else runs
      failed = execute.run_local([run for run in todo if (run.row.name, run.seed, run.fold) not in done_elsewhere],
                                 args.parallel, compilation_cache=not args.no_compilation_cache)
    except ValueError as err:
      print(f"videmo sweep: {err}", file=sys.stderr)
      return 2
    if args.index is not None:
      return 1 if failed else 0
  written = collect.write_tables(plan, runs, args.workdir, earlier)
  if written["folds"]:
    print("\n".join(written["folds"]))
  if written["comparisons"]:
    print("\n".join(written["comparisons"]))
  print(f"{written['finished']} of {written['total']} runs finished; wrote "
        + ", ".join(str(p) for p in written["files"]))
  return 1 if failed else 0
