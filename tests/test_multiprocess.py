"""Training as several processes on one machine (launch/local_processes.sh, jax.distributed, gloo).

Two processes with 4 CPU devices each run the same SPMD program over the same 8 devices as one
process with 8: each process reads its half of every global batch and of every evaluation
batch, the gradients are summed across processes by gloo instead of in process. Only the order
of the sums differs, so losses and parameters agree to float32 round-off: per step, 1e-5 of the
loss; at the end, 1e-3 of each parameter's change over the run, beyond two units in the last
place of the parameter (the values are float32; the trunk's learning rate of 1e-5 moves them by
a few hundred units). Measured over 8 steps: losses (float32, from the TensorBoard events)
within 1.5e-7, parameters within 5.8e-7 of their change once one-unit differences are set aside.
"""

import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest


import tiny
from tiny import REPO

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("multiprocess")]

STEPS = 8
CHECKPOINT_EVERY = 4  # multi-process saves are barriers: 2 of them per run, not 8


def _environment(port: int, heartbeat_s: int = 60) -> dict:
  env = dict(os.environ, XLA_FLAGS="", JAX_PLATFORMS="cpu", PORT=str(port), VIDEMO_HEARTBEAT_TIMEOUT=str(heartbeat_s))
  env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"  # the `videmo` of this environment
  return env


def _overrides(data_dir, steps: int = STEPS) -> list[str]:
  return [*tiny.flags(data_dir, steps), "--config.num_devices=0", "--config.batch_size=8",
          "--config.eval_batch_size=8", f"--config.checkpoint_every_steps={CHECKPOINT_EVERY}"]


def _launch(workdir, data_dir, processes: int, devices: int, port: int, steps: int = STEPS, **popen):
  command = [str(REPO / "launch" / "local_processes.sh"), str(processes), str(REPO / "configs" / "table1_sa2_reg1.py"),
             str(workdir), *_overrides(data_dir, steps), f"--config.keep_checkpoints={steps}"]
  env = dict(_environment(port), DEVICES_PER_PROCESS=str(devices))
  return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def _run(workdir, data_dir, processes: int, devices: int, port: int, steps: int = STEPS) -> str:
  process = _launch(workdir, data_dir, processes, devices, port, steps)
  out, _ = process.communicate(timeout=600)
  assert process.returncode == 0, out[-3000:]
  return out


def _scalars(workdir, tag: str = "train/loss") -> dict[int, float]:
  """step -> value of `tag` from the run's TensorBoard event files (float32, as written)."""
  from tensorboardX.proto import event_pb2

  values = {}
  for path in sorted(Path(workdir).glob("events.out.tfevents.*")):
    data, at = path.read_bytes(), 0
    while at + 12 <= len(data):  # TFRecord: length (8 bytes), its CRC (4), the record, its CRC (4)
      (length,) = struct.unpack("<Q", data[at:at + 8])
      event = event_pb2.Event.FromString(data[at + 12:at + 12 + length])
      at += 16 + length
      values.update({event.step: v.simple_value for v in event.summary.value if v.tag == tag})
  return values


def _restore(workdir, step: int | None = None):
  """(step, state) of a checkpoint onto this process's first device, whatever topology wrote it."""
  manager = ocp.CheckpointManager(Path(workdir) / "checkpoints", item_handlers=ocp.StandardCheckpointHandler())
  step = manager.latest_step() if step is None else step
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), manager.item_metadata(step))
  state = manager.restore(step, args=ocp.args.StandardRestore(target))
  manager.close()
  return step, jax.device_get(state)


def _training_process(group: int, process_id: int) -> int:
  """The pid of `videmo train` with VIDEMO_PROCESS_ID=process_id in process group `group`."""
  for entry in Path("/proc").iterdir():
    try:
      pid = int(entry.name)
      if os.getpgid(pid) != group or b"videmo" not in (entry / "cmdline").read_bytes():
        continue
      if f"VIDEMO_PROCESS_ID={process_id}\0".encode() in (entry / "environ").read_bytes():
        return pid
    except (ValueError, OSError):
      continue
  raise AssertionError(f"no training process {process_id} in process group {group}")


@pytest.fixture(scope="module")
def two_processes(synthemo_tiny, tmp_path_factory):
  """(work directory, log) of an uninterrupted run of 2 processes x 4 devices, STEPS steps."""
  workdir = tmp_path_factory.mktemp("two_processes")
  return workdir, _run(workdir, synthemo_tiny, processes=2, devices=4, port=12402)


