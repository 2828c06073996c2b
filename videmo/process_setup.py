"""Process set-up for videmo's commands: console logging, XLA:CPU's flags, glibc's malloc, and
the persistent compilation cache of the runs a sweep starts.

Everything here changes the whole process, so only entry points call it, before JAX starts its
backend and threads: `videmo train` (videmo/train/cli.py), `videmo eval` (videmo/eval_command.py)
and `videmo bench` (videmo/bench/cli.py). Library code never calls it; the import-linter layers
(pyproject.toml) put this module above data, models and ops, so they cannot import it. It
imports nothing of videmo.

Host memory for XLA:CPU (`reuse_freed_buffers`): XLA:CPU allocates each execution's temporary
buffer (one block: 157 MiB for the SynthEmo train step, about 1 GiB at full width) with malloc
from one of its worker threads and frees it when the step ends. glibc serves a block that large
from a fresh `mmap` and returns it with `munmap` on free (a worker thread's arena cannot hold
it, so glibc maps it even when mapping is switched off for that arena), so every step
page-faults and zero-fills the whole block again: 38,000 faults and 25% of the small step's
time on a 2-core EPYC (docs/benchmarks.md). The tuning makes every thread allocate from the
main arena (M_ARENA_MAX = 1), grow it with brk instead of mmap (M_MMAP_MAX = 0) and never give
freed memory back to the system (M_TRIM_THRESHOLD): after the first step the same pages serve
every later one. The price is that the process keeps its peak heap until it exits, and that
all threads share one arena's lock.

That trade only pays where XLA:CPU runs the step, so it is applied only when JAX's default
backend will be the CPU (`default_backend_is_cpu`, decided without starting JAX). On a GPU or
TPU host the step's buffers live on the device, while the loader's decoding threads would
contend for the single arena and the host would keep every peak (e.g. of a checkpoint's
host copy) for the whole run; there malloc is left alone.
"""

from __future__ import annotations

import ctypes
import glob
import hashlib
import platform
import importlib.util
import logging
import os
import pkgutil
import sys
from importlib import metadata
from typing import Mapping

log = logging.getLogger(__name__)


def setup_logging(level: str) -> None:
  """The console log format and level of a command."""
  logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")


# ----------------------------------------------------------------------------- XLA:CPU flags

# The fastest XLA:CPU flags measured for videmo's training step (docs/benchmarks.md): XLA's own
# (Eigen) convolutions instead of YNNPACK's, for the convolutions oneDNN does not take over.
# XLA reads the flags when its backend starts; other platforms ignore them.
FAST_CPU_XLA_FLAGS = "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution"


def use_fast_cpu_xla_flags() -> bool:
  """Set XLA_FLAGS to FAST_CPU_XLA_FLAGS unless the user has set XLA_FLAGS (before JAX starts
  its backend). Returns whether it set them."""
  if "XLA_FLAGS" in os.environ:
    return False
  os.environ["XLA_FLAGS"] = FAST_CPU_XLA_FLAGS
  return True


# ----------------------------------------------------------------------------- which backend

# Device nodes of the accelerators JAX's plugins drive (jax/_src/hardware_utils.py): NVIDIA
# (bare metal, containers, WSL2), AMD (ROCm's KFD), TPU (accel or vfio).
_ACCELERATOR_DEVICES = ("/dev/nvidia0", "/dev/nvidiactl", "/dev/dxg", "/dev/kfd")
_ACCELERATOR_DEVICE_GLOBS = ("/dev/accel[0-9]*", "/dev/vfio/[0-9]*")


def jax_accelerator_plugin_installed() -> bool:
  """Whether a JAX backend besides the CPU is installed: a PJRT plugin (the `jax_plugins`
  entry points or namespace package, as JAX finds them) or libtpu. Imports none of them."""
  if any(True for _ in metadata.entry_points(group="jax_plugins")):
    return True
  namespace = importlib.util.find_spec("jax_plugins")
  if namespace is not None and any(True for _ in pkgutil.iter_modules(namespace.submodule_search_locations or [])):
    return True
  return importlib.util.find_spec("libtpu") is not None


