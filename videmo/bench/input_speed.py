"""Speed of the training input pipeline on a config: batches/s from `pipeline.train_batches`.

The pipeline the training loop runs (shards -> sampled, decoded, cropped, mirrored, masked
batches; `config.input.workers` loader processes), on the config's dataset and train split,
with the benchmark's batch size, frames and crop. The first batch (start-up, worker launch)
is timed apart; the rate is over the next `batches` batches, as in a run's first epoch, which
decodes its records. With the records kept decoded in memory (`input.decoded_cache_mb`, in
the training process: `input.workers` = 0), the same batches are read again and timed as
`cached_batches_per_s`, the rate of every later epoch. The dataset is built first
when the config says so (`build_if_missing`, e.g. SynthEmo); otherwise a missing dataset
gives a one-line reason instead of figures.
"""

from __future__ import annotations

import time

import jax
import ml_collections

from videmo.data.loading import decoded_cache, decoded_store
from videmo.train import experiment


def pipeline_speed(config: ml_collections.ConfigDict, batches: int = 10) -> dict:
  """dict(batches_per_s, clips_per_s, frames_per_s, first_batch_s, ...), or dict(skipped=reason)."""
  if batches < 1:
    raise ValueError(f"pipeline batches must be >= 1, got {batches}")
  try:
    train, _, _ = experiment.open_dataset(config)
  except (FileNotFoundError, ValueError) as err:
    return dict(skipped=str(err).splitlines()[0])
  batch_size = config.batch_size // jax.process_count()
  try:
    first, seconds = _time_batches(experiment.train_batch_stream(config, train, batch_size), batches)
    cached, where = None, None
    if isinstance(train, decoded_store.StoredSource):
      where = "in the shared decoded store"
    elif isinstance(train, decoded_cache.CachedSource) and config.input.workers == 0:
      where = "in memory"
    if where:
      cached = _time_batches(experiment.train_batch_stream(config, train, batch_size), batches)[1]
  except ValueError as err:  # e.g. a crop larger than the dataset's faces
    return dict(skipped=str(err).splitlines()[0])
  rate = batches / seconds
  return dict(batches_per_s=rate, clips_per_s=rate * batch_size,
              frames_per_s=rate * batch_size * config.input.num_frames, first_batch_s=first,
              cached_batches_per_s=batches / cached if cached else None, decoded_where=where,
              batches=batches, workers=config.input.workers, dataset=f"{config.dataset} {config.train_split}")


def _time_batches(iterator, batches: int) -> tuple[float, float]:
  """(seconds for the first batch, seconds for the next `batches`)."""
  start = time.perf_counter()
  next(iterator)
  first = time.perf_counter() - start
  start = time.perf_counter()
  for _ in range(batches):
    next(iterator)
  return first, time.perf_counter() - start