def test_two_processes_of_four_devices_train_as_one_process_of_eight(synthemo_tiny, two_processes, tmp_path):
  one = tmp_path / "one"
  _run(one, synthemo_tiny, processes=1, devices=8, port=12401)
  two, log_two = two_processes
  losses_one, losses_two = _scalars(one), _scalars(two)
  assert sorted(losses_one) == sorted(losses_two) == list(range(1, STEPS + 1)), log_two[-2000:]
  loss_gap = max(abs(losses_one[s] - losses_two[s]) / abs(losses_one[s]) for s in losses_one)
  assert loss_gap <= 1e-5, loss_gap
  (step_a, a), (step_b, b) = _restore(one), _restore(two)
  assert step_a == step_b == STEPS
  _, start = _restore(one, CHECKPOINT_EVERY)  # each parameter's change from the first checkpoint on
  gaps = {}
  for (path, s), x, y in zip(jax.tree_util.tree_leaves_with_path(start["params"]), jax.tree.leaves(a["params"]),
                             jax.tree.leaves(b["params"])):
    x, y, s = np.asarray(x), np.asarray(y), np.asarray(s)
    # Each update is rounded into the float32 parameter: runs whose updates differ by round-off
    # may store values one unit in the last place apart, which is not small next to the tiny
    # changes of the trunk (learning rate 1e-5). Those units are allowed on top of the bound.
    excess = np.maximum(np.abs(x - y) - 2 * np.spacing(np.abs(x)), 0).max()
    gaps[jax.tree_util.keystr(path)] = excess / max(np.abs(x - s).max(), 1e-12)
  print(f"largest relative gap: loss {loss_gap:.1e}, parameter change {max(gaps.values()):.1e}")
  assert max(gaps.values()) <= 1e-3, sorted(gaps.items(), key=lambda kv: -kv[1])[:6]
  m1, m2 = (json.loads((workdir / "metrics.json").read_text()) for workdir in (one, two))
  assert m1["wrong"]["confusion"] == m2["wrong"]["confusion"] and m1["wrong"]["clips_scored"] > 0
  assert abs(m1["loss"] - m2["loss"]) <= 1e-5 * abs(m1["loss"])  # the evaluation, combined over processes
  assert "Traceback" not in (two / "process_1.log").read_text()


def test_when_one_process_dies_the_other_exits_and_a_relaunch_ends_as_an_uninterrupted_run(
    synthemo_tiny, two_processes, tmp_path):
  """Process 1 is killed once the first checkpoint is written; process 0 must notice (lost
  heartbeats) and exit instead of hanging in a collective; the relaunched run resumes from what
  was saved and ends with the uninterrupted run's parameters and optimiser state, bit for bit."""
  (straight, _), killed, heartbeat_s = two_processes, tmp_path / "killed", 10
  env = dict(_environment(12406, heartbeat_s), DEVICES_PER_PROCESS="4")
  command = [str(REPO / "launch" / "local_processes.sh"), "2", str(REPO / "configs" / "table1_sa2_reg1.py"),
             str(killed), *_overrides(synthemo_tiny), f"--config.keep_checkpoints={STEPS}"]
  launcher = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True)
  try:
    deadline = time.time() + 300
    first = killed / "checkpoints" / str(CHECKPOINT_EVERY)
    while time.time() < deadline and not first.exists() and launcher.poll() is None:
      time.sleep(0.05)
    assert first.exists(), "training did not start"
    assert launcher.poll() is None, "the run finished before it could be killed"
    process_1 = _training_process(os.getpgid(launcher.pid), process_id=1)
    killed_at = time.time()
    os.kill(process_1, signal.SIGKILL)
    out, _ = launcher.communicate(timeout=heartbeat_s * 6 + 60)
    waited = time.time() - killed_at
  finally:
    if launcher.poll() is None:
      os.killpg(launcher.pid, signal.SIGKILL)
  assert launcher.returncode != 0
  assert waited < heartbeat_s * 6, waited
  assert "local_processes.sh: process 1 exited with status 137 (signal 9)" in out, out[-2000:]
  print(f"process 0 exited {waited:.1f} s after process 1 was killed; its last lines:\n{out[-1500:]}")
  time.sleep(1)
  out = _run(killed, synthemo_tiny, processes=2, devices=4, port=12405)
  assert "resumed from" in out
  (step_a, a), (step_b, b) = _restore(straight), _restore(killed)
  assert step_a == step_b == STEPS
  jax.tree.map(np.testing.assert_array_equal, a["params"], b["params"])
  jax.tree.map(np.testing.assert_array_equal, a["opt_state"], b["opt_state"])
