"""Prepare many clips on all cores, resumably, with a progress bar in frames per second.

`prepare_clips(tasks, options, cache, workers)` makes sure every task has an entry in the
clip cache and returns the clips' summaries in task order. Clips already in the cache are
not redone, so a build that was interrupted (Ctrl-C, kill, crash) continues where it
stopped. The work runs in a process pool ('spawn' start method: safe next to threads, JAX
and on every OS), one dlib detector and landmark model per worker, loaded once by the pool
initializer; each worker writes its clips to the cache itself and sends back a small
summary. `workers=1` runs everything in the calling process.

Scripts that call this (directly or through a dataset build) must guard their entry point
with `if __name__ == "__main__":`, as with any 'spawn' process pool; without the guard the
workers die at start-up and `prepare_clips` stops with a message saying so.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import time
from typing import Sequence

from videmo.data.preparation import clip_cache, clip_processing, faces


def default_workers() -> int:
  """The number of cores this process may use."""
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:  # macOS, Windows
    return os.cpu_count() or 1


def source_size(path: str | os.PathLike) -> int:
  """Bytes of a video file, or of the images in a frame folder (0 if unreadable)."""
  try:
    if os.path.isdir(path):
      return sum(entry.stat().st_size for entry in os.scandir(path) if entry.is_file())
    return os.path.getsize(path)
  except OSError:
    return 0


class _WorkerState:
  """Per-process state of a pool worker, set once by `_init_worker` (never at import)."""

  models: faces.FaceModels | None = None
  options: clip_processing.ClipOptions | None = None
  cache: clip_cache.ClipCache | None = None


def _init_worker(options: clip_processing.ClipOptions, cache_dir: str) -> None:
  _WorkerState.models = faces.load_face_models()
  _WorkerState.options = options
  _WorkerState.cache = clip_cache.ClipCache(cache_dir)


def _run_task(item: tuple[int, clip_processing.ClipTask, str]) -> tuple[int, clip_processing.ClipResult]:
  index, task, key = item
  result = clip_processing.process_clip(task, _WorkerState.options, _WorkerState.models)
  _WorkerState.cache.save(key, result)
  return index, result.summary()


def prepare_clips(tasks: Sequence[clip_processing.ClipTask], options: clip_processing.ClipOptions,
                  cache: clip_cache.ClipCache, workers: int | None = None, progress: bool = True,
                  desc: str = "preparing clips") -> list[clip_processing.ClipResult]:
  """Summaries (no frames) of all `tasks`, in order, computing those missing from `cache`.

  A video listed by several tasks (k-fold splits) is prepared once; each summary carries its
  own task's id, label and split. Afterwards `cache.load(cache_key(task.path, options), task)`
  gives a task's frames.

  workers: processes (default: all cores; 1: in this process).
  progress: show a tqdm bar (clips, with frames/s and the share of frames with a face).
  """
  workers = default_workers() if workers is None else int(workers)
  if workers < 1:
    raise ValueError(f"workers must be >= 1, got {workers}")
  keys = [clip_cache.cache_key(task.path, options) for task in tasks]
  first_task: dict[str, int] = {}  # a video listed several times (k folds) is prepared once
  for index, key in enumerate(keys):
    first_task.setdefault(key, index)
  todo = [(index, tasks[index], key) for key, index in first_task.items()
          if cache.load(key, frames=False) is None]
  # Largest videos first, so that no worker is left with a long one at the end (the order of
  # processing does not change the output: results go to the cache, shards are sorted).
  todo.sort(key=lambda item: -source_size(item[1].path))
  bar = _progress_bar(len(first_task), len(first_task) - len(todo), desc, progress)
  frames = with_face = 0
  start = time.perf_counter()
  try:
    for _, summary in _run(todo, options, cache, workers):
      frames += summary.num_source_frames
      with_face += summary.frames_with_face
      if bar is not None:
        elapsed = max(time.perf_counter() - start, 1e-9)
        bar.set_postfix_str(f"{frames / elapsed:.1f} frames/s, {with_face}/{frames} frames with a face",
                            refresh=False)
        bar.update(1)
  finally:
    if bar is not None:
      bar.close()
  summaries = [cache.load(key, task, frames=False) for key, task in zip(keys, tasks)]
  missing = [task.source for task, summary in zip(tasks, summaries) if summary is None]
  if missing:
    raise RuntimeError(f"clip cache {cache.directory} lost entries while preparing, e.g. {missing[:3]}")
  return summaries


def _run(todo, options, cache, workers):
  if not todo:
    return
  if workers == 1 or len(todo) == 1:
    _init_worker(options, os.fspath(cache.directory))
    try:
      for item in todo:
        yield _run_task(item)
    finally:
      _WorkerState.models = _WorkerState.options = _WorkerState.cache = None
    return
  executor = concurrent.futures.ProcessPoolExecutor(
      min(workers, len(todo)), mp_context=multiprocessing.get_context("spawn"),
      initializer=_init_worker, initargs=(options, os.fspath(cache.directory)))
  try:
    futures = [executor.submit(_run_task, item) for item in todo]
    for future in concurrent.futures.as_completed(futures):
      yield future.result()
  except concurrent.futures.process.BrokenProcessPool as err:
    raise RuntimeError(
        "clip preparation: a worker process died. If this runs from a script, guard its entry point "
        "with `if __name__ == \"__main__\":` (worker processes are spawned and import the main "
        "module); otherwise a worker ran out of memory or crashed in dlib/FFmpeg. workers=1 runs "
        "in this process.") from err
  finally:
    executor.shutdown(wait=True, cancel_futures=True)


def _progress_bar(total: int, done: int, desc: str, enabled: bool):
  if not enabled:
    return None
  from tqdm.auto import tqdm

  return tqdm(total=total, initial=done, desc=desc, unit="clip", dynamic_ncols=True, smoothing=0.1)
