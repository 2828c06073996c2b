"""Training end to end on synthemo/tiny: every config runs, kill-and-resume, NaN stop, eval buckets, learning.

synthemo/tiny (32x32 faces, a few dozen short clips) is built once per test session.
"""

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from videmo import parallel
from videmo.data.loading import pipeline
from videmo.train import checkpoint as checkpoint_lib
from videmo.train import evaluation as evaluation_lib
from videmo.train import experiment, loop, optim
from videmo.train.trained_run import TrainedRun
from videmo.train import steps as steps_lib

import tiny
from tiny import CONFIGS, REPO


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_config_builds_its_model_optimiser_and_steps(path, synthemo_tiny):
  """Each config passes its checks, opens its data, and its train and eval steps trace
  (jax.eval_shape: the whole step is built, nothing is compiled) to the right shapes."""
  config = tiny.shrink(tiny.load(path), synthemo_tiny, steps=1)
  exp = experiment.make_experiment(config)
  state = checkpoint_lib.restore_target(exp.model, config.optim, 32, parallel.replicated(exp.mesh))
  optimizer, _, schedule = optim.make_optimizer(state.params, config.optim, total_steps=10, steps_per_epoch=5)
  train_step = steps_lib.make_train_step(exp.model, optimizer, exp.normalise, config.penalty_coef, schedule)
  batch = next(pipeline.train_batches(exp.train_source, batch_size=4, num_frames=4, crop_size=32, seed=0))
  new_state, metrics = jax.eval_shape(train_step, state, batch, jax.random.key(0))
  assert jax.tree.map(lambda x: (x.shape, x.dtype), new_state) == jax.tree.map(lambda x: (x.shape, x.dtype), state)
  assert {"loss", "cross_entropy", "penalty", "accuracy", "finite", "grad_norm"} <= set(metrics)
  evaluation = jax.eval_shape(steps_lib.make_eval_step(exp.model, exp.normalise), state.params, batch)
  assert evaluation["log_probs"].shape == (4, exp.num_classes)


@pytest.mark.slow
def test_a_run_trains_evaluates_and_writes_its_results(tiny_run):
  workdir, record = tiny_run
  assert record["step"] == 2
  assert set(record) >= {"wrong", "prior", "exclude", "classes", "loss", "frames"}
  assert record["prior_class"] is None  # every clip has a face: no prior class was used
  spread = record["frame_importance_spread"]  # exp(entropy of p(f|S)): between 1 and the frames seen
  assert spread["clips"] == 14 and 1.0 <= spread["effective_frames"] <= 10 and 0 < spread["effective_share"] <= 1
  assert len(record["clip_labels"]) == len(record["clip_predictions"]) == 14
  assert record == json.loads((workdir / "metrics.json").read_text())
  assert (workdir / "confusion.png").exists() and (workdir / "config.json").exists()
  assert sorted(int(p.name) for p in (workdir / "checkpoints").iterdir()) == [1, 2]
  # synthemo/tiny records each clip's expressive window: the top-frame measure is there
  window = record["top_frame_in_window"]
  assert window["clips"] == 12  # the 14 validation clips less the 2 Neutral ones
  for key in ("by_importance", "by_evidence", "chance"):
    assert 0.0 <= window[key] <= 1.0


def test_top_frame_in_window_counts_clips_with_a_window():
  k = 5
  evaluation = evaluation_lib.Evaluation(
      metrics={}, loss=0.0, predictions=np.zeros(k, int), probabilities=np.zeros((k, 7)), labels=np.zeros(k, int),
      has_face=np.ones(k, bool), windows=np.array([[2, 5], [0, 0], [1, 3], [-1, -1], [4, 8]]),
      top_frame_importance=np.array([3, 1, 0, 2, 7]), top_frame_evidence=np.array([2, 1, 2, 2, -1]),
      num_faces=np.array([10, 10, 4, 10, 8]))
  # clip 1 is Neutral, clip 3 has no known window, clip 4 was not scored
  out = evaluation_lib.top_frame_in_window(evaluation, "softmax")
  assert out == dict(clips=2, by_importance=0.5, by_evidence=1.0, chance=pytest.approx((0.3 + 0.5) / 2))
  assert evaluation_lib.top_frame_in_window(evaluation, "average")["by_importance"] is None
  evaluation.windows[:] = -1
  assert evaluation_lib.top_frame_in_window(evaluation, "softmax") is None


