"""`videmo bench`: the command prints its table, FLOP counts are right, PyTorch computes the same step.

The PyTorch test skips when PyTorch is not installed (it is the optional `bench` extra).
"""

import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from videmo.bench import breakdown, cli, flops, harness, max_batch, peaks, report, runner, torch_yardstick
from videmo.bench import profile as profile_lib
from videmo.models import video
from videmo.models.vgg import VGG16
from videmo.ops import conv as conv_ops
from videmo.train.base_config import get_config

import tiny
from tiny import REPO

SIZES = ["--size", "32", "--frames", "4", "--batch-size", "2"]


def tiny_config(data_dir):
  config = tiny.shrink(get_config("cpu"), data_dir)
  config.optim.clip_grad_norm = 0.5   # exercise clipping on both sides of the comparison
  return harness.bench_config(config, batch_size=2, num_frames=4, size=32)


def test_vgg16_conv_flops_at_224_are_the_known_15_35_gmacs():
  # conv1_1..conv5_3 at 224x224 by hand: (size, C_in, C_out) per layer, 2 FLOPs per multiply-add, 9 taps.
  layers = [(224, 3, 64), (224, 64, 64), (112, 64, 128), (112, 128, 128),
            (56, 128, 256), (56, 256, 256), (56, 256, 256),
            (28, 256, 512), (28, 512, 512), (28, 512, 512),
            (14, 512, 512), (14, 512, 512), (14, 512, 512)]
  by_hand = sum(s * s * c_in * c_out * 9 * 2 for s, c_in, c_out in layers)
  assert flops.trunk_forward_flops(224, 224) == by_hand
  assert round(by_hand / 2 / 1e9, 2) == 15.35
  model = dict(trunk_width_divisor=1, spatial="attention", num_heads=2, attention_hidden=64,
               temporal="softmax", num_classes=7)
  counts = flops.train_step_flops(model, clips=1, frames=16, height=224, width=224)
  # About 3 x 30.7 GFLOP per frame: 1.47 TFLOP per 16-frame clip.
  assert 1.46e12 < counts["train"] < 1.48e12


def test_analytic_flops_agree_with_xla_cost_analysis():
  trunk = VGG16(width_divisor=8, conv_impl="xla")  # oneDNN's convolutions are custom calls XLA does not count
  images = jnp.zeros((2, 32, 32, 3))
  params = jax.eval_shape(trunk.init, jax.random.key(0), images)
  xla = flops.xla_flops(jax.jit(trunk.apply).lower(params, images).compile())
  in_bounds = 2 * flops.trunk_forward_flops(32, 32, 8, taps="in_bounds")
  outputs = 2 * sum(h * w * c_out for _, h, w, _, c_out in flops.conv_layers(32, 32, 8))
  # XLA counts the in-image taps of each 3x3 convolution plus a few FLOPs per output
  # (bias, ReLU, pooling): at most 3 per conv output.
  assert in_bounds <= xla <= in_bounds + 3 * outputs


@pytest.mark.slow
def test_bench_command_prints_the_table(synthemo_tiny, tmp_path, capsys):
  out = tmp_path / "bench.json"
  code = cli.main(["--config", str(REPO / "configs" / "synthemo.py"), *SIZES, *tiny.flags(synthemo_tiny),
                   "--repeats", "2", "--pipeline-batches", "2", "--peak-tflops", "0.05",
                   "--breakdown", "--profile", str(tmp_path / "profile"), "--profile-steps", "1",
                   "--json", str(out)])
  text = capsys.readouterr().out
  assert code == 0, text
  for expected in ("s/step", "clips/s", "frames/s", "FLOPs per step", "MFU", "peak memory", "compile",
                   "input pipeline", "batches/s", "trunk fwd+bwd", "head fwd+bwd", "convolutions: "):
    assert expected in text, expected
  if torch_yardstick.available():
    assert "JAX / PyTorch" in text
  else:
    assert 'pip install -e ".[bench]"' in text
  results = json.loads(out.read_text())
  assert results["batch"] == dict(clips=2, frames=4, size=32)
  assert results["step"]["median_s"] > 0 and len(results["step"]["times_s"]) == 2
  assert results["pipeline"]["batches_per_s"] > 0
  assert results["pipeline"]["cached_batches_per_s"] > 0 and "once decoded (in the shared decoded store)" in text
  assert 0 < results["mfu"]
  profile = results["profile"]
  assert profile["steps"] == 1 and profile["ops"] and "profile of 1 steps" in text and "top ops:" in text
  assert list((tmp_path / "profile").glob("plugins/profile/*/*.xplane.pb"))
  # XLA's count of the whole step is the analytic count (same taps) plus elementwise work, the
  # optimiser and the finiteness checks: 7% more on this 1/16-width trunk (1.8% on configs/synthemo.py).
  model = results["model"]["fields"]
  conv = results["model"]["conv"]
  assert conv["impl"] == "auto" and conv["path"] == conv_ops.resolve("auto", "float32")
  if conv["path"] == "onednn":  # custom calls: XLA's cost analysis cannot count their FLOPs
    assert results["flops"]["xla"] is None and "custom calls" in text and conv["onednn"].startswith("3.")
    assert "convolutions: float32: oneDNN 3." in text
  else:
    analytic = flops.train_step_flops(model, 2, 4, 32, 32, taps="in_bounds")["train"]
    assert 1.0 <= results["flops"]["xla"] / analytic < 1.1
  # Without PyTorch the table says how to get the comparison.
  results["torch"] = dict(skipped=torch_yardstick.INSTALL_HINT)
  assert 'PyTorch: the PyTorch comparison needs PyTorch: pip install -e ".[bench]"' in report.format_report(results)


