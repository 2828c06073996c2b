"""`videmo sweep`: many runs of `videmo train` (configs x seeds x overrides), resumable, and their table.

    videmo sweep run   --plan configs/sweeps/synthemo_tables.py --workdir runs/tables [--parallel N]
    videmo sweep slurm --plan ... --workdir ...      # write a SLURM array job instead
    videmo sweep table --plan ... --workdir ...      # collect the runs' final metrics into CSV, Markdown, a figure

plan.py says what runs, execute.py runs them on this machine, slurm.py writes them for a
cluster, collect.py makes the table. docs/synthemo_tables.md is the sweep of the paper's tables.
"""
