"""Running a sweep's runs on this machine: one after another, or N at a time; finished runs are skipped.

Each run is `videmo train` in a child process, its output in RUN/train.log, and RUN/sweep_run.json
records the command, the wall time and the machine. A run is finished when its final metrics record
exists (`videmo train` writes it last), so a killed sweep, run again, skips what finished and
resumes the rest from their checkpoints. Runs that share a stage 1 wait while one of them trains
it; a failed run is reported in one line and the others go on.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

from videmo import process_setup
from videmo.sweep.plan import RUN_RECORD, Run
from videmo.train.trained_run import TrainedRun


def cpu_name() -> str:
  """The CPU's model name (from /proc/cpuinfo where there is one) and its core count."""
  name = platform.processor() or platform.machine()
  try:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
      if line.startswith("model name"):
        name = line.split(":", 1)[1].strip()
        break
  except OSError:
    pass
  return f"{name}, {os.cpu_count()} cores"


def train_command(run: Run) -> list[str]:
  return [sys.executable, "-m", "videmo.main", "train", *run.command_args()]


def _start(run: Run, threads: int | None, compilation_cache: bool) -> tuple[subprocess.Popen, float]:
  run.workdir.mkdir(parents=True, exist_ok=True)
  env = process_setup.with_compilation_cache(os.environ, compilation_cache)
  if threads:
    env.setdefault("OMP_NUM_THREADS", str(threads))
  log = open(run.workdir / "train.log", "a")
  log.write(f"\n$ {' '.join(train_command(run))}\n")
  log.flush()
  process = subprocess.Popen(train_command(run), stdout=log, stderr=subprocess.STDOUT, env=env)
  log.close()
  return process, time.time()


def _record(run: Run, started: float, code: int, threads: int | None) -> dict:
  seconds = time.time() - started
  record = dict(row=run.row.name, seed=run.seed, command=" ".join(["videmo", "train", *run.command_args()]),
                seconds=round(seconds, 1), exit_code=code, machine=cpu_name(),
                threads=threads or int(os.environ.get("OMP_NUM_THREADS") or 0) or os.cpu_count(),  # sums follow it
                finished_at=time.strftime("%Y-%m-%d %H:%M:%S"))
  previous = run.workdir / RUN_RECORD
  if previous.is_file():  # a resumed run: its time is the sum of its pieces
    try:
      record["seconds"] = round(seconds + json.loads(previous.read_text()).get("seconds", 0.0), 1)
    except (OSError, ValueError):
      pass
  (run.workdir / RUN_RECORD).write_text(json.dumps(record, indent=2))
  return record


def _summary(run: Run) -> str:
  try:
    metrics = TrainedRun.open(run.workdir).metrics()
    headline = metrics[metrics["headline_policy"]]
    return f"WAR {100 * headline['war']:.1f}%  UAR {100 * headline['uar']:.1f}%"
  except (OSError, ValueError, KeyError):
    return "no final metrics"


def _last_line(run: Run) -> str:
  try:
    lines = [line for line in (run.workdir / "train.log").read_text().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""
  except OSError:
    return ""


def run_local(runs: Sequence[Run], parallel: int = 1, compilation_cache: bool = True) -> int:
  """Runs every unfinished run, `parallel` at a time. Returns the number of runs that failed.

  parallel > 1 gives each run cores / parallel threads (OMP_NUM_THREADS). oneDNN's and XLA's
  sums then run in another order, and over hundreds of SGD steps a run ends elsewhere, as
  another seed would: a run reproduces its number only at the same thread count, which each
  run's record keeps.
  compilation_cache: the runs share JAX's persistent compilation cache
  (`process_setup.compilation_cache_dir`), so a run whose programs a neighbour has compiled
  (the same shapes: every seed of a row, most rows of a table) does not compile them again.
  """
  if parallel < 1:
    raise ValueError(f"--parallel must be >= 1, got {parallel}")
  todo = [run for run in runs if not run.finished()]
  print(f"sweep: {len(runs)} runs, {len(runs) - len(todo)} finished already, {len(todo)} to run, "
        f"{parallel} at a time on {cpu_name()}; compilation cache: "
        f"{process_setup.compilation_cache_dir() if compilation_cache else 'off'}", flush=True)
  threads = max(1, (os.cpu_count() or 1) // parallel) if parallel > 1 else None
  running: dict[Run, tuple[subprocess.Popen, float]] = {}
  failed, done = 0, len(runs) - len(todo)
  try:
    while todo or running:
      # a run may start unless another running run is training the stage 1 it needs
      busy = {r.pretrain_dir for r in running if r.pretrain_dir and not r.stage1_done()}
      for run in list(todo):
        if len(running) >= parallel:
          break
        if run.pretrain_dir and not run.stage1_done() and run.pretrain_dir in busy:
          continue
        todo.remove(run)
        busy.add(run.pretrain_dir)
        running[run] = _start(run, threads, compilation_cache)
        print(f"  start  {run.label}  ({run.workdir})", flush=True)
      time.sleep(0.5)
      for run, (process, started) in list(running.items()):
        code = process.poll()
        if code is None:
          continue
        del running[run]
        record = _record(run, started, code, threads)
        done += 1
        if code == 0 and run.finished():
          print(f"  [{done}/{len(runs)}] {run.label}: {_summary(run)} in {record['seconds']:.0f} s", flush=True)
        else:
          failed += 1
          print(f"  [{done}/{len(runs)}] {run.label} FAILED (exit {code}): {_last_line(run)} "
                f"(log: {run.workdir / 'train.log'})", flush=True)
  except KeyboardInterrupt:
    for process, _ in running.values():
      process.terminate()
    raise
  return failed
