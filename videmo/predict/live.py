"""`videmo predict --stream SOURCE`: rolling predictions on a live video, while it comes.

    options = StreamOptions(window_seconds=4, every_seconds=1, idle_seconds=10)
    summary = predict_live(predictor, "udp://127.0.0.1:5000", options, emit=lambda p: print(p.summary()))
    print(summary.line())   # 'stream ended (end of stream): 250 frames decoded over 10.0 s, 200 seen, ...'

Three parts:
* the source (live_source.py) is decoded in its own thread into a queue of `queue_frames`
  frames that drops the oldest when full: a model slower than the stream drops frames (they
  are counted) rather than falling further and further behind;
* faces (live_tracks.py): every person found and followed frame by frame, in this thread;
* the model (live_model.py): each frame's crops through the network once, in chunks of the
  frames at hand; a window's prediction pools its frames' stored scores (live_window.py).

Every `every_seconds` of stream time (the frames' own timestamps) each person seen in the
last `window_seconds` gets a prediction, `emit(WindowPrediction)`; a window in which nobody
was seen gets one with status "no_face". When the stream ends (its end, `idle_seconds`
without data, a limit) or on Ctrl-C, the last window is predicted once more, marked final,
and `predict_live` returns its summary. With a timeline, every frame seen gets a row per
person in it: the frame's own class probabilities, its importance p(f|S) in that person's
window ending at the frame, and that window's label (`label_so_far`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Callable

import numpy as np

from videmo.predict import live_source, record, timeline as timeline_lib
from videmo.predict.live_model import FrameScorer, face_crops
from videmo.predict.live_tracks import AlignedFaces, OnlineFaceTracker
from videmo.predict.live_window import TIME_TOLERANCE_S, RollingWindows, WindowPrediction
from videmo.predict.predictor import Predictor

_WAIT_S = 0.2  # longest wait for a frame before looking again (Ctrl-C is seen between waits)


@dataclasses.dataclass(frozen=True)
class StreamOptions:
  """window_seconds: the rolling window; every_seconds: stream time between predictions;
  idle_seconds: no data this long ends the stream; queue_frames: decoded frames waiting for the
  model (the oldest dropped beyond it); aligned: frames already are aligned faces (person 0);
  gap_seconds: a person unseen this long is found again by appearance, not position;
  max_frames / max_seconds: stop after that many frames / at that stream time (None: never)."""

  window_seconds: float = 4.0
  every_seconds: float = 1.0
  idle_seconds: float = 10.0
  queue_frames: int = 16
  aligned: bool = False
  gap_seconds: float = 1.0
  max_frames: int | None = None
  max_seconds: float | None = None

  def __post_init__(self):
    for name in ("window_seconds", "every_seconds", "idle_seconds", "gap_seconds"):
      if not getattr(self, name) > 0:
        raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
    if self.queue_frames < 1:
      raise ValueError(f"queue_frames must be >= 1, got {self.queue_frames}")


@dataclasses.dataclass
class StreamSummary:
  """What a stream came to: frames decoded, seen (faces looked for), with a face and dropped;
  people followed; predictions emitted; stream time of the last frame seen; why it ended."""

  decoded: int = 0
  seen: int = 0
  with_face: int = 0
  dropped: int = 0
  people: int = 0
  predictions: int = 0
  duration_s: float = 0.0
  ended: str = ""

  def line(self) -> str:
    return (f"stream ended ({self.ended}): {self.decoded} frames decoded over {self.duration_s:.1f} s, "
            f"{self.seen} seen ({self.with_face} with a face), {self.dropped} dropped; {self.people} "
            f"{'person' if self.people == 1 else 'people'}; {self.predictions} predictions")


class _Stream:
  """One stream's state between frames: faces, scorer, windows, the next prediction's time."""

  def __init__(self, predictor: Predictor, source: str, options: StreamOptions,
               emit: Callable[[WindowPrediction], None], timeline: timeline_lib.TimelineWriter | None):
    self.predictor, self.source, self.options, self.emit = predictor, source, options, emit
    self.timeline = timeline
    if options.aligned:
      self.faces = AlignedFaces(predictor.clip_options.face.face_size)
    else:
      self.faces = OnlineFaceTracker(predictor.face_models, predictor.clip_options.face,
                                     gap_seconds=options.gap_seconds)
    self.scorer = FrameScorer(predictor)
    self.windows = RollingWindows(options.window_seconds)
    self.summary = StreamSummary()
    self.reader: live_source.SourceReader | None = None
    self.next_prediction_s = options.every_seconds
    self.last = None  # the last frame seen (live_source.LiveFrame)
    self.people: set[int] = set()

  def process(self, batch: list[live_source.LiveFrame]) -> None:
    """Faces, network and windows for frames in stream order; predictions when their time comes."""
    found = [(frame, self.faces.step(frame.time_s, frame.image)) for frame in batch]
    aligned = [sighting.face for _, sightings in found for sighting in sightings]
    vectors = iter(self.scorer.score(face_crops(aligned, self.predictor)) if aligned else [])
    for frame, sightings in found:
      self.windows.advance(frame.time_s)
      rows = []
      for sighting in sightings:
        window = self.windows.add(sighting.person, frame.index, frame.time_s, sighting.box, next(vectors))
        self.people.add(sighting.person)
        if self.timeline is not None:
          rows.append(self._row(frame, sighting, self.scorer.pool(window.vectors())))
      if self.timeline is not None:
        self.timeline.write(rows)
      self.summary.seen += 1
      self.summary.with_face += bool(sightings)
      self.last = frame
      if frame.time_s >= self.next_prediction_s - TIME_TOLERANCE_S:
        self.predict(final=False)
        every = self.options.every_seconds
        self.next_prediction_s = (math.floor((frame.time_s + TIME_TOLERANCE_S) / every) + 1) * every

  def _row(self, frame, sighting, pooled) -> timeline_lib.TimelineRow:
    classes = self.predictor.class_names
    return timeline_lib.TimelineRow(
        video=self.source, person=sighting.person, frame=frame.index, time_s=frame.time_s,
        box=tuple(float(v) for v in sighting.box), importance=float(pooled.frame_importance[-1]),
        probabilities=pooled.frame_probabilities[-1], label_so_far=classes[int(np.argmax(pooled.probabilities))])

  def predict(self, final: bool) -> None:
    """Emits the window ending at the last frame seen: one prediction per person in it, or no_face."""
    frame = self.last
    counters = dict(frames_decoded=self.reader.decoded, frames_seen=self.summary.seen,
                    frames_dropped=self.reader.queue.dropped)
    base = dict(source=self.source, start_s=self.windows.start_s(), end_s=frame.time_s, frame=frame.index,
                classes=self.predictor.class_names, final=final, **counters)
    people = list(self.windows.people())
    if not people:
      self.emit(WindowPrediction(status=record.NO_FACE, person=None, frames=self.windows.frames_seen,
                                 lag_s=time.monotonic() - frame.decoded_at, **base))
      self.summary.predictions += 1
    for person, window in people:
      pooled = self.scorer.pool(window.vectors())
      self.emit(WindowPrediction(status=record.OK, person=person, frames=len(window.frames),
                                 probabilities=pooled.probabilities, box=window.frames[-1].box,
                                 lag_s=time.monotonic() - frame.decoded_at, **base))
      self.summary.predictions += 1

  def run(self, on_ready: Callable[[], None] | None) -> StreamSummary:
    self.scorer.warm_up()
    if on_ready is not None:
      on_ready()
    options = self.options
    source = live_source.open_source(self.source, options.idle_seconds)
    self.reader = live_source.SourceReader(source, options.queue_frames, options.max_frames, options.max_seconds)
    self.reader.start()
    try:
      while (batch := self.reader.queue.take(self.predictor.batch_frames, _WAIT_S)) is not None:
        if batch:
          self.process(batch)
      self.summary.ended = self.reader.ended or "end of stream"
    except KeyboardInterrupt:
      self.summary.ended = "interrupted"
    finally:
      self.reader.stop()
    if self.last is not None:
      self.predict(final=True)
    summary = self.summary
    summary.decoded, summary.dropped = self.reader.decoded, self.reader.queue.dropped
    summary.people = len(self.people)
    summary.duration_s = 0.0 if self.last is None else self.last.time_s
    return summary


def predict_live(predictor: Predictor, source: str, options: StreamOptions = StreamOptions(), *,
                 emit: Callable[[WindowPrediction], None], timeline: timeline_lib.TimelineWriter | None = None,
                 on_ready: Callable[[], None] | None = None) -> StreamSummary:
  """Rolling predictions on SOURCE (live_source.py says what it may be) until it ends or Ctrl-C
  (module docstring). `on_ready()` is called once the model is compiled, just before the
  source is opened. Raises live_source.SourceError (one line) when the source cannot be opened."""
  return _Stream(predictor, source, options, emit, timeline).run(on_ready)
