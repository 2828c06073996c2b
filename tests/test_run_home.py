"""A finished run is one object (TrainedRun), and reading or writing one changes nothing process-wide.

* `TrainedRun.open` reads a work directory or a step folder; every reader goes through it.
* One `videmo train` per work directory: a second is refused in one line naming the first.
* A damaged checkpoint is called damaged by resume, `videmo predict` and `videmo export`
  (its files are checked against the manifest written when it was saved).
* No library module changes fd 2, `sys.unraisablehook`, logging handlers or matplotlib's
  backend, on import or on the damaged-checkpoint path.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from videmo.data import clip_list
from videmo.train import checkpoint as checkpoint_lib
from videmo.train import run_dir, run_lock
from videmo.train.trained_run import TrainedRun

import tiny


def _cut_short(step_folder: Path) -> Path:
  """Truncate the largest data file of a checkpoint to half its size (a disk that filled up)."""
  files = [p for p in step_folder.rglob("*") if p.is_file() and p.name != run_dir.MANIFEST_FILE]
  largest = max(files, key=lambda p: p.stat().st_size)
  with open(largest, "r+b") as f:
    f.truncate(largest.stat().st_size // 2)
  return largest


def test_a_trained_run_opens_from_its_folder_or_a_step_folder(tiny_workdir):
  run = TrainedRun.open(tiny_workdir)
  assert run.step == 2 and run.requested_step is None and run.workdir == tiny_workdir.absolute()
  assert run.dataset.name == "synthemo/tiny" and run.dataset.synthetic and len(run.class_names) == 7
  step_one = TrainedRun.open(tiny_workdir / "checkpoints" / "1")
  assert step_one.step == 1 and step_one.workdir == run.workdir
  assert TrainedRun.open(tiny_workdir / "checkpoints").step == 2
  params, step = step_one.restore()
  assert step == 1 and set(params) >= {"trunk"}
  for name in (f"checkpoints/{s}/{run_dir.MANIFEST_FILE}" for s in (1, 2)):
    entries = json.loads((tiny_workdir / name).read_text())["files"]
    assert entries and all(size >= 0 for size, _ in entries.values())
  with pytest.raises(FileNotFoundError, match="does not exist"):
    TrainedRun.open(tiny_workdir / "checkpoints" / "7")


def test_the_manifest_tells_a_damaged_checkpoint(tmp_path):
  folder = tmp_path / "5"
  (folder / "d").mkdir(parents=True)
  (folder / "d" / "a").write_bytes(b"x" * 1000)
  (folder / "b").write_bytes(b"y" * 10)
  assert checkpoint_lib.damage(folder) is None  # no manifest: nothing to tell
  checkpoint_lib.write_manifest(folder)
  assert checkpoint_lib.damage(folder) is None
  (folder / "b").write_bytes(b"z" * 10)  # same size, other bytes
  assert "b has changed" in checkpoint_lib.damage(folder)
  (folder / "b").write_bytes(b"y" * 10)
  with open(folder / "d" / "a", "r+b") as f:
    f.truncate(500)
  assert checkpoint_lib.damage(folder) == "d/a is 500 bytes, 1000 when saved"
  (folder / "d" / "a").unlink()
  assert checkpoint_lib.damage(folder) == "d/a is missing"


def test_a_stale_lock_file_is_taken_and_a_held_one_is_refused(tmp_path):
  run_dir.lock_path(tmp_path).write_text(json.dumps(dict(pid=999999, host="gone", since="yesterday")))
  with run_lock.held(tmp_path):  # nobody holds it: a file left by a dead process is no lock
    record = json.loads(run_dir.lock_path(tmp_path).read_text())
    assert record["pid"] == os.getpid()
    holder = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        from videmo.train import run_lock
        try:
          with run_lock.held({str(tmp_path)!r}):
            pass
        except run_lock.WorkdirInUse as err:
          print(err)
        """)], capture_output=True, text=True, timeout=120)
    assert holder.returncode == 0, holder.stderr
    assert f"in use by another videmo train (pid {os.getpid()} on " in holder.stdout
  with run_lock.held(tmp_path):  # released when the block ended
    pass


