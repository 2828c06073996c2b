"""Shot cuts: the frames where a video jumps to another shot, from a small colour histogram.

A film cuts from one shot to another; across a cut the face followed may be somewhere else,
someone else, or gone, so the face search starts afresh there (the whole frame) instead of
where the face was. A cut is found by comparing each frame's colour histogram with the
previous frame's: the frame is subsampled 8x in each direction (720x576 -> 90x72, ~0.05 ms),
its colours quantized to 4 levels per channel (64 bins), and the total variation distance of
the two normalised histograms (0: same colours, 1: none in common) must exceed
`FaceOptions.cut_threshold` (0.15) and be a spike: at least 3x the average distance of the
previous 10 frames of the shot (a fast pan changes the histogram in every frame, a cut in
one). Within a shot, motion, zoom and a face turning change the histogram by < 0.1 on the
test and benchmark clips; their cuts change it by 0.2-0.6. A missed cut costs little (the
tracker loses the face and looks for it on the whole frame; identity.py still decides who
it is), and so does a false one (one more whole-frame detection).
"""

from __future__ import annotations

import numpy as np

_STEP = 8    # subsampling of the frame in each direction
_LEVELS = 4  # quantization levels per colour channel
_SPIKE = 3.0  # a cut's distance is at least this many times ...
_WINDOW = 10  # ... the average of the last this many frames' distances in the shot


def histogram(frame: np.ndarray) -> np.ndarray:
  """The normalised colour histogram [64] of a subsampled RGB frame [H, W, 3] uint8."""
  small = frame[_STEP // 2::_STEP, _STEP // 2::_STEP] // (256 // _LEVELS)
  bins = (small[..., 0].astype(np.int32) * _LEVELS + small[..., 1]) * _LEVELS + small[..., 2]
  counts = np.bincount(bins.ravel(), minlength=_LEVELS ** 3).astype(np.float64)
  return counts / max(counts.sum(), 1.0)


def distance(a: np.ndarray, b: np.ndarray) -> float:
  """Total variation distance of two normalised histograms [64]: 0 (same) .. 1 (disjoint)."""
  return 0.5 * float(np.abs(a - b).sum())


class CutDetector:
  """Call it on each frame [H, W, 3] uint8 in order: True when the frame starts a new shot
  (never for the first frame)."""

  def __init__(self, threshold: float = 0.15):
    self.threshold = threshold
    self._previous: np.ndarray | None = None
    self._recent: list[float] = []  # distances between the shot's consecutive frames

  def __call__(self, frame: np.ndarray) -> bool:
    current = histogram(frame)
    previous, self._previous = self._previous, current
    if previous is None:
      return False
    change = distance(current, previous)
    usual = float(np.mean(self._recent)) if self._recent else 0.0
    if change > self.threshold and change >= _SPIKE * usual:
      self._recent = []
      return True
    self._recent = (self._recent + [change])[-_WINDOW:]
    return False
