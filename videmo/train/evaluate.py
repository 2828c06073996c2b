"""`videmo eval`: evaluate a saved model on a split and write its metrics next to the checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import ml_collections

from videmo import parallel
from videmo.models.input_convention import InputConvention
from videmo.train import checkpoint as checkpoint_lib
from videmo.train import loop, scoring


def evaluate_checkpoint(config: ml_collections.ConfigDict, checkpoint: str, report: str | None = None,
                        report_clips: int = 0) -> tuple[dict, Path]:
  """Evaluate `checkpoint` (a work directory or WORKDIR/checkpoints/STEP) on config.eval_split.

  Returns the metrics record and the path of the JSON written (WORKDIR/eval_SPLIT_STEP.json).
  The input normalisation is the one the run trained with (WORKDIR/input_convention.json).
  `report`: also write a figure per clip (the paper's Fig. 2) and REPORT/index.html, misclassified
  clips first (videmo/predict/split_report.py); `report_clips` > 0 keeps only the first that many.
  """
  path = Path(checkpoint).expanduser().absolute()
  workdir, _ = checkpoint_lib.split_checkpoint_path(path)
  convention_file = workdir / loop.CONVENTION_FILE
  if not convention_file.exists():
    raise FileNotFoundError(f"--checkpoint {path}: {convention_file} is missing; is this a videmo work directory?")
  convention = InputConvention.from_dict(json.loads(convention_file.read_text()))
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
  if report and jax.process_index() == 0:
    _write_report(Path(report).expanduser(), config, exp, state.params, result, workdir, step, report_clips)
  return record, workdir / f"{name}.json"


def _write_report(out_dir: Path, config, exp, params, result: dict, workdir: Path, step: int, max_clips: int) -> None:
  """The split's report (videmo/predict/split_report.py), from the evaluated parameters on one device."""
  from videmo.predict import split_report, workdir as workdir_lib
  from videmo.predict.predictor import Predictor

  _, clip_options = workdir_lib.dataset_facts(config, workdir)
  predictor = Predictor.from_parts(exp.model, jax.device_put(params, jax.devices()[0]), exp.convention,
                                   exp.class_names, clip_options, config.input.crop_size,
                                   checkpoint=str(workdir / "checkpoints" / str(step)), step=step)
  title = f"{config.dataset} {config.eval_split}, step {step}"
  index, agree, compared = split_report.write_split_report(
      out_dir, predictor, exp.eval_source, result, exp.class_names, config, title=title, max_clips=max_clips)
  print(f"wrote {index} (its predictions agree with the evaluation on {agree} of {compared} clips)")