@pytest.mark.slow
def test_a_second_videmo_train_on_a_workdir_in_use_is_refused_in_one_line(synthemo_tiny, tmp_path):
  holder = subprocess.Popen(
      [sys.executable, "-c", "import sys, time\nfrom videmo.train import run_lock\n"
       f"with run_lock.held({str(tmp_path)!r}):\n  print('held', flush=True)\n  time.sleep(120)\n"],
      stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == "held"
    result = subprocess.run([sys.executable, "-m", "videmo.main", "train", "--config=configs/table1_sa2_reg1.py",
                             f"--workdir={tmp_path}", *tiny.flags(synthemo_tiny, 2)],
                            capture_output=True, text=True, timeout=300, cwd=tiny.REPO)
  finally:
    holder.kill()
    holder.wait()
  assert result.returncode == 1
  errors = [line for line in result.stderr.splitlines() if line.startswith("videmo train:")]
  assert len(errors) == 1, result.stderr[-2000:]
  assert f"is in use by another videmo train (pid {holder.pid} on " in errors[0]
  assert not (tmp_path / run_dir.CHECKPOINTS_DIR).exists()  # nothing written


@pytest.mark.slow
def test_predict_and_export_call_a_damaged_checkpoint_damaged(tiny_workdir, tmp_path, capsys):
  from videmo.export import cli as export_cli
  from videmo.predict import cli as predict_cli

  workdir = tmp_path / "run"
  shutil.copytree(tiny_workdir, workdir)
  _cut_short(workdir / "checkpoints" / "2")
  frames = tmp_path / "frames.npy"
  np.save(frames, np.zeros((3, 32, 32, 3), np.uint8))
  assert predict_cli.main([str(frames), "--checkpoint", str(workdir), "--aligned"]) != 0
  assert export_cli.main(["--checkpoint", str(workdir), "--format", "stablehlo", str(tmp_path / "out")]) != 0
  printed = capsys.readouterr().err
  lines = [line for line in printed.splitlines() if "checkpoints/2 cannot be read" in line]
  assert len(lines) == 2 and all("damaged" in line and "does not match" not in line for line in lines), printed


def test_a_clip_list_without_the_training_split_is_an_error(tmp_path):
  clip_list.write({"format": 1, "dataset": "x", "splits": {"validation": [
      dict(clip_id="a", source="a.avi", label="Happy", status="no_face", reason="")]}}, tmp_path)
  assert clip_list.split_labels(tmp_path, "validation", ["Angry", "Happy"]) == [1]
  with pytest.raises(ValueError, match="lists no split 'train'"):
    clip_list.split_labels(tmp_path, "train", ["Angry", "Happy"])


_PROCESS_STATE = """
import json, logging, os, sys
def state():
  import matplotlib
  return dict(fd2=list(os.fstat(2))[:2], hook=repr(sys.unraisablehook),
              handlers=[repr(h) for h in logging.getLogger().handlers],
              asyncio_disabled=logging.getLogger("asyncio").disabled,
              backend=matplotlib.rcParams._get_backend_or_none())
# Third-party imports first: orbax logs through absl at import time, and absl then calls
# logging.basicConfig() (a root handler) when none is set. What is checked is videmo's own doing.
import jax, flax.linen, optax, orbax.checkpoint, tensorflow_datasets, grain, dlib, av
before = state()
import importlib, pkgutil, videmo
for module in pkgutil.walk_packages(videmo.__path__, "videmo."):
  if module.name.endswith("__main__") or "beam" in module.name:
    continue
  importlib.import_module(module.name)
after_import = state()
from videmo.train import checkpoint
from videmo.train.trained_run import TrainedRun
try:
  TrainedRun.open(sys.argv[1]).restore()
  outcome = "restored"
except checkpoint.CheckpointReadError as err:
  outcome = str(err)
print(json.dumps(dict(before=before, after_import=after_import, after_damage=state(), outcome=outcome)))
"""


@pytest.mark.slow
def test_no_library_module_changes_process_wide_state(tiny_workdir, tmp_path):
  workdir = tmp_path / "run"
  shutil.copytree(tiny_workdir, workdir)
  _cut_short(workdir / "checkpoints" / "2")
  result = subprocess.run([sys.executable, "-c", _PROCESS_STATE, str(workdir)], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, MPLBACKEND=""))
  assert result.returncode == 0, result.stderr[-3000:]
  out = json.loads(result.stdout.strip().splitlines()[-1])
  assert "cannot be read (damaged" in out["outcome"]
  assert out["before"] == out["after_import"] == out["after_damage"]
