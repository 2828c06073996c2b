"""Classification metrics of a split: WAR, UAR, per-class recall, the confusion matrix.

WAR (weighted average recall) is plain accuracy; UAR (unweighted average recall) is the
mean of the per-class recalls, the EmotiW measure that does not reward predicting the
frequent classes. Confusion rows are true classes, columns predicted classes.

Clips in which no face was detected cannot be classified by the model. How they count is an
explicit choice (`NO_FACE_POLICIES`), and `split_metrics` reports both:
  'wrong'   every such clip counts as misclassified (the challenge protocol: all clips count);
  'exclude' such clips are left out of the metrics.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

NO_FACE_POLICIES: tuple[str, ...] = ("wrong", "exclude")


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
                  num_classes: int) -> dict[str, dict]:
  """Metrics under each no-face policy: {'wrong': {...}, 'exclude': {...}}.

  `predictions` for clips without a face are ignored (they are scored by the policy).
  """
  labels, predictions, has_face = np.asarray(labels), np.asarray(predictions), np.asarray(has_face, bool)
  wrong = np.where(has_face, predictions, -1)
  return {
      "wrong": classification_metrics(labels, wrong, num_classes),
      "exclude": classification_metrics(labels[has_face], predictions[has_face], num_classes),
  }


def summary_line(metrics: dict) -> str:
  """'WAR 48.9%  UAR 41.2%  (383 clips)'."""
  return f"WAR {100 * metrics['war']:.1f}%  UAR {100 * metrics['uar']:.1f}%  ({metrics['count']} clips)"


def plot_confusion(matrix: np.ndarray, class_names: Sequence[str], path: str | os.PathLike,
                   title: str = "") -> None:
  """Save the confusion matrix as a PNG: row-normalised colours, counts in the cells."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  matrix = np.asarray(matrix)
  rows = matrix.sum(1, keepdims=True)
  normalised = np.divide(matrix, rows, out=np.zeros(matrix.shape, float), where=rows > 0)
  fig, ax = plt.subplots(figsize=(1.0 + 0.7 * len(class_names), 0.8 + 0.6 * len(class_names)))
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
  plt.close(fig)
