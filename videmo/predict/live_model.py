"""The model's side of a live stream: crops as a file's, each frame run once, windows pooled.

    scorer = FrameScorer(predictor)
    scorer.warm_up()                                         # compile before the stream starts
    vectors = scorer.score(face_crops(faces, predictor))     # faces [n, S, S, 3] -> n per-frame vectors
    pooled = scorer.pool(np.stack(window_vectors))           # a window of T frames -> Pooled

A crop is made exactly as `Predictor.faces` makes a file's (faces_input.py): the aligned face
JPEG-encoded at the dataset's stored quality, decoded, and centre-cropped to the run's
crop size, by the same functions. A frame's class scores (LSTM: features) do not depend on
the other frames, so each frame goes through the network once, when it arrives, in a chunk
of the next power of two of the frames at hand (at most `batch_frames`), and a window's
prediction is the temporal pooling over its frames' stored vectors (`Predictor.pool_frames`):
what `Predictor.run` gives on the window's crops. `warm_up` compiles every chunk size and
every length bucket of the pooling, so nothing compiles while the stream runs.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from videmo.data import schema
from videmo.predict import faces_input
from videmo.predict.predictor import Predictor


def face_crops(aligned: Sequence[np.ndarray], predictor: Predictor) -> np.ndarray:
  """Aligned faces [n] x [S, S, 3] uint8 -> the crops the model sees [n, C, C, 3] uint8 (see the module docstring)."""
  quality = predictor.clip_options.jpeg_quality
  jpegs = [schema.encode_jpeg(face, quality) for face in aligned]
  crops, _ = faces_input.select_crops(jpegs, [True] * len(jpegs), range(len(jpegs)), predictor.crop_size, None)
  return crops


@dataclasses.dataclass(frozen=True)
class Pooled:
  """A window of T frames pooled: probabilities p(c|S) [E], frame_importance [T] (p(f|S)), and
  frame_probabilities [T, E] (each frame's own softmax_c(o_fc / tau))."""

  probabilities: np.ndarray
  frame_importance: np.ndarray
  frame_probabilities: np.ndarray


class FrameScorer:
  """Per-frame vectors (frame scores [E], LSTM: features [K]) of crops, and pooling over a window."""

  def __init__(self, predictor: Predictor):
    self.predictor = predictor
    self.key = "features" if predictor.lstm else "frame_scores"
    self.chunks = [1 << i for i in range(predictor.batch_frames.bit_length()) if 1 << i < predictor.batch_frames]
    self.chunks.append(predictor.batch_frames)

  def _chunk(self, n: int) -> int:
    return next(size for size in self.chunks if size >= n) if n <= self.chunks[-1] else self.chunks[-1]

  def score(self, crops: np.ndarray) -> list[np.ndarray]:
    """crops [n, C, C, 3] uint8 -> n per-frame vectors ([E] or [K] float32); [] for n = 0."""
    if len(crops) == 0:
      return []
    out = self.predictor.frame_outputs(crops, chunk=self._chunk(len(crops)))
    return list(out[self.key])

  def pool(self, vectors: np.ndarray) -> Pooled:
    """vectors [T, E] (or [T, K]) of a window's frames, in time order -> Pooled."""
    out = self.predictor.pool_frames({self.key: np.asarray(vectors, np.float32)})
    return Pooled(np.exp(out["log_probs"]), out["frame_importance"], out["frame_probabilities"])

  def warm_up(self) -> None:
    """Compiles the network for every chunk size and the pooling for every length bucket."""
    c = self.predictor.crop_size
    for size in self.chunks:
      vectors = self.score(np.zeros((size, c, c, 3), np.uint8))
    for length in self.predictor.buckets:
      self.pool(np.repeat(vectors[0][None], length, axis=0))
