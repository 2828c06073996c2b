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


def test_no_face_clips_are_scored_by_each_policy():
  labels = np.array([0, 1, 1, 2, 1])
  predictions = np.array([0, 1, 1, 0, 2])  # the last two predictions are ignored: those clips have no face
  has_face = np.array([True, True, True, False, False])
  policies = metrics.split_metrics(labels, predictions, has_face, num_classes=3, prior_class=1)
  wrong, prior, exclude = policies["wrong"], policies["prior"], policies["exclude"]
  assert wrong.war == pytest.approx(3 / 5) and wrong.uar == pytest.approx((1 + 2 / 3 + 0) / 3)
  assert wrong.confusion[2].sum() == 0 and wrong.confusion[1].sum() == 2  # counted wrong, in no column
  assert prior.war == pytest.approx(4 / 5) and prior.uar == pytest.approx((1 + 1 + 0) / 3)
  assert prior.confusion[2, 1] == 1 and prior.confusion[1, 1] == 3  # both given class 1
  assert exclude.war == 1.0 and exclude.uar == 1.0 and exclude.confusion.sum() == 3
  assert [(m.clips_listed, m.clips_scored, m.clips_without_face) for m in (wrong, prior, exclude)] == \
      [(5, 5, 2), (5, 5, 2), (5, 3, 2)]
  assert metrics.most_frequent_class(np.array([2, 0, 2, 0, 1]), 3) == 0  # ties: the smaller index
  assert "WAR 60.0%  UAR 55.6%  (5 of 5 clips scored, 2 without a face)" == wrong.summary_line()
  # Without a prior class, clips without a face are an error, not a silent class 0.
  with pytest.raises(ValueError, match="prior class"):
    metrics.split_metrics(labels, predictions, has_face, num_classes=3, prior_class=None)
  every_face = metrics.split_metrics(labels, predictions, np.ones(5, bool), num_classes=3, prior_class=None)
  assert every_face["prior"].war == every_face["wrong"].war


def test_confusion_png_is_written(tmp_path):
  path = tmp_path / "confusion.png"
  metrics.plot_confusion(np.array([[3, 1], [0, 2]]), ["Angry", "Happy"], path, title="test")
  assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000


def test_effective_frames_run_from_one_to_every_real_frame():
  from videmo.train import evaluation

  real = np.array([[True, True, True, True], [True, True, False, False], [False] * 4])
  one_hot = np.array([[0, 1.0, 0, 0], [0.5, 0.5, 0, 0], [0, 0, 0, 0]])
  out = evaluation.effective_frames(one_hot, real)
  assert out[0] == pytest.approx(1.0) and out[1] == pytest.approx(2.0) and np.isnan(out[2])
  uniform = np.where(real, 1.0 / np.maximum(real.sum(1, keepdims=True), 1), 0.0)
  np.testing.assert_allclose(evaluation.effective_frames(uniform, real)[:2], [4.0, 2.0])
  padded = np.array([[0.25, 0.25, 0.25, 0.25]])  # importance on a padded frame is not counted
  assert evaluation.effective_frames(padded, np.array([[True, True, True, False]]))[0] == pytest.approx(3.0)
