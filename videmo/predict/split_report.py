"""The report of a dataset split (`videmo eval --report OUT_DIR`): a figure per clip, worst first.

Clips are ordered by evaluation's own outcome: misclassified clips first, then clips with
no face (they count as wrong under the 'wrong' policy), then correct ones; by confidence
(the largest p(c|S)) within each group, most confident first. Each clip's crops are the
frames evaluation gives the model (its frames with a face, or input.eval_num_frames evenly spaced ones, centre crop), so the figures'
predictions are evaluation's; clips that preparation could not write have no record and no
figure (the page counts them); the page says on how many clips they agree (all, unless the
model's numerics depend on the batch, e.g. in bfloat16).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from tqdm import tqdm

from videmo.predict import faces_input, predictor as predictor_lib
from videmo.predict.report_folder import ReportFolder
from videmo.train.evaluation import Evaluation

_AGREEMENT = 1e-3  # largest difference in p(c|S) for a clip to count as agreeing with evaluation


def report_order(evaluation: Evaluation) -> list[int]:
  """Clip positions in report order, from an Evaluation's predictions [K], probabilities
  [K, E], labels [K] and has_face [K] (see the module docstring)."""
  predictions, labels = np.asarray(evaluation.predictions), np.asarray(evaluation.labels)
  has_face = np.asarray(evaluation.has_face, bool)
  confidence = np.where(has_face, np.asarray(evaluation.probabilities).max(-1), 0.0)
  group = np.where(~has_face, 1, np.where(predictions == labels, 2, 0))
  return sorted(range(len(labels)), key=lambda i: (int(group[i]), -float(confidence[i]), i))


def eval_frame_count(config) -> int | None:
  """How many frames evaluation gives a clip: input.eval_num_frames, or None for every frame
  (videmo/data/loading/pipeline.py `eval_batches`)."""
  return config.input.eval_num_frames or None


def _text(value: Any) -> str:
  return value.decode() if isinstance(value, bytes) else str(value)


def write_split_report(out_dir: str | os.PathLike, predictor: predictor_lib.Predictor, source: Any,
                       evaluation: Evaluation, class_names: Sequence[str], config, *, title: str,
                       max_clips: int = 0, max_frames: int = 8) -> tuple[Path, int, int]:
  """Write the report of one evaluated split; returns (index.html, clips agreeing with evaluation, clips compared).

  source: the split's records (tfds data_source, frames as JPEG bytes). evaluation: the
  split's Evaluation (train/evaluation.py). max_clips: report only the first this
  many clips in report order (0 = all).
  """
  order = report_order(evaluation)
  if max_clips > 0:
    order = order[:max_clips]
  folder = ReportFolder(out_dir, title, max_frames=max_frames)
  count = eval_frame_count(config)
  agree = compared = 0
  unwritten = [position for position in order if position >= len(source)]  # no record: no figure
  order = [position for position in order if position < len(source)]
  for position in tqdm(order, desc="report", unit=" clip", disable=not config.get("progress_bar", True)):
    record = source[position]
    frames = faces_input.faces_from_record(record, predictor.crop_size, count)
    name = _text(record.get("clip_id", position))
    true_label = class_names[int(evaluation.labels[position])]
    window = record.get("window")  # SynthEmo's ground truth: [start, stop) of the expressive frames
    window = None if window is None else tuple(int(v) for v in np.asarray(window).reshape(-1)[:2])
    prediction = predictor.predict_faces(frames, name, keep_faces=True, true_label=true_label, true_window=window)
    if prediction.ok:
      expected = np.asarray(evaluation.probabilities[position])
      compared += 1
      agree += int(np.argmax(prediction.probabilities) == int(evaluation.predictions[position])
                   and np.abs(prediction.probabilities - expected).max() <= _AGREEMENT)
    folder.add(prediction)
  note = (f"Order: misclassified clips first, then clips without a face, then correct ones; most confident "
          f"first within each. The figures' predictions agree with the evaluation on {agree} of {compared} clips.")
  if unwritten:
    note += (f" {len(unwritten)} listed clip(s) that preparation could not use have no figure "
             f"(the evaluation's metrics record lists them).")
  return folder.finish(note=note), agree, compared


def write_eval_report(out_dir: str | os.PathLike, evaluation: Any, max_clips: int = 0) -> tuple[Path, int, int]:
  """`videmo eval --report`: the report of a split just evaluated (train.experiment.SavedEvaluation),
  drawn from the evaluated parameters on one device. Returns (index.html, agreeing, compared)."""
  import jax

  exp, config, step = evaluation.exp, evaluation.exp.config, evaluation.step
  predictor = predictor_lib.Predictor.from_parts(
      exp.model, jax.device_put(evaluation.params, jax.devices()[0]), exp.convention, exp.class_names,
      exp.dataset.clip_options, config.input.crop_size, checkpoint=str(evaluation.run.step_dir(step)), step=step,
      trained_on=evaluation.run.dataset.name, synthetic_training=evaluation.run.dataset.synthetic)
  return write_split_report(Path(out_dir).expanduser(), predictor, exp.eval_source, evaluation.result,
                            exp.class_names, config, title=f"{config.dataset} {config.eval_split}, step {step}",
                            max_clips=max_clips)
