"""The rolling window of a live stream: each person's recent frames, and what is said about them.

    windows = RollingWindows(window_seconds=4.0)
    windows.add(person, frame_index, time_s, box, vector)    # vector: the frame's scores [E] (LSTM: [K])
    windows.advance(time_s)                                  # forget frames at or before time_s - window
    for person, window in windows.people(): window.vectors() # [T, E], in time order

A window is (end - window_seconds, end], `end` the time of the latest frame seen (a frame
within TIME_TOLERANCE_S of the start counts as on it, whatever the rounding); it holds
only per-frame vectors and boxes (a few hundred bytes a frame, no pixels), so memory is
bounded by the window. `WindowPrediction` is one printed prediction: one person's window
pooled (or, when nobody was seen in it, a record saying so), with the stream's counters.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from typing import Any, Iterator

import numpy as np

DECIMALS = 6  # floats in the JSON record are rounded to this many decimals
TIME_TOLERANCE_S = 1e-6  # times this close are one (timestamps differ by >= 11 us at MPEG's 90 kHz)


@dataclasses.dataclass(frozen=True)
class WindowFrame:
  """One frame of a person in a window: its index, time, face box [4] and vector [E] or [K]."""

  index: int
  time_s: float
  box: np.ndarray
  vector: np.ndarray


class PersonWindow:
  """One person's frames in the window, oldest first."""

  def __init__(self):
    self.frames: deque[WindowFrame] = deque()

  def vectors(self) -> np.ndarray:
    """[T, E] (or [T, K]) the window's per-frame vectors, in time order."""
    return np.stack([frame.vector for frame in self.frames])


class RollingWindows:
  """Every person's window over the last `window_seconds` of stream time, and the frames seen in it."""

  def __init__(self, window_seconds: float):
    if not window_seconds > 0:
      raise ValueError(f"window_seconds must be > 0, got {window_seconds}")
    self.window_seconds = float(window_seconds)
    self.end_s: float | None = None
    self._people: dict[int, PersonWindow] = {}
    self._seen: deque[float] = deque()  # times of every frame seen in the window, with a face or not

  def start_s(self) -> float:
    """Where the window begins: max(0, end - window_seconds)."""
    return max(0.0, (self.end_s or 0.0) - self.window_seconds)

  def advance(self, time_s: float) -> None:
    """A frame at `time_s` was seen: the window now ends there; older frames leave it."""
    self.end_s = time_s
    self._seen.append(time_s)
    oldest = time_s - self.window_seconds + TIME_TOLERANCE_S
    while self._seen and self._seen[0] <= oldest:
      self._seen.popleft()
    for person in list(self._people):
      frames = self._people[person].frames
      while frames and frames[0].time_s <= oldest:
        frames.popleft()
      if not frames:
        del self._people[person]

  def add(self, person: int, index: int, time_s: float, box: np.ndarray, vector: np.ndarray) -> PersonWindow:
    """Adds a person's frame (call `advance(time_s)` for the frame first); returns their window."""
    window = self._people.setdefault(person, PersonWindow())
    window.frames.append(WindowFrame(index, time_s, np.asarray(box, np.float64), np.asarray(vector)))
    return window

  def people(self) -> Iterator[tuple[int, PersonWindow]]:
    """(person, window) of everyone seen in the window, by person number."""
    yield from sorted(self._people.items())

  @property
  def frames_seen(self) -> int:
    """Frames seen in the window, with a face or not."""
    return len(self._seen)


def _round(value: Any) -> Any:
  return None if value is None else np.round(np.asarray(value, np.float64), DECIMALS).tolist()


@dataclasses.dataclass
class WindowPrediction:
  """One prediction of a live stream (docs/predict.md, "Live streams"): a person's window
  [start_s, end_s] pooled over `frames` frames (status "ok"), or status "no_face" (person
  None) when nobody was seen in it; probabilities [E]; box [4]: the person's latest face box;
  frame: the index of the frame the window ends at; the stream's counters so far; lag_s:
  seconds from that frame leaving the decoder to this prediction; final: the last window."""

  source: str
  status: str
  person: int | None
  start_s: float
  end_s: float
  frame: int
  frames: int
  classes: tuple[str, ...]
  probabilities: np.ndarray | None = None
  box: np.ndarray | None = None
  frames_decoded: int = 0
  frames_seen: int = 0
  frames_dropped: int = 0
  lag_s: float = 0.0
  final: bool = False

  @property
  def label(self) -> str | None:
    return None if self.probabilities is None else self.classes[int(np.argmax(self.probabilities))]

  @property
  def probability(self) -> float | None:
    return None if self.probabilities is None else float(np.max(self.probabilities))

  def top(self, k: int = 3) -> list[tuple[str, float]]:
    """The k most probable classes, most probable first: [(name, p(c|S))]."""
    if self.probabilities is None:
      return []
    order = np.argsort(-np.asarray(self.probabilities), kind="stable")[:k]
    return [(self.classes[i], float(self.probabilities[i])) for i in order]

  def summary(self) -> str:
    """One line: '-: [2.00-6.00 s] person 0: Happy 62.0% (top-3: Happy 62.0%, ...); 38 frames'."""
    span = f"{self.source}: [{self.start_s:.2f}-{self.end_s:.2f} s]"
    if self.person is None:
      line = f"{span} no face in {self.frames} frames"
    else:
      top = ", ".join(f"{name} {100 * p:.1f}%" for name, p in self.top(3))
      line = (f"{span} person {self.person}: {self.label} {100 * self.probability:.1f}% (top-3: {top}); "
              f"{self.frames} frames")
    if self.frames_dropped:
      line += f"; {self.frames_dropped} frames dropped so far"
    return line + ("; final" if self.final else "")

  def to_json(self) -> dict[str, Any]:
    """The JSON record (docs/predict.md lists its fields)."""
    return dict(source=self.source, status=self.status, person=self.person, start_s=round(self.start_s, DECIMALS),
                end_s=round(self.end_s, DECIMALS), frame=int(self.frame), label=self.label,
                probability=None if self.probability is None else round(self.probability, DECIMALS),
                top3=[[name, round(p, DECIMALS)] for name, p in self.top(3)],
                probabilities=_round(self.probabilities), frames=int(self.frames), box=_round(self.box),
                frames_decoded=int(self.frames_decoded), frames_seen=int(self.frames_seen),
                frames_dropped=int(self.frames_dropped), lag_s=round(float(self.lag_s), DECIMALS),
                final=bool(self.final))
