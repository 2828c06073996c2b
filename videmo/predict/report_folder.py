"""A report folder: one figure per video, every record, and the page that shows them.

    OUT_DIR/
      index.html           every video's prediction and figure (videmo/predict/html.py)
      predictions.jsonl    one JSON record per line, in the page's order (videmo/predict/record.py)
      figures/NNNN_NAME.png  one per video with a prediction (videmo/predict/report.py)

Figures are drawn as predictions arrive (`add`) and the crops dropped, so a long folder of
videos never holds more than one video's faces; `finish` writes the page and the records in
the order asked for.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Callable, Sequence

from videmo.predict import html, record as record_lib, report

RECORDS_NAME = "predictions.jsonl"
FIGURES_DIR = "figures"


def figure_name(number: int, video: str) -> str:
  """'0007_Happy_clip01.png' for video 'Happy/clip01.mp4' (safe on every file system)."""
  stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(video).with_suffix("").as_posix()).strip("_.")[-80:]
  return f"{number:04d}_{stem or 'video'}.png"


class ReportFolder:
  """Collects predictions into OUT_DIR (see the module docstring).

  Args:
    out_dir: the report folder (made if needed).
    title: the page's title.
    max_frames: frames shown per figure.
  """

  def __init__(self, out_dir: str | os.PathLike, title: str, max_frames: int = 8):
    if max_frames < 1:
      raise ValueError(f"report: frames per figure must be >= 1, got {max_frames}")
    self.out_dir = Path(out_dir)
    self.title = title
    self.max_frames = max_frames
    self.entries: list[html.Entry] = []
    (self.out_dir / FIGURES_DIR).mkdir(parents=True, exist_ok=True)

  def add(self, prediction: record_lib.Prediction, name: str | None = None) -> html.Entry:
    """Draw the prediction's figure (if it has a prediction; it needs `faces`) and keep its record."""
    figure = None
    if prediction.ok:
      relative = f"{FIGURES_DIR}/{figure_name(len(self.entries) + 1, name or prediction.video)}"
      report.write_figure(prediction, self.out_dir / relative, self.max_frames)
      figure = relative
    entry = html.Entry(dataclasses.replace(prediction, faces=None), figure)
    self.entries.append(entry)
    return entry

  def finish(self, sort_key: Callable[[html.Entry], object] | None = None, note: str = "") -> Path:
    """Write index.html and predictions.jsonl (entries ordered by `sort_key`, else as added)."""
    entries: Sequence[html.Entry] = sorted(self.entries, key=sort_key) if sort_key else self.entries
    with open(self.out_dir / RECORDS_NAME, "w", encoding="utf-8") as out:
      for entry in entries:
        out.write(json.dumps(entry.prediction.to_json()) + "\n")
    return html.write_index(self.out_dir, entries, self.title, note)