def test_without_pytorch_the_comparison_is_skipped_with_the_install_hint(monkeypatch):
  monkeypatch.setitem(sys.modules, "torch", None)  # PyTorch cannot be imported
  assert not torch_yardstick.available()
  skipped, step = runner._torch_part(None, runner.Options(), None, None, None)
  assert step is None and skipped == dict(skipped=torch_yardstick.INSTALL_HINT)


def test_bench_command_rejects_bad_options(capsys):
  config = ["--config", str(REPO / "configs" / "synthemo.py")]
  with pytest.raises(SystemExit):
    cli.main([*config, "--size", "0"])
  with pytest.raises(SystemExit):
    cli.main([*config, "--peak-tflops", "lots"])
  with pytest.raises(SystemExit):
    cli.main([*config, "--no-such-option"])
  assert cli.main([*config, "--size", "40", "--no-pipeline"]) == 1
  assert "input.crop_size must be a positive multiple of 16" in capsys.readouterr().err


def test_profile_names_op_kinds_and_sums_a_trace():
  assert profile_lib.op_kind("convolution.12") == "convolution"
  assert profile_lib.op_kind("cudnn-conv-bias-activation.3") == "convolution"
  assert profile_lib.op_kind("loop_convert_fusion.2") == "fusion"  # a dtype conversion, not a convolution
  assert profile_lib.op_kind("dot.4") == "matrix product"
  assert profile_lib.op_kind("all-reduce.1") == "collective"
  assert profile_lib.op_kind("copy.7") == "copy or transpose"
  assert profile_lib.op_kind("loop_add_fusion") == "fusion"
  assert profile_lib.op_kind("ffi_call.38") == "custom call"  # e.g. oneDNN's convolutions on CPU
  assert profile_lib.op_kind("reduce.5") == "other"


def test_profile_of_a_traced_function_accounts_for_its_ops(tmp_path):
  x = jnp.arange(256 * 256, dtype=jnp.float32).reshape(256, 256) / 65536
  f = jax.jit(lambda a: jnp.tanh(a @ a).sum())
  f(x).block_until_ready()
  summary = profile_lib.trace_steps(lambda: f(x).block_until_ready(), 2, tmp_path)
  assert summary["steps"] == 2 and summary["ops"] and summary["op_ms_per_step"] > 0
  assert abs(sum(kind["share"] for kind in summary["kinds"].values()) - 1) < 1e-9
  assert all(op["calls_per_step"] > 0 and 0 < op["share"] <= 1 for op in summary["ops"])
  assert summary["trace"].endswith(".xplane.pb")
  with pytest.raises(ValueError, match="profile steps"):
    profile_lib.trace_steps(lambda: None, 0, tmp_path)


def test_head_of_the_breakdown_computes_the_models_loss(synthemo_tiny):
  config = tiny_config(synthemo_tiny)
  model = video.build_model(config.model)
  params = tiny.random_params(model)
  batch = harness.synthetic_batch(2, 4, 32, config.model.num_classes)
  batch["mask"][1, 2:] = False  # a short clip: the mask reaches the head
  images = jnp.asarray(batch["frames"], jnp.float32).reshape(8, 32, 32, 3) / 255
  # The whole model, forward, against the head alone given the trunk's output.
  out = model.apply({"params": params}, images.reshape(2, 4, 32, 32, 3), batch["mask"])
  nll = -np.take_along_axis(np.asarray(out["log_probs"]), batch["label"][:, None], axis=1)[:, 0]
  expected = nll.mean() + config.penalty_coef * float(out["penalty"])
  local = breakdown._trunk(model).apply({"params": params["trunk"]}, images)
  loss = breakdown._head_loss(model, config.penalty_coef)(params, local, batch)
  np.testing.assert_allclose(float(loss), expected, rtol=1e-5)


