"""Where a sweep's runs spend their time: the share of each run's wall time that is training steps.

    python benchmarks/run_time_share.py runs/synthemo_evidence [--steps 366]

For each finished run of a `videmo sweep` work directory (WORKDIR/runs/ROW/seed-S): the wall
times of its first and last `train/` TensorBoard events give its time per step, which times
its number of steps (metrics.json's final step, or --steps) is its time in training steps; its
`sweep_run.json` gives its whole time. The rest is everything around the step: start-up,
init, evaluation, checkpoints, figures. Left out: the first run of each seed that trains the
shared stage 1 (its `train.log` says so) and runs whose whole time is over twice the median
(paused or resumed). Prints a line per run, then the median share, its quartiles and the
median seconds around the steps, and 1 / median share: the most that removing every second
around the step could speed a run up.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from pathlib import Path

import numpy as np


def train_event_times(run: Path) -> list[tuple[int, float]]:
  """(step, wall time) of each event holding a `train/` scalar, from the run's event files."""
  from tensorboardX.proto import event_pb2

  out = set()
  for path in sorted(run.glob("events.out.tfevents.*")):
    data, at = path.read_bytes(), 0
    while at + 12 <= len(data):  # TFRecord: length (8 bytes), its CRC (4), the record, its CRC (4)
      (length,) = struct.unpack("<Q", data[at:at + 8])
      event = event_pb2.Event.FromString(data[at + 12:at + 12 + length])
      at += 16 + length
      if any(v.tag.startswith("train/") for v in event.summary.value):
        out.add((event.step, event.wall_time))
  return sorted(out)


def measure(run: Path, steps: int | None) -> dict | None:
  """One run's seconds in total and in steps (None if it has not finished or logged too little)."""
  record, metrics = run / "sweep_run.json", run / "metrics.json"
  if not record.is_file():
    return None
  events = train_event_times(run)
  if len(events) < 2 or events[-1][0] == events[0][0]:
    return None
  (s0, t0), (s1, t1) = events[0], events[-1]
  total_steps = steps or (json.loads(metrics.read_text()).get("step") if metrics.is_file() else None)
  if not total_steps or total_steps <= 0:
    raise SystemExit(f"run_time_share: {metrics} gives no final step; pass --steps")
  log = (run / "train.log").read_text(errors="replace") if (run / "train.log").is_file() else ""
  return dict(run=f"{run.parent.name}/{run.name}", total=json.loads(record.read_text())["seconds"],
              per_step=(t1 - t0) / (s1 - s0), steps=total_steps, stage1="stage 1 is done" not in log)


def main(argv: list[str]) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("workdir", type=Path, help="a `videmo sweep` work directory")
  parser.add_argument("--steps", type=int, default=None, help="steps per run (default: each run's final step in metrics.json)")
  args = parser.parse_args(argv)
  runs = sorted(p for p in (args.workdir / "runs").glob("*/seed-*") if p.is_dir())
  found = [m for m in (measure(run, args.steps) for run in runs) if m]
  if not found:
    print(f"run_time_share: no finished run with training events under {args.workdir / 'runs'}", file=sys.stderr)
    return 1
  median_total = np.median([m["total"] for m in found])
  kept = []
  for m in found:
    in_steps = m["per_step"] * m["steps"]
    left_out = "trains stage 1" if m["stage1"] else ("paused or resumed" if m["total"] > 2 * median_total else "")
    print(f"{m['run']:28s} {1000 * m['per_step']:5.0f} ms/step  {in_steps:5.0f} s of {m['total']:5.0f} s in steps"
          f" ({in_steps / m['total']:4.0%}){'  left out: ' + left_out if left_out else ''}")
    if not left_out:
      kept.append((in_steps / m["total"], m["total"] - in_steps))
  if not kept:
    return 1
  share, around = np.array(kept).T
  q1, median, q3 = np.percentile(share, [25, 50, 75])
  print(f"{len(kept)} of {len(found)} runs: median {median:.0%} of a run in training steps (quartiles {q1:.0%}, "
        f"{q3:.0%}; range {share.min():.0%}-{share.max():.0%}); median {np.median(around):.0f} s around the steps; "
        f"removing all of it: at most {1 / median:.2f}x")
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
