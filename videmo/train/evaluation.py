"""Scoring a split as the protocol counts it: every listed clip, three no-face policies, results on disk.

`eval_split(config, facts, train_source, eval_source, class_names)` lists the clips evaluation scores:
the written clips (records) and, from the dataset's clip list (videmo/data/clip_list.py),
those preparation could not use (no face in any frame, unreadable or empty files), with the
training split's most frequent class for the 'prior' policy (a union of splits, 'fold_1+fold_2',
lists its parts' clips in order). A dataset built before clip lists
were recorded still evaluates, over its written clips only, with a one-line warning.

`evaluate(eval_step, params, exp)` runs the model on every clip with a face (every frame, or
`input.eval_num_frames` evenly spaced ones) and scores all listed clips under each policy,
returning an `Evaluation`; `write_results` writes the JSON record and the confusion matrix
(names: train/run_dir.py); `result_line` is the printed line. On SynthEmo, whose ground truth
is known, it also measures where spatial attention looks and how faithful the frame importance
is (train/localisation.py), from the renderer's parameters of each clip.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

import jax
import numpy as np
from jax.experimental import multihost_utils

from videmo import parallel
from videmo.data import clip_list
from videmo.data.loading import pipeline
from videmo.data.synthemo import truth as synthemo_truth
from videmo.models import temporal as temporal_lib
from videmo.train import dataset_facts, localisation
from videmo.train import metrics as metrics_lib
from videmo.train import run_dir, splits


@dataclasses.dataclass
class EvalSplit:
  """The clips of an evaluation split (pipeline.EvalClip, written then not written) and the prior
  class (None: every clip has a face, so no policy needs it)."""

  clips: list[pipeline.EvalClip]
  prior_class: int | None
  list_known: bool  # False: built before clip lists; clips that were not written are unknown
  synthemo: Any = None  # the SynthEmo dataset's builder config (its ground truth is rendered), else None
  truths: dict = dataclasses.field(default_factory=dict)  # clip index -> its ground truth (SynthEmoMeasures.clip)


@dataclasses.dataclass
class Evaluation:
  """A split scored: `metrics` per no-face policy, the mean loss over scored clips, and per listed
  clip [K]: predictions (-1: no face), probabilities [K, E], labels, has_face, the frame numbers
  of highest p(f|S) and of highest score for the predicted class (`top_frame_importance`,
  `top_frame_evidence`; -1 where not scored), the expressive window [K, 2] ([-1, -1] where
  unknown), the number of frames with a face (`num_faces`), how many frames p(f|S) spreads
  over (`effective_frames`, see effective_frames) and how many the model saw (`frames_seen`)."""

  metrics: dict[str, metrics_lib.PolicyMetrics]
  loss: float
  predictions: np.ndarray
  probabilities: np.ndarray
  labels: np.ndarray
  has_face: np.ndarray
  top_frame_importance: np.ndarray
  top_frame_evidence: np.ndarray
  windows: np.ndarray
  num_faces: np.ndarray
  effective_frames: np.ndarray | None = None  # [K] exp(entropy of p(f|S)); NaN where not scored
  frames_seen: np.ndarray | None = None  # [K] frames the model saw per clip (0 where not scored)
  localisation: dict | None = None  # SynthEmo with spatial attention: localisation.SpatialTally.summary()
  faithfulness: dict | None = None  # SynthEmo, frame-local pooling: localisation.faithfulness()

  def headline(self, policy: str) -> metrics_lib.PolicyMetrics:
    return self.metrics[policy]


def eval_split(config, facts: dataset_facts.DatasetFacts, train_source: Any, eval_source: Any,
               class_names: Sequence[str]) -> EvalSplit:
  """Every listed clip of config.eval_split, and the training split's most frequent class."""
  directory, complete = facts.directory, facts.writes_every_clip
  missing = [] if complete else _listed(clip_list.missing_clips, directory, config.eval_split, class_names)
  if missing is None:
    print(f"warning: {config.dataset} was prepared before videmo recorded clip lists: clips of "
          f"{config.eval_split!r} that preparation could not use are unknown and not counted "
          f"(run `videmo prepare` again to count them)", file=sys.stderr)
  clips = pipeline.eval_clips(eval_source, missing or [])
  prior = None
  if not all(c.has_face for c in clips):  # only then does the 'prior' policy need the class
    labels = None if complete else _listed(clip_list.split_labels, directory, config.train_split, class_names)
    labels = pipeline.split_labels(train_source) if labels is None else labels
    prior = metrics_lib.most_frequent_class(labels, len(class_names))
  return EvalSplit(clips, prior, missing is not None, synthemo=_synthemo_config(config) if facts.synthetic else None)


