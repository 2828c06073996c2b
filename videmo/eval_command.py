"""`videmo eval`: evaluate a checkpoint on a split (`experiment.evaluate_saved`, scoring in
videmo/train/evaluation.py; on SynthEmo with spatial attention, a "localisation:" line from
videmo/train/localisation.py) and, with --report, draw every clip of it (videmo/predict/split_report.py).

    videmo eval --config=configs/synthemo.py --checkpoint=runs/synthemo [--split=validation] [--report=DIR]

A command-line module: it sits above both training and prediction, which never import each other.
"""

from __future__ import annotations

import sys

from videmo import process_setup
from videmo.train import cli


def main(argv: list[str]) -> int:
  args = cli.parse_command_line("videmo eval", argv, ("checkpoint",))
  cli.setup_logging(args.log_level)
  process_setup.reuse_freed_buffers()
  import jax

  from videmo.train import experiment

  config = args.config
  if args.split:
    with config.unlocked():
      config.eval_split = args.split
  try:
    evaluation = experiment.evaluate_saved(config, args.checkpoint)
  except (ValueError, FileNotFoundError) as err:
    print(f"videmo eval: {err}", file=sys.stderr)
    return 1
  if evaluation.record.get("localisation"):
    from videmo.train import localisation

    print(localisation.summary_line(evaluation.record["localisation"]))
  print(f"wrote {evaluation.path}")
  if args.report and jax.process_index() == 0:
    from videmo.predict import split_report

    index, agree, compared = split_report.write_eval_report(args.report, evaluation, args.report_clips)
    print(f"wrote {index} (its predictions agree with the evaluation on {agree} of {compared} clips)")
  return 0