@pytest.mark.parametrize("hardware", ["cpu", "gpu", "tpu"])
def test_hardware_variants_load(hardware):
  config = tiny.load("table1_sa2_reg1", hardware)
  assert config.model.dtype == ("float32" if hardware == "cpu" else "bfloat16")


@pytest.mark.parametrize("path", [p for p in CONFIGS if p.stem.startswith("table")], ids=lambda p: p.stem)
def test_every_table_row_has_its_synthemo_analogue(path):
  """`FILE:synthemo` is the row on synthemo/tables with the narrow trunk and a stage 1 on
  stills whose head favours no row (global average pooling, no penalty): the row's own fields
  (what it changes from the base) are those of its AFEW config."""
  afew, synthemo = tiny.load(path), tiny.load(path, "synthemo")
  assert synthemo.dataset == "synthemo/tables" and synthemo.pretrain.dataset == "synthemo/stills_pairs"
  assert synthemo.pretrain.model.spatial == "average" and synthemo.pretrain.penalty_coef == 0.0
  assert synthemo.model.trunk_width_divisor == 8 and synthemo.input.crop_size == 64
  for field in ("spatial", "temporal", "num_heads", "temperature"):
    assert synthemo.model[field] == afew.model[field], field
  assert synthemo.penalty_coef == afew.penalty_coef


def test_paper_config_without_weights_fails_early_and_clearly(synthemo_tiny, tmp_path):
  config = tiny.load("table1_sa2_reg1")
  with pytest.raises(ValueError, match="config.init.weights is empty"):
    loop.train_and_evaluate(config, tmp_path)


def test_wrong_config_values_name_the_field(synthemo_tiny, tmp_path):
  config = tiny.shrink(tiny.load("synthemo"), synthemo_tiny)
  config.no_face_policy = "skip"
  with pytest.raises(ValueError, match=r"config.no_face_policy must be one of \('wrong', 'prior', 'exclude'\)"):
    loop.train_and_evaluate(config, tmp_path)
  config.no_face_policy = "wrong"
  config.model.temporal = "attention"
  with pytest.raises(ValueError, match=r"model.temporal must be one of"):
    loop.train_and_evaluate(config, tmp_path)


def final_params(workdir):
  checkpoints = checkpoint_lib.Checkpoints(workdir)
  step = checkpoints.latest_step()
  restored = checkpoints._manager.restore(step)  # raw tree, no target needed
  checkpoints.close()
  return step, restored


def finished_steps(workdir: Path) -> list[int]:
  """Steps of the complete checkpoints (orbax writes each into a temporary folder first)."""
  folder = workdir / "checkpoints"
  return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) if folder.exists() else []


def train_command(workdir, data_dir, steps):
  return [sys.executable, "-m", "videmo.main", "train", f"--config={REPO / 'configs' / 'table1_sa2_reg1.py'}",
          f"--workdir={workdir}", *tiny.flags(data_dir, steps), "--config.batch_size=8", "--config.eval_batch_size=8",
          "--config.num_devices=2"]


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_parameters(synthemo_tiny, tmp_path):
  """A run killed (SIGKILL) mid-way and restarted ends with the parameters of an uninterrupted run.

  Both runs execute the same compiled step on the same machine with the same devices, the
  restored state is the saved one bit for bit, and batch s is a pure function of (seed, s):
  nothing may differ, not even round-off, so the parameters are compared exactly.
  """
  steps = 6
  straight, killed = tmp_path / "straight", tmp_path / "killed"
  subprocess.run(train_command(straight, synthemo_tiny, steps), check=True, capture_output=True)

  process = subprocess.Popen(train_command(killed, synthemo_tiny, steps),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 300
  while time.time() < deadline and process.poll() is None:
    done = finished_steps(killed)
    if done and done[-1] >= 2:
      break
    time.sleep(0.05)
  assert process.poll() is None, "the run finished before it could be killed"
  process.send_signal(signal.SIGKILL)
  process.wait()
  interrupted_at = finished_steps(killed)[-1]
  assert interrupted_at < steps

  resumed = subprocess.run(train_command(killed, synthemo_tiny, steps), check=True, capture_output=True, text=True)
  assert "resumed from" in resumed.stdout
  step_a, a = final_params(straight)
  step_b, b = final_params(killed)
  assert step_a == step_b == steps
  jax.tree.map(np.testing.assert_array_equal, a["params"], b["params"])
  jax.tree.map(np.testing.assert_array_equal, a["opt_state"], b["opt_state"])
  metrics_a = json.loads((straight / "metrics.json").read_text())
  metrics_b = json.loads((killed / "metrics.json").read_text())
  assert metrics_a["wrong"]["confusion"] == metrics_b["wrong"]["confusion"]


@pytest.mark.slow
def test_a_nan_stops_training_and_keeps_the_last_good_checkpoint(synthemo_tiny, tiny_run, tmp_path):
  shutil.copytree(tiny_run[0], tmp_path, dirs_exist_ok=True)  # 2 good steps
  config = tiny.shrink(tiny.load("synthemo"), synthemo_tiny, steps=4)
  config.optim.groups.trunk.lr = config.optim.groups.head.lr = float("inf")
  with pytest.raises(loop.NonFiniteLossError, match=r"non-finite loss or gradient at step 3.*last good checkpoint is step 2"):
    loop.train_and_evaluate(config, tmp_path)
  step, restored = final_params(tmp_path)
  assert step == 2
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(restored["params"]))


