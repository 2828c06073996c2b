"""Keep decoded records in memory, up to a byte budget, so that later epochs decode nothing.

A training run reads every clip once per epoch and an evaluation reads every frame of the
split each time it runs; without a cache each read parses the record and decodes its JPEG
frames again. `CachedSource(source, cache)` stands in for a split's random-access source
(`tfds.data_source`): the first read of record i parses it and decodes all its frames; while
the shared `DecodedCache` has room, the record is kept with its frames as one uint8 array
[F, H, W, 3], and every later read returns it as it is. Once the budget is spent, further
records come back as the source gives them (JPEG bytes), and the loaders decode only the
frames they sample, as without a cache. Decoding is deterministic, so batches are the same
with and without the cache, to the bit. Reads of a split's labels and face flags
(`pipeline.eval_clips`, `split_labels`) go through `peek`, which neither decodes nor keeps, so
the budget goes to the records training and evaluation read first.

The budget (`config.input.decoded_cache_mb`) is shared by the splits opened with one cache and
bounds the whole run: the main process and its loader processes together. With loader
processes (`input.workers` > 0) each worker keeps its own cache, so the training pipeline splits
what is left of the budget into workers + 1 equal shares (`for_workers`): one per worker, and
one the main process keeps for what it reads itself (the evaluation split).
"""

from __future__ import annotations

import io
import threading
from typing import Any, Sequence

import numpy as np
from PIL import Image

MB = 2**20


def decode_frames(jpegs: Sequence[bytes]) -> np.ndarray:
  """JPEG bytes of F frames -> [F, S, S, 3] uint8."""
  return np.stack([np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in jpegs])


def frames_at(record: dict, indices: Sequence[int]) -> np.ndarray:
  """Frames `indices` of a record, decoded: [len(indices), S, S, 3] uint8, whether the record
  holds JPEG bytes (as the source gives it) or decoded frames (as a CachedSource keeps it)."""
  frames = record["frames"]
  if isinstance(frames, np.ndarray) and frames.dtype == np.uint8 and frames.ndim == 4:
    return frames[np.asarray(indices, np.int64)]
  return decode_frames([frames[i] for i in indices])


class DecodedCache:
  """A byte budget shared by the CachedSources of one process."""

  def __init__(self, budget_mb: float):
    if budget_mb < 0:
      raise ValueError(f"input.decoded_cache_mb must be >= 0, got {budget_mb}")
    self.budget = int(budget_mb * MB)
    self.used = 0
    self._lock = threading.Lock()

  def reserve(self, nbytes: int) -> bool:
    """Take `nbytes` of the budget if that much is left."""
    with self._lock:
      if self.used + nbytes > self.budget:
        return False
      self.used += nbytes
      return True

  def split_off(self, shares: int) -> int:
    """Hand `shares` equal parts of what is left of the budget to other processes: this cache
    keeps one more such part (plus what it already holds) and its budget shrinks by the rest.
    Returns one part's size in bytes; the total over this process and the others stays the budget."""
    if shares < 1:
      raise ValueError(f"shares must be >= 1, got {shares}")
    with self._lock:
      part = max(0, self.budget - self.used) // (shares + 1)
      self.budget -= shares * part
      return part

  def __getstate__(self):  # a copy sent to a loader process starts empty, with the same budget
    return dict(budget=self.budget)

  def __setstate__(self, state):
    self.__init__(state["budget"] / MB)


def decode_record_frames(record: dict) -> dict:
  """The record with its "frames" decoded: [F, H, W, 3] uint8 (F = 0 gives [0, 0, 0, 3])."""
  frames = record["frames"]
  decoded = decode_frames(list(frames)) if len(frames) else np.zeros((0, 0, 0, 3), np.uint8)
  return {**record, "frames": decoded}


def estimated_bytes(record: dict) -> int:
  """Bytes the record's decoded frames would take, from the first frame's JPEG header."""
  frames = record["frames"]
  if not len(frames):
    return 0
  width, height = Image.open(io.BytesIO(frames[0])).size
  return len(frames) * width * height * 3


class CachedSource:
  """A random-access source whose records, once read, stay decoded in memory (module doc)."""

  def __init__(self, source: Any, cache: DecodedCache):
    self.source = source
    self.cache = cache
    self._records: dict[int, dict] = {}

  def __len__(self) -> int:
    return len(self.source)

  def __getitem__(self, index: int) -> dict:
    index = int(index)
    if index < 0:
      index += len(self.source)
    found = self._records.get(index)
    if found is not None:
      return found
    record = self.source[index]
    if self.cache.budget == 0 or not self.cache.reserve(estimated_bytes(record)):
      return record
    record = decode_record_frames(record)
    self._records[index] = record
    return record

  def peek(self, index: int) -> dict:
    """Record `index` without decoding or keeping it (the kept one if it is kept): for reads
    of labels and face flags, which should not spend the budget before training does."""
    index = int(index) if int(index) >= 0 else int(index) + len(self.source)
    return self._records.get(index) or self.source[index]

  def for_workers(self, workers: int) -> "CachedSource":
    """An empty copy for `workers` loader processes, each with one share of what is left of the
    budget; this process's cache keeps one share too (`DecodedCache.split_off`), so the main
    process and the workers together stay within the budget."""
    return CachedSource(self.source, DecodedCache(self.cache.split_off(max(1, workers)) / MB))

  def __getstate__(self):  # what a loader process receives: the source and an empty cache
    return dict(source=self.source, cache=self.cache)

  def __setstate__(self, state):
    self.__init__(state["source"], state["cache"])

  def __repr__(self) -> str:
    return (f"CachedSource({self.source!r}, {len(self._records)} records decoded, "
            f"{self.cache.used / MB:.0f} of {self.cache.budget / MB:.0f} MB)")