def test_max_batch_search_doubles_then_bisects():
  tried = []

  def fits(batch):
    tried.append(batch)
    return batch <= 37

  assert max_batch.search(fits, start=2, unit=1, cap=1000)[0] == 37
  assert tried[:6] == [2, 4, 8, 16, 32, 64]
  assert max_batch.search(lambda b: b <= 37, start=8, unit=8, cap=1000)[0] == 32
  assert max_batch.search(lambda b: True, start=2, unit=2, cap=12)[0] == 12
  # A cap that is not a multiple of the unit ends at the largest multiple below it, each batch tried once.
  best, tried = max_batch.search(lambda b: True, start=8, unit=8, cap=20)
  assert best == 16 and [b for b, _ in tried] == [8, 16]
  assert max_batch.search(lambda b: False, start=4, unit=4, cap=64)[0] == 0
  assert max_batch.is_out_of_memory(RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate"))
  assert not max_batch.is_out_of_memory(ValueError("shapes do not match"))


def test_peak_option_and_measured_matmul_rate():
  assert peaks.parse_peak("measure") == "measure" and peaks.parse_peak("none") is None
  assert peaks.parse_peak("312.5") == 312.5
  with pytest.raises(ValueError, match="peak-tflops"):
    peaks.parse_peak("-3")
  assert peaks.measure_matmul_tflops("float32", jax.devices()[:1], size=256, repeats=2) > 0


def test_pytorch_computes_the_same_loss_and_step(synthemo_tiny):
  pytest.importorskip("torch")
  bench = harness.build_step(tiny_config(synthemo_tiny))  # step 0, no momentum yet, as PyTorch starts
  before = jax.device_get(bench.state.params)
  batch = jax.device_get(bench.batch)
  metrics = jax.device_get(bench.run())
  after = jax.device_get(bench.state.params)
  step = torch_yardstick.TorchStep(bench.config, before, batch, bench.convention)
  torch_loss = float(step.loss()[0].detach())
  # The same float32 weights and batch: the loss agrees to float32 rounding (relative 1e-5)...
  assert abs(torch_loss - float(metrics["loss"])) <= 1e-5 * abs(float(metrics["loss"]))
  diff = torch_yardstick.check_against_jax(step, before, after, metrics)
  # ...and so do the gradient's norm and one clipped SGD-momentum update (relative to the update's size).
  assert diff["loss"] < 1e-5 and diff["grad_norm"] < 1e-4 and diff["update"] < 1e-3, diff
  # The comparison is not vacuous: another batch gives another loss.
  step.label = (step.label + 1) % bench.config.model.num_classes
  assert abs(float(step.loss()[0].detach()) - torch_loss) > 1e-3


def test_run_time_share_reads_step_times_from_the_events_and_leaves_out_stage_1(tmp_path, capsys):
  import importlib.util

  from tensorboardX import SummaryWriter

  spec = importlib.util.spec_from_file_location("run_time_share", REPO / "benchmarks" / "run_time_share.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)

  def run(name, seconds, step_seconds, stage1=False):
    folder = tmp_path / "runs" / name / "seed-0"
    folder.mkdir(parents=True)
    writer = SummaryWriter(str(folder))
    for step in (20, 40, 100):  # 80 steps apart: step_seconds * 80 s between the first and last
      writer.add_scalar("train/loss", 1.0, step, walltime=1000.0 + step * step_seconds)
    writer.close()
    (folder / "sweep_run.json").write_text(json.dumps(dict(seconds=seconds)))
    (folder / "metrics.json").write_text(json.dumps(dict(step=100)))
    (folder / "train.log").write_text("" if stage1 else "pre-trained trunk: x (stage 1 is done; ...)\n")

  run("A", seconds=20.0, step_seconds=0.15)  # 15 s of 20 in steps: 75%
  run("B", seconds=25.0, step_seconds=0.2)   # 20 s of 25: 80%
  run("C", seconds=30.0, step_seconds=0.1, stage1=True)
  assert module.main([str(tmp_path)]) == 0
  out = capsys.readouterr().out
  assert "left out: trains stage 1" in out and "C/seed-0" in out
  assert out.strip().splitlines()[-1].startswith("2 of 3 runs: median 78% of a run in training steps")
  assert "at most 1.29x" in out  # 1 / 0.775