def _synthemo_config(config) -> Any:
  """The SynthEmo builder config of config.dataset (None for another synthetic builder)."""
  from videmo.data.preparation.builders.synthemo import SynthEmoConfig  # registers the builders, as opening does

  builder_config = dataset_facts.open_builder(config).builder_config
  return builder_config if isinstance(builder_config, SynthEmoConfig) else None


def _listed(read, directory, split: str, class_names: Sequence[str]) -> list | None:
  """read(directory, part, class_names) over the parts of a split or a union of splits
  (train/splits.py), laid end to end in the parts' order; None when a part has no list."""
  found = [read(directory, part, class_names) for part in splits.parts(split)]
  return None if any(items is None for items in found) else [item for items in found for item in items]


def frames_text(config) -> str:
  """How many frames of each clip evaluation sees, in words."""
  n = config.input.eval_num_frames
  return "every frame" if not n else f"{n} evenly spaced frames per clip"


def _gathered(array, mesh) -> np.ndarray:
  """A batch-sharded array (global, or this process's numpy share) as one numpy array on every process."""
  if isinstance(array, np.ndarray):
    array = parallel.global_batch({"x": array}, mesh)["x"]
  return np.asarray(multihost_utils.process_allgather(array, tiled=True))


def evaluate(eval_step, params, exp) -> Evaluation:
  """exp's evaluation split scored under every no-face policy, with the per-clip outputs (Evaluation)."""
  config, clips, num_classes, mesh = exp.config, exp.eval.clips, exp.num_classes, exp.mesh
  predictions = np.full(len(clips), -1, np.int64)
  probabilities = np.zeros((len(clips), num_classes), np.float32)
  top_importance = np.full(len(clips), -1, np.int64)
  top_evidence = np.full(len(clips), -1, np.int64)
  windows = np.full((len(clips), 2), -1, np.int64)
  effective = np.full(len(clips), np.nan)
  seen = np.zeros(len(clips), np.int64)
  loss_sum, correct, count = 0.0, 0, 0
  truth = SynthEmoMeasures(exp)
  for local in pipeline.eval_batches(exp.eval_source, clips, batch_size=config.eval_batch_size,
                                     crop_size=config.input.crop_size,
                                     num_frames=config.input.eval_num_frames or None,
                                     buckets=tuple(config.input.eval_buckets),
                                     process_index=jax.process_index(),
                                     process_count=jax.process_count()):
    out = eval_step(params, parallel.global_batch(local, mesh))
    loss_sum += float(out["loss_sum"])
    correct += int(out["correct"])
    count += int(out["count"])
    index, frame, window = (_gathered(local[k], mesh) for k in ("index", "frame", "window"))
    log_probs = _gathered(out["log_probs"], mesh)
    real = index >= 0
    predictions[index[real]] = log_probs[real].argmax(-1)
    probabilities[index[real]] = np.exp(log_probs[real])
    windows[index[real]] = window[real]
    for name, top in (("frame_importance", top_importance), ("frame_evidence", top_evidence)):
      values = np.where(frame >= 0, _gathered(out[name], mesh), -np.inf)
      top[index[real]] = np.take_along_axis(frame, values.argmax(-1)[:, None], axis=1)[real, 0]
    effective[index[real]] = effective_frames(_gathered(out["frame_importance"], mesh), frame >= 0)[real]
    seen[index[real]] = (frame >= 0).sum(-1)[real]
    if truth.active:
      truth.add(index, frame, _gathered(out["frame_scores"], mesh), _gathered(out["frame_importance"], mesh),
                _gathered(out["attention"], mesh) if "attention" in out else None)
  labels = np.array([c.label for c in clips], np.int64)
  has_face = np.array([c.has_face for c in clips], bool)
  results = metrics_lib.split_metrics(labels, predictions, has_face, num_classes, exp.eval.prior_class)
  # The device-side sums and the per-clip predictions must tell the same story.
  if count != int(has_face.sum()) or correct != int(np.trace(results["exclude"].confusion)):
    raise RuntimeError(f"evaluation's sums disagree with its per-clip predictions: {count} clips and "
                       f"{correct} correct on the devices, {int(has_face.sum())} and "
                       f"{int(np.trace(results['exclude'].confusion))} per clip")
  return Evaluation(metrics=results, loss=loss_sum / max(count, 1), predictions=predictions,
                    probabilities=probabilities, labels=labels, has_face=has_face,
                    top_frame_importance=top_importance, top_frame_evidence=top_evidence, windows=windows,
                    num_faces=np.array([c.num_faces for c in clips], np.int64), effective_frames=effective,
                    frames_seen=seen, localisation=truth.localisation(), faithfulness=truth.faithfulness(labels))


