"""Wall-clock timing of blocking calls: warm-up, repeats, medians, interleaved A/B pairs; peak memory.

Every timed function must block until its work is done (`jax.block_until_ready`; PyTorch on
CPU is synchronous). Medians, not means: a VM's speed drifts and other processes interrupt.
In an interleaved comparison (A B A B ...) each pair runs within seconds, so drift slows both
sides of a pair alike and the per-pair ratio A/B stays meaningful on a busy machine.
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
from typing import Any, Callable


def time_calls(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> list[float]:
  """Seconds of each of `repeats` calls of `fn`, after `warmup` untimed calls."""
  if repeats < 1:
    raise ValueError(f"repeats must be >= 1, got {repeats}")
  for _ in range(warmup):
    fn()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return times


def interleaved(fn_a: Callable[[], Any], fn_b: Callable[[], Any], repeats: int,
                warmup: int = 1) -> tuple[list[float], list[float]]:
  """(seconds of A, seconds of B) over `repeats` pairs run as A B A B ..., after warm-up of both."""
  if repeats < 1:
    raise ValueError(f"repeats must be >= 1, got {repeats}")
  for _ in range(warmup):
    fn_a()
    fn_b()
  a, b = [], []
  for _ in range(repeats):
    for fn, out in ((fn_a, a), (fn_b, b)):
      start = time.perf_counter()
      fn()
      out.append(time.perf_counter() - start)
  return a, b


def median(values: list[float]) -> float:
  return float(statistics.median(values))


def spread(values: list[float]) -> str:
  """'min-max' of a list of seconds, for the report."""
  return f"{min(values):.3g}-{max(values):.3g}"


def peak_memory(device: Any) -> tuple[int | None, str]:
  """(bytes, source): the device allocator's peak when it reports one, else this process's peak RSS."""
  stats = None
  try:
    stats = device.memory_stats()
  except Exception:  # backends without allocator statistics
    stats = None
  if stats and stats.get("peak_bytes_in_use"):
    return int(stats["peak_bytes_in_use"]), f"{device.platform} allocator peak"
  rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
  return int(rss if sys.platform == "darwin" else rss * 1024), "process peak RSS"


def compiled_memory(compiled: Any) -> int | None:
  """Bytes XLA plans for a compiled computation: arguments + outputs + temporaries − aliased."""
  try:
    analysis = compiled.memory_analysis()
  except Exception:  # not every backend implements it
    return None
  if analysis is None:
    return None
  return int(analysis.argument_size_in_bytes + analysis.output_size_in_bytes
             + analysis.temp_size_in_bytes - analysis.alias_size_in_bytes)
