"""Test-wide setup, fixtures and markers.

* 8 simulated CPU devices, so multi-device code runs on one machine. The flag must be in
  XLA_FLAGS before JAX initialises its backend, hence here, before any test imports jax; it is
  added to flags the caller already set.
* One persistent XLA compilation cache per test run, shared by the pytest-xdist workers and the
  subprocesses tests start (they inherit the environment): the same tiny step is compiled once,
  not once per test. It lives in a temporary folder removed when the run ends.
* `synthemo_tiny`: the synthemo/tiny dataset, built once per test run and shared by the xdist
  workers (a file lock: the first to need it builds it, the other waits and reads it);
  `tiny_run`: a tiny training run on it, trained once per test run the same way
  (`tiny_workdir`, `tiny_predictor`: its folder, its Predictor).
* The `slow` marker (pyproject.toml): `python -m pytest -m "not slow"` skips the end-to-end runs;
  slow tests are handed out first.
"""

import fcntl
import json
import os
import shutil
import tempfile
from pathlib import Path

_DEVICES = "--xla_force_host_platform_device_count=8"
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_DEVICES}".strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

_CACHE_VARIABLE = "VIDEMO_TEST_COMPILATION_CACHE"
if _CACHE_VARIABLE not in os.environ:  # the first process of the run (the xdist controller)
  os.environ[_CACHE_VARIABLE] = tempfile.mkdtemp(prefix="videmo-test-xla-cache-")
  _OWNS_CACHE = True
else:
  _OWNS_CACHE = False
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.environ[_CACHE_VARIABLE])
_SHARED = Path(os.environ[_CACHE_VARIABLE] + "-shared")  # what the workers make once between them
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")

import pytest  # noqa: E402


def pytest_collection_modifyitems(items):
  """Modules with slow tests first, each module's tests kept together (module fixtures are set
  up once): pytest-xdist hands tests out in this order, so the long end-to-end runs start early
  and the many short tests fill the workers' last minutes."""
  slow_modules = {item.module.__name__ for item in items if item.get_closest_marker("slow")}
  items.sort(key=lambda item: item.module.__name__ not in slow_modules)


def pytest_unconfigure(config):
  if _OWNS_CACHE and not hasattr(config, "workerinput"):
    shutil.rmtree(os.environ[_CACHE_VARIABLE], ignore_errors=True)
    shutil.rmtree(_SHARED, ignore_errors=True)


def _made_once(name: str, make) -> Path:
  """_SHARED/name, made by `make(folder)` in the first process of the test run that asks for it;
  the others wait on a file lock and read it (a `done` file marks it complete)."""
  _SHARED.mkdir(parents=True, exist_ok=True)
  folder = _SHARED / name
  with open(_SHARED / f"{name}.lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not (folder / "done").exists():
      shutil.rmtree(folder, ignore_errors=True)
      folder.mkdir()
      make(folder)
      (folder / "done").write_text("")
  return folder


@pytest.fixture(scope="session")
def synthemo_tiny():
  """Data directory holding synthemo/tiny (28 / 14 clips of 4-10 frames at 32x32). Shared: read it,
  never write into it."""
  from videmo.data.preparation.prepare import load_builder

  def build(directory):
    load_builder("synthemo/tiny", directory, workers=1).download_and_prepare(file_format="array_record")

  return _made_once("tfds", build)


@pytest.fixture(scope="session")
def tiny_run(synthemo_tiny):
  """(work directory, final metrics record) of configs/synthemo.py shrunk by tiny.shrink and
  trained for 2 steps from a random trunk. Shared: read it in place; copy it
  (`shutil.copytree`) to train it further."""
  import tiny
  from videmo.train import loop

  def train(directory):
    loop.train_and_evaluate(tiny.shrink(tiny.load("synthemo"), synthemo_tiny, steps=2), directory / "run")

  directory = _made_once("tiny_run", train) / "run"
  return directory, json.loads((directory / "metrics.json").read_text())


@pytest.fixture(scope="session")
def tiny_workdir(tiny_run):
  """The work directory of `tiny_run`."""
  return tiny_run[0]


@pytest.fixture(scope="session")
def tiny_predictor(tiny_workdir):
  """A videmo.predict.Predictor of `tiny_run`'s model."""
  from videmo.predict import Predictor

  return Predictor(tiny_workdir)
