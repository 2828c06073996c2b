"""Host memory for XLA:CPU: keep the step's freed buffers for the next step (glibc's malloc).

XLA:CPU allocates each execution's temporary buffer (one block: 157 MiB for the SynthEmo
train step, about 1 GiB at full width) with malloc from one of its worker threads and frees it
when the step ends. glibc serves a block that large from a fresh `mmap` and returns it with
`munmap` on free (a worker thread's arena cannot hold it, so glibc maps it even when mapping is
switched off for that arena), so every step page-faults and zero-fills the whole block again:
38,000 faults and 25% of the small step's time on a 2-core EPYC (docs/benchmarks.md).

`reuse_freed_buffers()` makes every thread allocate from the main arena (M_ARENA_MAX = 1), grow
it with brk instead of mmap (M_MMAP_MAX = 0) and never give freed memory back to the system
(M_TRIM_THRESHOLD): after the first step the same pages serve every later one. The price is
that the process keeps its peak heap until it exits, which a training or benchmark process
does anyway. It is called by the commands that run JAX on CPU (train, eval, bench, predict)
before JAX starts its threads; library code never calls it.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys

log = logging.getLogger(__name__)

# glibc's mallopt parameters (malloc.h).
M_TRIM_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -4, -8
_NEVER_TRIM = 2**31 - 1  # the largest value mallopt's int takes: 2 GiB of free heap kept before trimming
_USER_SETTINGS = ("MALLOC_ARENA_MAX", "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_",
                  "MALLOC_TOP_PAD_", "LD_PRELOAD")


def user_chose_allocator() -> str | None:
  """The environment variable through which the user already tunes or replaces malloc, if any."""
  if "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
    return "GLIBC_TUNABLES"
  return next((name for name in _USER_SETTINGS if os.environ.get(name)), None)


def reuse_freed_buffers() -> bool:
  """Tune glibc's malloc as the module doc says (entry points only, before JAX starts).

  Does nothing, and returns False, off Linux, without glibc, when VIDEMO_MALLOC=default, or when
  the user tunes or replaces malloc (GLIBC_TUNABLES, MALLOC_* variables, LD_PRELOAD).
  """
  if sys.platform != "linux" or os.environ.get("VIDEMO_MALLOC", "") == "default" or user_chose_allocator():
    return False
  try:
    mallopt = ctypes.CDLL(None).mallopt
  except (OSError, AttributeError):  # not glibc (e.g. musl has no mallopt)
    return False
  mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
  done = all(mallopt(param, value) == 1 for param, value in
             ((M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, _NEVER_TRIM)))
  if not done:
    log.warning("could not tune malloc for XLA:CPU's buffers (mallopt refused); steps may run slower")
  return done
