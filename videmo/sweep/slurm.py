"""A sweep as SLURM array jobs: the runs that train a stage 1 first, then the others.

`videmo sweep slurm --plan P --workdir W` writes W/slurm/{first,rest}.sbatch and W/slurm/submit.sh;
`bash W/slurm/submit.sh` submits `first` (one task per distinct stage 1) and `rest` with
`--dependency=afterok` on it. Each task runs `videmo sweep run ... --index I`, so it skips a
finished run and resumes a killed one like the local sweep does.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Sequence

from videmo.sweep.plan import Run

_TASK = """#!/bin/bash
#SBATCH --job-name={name}
#SBATCH --array=0-{last}
#SBATCH --output={logs}/%A_%a.out
#SBATCH --cpus-per-task={cpus}
{extra}
# {count} runs of `videmo sweep run`; task i runs run number RUNS[i] of the plan.
RUNS=({indices})
cd {cwd}
exec {command} --index "${{RUNS[$SLURM_ARRAY_TASK_ID]}}"
"""


def split_first(runs: Sequence[Run]) -> tuple[list[int], list[int]]:
  """(indices of the runs that train a stage 1: the first run of each, indices of the others)."""
  seen, first, rest = set(), [], []
  for i, run in enumerate(runs):
    if run.pretrain_dir and run.pretrain_dir not in seen:
      seen.add(run.pretrain_dir)
      first.append(i)
    else:
      rest.append(i)
  return first, rest


def write_slurm(runs: Sequence[Run], sweep_args: Sequence[str], workdir: str | Path, cpus: int = 8,
                sbatch_lines: Sequence[str] = ()) -> Path:
  """Writes the two array scripts and submit.sh under WORKDIR/slurm; returns submit.sh's path.

  sweep_args: the plan's arguments of `videmo sweep run` (--plan/--config/--set/--seeds, --workdir).
  sbatch_lines: extra '#SBATCH ...' lines (partition, time, account).
  """
  out = Path(workdir).absolute() / "slurm"
  logs = out / "logs"
  logs.mkdir(parents=True, exist_ok=True)
  command = " ".join(shlex.quote(a) for a in ["videmo", "sweep", "run", *sweep_args])
  first, rest = split_first(runs)
  scripts = []
  for name, indices in (("first", first), ("rest", rest)):
    if not indices:
      continue
    path = out / f"{name}.sbatch"
    path.write_text(_TASK.format(name=f"videmo-sweep-{name}", last=len(indices) - 1, logs=logs, cpus=cpus,
                                 extra="\n".join(sbatch_lines), count=len(indices),
                                 indices=" ".join(map(str, indices)), cwd=shlex.quote(str(Path.cwd())),
                                 command=command))
    scripts.append(path)
  lines = ["#!/bin/bash", "# Submits the sweep: the stage-1 runs first, the others when they have succeeded.",
           "set -euo pipefail"]
  if len(scripts) == 2:
    lines += [f"first=$(sbatch --parsable {shlex.quote(str(scripts[0]))})",
              f"sbatch --dependency=afterok:${{first%%;*}} {shlex.quote(str(scripts[1]))}"]
  else:
    lines += [f"sbatch {shlex.quote(str(path))}" for path in scripts]
  submit = out / "submit.sh"
  submit.write_text("\n".join(lines) + "\n")
  submit.chmod(0o755)
  return submit
