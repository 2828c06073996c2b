"""glibc malloc tuned so that a worker thread's large freed buffer serves the next allocation, and
only where JAX's default backend will be the CPU (videmo/process_setup.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="glibc's mallopt")

# In a fresh process: optionally tune malloc, then from a worker thread (as XLA's) allocate,
# fill and free a block larger than glibc's largest mmap threshold, twice; print the page faults
# of the second round.
_PROBE = textwrap.dedent("""
    import ctypes, resource, sys, threading
    from videmo import process_setup
    tuned = process_setup.reuse_freed_buffers() if sys.argv[1] == "tune" else False
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, (ctypes.c_size_t,)
    libc.free.argtypes = (ctypes.c_void_p,)
    size = 160 * 2**20
    faults = []
    def round_trip():
      before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
      block = libc.malloc(size)
      ctypes.memset(block, 1, size)
      libc.free(block)
      faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    for _ in range(2):
      worker = threading.Thread(target=round_trip)
      worker.start(); worker.join()
    print(tuned, faults[0], faults[1])
""")


def _probe(mode: str, **env) -> tuple[bool, int, int]:
  """(tuned, page faults of round 1, of round 2) in a fresh process; JAX_PLATFORMS=cpu unless `env` says."""
  environment = {k: v for k, v in os.environ.items()
                 if k not in ("GLIBC_TUNABLES", "VIDEMO_MALLOC", "JAX_PLATFORM_NAME")}
  environment["JAX_PLATFORMS"] = "cpu"
  result = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True,
                          env={**environment, **env}, timeout=120)
  tuned, first, second = result.stdout.split()
  return tuned == "True", int(first), int(second)


# Counts are compared round against round, not against a page count: with transparent huge
# pages always on, one fault maps 2 MiB.
def test_a_freed_block_is_reused_without_page_faults():
  tuned, first, second = _probe("tune")
  assert tuned
  assert first > 0 and second * 10 < first, (first, second)  # the second round reuses the first's pages


def test_without_tuning_every_round_faults_again():
  # What the tuning fixes (if this glibc ever reuses such blocks by itself, the tuning is moot).
  tuned, first, second = _probe("plain")
  assert not tuned and first > 0 and second * 2 >= first, (first, second)


@pytest.mark.parametrize("env", [dict(VIDEMO_MALLOC="default"), dict(GLIBC_TUNABLES="glibc.malloc.hugetlb=1"),
                                 dict(MALLOC_ARENA_MAX="4")])
def test_the_user_s_own_malloc_settings_are_left_alone(env):
  tuned, _, _ = _probe("tune", **env)
  assert not tuned


@pytest.mark.parametrize("platforms", ["cuda", "tpu,cpu", "gpu"])
def test_malloc_is_left_alone_when_the_default_backend_is_an_accelerator(platforms):
  tuned, first, second = _probe("tune", JAX_PLATFORMS=platforms)
  assert not tuned and second * 2 >= first, (first, second)


@pytest.mark.parametrize("environ, plugin, device, cpu", [
    (dict(JAX_PLATFORMS="cpu"), True, True, True),          # pinned to the CPU on a GPU host
    (dict(JAX_PLATFORMS="cpu,cuda"), True, True, True),     # the first listed platform is the default
    (dict(JAX_PLATFORMS="cuda,cpu"), False, False, False),
    (dict(JAX_PLATFORMS="tpu"), False, False, False),
    (dict(JAX_PLATFORM_NAME="cpu", JAX_PLATFORMS="cuda,cpu"), True, True, True),  # the name wins
    (dict(JAX_PLATFORMS=""), True, True, False),            # empty: JAX chooses, and takes the GPU
    ({}, True, True, False),                                # a CUDA plugin and a GPU
    ({}, False, True, True),                                # a GPU but no CUDA-enabled JAX: JAX runs on the CPU
    ({}, True, False, True),                                # a CUDA plugin but no GPU: JAX skips the plugin
    ({}, False, False, True),
])
def test_default_backend_is_decided_without_starting_jax(monkeypatch, environ, plugin, device, cpu):
  from videmo import process_setup

  monkeypatch.setattr(process_setup, "jax_accelerator_plugin_installed", lambda: plugin)
  monkeypatch.setattr(process_setup, "accelerator_visible", lambda: device)
  assert process_setup.default_backend_is_cpu(environ) is cpu


def test_this_environment_s_plugins_are_found_without_importing_jax():
  probe = ("import sys; from videmo import process_setup; "
           "print(process_setup.jax_accelerator_plugin_installed(), process_setup.accelerator_visible(), "
           "'jax' in sys.modules)")
  result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
  plugin, device, jax_imported = result.stdout.split()
  assert jax_imported == "False"
  assert plugin in ("True", "False") and device in ("True", "False")
