"""A split's frames decoded once, into a memory-mapped file beside its shards, for every run and process.

A sweep trains dozens of runs on the same dataset, and each run's processes would otherwise
decode the same JPEG frames again (the in-process `decoded_cache` spares later epochs, not
later runs). `DecodedStore.open_or_build(source, directory)` decodes every frame of the split
once, in record order, into

    DIRECTORY/frames.u8     all frames, uint8, back to back: [total frames, H, W, 3]
    DIRECTORY/index.json    the frame shape, each record's first frame and frame count, and
                            the shard files' names and sizes it was built from

written to temporary names and renamed when complete, under an exclusive lock, so that
processes that start together build it once and the others wait and then read it. DIRECTORY
lives in the built dataset's version folder (`decoded/<split>`), so a new dataset version (or
a rebuilt dataset, whose shards differ) gets a new store. The file is mapped read-only: the
operating system's page cache holds it once for every process that reads it.

`StoredSource(source, store)` stands in for the split's source: each record as the source
gives it (its other fields parsed once per process and kept: labels, flags, ids), with
"frames" the store's decoded frames [F, H, W, 3]. Decoding is deterministic, so
the batches are those of the source, to the bit. A store is built only while the split's frames
fit `max_bytes` (input.decoded_store_mb); past that `open_or_build` gives None and the run
keeps the in-process cache.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from videmo.data.loading import decoded_cache

FRAMES_FILE = "frames.u8"
INDEX_FILE = "index.json"
FORMAT = 1


def shard_files(dataset_directory: str | os.PathLike, split: str) -> list[list]:
  """[name, size] of a built split's array_record shards (what a store is checked against)."""
  return sorted([p.name, p.stat().st_size] for p in Path(dataset_directory).glob(f"*-{split}.array_record-*"))


class DecodedStore:
  """The decoded frames of one split (see the module docstring); reopened lazily after pickling."""

  def __init__(self, directory: str | os.PathLike):
    self.directory = Path(directory)
    index = json.loads((self.directory / INDEX_FILE).read_text())
    self.shape = tuple(index["shape"])
    self.starts = np.asarray(index["starts"], np.int64)
    self.counts = np.asarray(index["counts"], np.int64)
    self._frames = None

  @property
  def frames_array(self) -> np.ndarray:
    if self._frames is None:
      total = int(self.counts.sum())
      self._frames = np.memmap(self.directory / FRAMES_FILE, np.uint8, "r", shape=(total, *self.shape))
    return self._frames

  def frames(self, index: int) -> np.ndarray:
    """Record `index`'s frames [F, H, W, 3] uint8 (read-only, from the mapped file)."""
    start, count = int(self.starts[index]), int(self.counts[index])
    if count == 0:
      return np.zeros((0, *self.shape), np.uint8)
    return self.frames_array[start:start + count]

  def __len__(self) -> int:
    return len(self.counts)

  def __getstate__(self):
    return dict(directory=self.directory)

  def __setstate__(self, state):
    self.__init__(state["directory"])

  @classmethod
  def open_or_build(cls, source: Any, directory: str | os.PathLike, max_bytes: int,
                    shards: list[list]) -> "DecodedStore | None":
    """The store of `source` in `directory`: opened if built from these `shards` (shard_files),
    else built (once, under a lock); None when the split's frames need more than `max_bytes`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "a") as lock:
      fcntl.flock(lock, fcntl.LOCK_EX)  # a second process waits here while the first builds
      index_path = directory / INDEX_FILE
      if index_path.is_file():
        index = json.loads(index_path.read_text())
        same = (index.get("format") == FORMAT and index.get("shards") == shards
                and index.get("records") == len(source))
        if same and index.get("complete"):
          return cls(directory)
        if same and index.get("max_bytes", 0) >= max_bytes:  # already found too big for this budget
          return None
      return cls(directory) if _build(source, directory, max_bytes, shards) else None


def _build(source: Any, directory: Path, max_bytes: int, shards: list[list]) -> bool:
  """Decode every record's frames into DIRECTORY (module docstring); False, and an index that
  says so, when they would take more than `max_bytes`."""
  frames_path, index_path = directory / FRAMES_FILE, directory / INDEX_FILE
  temporary = directory / (FRAMES_FILE + ".tmp")
  starts, counts, shape, written, frame_count = [], [], None, 0, 0
  complete = True
  with open(temporary, "wb") as out:
    for i in range(len(source)):
      jpegs = list(source[i]["frames"])
      frames = decoded_cache.decode_frames(jpegs) if jpegs else None
      if frames is not None:
        shape = shape or frames.shape[1:3]
        if frames.shape[1:3] != shape:
          raise ValueError(f"{directory}: record {i} has {frames.shape[1:3]} frames, the split {shape}")
        if written + frames.nbytes > max_bytes:
          complete = False
          break
        out.write(np.ascontiguousarray(frames).tobytes())
        written += frames.nbytes
      starts.append(frame_count)
      counts.append(0 if frames is None else len(frames))
      frame_count += counts[-1]
  index = dict(format=FORMAT, records=len(source), shards=shards, complete=complete, max_bytes=max_bytes)
  if complete:
    os.replace(temporary, frames_path)
    index.update(shape=[*(shape or (0, 0)), 3], starts=starts, counts=counts)
  else:
    temporary.unlink()
  index_tmp = index_path.with_name(INDEX_FILE + ".tmp")
  index_tmp.write_text(json.dumps(index))
  os.replace(index_tmp, index_path)
  return complete


class StoredSource:
  """A split's source whose records come with their frames from a DecodedStore (module docstring)."""

  def __init__(self, source: Any, store: DecodedStore):
    if len(source) != len(store):
      raise ValueError(f"the decoded store {store.directory} holds {len(store)} records, the split {len(source)}")
    self.source, self.store = source, store
    self._fields: dict[int, dict] = {}  # each record's other fields, parsed once per process (small)

  def __len__(self) -> int:
    return len(self.source)

  def _record_fields(self, index: int) -> dict:
    found = self._fields.get(index)
    if found is None:
      found = {k: v for k, v in self.source[index].items() if k != "frames"}
      self._fields[index] = found
    return found

  def __getitem__(self, index: int) -> dict:
    index = int(index) if int(index) >= 0 else int(index) + len(self.source)
    return {**self._record_fields(index), "frames": self.store.frames(index)}

  def peek(self, index: int) -> dict:
    """Record `index`'s fields and frames, as `__getitem__` (the frames are mapped, not decoded)."""
    return self[index]

  def for_workers(self, workers: int) -> "StoredSource":
    return self  # the file is shared: nothing to split

  def __getstate__(self):  # a loader process parses its own records' fields
    return dict(source=self.source, store=self.store)

  def __setstate__(self, state):
    self.__init__(state["source"], state["store"])

  def __repr__(self) -> str:
    return f"StoredSource({self.source!r}, {self.store.directory})"
