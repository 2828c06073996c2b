"""`videmo eval`: evaluate a saved model on a split and write its metrics next to the checkpoint."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import ml_collections

from videmo import parallel
from videmo.train import checkpoint as checkpoint_lib
from videmo.train import loop, run_dir, scoring


@dataclasses.dataclass
class CheckpointEvaluation:
  """What `evaluate_checkpoint` did: the metrics record and where it went, and what a report
  of the split needs (the experiment, the restored parameters, per-clip results, the step)."""

  record: dict
  path: Path
  exp: loop.Experiment
  params: Any
  result: dict
  workdir: Path
  step: int


def evaluate_checkpoint(config: ml_collections.ConfigDict, checkpoint: str) -> CheckpointEvaluation:
  """Evaluate `checkpoint` (a work directory or WORKDIR/checkpoints/STEP) on config.eval_split.

  Writes the metrics record to WORKDIR/eval_SPLIT_STEP.json and prints the result line and the
  headline policy's per-class recall. The input normalisation is the one the run trained with
  (WORKDIR/input_convention.json). `videmo eval --report` then draws the split
  (videmo/predict/split_report.py).
  """
  path = Path(checkpoint).expanduser().absolute()
  workdir, _ = run_dir.split_checkpoint_path(path)
  convention = run_dir.read_convention(workdir, path)
  with config.unlocked():
    config.init.weights = ""  # the checkpoint holds the whole model
    config.init.pretrained_required = False
    config.pretrain = None
  exp = loop.make_experiment(config, convention)
  target = checkpoint_lib.restore_target(exp.model, config.optim, config.input.crop_size,
                                         parallel.replicated(exp.mesh))
  state, step = checkpoint_lib.restore_params(path, target)
  eval_step = loop.compile_eval_step(exp)
  result = scoring.evaluate(eval_step, state.params, exp)
  name = f"eval_{config.eval_split}_{step}"
  record = scoring.write_results(workdir, step, result, exp, name=name)
  print(scoring.result_line(config, step, result))
  headline = result["metrics"][config.no_face_policy]
  for class_name, recall in zip(exp.class_names, headline["per_class_recall"]):
    print(f"  {class_name:>10}: {100 * recall:5.1f}%")
  return CheckpointEvaluation(record, workdir / f"{name}.json", exp, state.params, result, workdir, step)
