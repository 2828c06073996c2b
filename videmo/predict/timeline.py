"""The per-frame timeline of `videmo predict --timeline FILE`: one row per frame seen and person.

A CSV (FILE.csv) opens in a spreadsheet or `pandas.read_csv`; JSON lines (FILE.jsonl) keep
the same fields, one object per row. The columns, in order (docs/predict.md documents them):

  video           the file, frame folder or stream the row comes from
  person          the person's number in that video (0 = the main face unless --faces all)
  time_s          seconds from the first frame, from the stream's timestamps ("" when unknown)
  frame           the source frame's index (0-based, in decoding order)
  box_x0 box_y0 box_x1 box_y1   the face box in the source frame's pixels ("" when unknown)
  importance      p(f|S) of the frame within that person's clip (or window, when streaming)
  label_so_far    streaming only: the pooled label of the rolling window ending at this frame
  p_<class>       one column per class: the frame's own class probabilities softmax_c(o_fc / τ)

Rows of one person come in frame order; a video's rows are written when its prediction is.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
from typing import Iterable, Sequence

import numpy as np

FORMATS = (".csv", ".jsonl")
FIXED_COLUMNS = ("video", "person", "time_s", "frame", "box_x0", "box_y0", "box_x1", "box_y1", "importance",
                 "label_so_far")
DECIMALS = 6


@dataclasses.dataclass(frozen=True)
class TimelineRow:
  """One frame of one person. box: (x0, y0, x1, y1) pixels or None; probabilities [E]."""

  video: str
  person: int
  frame: int
  time_s: float | None
  box: tuple[float, float, float, float] | None
  importance: float | None
  probabilities: Sequence[float]
  label_so_far: str | None = None


def columns(class_names: Sequence[str]) -> list[str]:
  """The header: FIXED_COLUMNS then p_<class> for each class, in the model's order."""
  return list(FIXED_COLUMNS) + [f"p_{name}" for name in class_names]


def check_path(path: str | os.PathLike) -> None:
  """ValueError (one line) unless `path` ends in a known format and its folder exists."""
  suffix = os.path.splitext(os.fspath(path))[1].lower()
  if suffix not in FORMATS:
    raise ValueError(f"--timeline {os.fspath(path)}: the file must end in {' or '.join(FORMATS)}")
  folder = os.path.dirname(os.path.abspath(os.fspath(path)))
  if not os.path.isdir(folder):
    raise ValueError(f"--timeline {os.fspath(path)}: the folder {folder} does not exist")


def _number(value: float | None) -> float | None:
  if value is None or not math.isfinite(float(value)):
    return None
  return round(float(value), DECIMALS)


class TimelineWriter:
  """Appends TimelineRows to a CSV or JSON-lines file, flushing after each batch of rows (a
  stream stopped at any time leaves a readable file). Use as a context manager."""

  def __init__(self, path: str | os.PathLike, class_names: Sequence[str]):
    check_path(path)
    self.path = os.fspath(path)
    self.class_names = tuple(class_names)
    self.jsonl = self.path.lower().endswith(".jsonl")
    self.rows_written = 0
    self._file: io.TextIOBase = open(self.path, "w", newline="", encoding="utf-8")
    self._csv = None
    if not self.jsonl:
      self._csv = csv.writer(self._file)
      self._csv.writerow(columns(self.class_names))
      self._file.flush()

  def _values(self, row: TimelineRow) -> list:
    box = [None] * 4 if row.box is None else [_number(v) for v in row.box]
    probabilities = np.asarray(row.probabilities, np.float64)
    if probabilities.shape != (len(self.class_names),):
      raise ValueError(f"timeline row of frame {row.frame}: {probabilities.shape[0] if probabilities.ndim else 0} "
                       f"class probabilities for {len(self.class_names)} classes")
    return ([row.video, int(row.person), _number(row.time_s), int(row.frame), *box, _number(row.importance),
             row.label_so_far] + [_number(p) for p in probabilities])

  def write(self, rows: Iterable[TimelineRow]) -> None:
    header = columns(self.class_names)
    for row in rows:
      values = self._values(row)
      if self.jsonl:
        self._file.write(json.dumps(dict(zip(header, values))) + "\n")
      else:
        self._csv.writerow(["" if v is None else v for v in values])
      self.rows_written += 1
    self._file.flush()

  def close(self) -> None:
    if not self._file.closed:
      self._file.close()

  def __enter__(self) -> "TimelineWriter":
    return self

  def __exit__(self, *exc) -> None:
    self.close()


def rows_of(prediction) -> list[TimelineRow]:
  """The rows of one record.Prediction: one per frame the model saw (none unless it is ok);
  person 0 for the main face."""
  if not prediction.ok:
    return []
  times = prediction.times()
  boxes = prediction.face_box
  importance = prediction.frame_importance
  rows = []
  for t, frame in enumerate(prediction.frame_index):
    box = None
    if boxes is not None and np.all(np.isfinite(boxes[t])):
      box = tuple(float(v) for v in boxes[t])
    rows.append(TimelineRow(prediction.video, 0 if prediction.person is None else int(prediction.person), int(frame),
                            None if times is None else float(times[t]), box,
                            None if importance is None else float(importance[t]), prediction.frame_probabilities[t]))
  return rows
