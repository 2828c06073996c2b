"""Classification metrics of a split: WAR, UAR, per-class recall, the confusion matrix.

WAR (weighted average recall) is plain accuracy; UAR (unweighted average recall) is the
mean of the per-class recalls, the EmotiW measure that does not reward predicting the
frequent classes. Confusion rows are true classes, columns predicted classes.

Clips without a usable face (no face in any frame, or a file preparation could not decode,
known from the dataset's clip list) cannot be classified by the model. How they count is an
explicit choice (`NO_FACE_POLICIES`), and `split_metrics` reports all three:
  'wrong'   every such clip counts as misclassified (EmotiW's protocol: every listed clip counts);
  'prior'   every such clip is given the training split's most frequent class;
  'exclude' such clips are left out of the metrics.
Each policy's metrics give WAR, UAR, per-class recall, the confusion matrix, and the clips
listed, scored (in the denominator) and without a face.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Sequence

import numpy as np

NO_FACE_POLICIES: tuple[str, ...] = ("wrong", "prior", "exclude")


@dataclasses.dataclass(frozen=True)
class PolicyMetrics:
  """One no-face policy's metrics of a split: war, uar, per_class_recall [E] (NaN: no clip of
  the class), confusion [E, E] (rows true, columns predicted), and the clips listed, scored
  (in the denominator) and without a face."""

  war: float
  uar: float
  per_class_recall: np.ndarray
  confusion: np.ndarray
  clips_listed: int
  clips_scored: int
  clips_without_face: int

  def summary_line(self) -> str:
    """'WAR 48.9%  UAR 41.2%  (383 of 383 clips scored, 7 without a face)'."""
    return (f"WAR {100 * self.war:.1f}%  UAR {100 * self.uar:.1f}%  "
            f"({self.clips_scored} of {self.clips_listed} clips scored, "
            f"{self.clips_without_face} without a face)")

  def to_json(self, class_names: Sequence[str]) -> dict:
    """The record's entry: numbers as JSON numbers, recall by class name (null: no clip)."""
    return dict(war=self.war, uar=self.uar, clips_listed=self.clips_listed, clips_scored=self.clips_scored,
                clips_without_face=self.clips_without_face,
                per_class_recall={n: (None if np.isnan(r) else float(r))
                                  for n, r in zip(class_names, self.per_class_recall)},
                confusion=self.confusion.tolist())


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
  """[E, E] int64 counts; predictions of -1 (no prediction) count in no column."""
  labels, predictions = np.asarray(labels, np.int64), np.asarray(predictions, np.int64)
  if labels.shape != predictions.shape:
    raise ValueError(f"labels {labels.shape} and predictions {predictions.shape} must have the same shape")
  if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
    raise ValueError(f"labels must be in 0..{num_classes - 1}")
  matrix = np.zeros((num_classes, num_classes), np.int64)
  keep = predictions >= 0
  np.add.at(matrix, (labels[keep], predictions[keep]), 1)
  return matrix


def classification_metrics(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> dict:
  """WAR, UAR, per-class recall [E] and confusion [E, E]; prediction -1 = counted wrong.

  A class with no clip has no recall (NaN) and is left out of UAR.
  """
  labels = np.asarray(labels, np.int64)
  matrix = confusion_matrix(labels, predictions, num_classes)
  support = np.bincount(labels, minlength=num_classes)
  with np.errstate(invalid="ignore", divide="ignore"):
    recall = np.where(support > 0, np.diag(matrix) / np.maximum(support, 1), np.nan)
  return dict(
      war=float(np.trace(matrix) / max(len(labels), 1)),
      uar=float(np.nanmean(recall)) if np.any(support > 0) else float("nan"),
      per_class_recall=recall,
      confusion=matrix,
      count=int(len(labels)),
  )


def split_metrics(labels: np.ndarray, predictions: np.ndarray, has_face: np.ndarray,
                  num_classes: int, prior_class: int | None) -> dict[str, PolicyMetrics]:
  """Metrics of every listed clip [K] under each no-face policy: {'wrong', 'prior', 'exclude'}.

  `predictions` of clips without a face are ignored (the policy scores them); `prior_class`
  is the training split's most frequent class (None: not needed, every clip has a face; a
  ValueError otherwise).
  """
  labels, predictions, has_face = np.asarray(labels), np.asarray(predictions), np.asarray(has_face, bool)
  if prior_class is None and not has_face.all():
    raise ValueError("split_metrics: clips without a face need the prior class for the 'prior' policy")
  scored = {
      "wrong": (labels, np.where(has_face, predictions, -1)),
      "prior": (labels, np.where(has_face, predictions, -1 if prior_class is None else prior_class)),
      "exclude": (labels[has_face], predictions[has_face]),
  }
  out = {}
  for policy, (policy_labels, policy_predictions) in scored.items():
    m = classification_metrics(policy_labels, policy_predictions, num_classes)
    out[policy] = PolicyMetrics(war=m["war"], uar=m["uar"], per_class_recall=m["per_class_recall"],
                                confusion=m["confusion"], clips_listed=int(len(labels)),
                                clips_scored=int(len(policy_labels)), clips_without_face=int(np.sum(~has_face)))
  return out


def most_frequent_class(labels: np.ndarray, num_classes: int) -> int:
  """The class with the most clips (the smallest index among ties)."""
  return int(np.argmax(np.bincount(np.asarray(labels, np.int64), minlength=num_classes)))


def plot_confusion(matrix: np.ndarray, class_names: Sequence[str], path: str | os.PathLike,
                   title: str = "") -> None:
  """Save the confusion matrix as a PNG: row-normalised colours, counts in the cells."""
  from matplotlib.figure import Figure  # the object API: no pyplot, no global backend

  matrix = np.asarray(matrix)
  rows = matrix.sum(1, keepdims=True)
  normalised = np.divide(matrix, rows, out=np.zeros(matrix.shape, float), where=rows > 0)
  fig = Figure(figsize=(1.0 + 0.7 * len(class_names), 0.8 + 0.6 * len(class_names)))
  ax = fig.subplots()
  ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
  for (i, j), count in np.ndenumerate(matrix):
    ax.text(j, i, str(count), ha="center", va="center",
            color="white" if normalised[i, j] > 0.5 else "black", fontsize=8)
  ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
  ax.set_yticks(range(len(class_names)), class_names)
  ax.set_xlabel("predicted")
  ax.set_ylabel("true")
  if title:
    ax.set_title(title)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
