"""JAX's persistent compilation cache across runs: the second identical run compiles nothing new
and computes the same bits (a hit against a miss), and a sweep's runs share one cache per host kind."""

import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from videmo import process_setup
from videmo.train.trained_run import TrainedRun

import tiny


def _entries(cache) -> set[str]:
  """The cache's compiled programs (JAX writes KEY-cache, and KEY-atime for its LRU policy)."""
  return {p.name for p in cache.rglob("*") if p.is_file() and not p.name.endswith("-atime")}


def _train(workdir, data_dir, cache) -> subprocess.CompletedProcess:
  env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(cache), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
  return subprocess.run([sys.executable, "-m", "videmo.main", "train", "--config=configs/table1_sa2_reg1.py",
                         f"--workdir={workdir}", *tiny.flags(data_dir, 2)],
                        capture_output=True, text=True, env=env, timeout=600, cwd=tiny.REPO)


@pytest.mark.slow
def test_a_second_identical_run_compiles_nothing_new_and_ends_with_the_same_parameters(synthemo_tiny, tmp_path):
  cache = tmp_path / "xla"
  first = _train(tmp_path / "a", synthemo_tiny, cache)
  assert first.returncode == 0, first.stderr[-3000:]
  after_first = _entries(cache)
  assert len(after_first) >= 3  # at least the initialiser, the train step and the eval step
  second = _train(tmp_path / "b", synthemo_tiny, cache)
  assert second.returncode == 0, second.stderr[-3000:]
  assert _entries(cache) == after_first  # every program of the second run came from the cache
  (params_a, step_a), (params_b, step_b) = (TrainedRun.open(tmp_path / w).restore() for w in ("a", "b"))
  assert step_a == step_b == 2
  jax.tree.map(np.testing.assert_array_equal, params_a, params_b)


def test_a_sweep_child_gets_one_cache_folder_per_host_kind_or_none(monkeypatch):
  env = process_setup.with_compilation_cache({"JAX_COMPILATION_CACHE_DIR": "/shared/jax", "HOME": "/h"})
  assert env["JAX_COMPILATION_CACHE_DIR"] == "/shared/jax"  # JAX's own option, as the user set it
  assert env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] == "0"
  default = process_setup.with_compilation_cache({"VIDEMO_CACHE_DIR": "/v"})
  assert default["JAX_COMPILATION_CACHE_DIR"] == f"/v/xla/{process_setup.host_fingerprint()}"
  off = process_setup.with_compilation_cache({"JAX_COMPILATION_CACHE_DIR": "/shared/jax"}, enabled=False)
  assert "JAX_COMPILATION_CACHE_DIR" not in off
  assert process_setup.host_fingerprint().startswith(os.uname().machine + "-")
