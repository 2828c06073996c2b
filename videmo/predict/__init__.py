"""Predict on a raw video and show why: `videmo predict` and the Python API it is built on.

    from videmo.predict import Predictor
    prediction = Predictor("runs/synthemo").predict("clip.mp4")   # -> Prediction
    print(prediction.summary())

Modules, one concern each:
  faces_input.py   a video -> the face crops [T, C, C, 3] the model sees (preparation's and evaluation's code)
  predictor.py     Predictor: restore the model, run it on every frame, pool over time
  stream.py        a folder: faces found in a background thread while the model runs
  record.py        Prediction: the per-video record and its JSON fields (PREDICTION_FIELDS)
  timeline.py      --timeline: one CSV / JSON-lines row per frame seen and person
  live*.py         --stream: live_source (decoding thread, bounded queue), live_tracks (online
                   people), live_model (crops and scores), live_window (rolling windows), live
                   (the loop), live_cli (flags and output)
  report.py        one figure per video in the style of the paper's Fig. 2
  html.py          index.html: every video's figure and prediction on one offline page
  report_folder.py a report folder: figures/, predictions.jsonl and index.html
  cli.py           `videmo predict VIDEO_OR_FOLDER --checkpoint ...`
  split_report.py  the same report for a dataset split (`videmo eval --report`)

`Predictor` and `Prediction` are imported on first use, so `videmo predict --help` does not
wait for JAX.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Predictor", "Prediction", "PREDICTION_FIELDS"]


def __getattr__(name: str) -> Any:
  if name == "Predictor":
    from videmo.predict.predictor import Predictor

    return Predictor
  if name in ("Prediction", "PREDICTION_FIELDS"):
    from videmo.predict import record

    return getattr(record, name)
  raise AttributeError(f"module 'videmo.predict' has no attribute {name!r}")
