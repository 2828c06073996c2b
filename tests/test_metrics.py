"""WAR, UAR, per-class recall and the confusion matrix against hand computations."""

import numpy as np
import pytest

from videmo.train import metrics


def test_metrics_match_a_hand_computation():
  labels = np.array([0, 0, 0, 1, 1, 2])
  predictions = np.array([0, 0, 1, 1, 0, 2])
  m = metrics.classification_metrics(labels, predictions, num_classes=4)
  expected = np.array([[2, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]])
  np.testing.assert_array_equal(m["confusion"], expected)
  assert m["war"] == pytest.approx(4 / 6)
  np.testing.assert_allclose(m["per_class_recall"][:3], [2 / 3, 1 / 2, 1.0])
  assert np.isnan(m["per_class_recall"][3])  # no clip of class 3: no recall, not in UAR
  assert m["uar"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)


def test_no_face_clips_are_reported_both_ways():
  labels = np.array([0, 1, 1, 2])
  predictions = np.array([0, 1, 1, 0])  # the last clip's prediction is ignored: it has no face
  has_face = np.array([True, True, True, False])
  both = metrics.split_metrics(labels, predictions, has_face, num_classes=3)
  assert both["wrong"]["war"] == pytest.approx(3 / 4) and both["wrong"]["count"] == 4
  assert both["wrong"]["uar"] == pytest.approx((1 + 1 + 0) / 3)
  assert both["wrong"]["confusion"][2].sum() == 0  # counted wrong, in no column
  assert both["exclude"]["war"] == 1.0 and both["exclude"]["count"] == 3
  assert both["exclude"]["uar"] == 1.0


def test_confusion_png_is_written(tmp_path):
  path = tmp_path / "confusion.png"
  metrics.plot_confusion(np.array([[3, 1], [0, 2]]), ["Angry", "Happy"], path, title="test")
  assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000
