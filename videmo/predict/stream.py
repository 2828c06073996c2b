"""Many videos through one Predictor, the faces of the next ones made while the model works.

    jobs = [VideoJob("a.mp4"), VideoJob("b.mp4", true_label="Happy")]
    timing = StreamTiming()
    for prediction in predict_stream(predictor, jobs, aligned=False, timing=timing):
      print(prediction.summary())                # in the order of `jobs`, one per job
    print(timing.summary())

Decoding and face finding (`Predictor.faces`: PyAV, dlib, JPEG; their C code releases the
GIL) run in one background thread, up to `prefetch` videos ahead, while the main thread runs
the model (JAX releases the GIL while it computes). Whenever the model is free it takes
every video whose faces are ready, at least the next one, and runs their frames together
(`Predictor.predict_faces_many`: the frames of several short videos share a forward pass).
A video that fails anywhere on the way (a corrupt file, no face, an error inside the model)
gets a Prediction saying so, and the others still run. `prefetch=0` makes the faces in the
main thread, one video at a time (for comparison).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Iterable, Iterator

import numpy as np

from videmo.predict import faces_input, record
from videmo.predict.predictor import Predictor

DEFAULT_PREFETCH = 8  # videos whose faces may be made ahead of the model


@dataclasses.dataclass(frozen=True)
class VideoJob:
  """One video to predict: a file, a frame folder or frames [T, H, W, 3] uint8, the name its
  Prediction carries (default: the path) and its ground truth where known."""

  source: str | os.PathLike | np.ndarray
  name: str | None = None
  true_label: str | None = None
  true_window: tuple[int, int] | None = None

  @property
  def video(self) -> str:
    if self.name is not None:
      return self.name
    return os.fspath(self.source) if isinstance(self.source, (str, os.PathLike)) else "<frames>"


@dataclasses.dataclass
class StreamTiming:
  """Where the time of a stream went, in seconds (faces_s runs beside model_s, not after it)."""

  videos: int = 0
  frames: int = 0            # frames the model saw
  source_frames: int = 0     # frames decoded
  faces_s: float = 0.0       # decoding, face finding and cropping (the background thread)
  model_s: float = 0.0       # the network and the pooling (the main thread)
  waiting_s: float = 0.0     # the main thread waiting for faces
  wall_s: float = 0.0
  forward_passes: int = 0

  def summary(self) -> str:
    """One line: 'timing: 20 videos, 960 frames in 12.3 s (1.63 videos/s, 78.0 frames/s); ...'."""
    wall = max(self.wall_s, 1e-9)
    return (f"timing: {self.videos} videos, {self.frames} frames seen of {self.source_frames} decoded in "
            f"{self.wall_s:.2f} s ({self.videos / wall:.2f} videos/s, {self.frames / wall:.1f} frames/s); "
            f"decoding + faces {self.faces_s:.2f} s (in the background), model {self.model_s:.2f} s "
            f"({self.forward_passes} forward passes), waiting for faces {self.waiting_s:.2f} s")


def one_line(err: BaseException) -> str:
  """'ValueError: what it said' (its first line)."""
  text = str(err).strip()
  return f"{type(err).__name__}: {text.splitlines()[0] if text else '(no message)'}"


def _faces(predictor: Predictor, job: VideoJob, aligned: bool,
           everyone: bool) -> tuple[list[faces_input.FaceFrames], float]:
  """(the video's crops or why there are none: one FaceFrames, or one per person when
  `everyone`; seconds taken). Never raises on a bad video."""
  start = time.perf_counter()
  try:
    if everyone and not isinstance(job.source, np.ndarray):
      frames = predictor.people(job.source)
    else:
      frames = [predictor.faces(job.source, aligned=aligned)]
  except Exception as err:  # noqa: BLE001  one odd video must not stop a folder
    frames = [faces_input.failed(record.UNREADABLE, one_line(err))]
  return frames, time.perf_counter() - start


def _predict_group(predictor: Predictor, group: list[tuple[VideoJob, faces_input.FaceFrames]],
                   keep_faces: bool) -> list[record.Prediction]:
  """The group's predictions, all its frames together; if the model fails on the group, each
  video alone, and a video it still fails on gets a Prediction naming the error."""
  def run(items):
    return predictor.predict_faces_many([f for _, f in items], [j.video for j, _ in items], keep_faces=keep_faces,
                                        truths=[(j.true_label, j.true_window) for j, _ in items])

  try:
    return run(group)
  except Exception as err:  # noqa: BLE001  retried per video below, to find the one at fault
    if len(group) > 1:
      return [p for item in group for p in _predict_group(predictor, [item], keep_faces)]
    job, frames = group[0]
    failed = faces_input.failed(record.UNREADABLE, f"the model failed on it: {one_line(err)}",
                                frames.num_source_frames, frames.fps, frames.frames_without_face)
    return run([(job, failed)])


def predict_stream(predictor: Predictor, jobs: Iterable[VideoJob], *, aligned: bool = False,
                   keep_faces: bool = False, prefetch: int = DEFAULT_PREFETCH, everyone: bool = False,
                   timing: StreamTiming | None = None) -> Iterator[record.Prediction]:
  """Predictions of `jobs`, in their order (see the module docstring); `timing` is filled in as it goes.
  everyone: one prediction per person of each video (`Predictor.people`, `Prediction.person`),
  in order of first appearance, instead of one for its main face."""
  if prefetch < 0:
    raise ValueError(f"prefetch must be >= 0 (0: faces in the calling thread), got {prefetch}")
  if everyone and aligned:
    raise ValueError("every person (everyone=True) needs face detection: it cannot be used with aligned=True")
  timing = timing if timing is not None else StreamTiming()
  start, passes = time.perf_counter(), predictor.forward_passes
  todo = iter(jobs)
  window: deque[tuple[VideoJob, Future | None]] = deque()
  executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="videmo-faces") if prefetch else None

  def refill():
    while len(window) < max(prefetch, 1):
      job = next(todo, None)
      if job is None:
        return
      window.append((job, executor.submit(_faces, predictor, job, aligned, everyone) if executor else None))

  def made(job: VideoJob, future: Future | None) -> list[tuple[VideoJob, faces_input.FaceFrames]]:
    frames, seconds = future.result() if future is not None else _faces(predictor, job, aligned, everyone)
    timing.faces_s += seconds
    return [(job, f) for f in frames]

  try:
    refill()
    while window:
      waited = time.perf_counter()
      group = made(*window.popleft())  # the next video, waiting for it if need be
      timing.waiting_s += time.perf_counter() - waited if executor else 0.0
      while window and window[0][1] is not None and window[0][1].done():  # and every one already made
        group += made(*window.popleft())
      refill()
      began = time.perf_counter()
      predictions = _predict_group(predictor, group, keep_faces)
      timing.model_s += time.perf_counter() - began
      timing.forward_passes = predictor.forward_passes - passes
      for prediction in predictions:
        timing.videos += prediction.person is None or prediction.person == 0
        timing.frames += len(prediction.frame_index)
        timing.source_frames += prediction.num_source_frames
        timing.wall_s = time.perf_counter() - start
        yield prediction
  finally:
    if executor is not None:
      executor.shutdown(wait=False, cancel_futures=True)
    timing.wall_s = time.perf_counter() - start
