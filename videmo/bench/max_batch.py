"""The largest batch whose training step fits in memory: doubling, then bisection.

`search(fits, start, unit, cap)` tries start, 2·start, 4·start, ... (multiples of `unit`,
the device count) until a batch does not fit or `cap` is reached, then bisects between
the largest batch that fitted and the smallest that did not, to a precision of one unit.

`fits` compiles and runs one step; a batch does not fit when XLA reports
RESOURCE_EXHAUSTED / out of memory, or, on CPU, when the memory XLA plans for the step
exceeds 70% of the memory available now (`cpu_budget`): running it would swap or meet the
kernel's OOM killer rather than fail cleanly.
"""

from __future__ import annotations

from typing import Callable

OUT_OF_MEMORY = ("RESOURCE_EXHAUSTED", "Out of memory", "out of memory", "OOM")


def is_out_of_memory(err: BaseException) -> bool:
  return isinstance(err, MemoryError) or any(marker in str(err) for marker in OUT_OF_MEMORY)


def available_memory() -> int | None:
  """MemAvailable from /proc/meminfo in bytes (None where there is none)."""
  try:
    with open("/proc/meminfo") as f:
      for line in f:
        if line.startswith("MemAvailable:"):
          return int(line.split()[1]) * 1024
  except OSError:
    return None
  return None


def search(fits: Callable[[int], bool], start: int, unit: int, cap: int) -> tuple[int, list[tuple[int, bool]]]:
  """(largest batch that fits or 0, [(batch, fitted)] in the order tried); see the module doc."""
  cap = cap // unit * unit if unit >= 1 else cap  # only multiples of unit are ever tried
  if unit < 1 or start < unit or start % unit or cap < start:
    raise ValueError(f"need 1 <= unit <= start <= cap and start a multiple of unit; got start={start}, "
                     f"unit={unit}, cap={cap}")
  tried: list[tuple[int, bool]] = []

  def attempt(batch: int) -> bool:
    ok = fits(batch)
    tried.append((batch, ok))
    return ok

  good, bad, batch = 0, None, start
  while True:
    if not attempt(batch):
      bad = batch
      break
    good = batch
    if batch >= cap:
      return good, tried
    batch = min(2 * batch, cap // unit * unit)
  while bad - good > unit:
    middle = (good + bad) // 2 // unit * unit
    if middle <= good:
      break
    if attempt(middle):
      good = middle
    else:
      bad = middle
  return good, tried


def default_cap(platform: str) -> int:
  """Largest batch tried unless --max-batch says otherwise: 64 on CPU, 4096 elsewhere."""
  return 64 if platform == "cpu" else 4096


def cpu_budget(fraction: float = 0.7) -> int | None:
  """Bytes a CPU step may plan to use: `fraction` of the memory available now (None if unknown)."""
  memory = available_memory()
  return int(memory * fraction) if memory else None