def accelerator_visible() -> bool:
  """Whether this host exposes an NVIDIA, AMD or TPU device node."""
  return (any(os.path.exists(path) for path in _ACCELERATOR_DEVICES)
          or any(glob.glob(pattern) for pattern in _ACCELERATOR_DEVICE_GLOBS))


def default_backend_is_cpu(environ: Mapping[str, str] | None = None) -> bool:
  """Whether JAX's default backend will be the CPU, decided without importing JAX.

  JAX_PLATFORM_NAME, if set, names the default backend; else JAX_PLATFORMS, if set, lists the
  platforms JAX may use, the first being the default (JAX gives it the highest priority). With
  neither set JAX takes an accelerator when a plugin for one is installed and finds its device,
  so the CPU is the default unless both an accelerator plugin and an accelerator device are
  present (a GPU host without CUDA-enabled JAX runs on the CPU, as JAX itself falls back).
  """
  environ = os.environ if environ is None else environ
  named = environ.get("JAX_PLATFORM_NAME", "").strip().lower()
  listed = environ.get("JAX_PLATFORMS", "").strip().lower()
  if named or listed:
    return (named or listed.split(",")[0].strip()) == "cpu"
  return not (jax_accelerator_plugin_installed() and accelerator_visible())


# ----------------------------------------------------------------------------- host memory

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
  """Tune glibc's malloc as the module doc says (before JAX starts its threads).

  Does nothing, and returns False, when JAX's default backend will not be the CPU
  (`default_backend_is_cpu`), off Linux, without glibc, when VIDEMO_MALLOC=default, or when the
  user tunes or replaces malloc (GLIBC_TUNABLES, MALLOC_* variables, LD_PRELOAD).
  """
  if sys.platform != "linux" or os.environ.get("VIDEMO_MALLOC", "") == "default" or user_chose_allocator():
    return False
  if not default_backend_is_cpu():
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


# ----------------------------------------------------------------------------- compilation cache

def host_fingerprint() -> str:
  """A short name for this kind of host: the machine type and the CPU's feature flags.

  XLA:CPU compiles for the CPU it runs on (AVX-512 code does not run on an AVX2 CPU), and JAX's
  cache key names the platform but not the CPU's features, so a cache shared by several kinds
  of machine (a home folder on a network disk) keeps one folder per kind.
  """
  flags = ""
  try:
    with open("/proc/cpuinfo") as f:
      flags = next((line.split(":", 1)[1] for line in f if line.startswith(("flags", "Features"))), "")
  except OSError:
    pass
  text = " ".join([platform.machine(), platform.system(), *sorted(flags.split())])
  return f"{platform.machine()}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def compilation_cache_dir(environ: Mapping[str, str] | None = None) -> str:
  """Where a sweep's runs share compiled programs: JAX's own option JAX_COMPILATION_CACHE_DIR,
  as set, if it is set; else $VIDEMO_CACHE_DIR/xla (default ~/.cache/videmo/xla) with one
  folder per host kind below it."""
  environ = os.environ if environ is None else environ
  if environ.get("JAX_COMPILATION_CACHE_DIR"):
    return environ["JAX_COMPILATION_CACHE_DIR"]
  root = os.path.join(environ.get("VIDEMO_CACHE_DIR") or os.path.join(
      environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "videmo"), "xla")
  return os.path.join(root, host_fingerprint())


def with_compilation_cache(environ: Mapping[str, str], enabled: bool = True) -> dict[str, str]:
  """The environment of a child `videmo train` with JAX's persistent compilation cache on (in
  `compilation_cache_dir`, every program cached however short its compile) or off.

  JAX keys each entry on the program, its compile options, the XLA flags, the platform and
  jax/jaxlib's versions, and writes entries atomically, so processes share one folder safely;
  a run that finds its programs there skips XLA's compiler and computes the same bits.
  """
  env = dict(environ)
  if not enabled:
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    return env
  env["JAX_COMPILATION_CACHE_DIR"] = compilation_cache_dir(environ)
  env.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
  return env
