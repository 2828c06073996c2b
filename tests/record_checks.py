"""Check a prediction's JSON record (docs/predict.md) field by field: tests only."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from videmo.predict.record import DECIMALS, OK, PREDICTION_FIELDS, STATUSES


def check_record(record: Mapping[str, Any], tolerance: float = 1e-4) -> None:
  """Raise ValueError naming the first field of a JSON record that is missing, extra or inconsistent."""
  missing = [f for f in PREDICTION_FIELDS if f not in record]
  extra = sorted(set(record) - set(PREDICTION_FIELDS))
  if missing or extra:
    raise ValueError(f"prediction record: missing fields {missing}, unknown fields {extra}")

  def need(condition: bool, field: str, what: str) -> None:
    if not condition:
      raise ValueError(f"prediction record field {field!r} must be {what}, got {str(record[field])[:200]}")

  need(record["status"] in STATUSES, "status", f"one of {STATUSES}")
  need(isinstance(record["message"], str), "message", "a string")
  classes = record["classes"]
  need(isinstance(classes, list) and len(classes) >= 2 and all(isinstance(c, str) for c in classes),
       "classes", "a list of >= 2 class names")
  need(isinstance(record["num_source_frames"], int) and record["num_source_frames"] >= 0,
       "num_source_frames", "an integer >= 0")
  need(all(isinstance(i, int) for i in record["frames_without_face"]), "frames_without_face", "a list of frame indices")
  window = record["true_window"]
  need(window is None or (isinstance(window, list) and len(window) == 2 and all(isinstance(i, int) for i in window)
                          and 0 <= window[0] <= window[1]), "true_window", "null or [start, stop) frame indices")
  need(record["true_label"] is None or record["true_label"] in classes, "true_label", "null or one of the classes")
  if record["status"] != OK:
    for field in ("label", "probability", "probabilities", "attention"):
      need(record[field] is None, field, "null when status is not 'ok'")
    need(record["message"] != "", "message", "a reason when status is not 'ok'")
    return
  e = len(classes)
  probabilities = np.asarray(record["probabilities"], np.float64)
  need(probabilities.shape == (e,) and abs(probabilities.sum() - 1) < tolerance and probabilities.min() >= 0,
       "probabilities", f"{e} probabilities summing to 1")
  need(record["label"] == classes[int(np.argmax(probabilities))], "label", "the most probable class")
  need(abs(record["probability"] - probabilities.max()) < tolerance, "probability", "the largest probability")
  frame_index = np.asarray(record["frame_index"])
  t = len(frame_index)
  need(t >= 1 and frame_index.dtype.kind == "i" and np.all(np.diff(frame_index) > 0), "frame_index",
       "increasing source frame indices")
  need(not set(frame_index.tolist()) & set(record["frames_without_face"]), "frames_without_face",
       "frames the model did not see")
  frame_probabilities = np.asarray(record["frame_probabilities"], np.float64)
  need(frame_probabilities.shape == (t, e) and np.allclose(frame_probabilities.sum(1), 1, atol=tolerance),
       "frame_probabilities", f"[T={t}, E={e}] rows summing to 1")
  importance = np.asarray(record["frame_importance"], np.float64)
  rounding = max(tolerance, t * 10.0 ** -DECIMALS)  # each of T values rounded to DECIMALS
  need(importance.shape == (t,) and abs(importance.sum() - 1) < rounding and importance.min() >= 0,
       "frame_importance", f"{t} values summing to 1")
  if record["attention"] is not None:
    attention = np.asarray(record["attention"], np.float64)
    need(attention.ndim == 4 and attention.shape[0] == t and np.allclose(attention.sum((2, 3)), 1, atol=1e-3),
         "attention", f"[T={t}, N, gh, gw] maps each summing to 1")
