"""Metric writers: TensorBoard event files and the log, through clu's `MetricWriter` interface.

clu's own TensorBoard writer needs TensorFlow (or PyTorch); videmo needs neither, so
`TensorBoardWriter` writes the same event files with tensorboardX and plugs into clu's
`MultiWriter`/`AsyncMultiWriter` next to clu's `LoggingWriter`. Open the folder with
`tensorboard --logdir WORKDIR`.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import jax
import numpy as np
from clu import metric_writers


class TensorBoardWriter(metric_writers.MetricWriter):
  """A clu MetricWriter writing TensorBoard event files with tensorboardX."""

  def __init__(self, logdir: str | os.PathLike):
    from tensorboardX import SummaryWriter

    self._writer = SummaryWriter(logdir=os.fspath(logdir))

  def write_summaries(self, step: int, values: Mapping[str, Any], metadata=None):
    for key, value in values.items():
      self._writer.add_scalar(key, float(np.asarray(value)), step)

  def write_scalars(self, step: int, scalars: Mapping[str, Any]):
    for key, value in scalars.items():
      self._writer.add_scalar(key, float(np.asarray(value)), step)

  def write_images(self, step: int, images: Mapping[str, Any]):
    for key, value in images.items():
      self._writer.add_images(key, np.asarray(value), step, dataformats="NHWC")

  def write_videos(self, step: int, videos: Mapping[str, Any]):
    for key, value in videos.items():
      self._writer.add_video(key, np.asarray(value), step)

  def write_audios(self, step: int, audios: Mapping[str, Any], *, sample_rate: int):
    for key, value in audios.items():
      self._writer.add_audio(key, np.asarray(value), step, sample_rate=sample_rate)

  def write_texts(self, step: int, texts: Mapping[str, str]):
    for key, value in texts.items():
      self._writer.add_text(key, value, step)

  def write_histograms(self, step: int, arrays: Mapping[str, Any], num_buckets=None):
    for key, value in arrays.items():
      self._writer.add_histogram(key, np.asarray(value), step)

  def write_hparams(self, hparams: Mapping[str, Any]):
    self._writer.add_text("hparams", "\n".join(f"    {k}: {v}" for k, v in sorted(hparams.items())), 0)

  def flush(self):
    self._writer.flush()

  def close(self):
    self._writer.close()


def create_writer(workdir: str | os.PathLike) -> metric_writers.MetricWriter:
  """TensorBoard events in `workdir` (on process 0 only) plus the log, written asynchronously."""
  if jax.process_index() != 0:
    return metric_writers.MultiWriter([])
  return metric_writers.AsyncMultiWriter([TensorBoardWriter(workdir), metric_writers.LoggingWriter()])