class SynthEmoMeasures:
  """evaluate's SynthEmo measures: each evaluated clip's ground truth (rendered once per split
  from its parameters, kept in EvalSplit.truths), the spatial tally and the frames' scores.
  `exp` needs eval (an EvalSplit), eval_source, config.input.crop_size and model (temporal,
  temperature)."""

  def __init__(self, exp):
    self.exp, self.split = exp, exp.eval
    self.active = self.split is not None and self.split.synthemo is not None
    self.tally: localisation.SpatialTally | None = None
    self.clips: list[tuple] = []  # per clip: (index, scores [K, E], importance [K], expressive [K], intensity [K])

  def clip(self, index: int) -> dict:
    """Clip `index`'s window, intensity [F] and the expression's mask on the grid [W, L] on each window frame."""
    if index not in self.split.truths:
      from videmo.data.preparation.builders.synthemo import synthemo_dataset_builder as synthemo_builder

      source = self.exp.eval_source
      record = source.peek(index) if hasattr(source, "peek") else source[index]
      job = synthemo_builder.record_job(self.split.synthemo, record["source"], int(record["label"]))
      start, stop = (int(v) for v in np.asarray(record["window"]).reshape(-1))
      found = synthemo_truth.clip_truth(job, frames=range(start, stop))
      synthemo_truth.check_record(job, record, found)
      masks = localisation.grid_mask(found["expression_mask"], self.exp.config.input.crop_size)
      self.split.truths[index] = dict(window=(start, stop), intensity=found["intensity"], masks=masks,
                                      label=int(record["label"]))
    return self.split.truths[index]

  def add(self, index, frame, scores, importance, attention) -> None:
    """One gathered batch: index [B], frame [B, F], scores [B, F, E], importance [B, F], attention
    [B, F, N, L] (None without spatial attention). A clip whose record the renderer does not
    reproduce switches the measures off with a warning."""
    try:
      for b in np.flatnonzero(index >= 0):
        real = frame[b] >= 0
        frames = frame[b][real]
        truth = self.clip(int(index[b]))
        start, stop = truth["window"]
        expressive = (frames >= start) & (frames < stop)
        self.clips.append((int(index[b]), scores[b][real], importance[b][real], expressive, truth["intensity"][frames]))
        if attention is None:
          continue
        if self.tally is None:
          self.tally = localisation.SpatialTally(attention.shape[2], attention.shape[3])
        masks = np.zeros((len(frames), attention.shape[3]), bool)
        masks[expressive] = truth["masks"][frames[expressive] - start]
        self.tally.add(attention[b][real], masks if stop > start else None, expressive, truth["label"])
    except ValueError as err:
      print(f"warning: SynthEmo localisation and faithfulness skipped: {err}", file=sys.stderr)
      self.active, self.tally, self.clips = False, None, []

  def localisation(self) -> dict | None:
    return None if self.tally is None else self.tally.summary()

  def faithfulness(self, labels: np.ndarray) -> dict | None:
    """Deletion and insertion curves over the clips with an expressive window (frame-local poolings only)."""
    temporal, temperature = self.exp.model.temporal, self.exp.model.temperature
    kept = [c for c in self.clips if c[3].any()]
    if not self.active or temporal not in FRAME_LOCAL_POOLINGS or not kept:
      return None

    @jax.jit  # one program for every curve point (the same shapes), not one per operation
    def pool(scores, mask):
      return temporal_lib.pool_frame_scores(temporal, scores, mask, temperature)[0]

    orders = [localisation.frame_order(importance, expressive, intensity, np.random.default_rng((0, index)))
              for index, _, importance, expressive, intensity in kept]
    skip = ("importance",) if temporal in UNIFORM_IMPORTANCE else ()
    return localisation.faithfulness([c[1] for c in kept], labels[[c[0] for c in kept]], orders, pool, skip)


