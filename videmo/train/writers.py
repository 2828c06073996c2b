"""Metric writers: TensorBoard event files and the log.

clu's metric writers would be the usual choice, but the `clu.metric_writers` package imports
TensorFlow when it is imported, and videmo does not depend on TensorFlow. These writers keep
clu's method names (`write_scalars`, `write_images`, `write_texts`, `write_hparams`, `flush`,
`close`) so swapping one for the other is mechanical; TensorBoard files are written with
tensorboardX. Open them with `tensorboard --logdir WORKDIR`.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Mapping, Sequence

import jax
import numpy as np

log = logging.getLogger("videmo.metrics")


class TensorBoardWriter:
  """TensorBoard event files in `logdir` (tensorboardX)."""

  def __init__(self, logdir: str | os.PathLike):
    from tensorboardX import SummaryWriter

    self._writer = SummaryWriter(logdir=os.fspath(logdir))

  def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
    for key, value in scalars.items():
      self._writer.add_scalar(key, float(np.asarray(value)), step)

  def write_images(self, step: int, images: Mapping[str, Any]) -> None:
    """images: name -> [N, H, W, C] uint8 or float in 0..1."""
    for key, value in images.items():
      self._writer.add_images(key, np.asarray(value), step, dataformats="NHWC")

  def write_texts(self, step: int, texts: Mapping[str, str]) -> None:
    for key, value in texts.items():
      self._writer.add_text(key, value, step)

  def write_hparams(self, hparams: Mapping[str, Any]) -> None:
    self._writer.add_text("hparams", "\n".join(f"    {k}: {v}" for k, v in sorted(hparams.items())), 0)

  def flush(self) -> None:
    self._writer.flush()

  def close(self) -> None:
    self._writer.close()


class LoggingWriter:
  """Scalars and texts to the `videmo.metrics` logger."""

  def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
    log.info("[%d] %s", step, ", ".join(f"{k}={float(np.asarray(v)):.5g}" for k, v in scalars.items()))

  def write_images(self, step: int, images: Mapping[str, Any]) -> None:
    log.info("[%d] images: %s", step, ", ".join(f"{k} {np.shape(v)}" for k, v in images.items()))

  def write_texts(self, step: int, texts: Mapping[str, str]) -> None:
    for key, value in texts.items():
      log.info("[%d] %s: %s", step, key, value)

  def write_hparams(self, hparams: Mapping[str, Any]) -> None:
    log.info("hparams: %s", dict(hparams))

  def flush(self) -> None:
    pass

  def close(self) -> None:
    pass


class MultiWriter:
  """Writes everything to each of several writers (none: a writer that writes nothing)."""

  def __init__(self, writers: Sequence[Any]):
    self._writers = list(writers)

  def __getattr__(self, name: str):
    if not name.startswith("write_") and name not in ("flush", "close"):
      raise AttributeError(name)

    def call(*args, **kwargs):
      for writer in self._writers:
        getattr(writer, name)(*args, **kwargs)
    return call


def create_writer(workdir: str | os.PathLike) -> MultiWriter:
  """TensorBoard events in `workdir` plus the log, on process 0 only (other hosts write nothing)."""
  if jax.process_index() != 0:
    return MultiWriter([])
  return MultiWriter([TensorBoardWriter(workdir), LoggingWriter()])
