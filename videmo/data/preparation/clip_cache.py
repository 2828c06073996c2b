"""On-disk cache of prepared clips, so an interrupted dataset build resumes where it stopped.

One file per source video, named by a hash of everything that determines its frames: the
source's path, size and modification time (for a frame folder: those of every image), the
preparation options, and `CACHE_FORMAT`. Labels, ids and splits are not part of it (a video
listed in two splits, as in k-fold protocols, is prepared once); `load` takes them from the
task. A file holds two pickles, the
clip's summary (a ClipResult without the frames) and then its JPEG frames, so reading the
summaries of a whole dataset does not read the frames. Files are written to a temporary name
and renamed, so a killed build never leaves a half-written entry; a damaged entry is removed
and recomputed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
import tempfile
from pathlib import Path

from videmo.data.preparation import clip_processing

# Bump when process_clip's output changes for the same inputs and options.
CACHE_FORMAT = 2  # 2: the main face chosen over the whole clip; frame times from timestamps


def source_fingerprint(path: str | os.PathLike) -> list:
  """Size and modification time of a file, or of every file in a frame folder."""
  path = Path(path)
  try:
    if path.is_dir():
      return sorted([p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in path.iterdir() if p.is_file())
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]
  except OSError as err:
    return ["unreadable", type(err).__name__]


def cache_key(path: str | os.PathLike, options: clip_processing.ClipOptions) -> str:
  """Hex digest naming the cache entry of the video at `path` prepared with `options`."""
  payload = {
      "format": CACHE_FORMAT,
      "path": os.path.abspath(path),
      "fingerprint": source_fingerprint(path),
      "options": dataclasses.asdict(options),
  }
  return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:32]


class ClipCache:
  """Cache entries under `directory` (created on first write)."""

  def __init__(self, directory: str | os.PathLike):
    self.directory = Path(directory)

  def path(self, key: str) -> Path:
    return self.directory / key[:2] / f"{key}.pkl"

  def save(self, key: str, result: clip_processing.ClipResult) -> None:
    """Stores `result` atomically (temporary file in the same folder, then rename)."""
    path = self.path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key}.", suffix=".tmp")
    try:
      with os.fdopen(handle, "wb") as file:
        pickle.dump(result.summary(), file, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.dump(result.frames, file, protocol=pickle.HIGHEST_PROTOCOL)
      os.replace(tmp, path)
    except BaseException:
      Path(tmp).unlink(missing_ok=True)
      raise

  def load(self, key: str, task: clip_processing.ClipTask | None = None,
           frames: bool = True) -> clip_processing.ClipResult | None:
    """The cached result (its frames too when `frames`), or None if absent or damaged;
    with `task`, its id, source, label and split are the task's."""
    path = self.path(key)
    try:
      with open(path, "rb") as file:
        result = pickle.load(file)
        if frames:
          result.frames = pickle.load(file)
    except FileNotFoundError:
      return None
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, TypeError, ValueError):
      path.unlink(missing_ok=True)  # damaged: recompute it
      return None
    if not isinstance(result, clip_processing.ClipResult):
      path.unlink(missing_ok=True)
      return None
    if task is not None:
      result = dataclasses.replace(result, clip_id=task.clip_id, source=task.source, label=task.label,
                                   split=task.split)
    return result