def effective_frames(importance: np.ndarray, real: np.ndarray) -> np.ndarray:
  """exp(entropy of p(f|S)) per clip: [B, F], [B, F] bool -> [B] (NaN for a clip without a real
  frame). 1 when one frame carries all the importance (max pooling), the number of real frames
  when it is uniform (average pooling); between them, how many frames the pooling listens to."""
  p = np.where(real, np.asarray(importance, np.float64), 0.0)
  p = p / np.where(p.sum(-1, keepdims=True) > 0, p.sum(-1, keepdims=True), 1.0)
  with np.errstate(divide="ignore", invalid="ignore"):
    entropy = -np.sum(np.where(p > 0, p * np.log(p), 0.0), axis=-1)
  return np.where(real.any(-1), np.exp(entropy), np.nan)


def importance_spread(evaluation: "Evaluation") -> dict | None:
  """Over the scored clips: the mean effective number of frames of p(f|S) (`effective_frames`),
  and its mean share of the frames each clip showed the model (`effective_share`: 1 = uniform)."""
  scored = ~np.isnan(evaluation.effective_frames)
  if not scored.any():
    return None
  frames = np.maximum(evaluation.frames_seen[scored], 1).astype(np.float64)
  return dict(clips=int(scored.sum()), effective_frames=float(np.mean(evaluation.effective_frames[scored])),
              effective_share=float(np.mean(np.minimum(evaluation.effective_frames[scored] / frames, 1.0))))


# Poolings whose p(f|S) is uniform over the real frames: their top frame by importance means nothing.
UNIFORM_IMPORTANCE = ("average", "mean_score")
# Poolings of per-frame scores alone (not the LSTM): without some frames, they pool the others' scores.
FRAME_LOCAL_POOLINGS = ("softmax", "average", "mean_score", "max")


def top_frame_in_window(evaluation: Evaluation, temporal: str) -> dict | None:
  """How often a clip's most important frame lies inside its true expressive window.

  Over the scored clips with a known, non-empty window (SynthEmo's non-Neutral clips):
  `by_importance`, the share whose frame of highest p(f|S) is inside it (None for poolings
  whose p(f|S) is uniform); `by_evidence`, the same for the frame of highest score o_fĉ for the
  predicted class (defined for every pooling); `chance`, the mean share of frames inside the
  window (a frame drawn at random); `clips`, how many clips count. None when no window is known.
  """
  start, stop = evaluation.windows[:, 0], evaluation.windows[:, 1]
  counted = (evaluation.top_frame_evidence >= 0) & (stop > start) & (start >= 0)
  if not counted.any():
    return None
  inside = lambda top: float(np.mean((top[counted] >= start[counted]) & (top[counted] < stop[counted])))
  # every frame is scored when input.eval_num_frames is 0; the share is then of the clip's frames
  lengths = evaluation.num_faces[counted].astype(np.float64)
  return dict(clips=int(counted.sum()),
              by_importance=None if temporal in UNIFORM_IMPORTANCE else inside(evaluation.top_frame_importance),
              by_evidence=inside(evaluation.top_frame_evidence),
              chance=float(np.mean((stop[counted] - start[counted]) / np.maximum(lengths, 1))))


