"""When softmax pooling helps: the temporal phase diagram on SynthEmo (docs/synthemo_when_where.md).

    videmo sweep run --plan configs/sweeps/synthemo_when.py --workdir runs/synthemo_when --seeds 0-1
    videmo sweep run --plan configs/sweeps/synthemo_when.py --workdir runs/synthemo_when --seeds 2-3
    ...                                                                     (--seeds 4-5, 6-7, 8-9)
    videmo sweep table --plan configs/sweeps/synthemo_when.py --workdir runs/synthemo_when

Each piece may run on another machine: add `--records docs/synthemo_when_where/grid/records.jsonl`
(the committed records of the pieces before) to both commands, and commit the new table's
records.jsonl there (docs/synthemo_when_where.md says how the page is refreshed).

The grid: the expressive window's share of each clip {5%, 10%, 25%, 50%, 100%} x distractor
frames outside it {none, 30%} (the synthemo/when_* datasets, tables' size and 'pairs' classes)
x the temporal pooling {AVG (eq. 7), MEAN (the mean frame score trained on the clip's loss),
TP (softmax pooling), MAX, LSTM}: 50 rows, 10 paired seeds each, every row of one seed on the
same neutral stage 1 (global average pooling -> linear on synthemo/stills_pairs: the tables'
recipe, as in configs/sweeps/synthemo_evidence.py). Each piece of 2 seeds is 100 runs and 2 stage-1 runs,
about 2 hours of 2 CPU cores; the whole grid about 9 hours. It resumes like any sweep.

The comparisons, per cell: TP >= AVG and TP >= MAX, paired by seed, Holm-adjusted over the 20.
What the paper's reasoning predicts for each cell is written on the page before the runs.
"""

from videmo.data.preparation.builders.synthemo.synthemo_dataset_builder import (
    WHEN_DISTRACTOR_RATES, WHEN_WINDOW_SHARES, when_config_name)

SEEDS = tuple(range(10))

# (name, config, overrides): the temporal poolings, all with the paper's classifier on conv5_3.
POOLINGS = (
    ("AVG", "configs/table2_avg.py:synthemo", {}),
    ("MEAN", "configs/table2_avg.py:synthemo", {"model.temporal": "mean_score"}),
    ("TP", "configs/table1_tp.py:synthemo", {}),
    ("MAX", "configs/table1_tp.py:synthemo", {"model.temporal": "max"}),
    ("LSTM", "configs/table2_lstm.py:synthemo", {}),
)


def cell_name(share: float, distractor_rate: float) -> str:
  """'w5% d0' ... 'w100% d30': a cell's label in the table."""
  return f"w{100 * share:g}% d{100 * distractor_rate:g}"


def get_rows():
  rows = []
  for rate in WHEN_DISTRACTOR_RATES:
    for share in WHEN_WINDOW_SHARES:
      dataset = f"synthemo/{when_config_name(share, rate)}"
      for pooling, config, overrides in POOLINGS:
        rows.append(dict(name=f"{cell_name(share, rate)} {pooling}", config=config,
                         group=f"window {100 * share:g}% of the clip, "
                               + (f"{100 * rate:g}% distractors" if rate else "no distractors"),
                         overrides={"dataset": dataset, **overrides}))
  return rows


COMPARISONS = tuple((f"{cell_name(share, rate)} TP", f"{cell_name(share, rate)} {other}")
                    for rate in WHEN_DISTRACTOR_RATES for share in WHEN_WINDOW_SHARES for other in ("AVG", "MAX"))