def _cut_short(step_folder: Path) -> Path:
  """Truncate the largest data file of a checkpoint to half its size (a disk that filled up)."""
  files = [p for p in step_folder.rglob("*") if p.is_file() and p.stat().st_size > 0]
  largest = max(files, key=lambda p: p.stat().st_size)
  with open(largest, "r+b") as f:
    f.truncate(largest.stat().st_size // 2)
  return largest


@pytest.mark.slow
def test_a_damaged_newest_checkpoint_is_set_aside_and_the_run_resumes_from_an_older_one(
    synthemo_tiny, tiny_run, tmp_path, capsys, caplog):
  shutil.copytree(tiny_run[0], tmp_path, dirs_exist_ok=True)  # checkpoints 1 and 2
  assert finished_steps(tmp_path) == [1, 2]
  _cut_short(tmp_path / "checkpoints" / "2")
  record = loop.train_and_evaluate(tiny.shrink(tiny.load("synthemo"), synthemo_tiny, steps=3), tmp_path)
  out = capsys.readouterr().out
  warning = [r.getMessage() for r in caplog.records if "cannot be read" in r.getMessage()]
  assert len(warning) == 1 and f"{tmp_path / 'checkpoints' / '2'} cannot be read" in warning[0], warning
  assert "\n" not in warning[0] and "moved it to damaged-2" in warning[0]
  assert f"resumed from {tmp_path / 'checkpoints'}/1" in out
  assert (tmp_path / "checkpoints" / "damaged-2").is_dir()
  assert finished_steps(tmp_path)[-1] == 3 and record["step"] == 3
  step, restored = final_params(tmp_path)
  assert step == 3 and all(np.all(np.isfinite(x)) for x in jax.tree.leaves(restored["params"]))


@pytest.mark.slow
def test_when_no_checkpoint_reads_the_error_is_one_line_naming_the_folder(synthemo_tiny, tiny_run, tmp_path):
  shutil.copytree(tiny_run[0], tmp_path, dirs_exist_ok=True)
  for step in (1, 2):
    _cut_short(tmp_path / "checkpoints" / str(step))
  config = tiny.shrink(tiny.load("synthemo"), synthemo_tiny, steps=3)
  with pytest.raises(checkpoint_lib.CheckpointReadError) as caught:
    loop.train_and_evaluate(config, tmp_path)  # never silently from step 0
  message = str(caught.value)
  assert "\n" not in message and f"{tmp_path / 'checkpoints'}/2 cannot be read" in message
  assert finished_steps(tmp_path) == [1, 2]  # nothing was moved or overwritten
  # Reading that step by name (videmo eval, videmo predict, videmo export) says it is damaged.
  with pytest.raises(checkpoint_lib.CheckpointReadError, match=r"checkpoints/1 cannot be read \(damaged"):
    TrainedRun.open(tmp_path / "checkpoints" / "1").restore()


@pytest.mark.slow
def test_resuming_with_another_optimizer_structure_is_a_clear_error(synthemo_tiny, tiny_run, tmp_path):
  shutil.copytree(tiny_run[0], tmp_path, dirs_exist_ok=True)
  config = tiny.shrink(tiny.load("synthemo"), synthemo_tiny, steps=3)
  config.optim.clip_grad_norm = 0.0  # no clipping: another optimiser state structure
  with pytest.raises(ValueError, match="does not match this config"):
    loop.train_and_evaluate(config, tmp_path)


@pytest.mark.slow
def test_eval_over_padded_buckets_equals_eval_clip_by_clip(synthemo_tiny):
  config = tiny.shrink(tiny.load("synthemo"), synthemo_tiny)
  config.input.eval_num_frames = 0
  config.input.eval_buckets = (4,)  # clips of 5-10 frames pad to 8 or 12: every frame is kept
  config.eval_batch_size = 8
  exp = experiment.make_experiment(config)
  state, optimizer, _, schedule = experiment.init_state(config, exp.model, exp.mesh, 4, 32, 1, 2)
  _, eval_step = experiment.compile_steps(exp, optimizer, schedule)
  clips = exp.eval.clips
  assert max(c.num_faces for c in clips) > 4
  batched = evaluation_lib.evaluate(eval_step, state.params, exp)
  single = {}
  for clip in clips:
    batch = next(pipeline.eval_batches(exp.eval_source, [clip], batch_size=1, crop_size=32, buckets=(clip.num_faces,)))
    out = eval_step(state.params, parallel.global_batch(batch, exp.mesh))
    single[clip.index] = np.exp(np.asarray(out["log_probs"][0]))
  for clip in clips:
    np.testing.assert_allclose(batched.probabilities[clip.index], single[clip.index], rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_a_paper_config_trains_from_converted_vgg_face_weights(synthemo_tiny, tmp_path, capsys):
  import weight_writers

  from videmo.weights import formats

  conv, _ = weight_writers.random_vgg16(seed=3)
  source = weight_writers.write_pth(tmp_path / "vgg_face_dag.pth", weight_writers.vggface_state_dict(conv, None))
  converted = tmp_path / "vgg_face"
  formats.convert_weights("vggface-pth", source, converted)
  source.unlink()

  config = tiny.shrink(tiny.load("table1_sa2_reg1"), synthemo_tiny, steps=1)
  config.init.pretrained_required = True
  config.init.weights = str(converted)
  config.model.trunk_width_divisor = 1  # converted weights are full VGG16
  config.input.eval_num_frames, config.input.eval_buckets = 1, (1,)  # a full-width evaluation costs seconds a frame-batch
  loop.train_and_evaluate(config, tmp_path / "run")
  printed = capsys.readouterr().out
  assert f"loaded pre-trained trunk from {converted}" in printed and "14,714,688" in printed
  # The run trains with the weights' own input convention, recorded next to its checkpoints.
  recorded = json.loads((tmp_path / "run" / "input_convention.json").read_text())
  assert recorded["mean"] == [129.186279296875, 104.76238250732422, 93.59396362304688]

  config.model.trunk_width_divisor = 16  # a narrow trunk cannot take full-width weights
  with pytest.raises(ValueError, match="narrow"):
    loop.train_and_evaluate(config, tmp_path / "narrow")


@pytest.mark.slow
def test_eval_command_evaluates_a_saved_run(synthemo_tiny, tiny_run, tmp_path):
  from videmo.main import main

  shutil.copytree(tiny_run[0], tmp_path, dirs_exist_ok=True)
  argv = ["eval", f"--config={REPO / 'configs' / 'synthemo.py'}", f"--checkpoint={tmp_path}",
          *tiny.flags(synthemo_tiny)]
  assert main(argv) == 0
  evaluated = json.loads((tmp_path / "eval_validation_2.json").read_text())
  assert evaluated["wrong"]["confusion"] == tiny_run[1]["wrong"]["confusion"]
  assert main(argv[:2] + [f"--checkpoint={tmp_path / 'nowhere'}"] + argv[3:]) == 1


@pytest.mark.parametrize("extra,message", [
    (["--config.bogus=3"], "the config has no field 'bogus'"),
    (["--config.batch_size=abc"], "--config.batch_size=abc"),
])
def test_bad_command_lines_get_one_line_errors(extra, message, tmp_path):
  from videmo.main import main

  with pytest.raises(SystemExit, match=message) as raised:
    main(["train", f"--config={REPO / 'configs' / 'synthemo.py'}", f"--workdir={tmp_path}"] + extra)
  assert "\n" not in str(raised.value)
  with pytest.raises(SystemExit, match="does not exist"):
    main(["train", f"--config={REPO / 'configs' / 'nope.py'}", f"--workdir={tmp_path}"])


@pytest.mark.slow
def test_train_and_evaluate_on_tiny_learns_far_above_chance(synthemo_tiny, tmp_path):
  """The whole loop learns: 120 steps on the 28 tiny training clips, evaluated on those clips.

  synthemo/tiny is too small to generalise from (the generalisation run is configs/synthemo.py
  on synthemo/small, see its docstring), so this checks that train_and_evaluate fits what it
  trains on: WAR >= 0.5 against a chance level of 1/7 (measured: 0.89 after 120 steps on a
  2-core AMD EPYC; 0.43-0.61 after 60, hence the 120).
  """
  config = tiny.shrink(tiny.load("synthemo"), synthemo_tiny, steps=120)
  config.model.trunk_width_divisor = 8
  config.model.attention_hidden = 16
  config.optim.groups = dict(all=dict(pattern=".", lr=0.05, frozen=False))
  config.input.num_frames = 8
  config.input.eval_num_frames = 0
  config.input.eval_buckets = (10,)
  config.batch_size = 8
  config.eval_split = "train"
  config.checkpoint_every_steps = 1000
  config.log_every_steps = 60
  record = loop.train_and_evaluate(config, tmp_path)
  assert record["step"] == 120
  assert record["wrong"]["war"] >= 0.5, record["wrong"]
  assert record["wrong"]["uar"] >= 0.5, record["wrong"]


@pytest.mark.slow
def test_a_two_stage_config_pretrains_exports_and_fine_tunes_from_the_trunk(synthemo_tiny, tmp_path, capsys):
  """config.pretrain runs first in WORKDIR/pretrain; its trunk (WORKDIR/pretrain/trunk) starts stage 2."""
  from videmo.weights import converted

  config = tiny.shrink(tiny.load("synthemo"), synthemo_tiny, steps=2)
  stills = tiny.load("synthemo").pretrain
  config.pretrain = tiny.shrink(stills, synthemo_tiny, steps=3)
  config.pretrain.input.num_frames = 1
  config.pretrain.data_dir = ""  # taken from config.data_dir
  config.optim.groups.trunk.frozen = True  # stage 2's trunk then stays exactly what stage 1 wrote
  loop.train_and_evaluate(config, tmp_path)
  printed = capsys.readouterr().out
  assert "stage 1 of 2" in printed and "stage 2 of 2" in printed

  trunk_dir = tmp_path / "pretrain" / "trunk"
  exported, convention, extras = converted.load_converted(trunk_dir)
  assert extras["source"]["step"] == 3 and extras["source"]["dataset"] == "synthemo/tiny"
  assert convention == experiment.IMAGENET_CONVENTION
  _, stage1 = final_params(tmp_path / "pretrain")
  _, stage2 = final_params(tmp_path)
  for layer, leaves in exported.items():
    for name, value in leaves.items():
      np.testing.assert_array_equal(value, stage1["params"]["trunk"][layer][name])
      np.testing.assert_array_equal(value, stage2["params"]["trunk"][layer][name])
  assert json.loads((tmp_path / "config.json").read_text())["init"]["weights"] == str(trunk_dir)

  # Run again for longer: stage 1 is not repeated, stage 2 resumes.
  config.num_train_steps = 3
  record = loop.train_and_evaluate(config, tmp_path)
  printed = capsys.readouterr().out
  assert "stage 1 is done" in printed and "resumed from" in printed and record["step"] == 3


def test_two_stage_config_errors_name_the_field(synthemo_tiny, tmp_path):
  config = tiny.shrink(tiny.load("synthemo"), synthemo_tiny)
  config.pretrain = tiny.shrink(tiny.load("synthemo").pretrain, synthemo_tiny)
  config.pretrain.model.trunk_width_divisor = 8
  with pytest.raises(ValueError, match="config.pretrain.model.trunk_width_divisor is 8"):
    loop.train_and_evaluate(config, tmp_path)
  config.pretrain.model.trunk_width_divisor = 16
  config.pretrain.batch_size = 0
  with pytest.raises(ValueError, match=r"config.pretrain.batch_size must be an integer >= 1"):
    loop.train_and_evaluate(config, tmp_path)
  config.pretrain.batch_size = 4
  config.init.weights = str(tmp_path / "weights")
  with pytest.raises(ValueError, match="config.pretrain and config.init.weights are both set"):
    loop.train_and_evaluate(config, tmp_path)
  assert not (tmp_path / "pretrain").exists()