def write_results(workdir: Path, step: int, evaluation: Evaluation, exp, name: str = run_dir.METRICS_NAME) -> dict:
  """The JSON record NAME.json and its confusion matrix figure in `workdir` (run_dir.metrics_path,
  run_dir.confusion_path; NAME is the final metrics' by default).

  The record: step, dataset, split, classes, loss, the headline policy, the frames used, whether
  the clip list is known, the prior class (null when no clip needed it), one entry per no-face
  policy (WAR, UAR, clips listed / scored / without a face, per-class recall, confusion), the
  clips without a face (source or record index, label, why), every listed clip's label and
  prediction in list order (`clip_labels`, `clip_predictions`: class indices, -1 for a clip
  without a face; what a bootstrap over clips resamples) and, where the dataset records
  expressive windows (SynthEmo), `top_frame_in_window` (see top_frame_in_window), and how many
  frames p(f|S) listens to (`frame_importance_spread`, see importance_spread); on SynthEmo,
  `localisation` (where spatial attention looks, localisation.SpatialTally.summary; null without
  spatial attention) and `frame_importance_faithfulness` (deletion and insertion curves,
  localisation.faithfulness; null for the LSTM).
  """
  config, class_names = exp.config, exp.class_names
  faceless = [dict(clip=c.source or f"record {c.index}", label=class_names[c.label], reason=c.reason or "no face frame")
              for c in exp.eval.clips if not c.has_face]
  prior = exp.eval.prior_class
  record = dict(step=step, dataset=config.dataset, split=config.eval_split, classes=list(class_names),
                loss=evaluation.loss, headline_policy=config.no_face_policy, frames=frames_text(config),
                clip_list_known=exp.eval.list_known, prior_class=None if prior is None else class_names[prior],
                **{policy: m.to_json(class_names) for policy, m in evaluation.metrics.items()},
                clips_without_face=faceless,
                top_frame_in_window=top_frame_in_window(evaluation, config.model.temporal),
                frame_importance_spread=None if evaluation.effective_frames is None else importance_spread(evaluation),
                localisation=evaluation.localisation,
                frame_importance_faithfulness=evaluation.faithfulness,
                clip_labels=evaluation.labels.tolist(),
                clip_predictions=np.where(evaluation.has_face, evaluation.predictions, -1).tolist())
  if jax.process_index() == 0:
    workdir.mkdir(parents=True, exist_ok=True)
    path = run_dir.metrics_path(workdir, name)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # a reader never sees half a record
    temporary.write_text(json.dumps(record, indent=2))
    os.replace(temporary, path)
    headline = evaluation.headline(config.no_face_policy)
    metrics_lib.plot_confusion(headline.confusion, class_names, run_dir.confusion_path(workdir, name),
                               title=f"{config.dataset} {config.eval_split}, step {step}: {headline.summary_line()}")
  return record


def result_line(config, step: int, evaluation: Evaluation) -> str:
  """'DATASET SPLIT at step S (every frame): wrong: WAR ... | prior: ... | exclude: ...', headline first."""
  policies = [config.no_face_policy] + [p for p in metrics_lib.NO_FACE_POLICIES if p != config.no_face_policy]
  parts = [f"{p}: {evaluation.metrics[p].summary_line()}" for p in policies]
  return f"{config.dataset} {config.eval_split} at step {step} ({frames_text(config)}): " + "  |  ".join(parts)


def write_scalars(writer, step: int, evaluation: Evaluation) -> None:
  """eval/loss and eval/{war,uar}_{policy} to TensorBoard."""
  scalars = {"eval/loss": evaluation.loss}
  for policy, m in evaluation.metrics.items():
    scalars[f"eval/war_{policy}"] = m.war
    scalars[f"eval/uar_{policy}"] = m.uar
  writer.write_scalars(step, scalars)
