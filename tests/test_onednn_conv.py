"""The oneDNN convolution (videmo/ops): same values and gradients as XLA's, in training and data-parallel.

Tolerances come from float32 round-off. Each output of a 3x3 convolution is a sum of
K = 9 * C_in products; summed in another order (oneDNN's blocking against XLA's), two float32
results differ by about sqrt(K) * 2^-24 of the sum's scale: 4e-6 at K = 4608 (conv5), measured
1e-7 to 1.1e-6 of the norm against a float64 convolution for both paths. Hence 1e-5 of the
norm for the op. bfloat16 rounds each output to 8 bits (2^-9 relative), so both paths are
compared with float64 there at 2^-8 of the norm. A whole training step amplifies round-off
by the network's conditioning; there the scale is the step's round-off level, XLA's own
largest float32 distance from a float64 step (measured: 1.5e-5 to 1.8e-5 of a parameter's
update for the random narrow model). oneDNN's step must be within twice that of the float64
step (measured 1.1e-5) and within three times that of XLA's (the triangle; measured 1.6e-5),
or within 1e-5 where that is larger.
"""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from videmo import parallel
from videmo.models import video
from videmo.models.input_convention import VGGFACE_CONVENTION
from videmo.models.vgg import VGG16_BLOCKS
from videmo.ops import conv as conv_ops
from videmo.ops import onednn_conv
from videmo.train import optim, steps

import tiny

pytestmark = pytest.mark.skipif(not onednn_conv.available(), reason="the oneDNN library cannot be built here")

OP_BOUND = 1e-5  # of the norm; see the module docstring


def _layer_shapes():
  """(C_in, C_out, spatial size) of each VGG16 convolution at an input of 32x32, both trunk widths."""
  shapes = []
  for divisor in (1, 8):
    c_in, size = 3, 32
    for b, block in enumerate(VGG16_BLOCKS):
      for channels in block:
        shapes.append((divisor, c_in, channels // divisor, size))
        c_in = channels // divisor
      size //= 2 if b < 4 else 1
  return shapes


def _xla(x, w, strides=(1, 1), padding="SAME"):
  return lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _relative(a, b) -> float:
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _value_and_grads(conv, x, w, cotangent):
  y, vjp = jax.vjp(jax.jit(conv), x, w)
  return (y, *vjp(cotangent))


@pytest.mark.parametrize("divisor,c_in,c_out,size", _layer_shapes())
def test_forward_and_both_gradients_equal_xla(divisor, c_in, c_out, size):
  rng = np.random.default_rng(c_in * 1000 + c_out)
  x = jnp.asarray(rng.standard_normal((2, size, size, c_in)), jnp.float32)
  w = jnp.asarray(rng.standard_normal((3, 3, c_in, c_out)), jnp.float32)
  cotangent = jnp.asarray(rng.standard_normal((2, size, size, c_out)), jnp.float32)
  for ours, theirs, name in zip(_value_and_grads(onednn_conv.conv2d, x, w, cotangent),
                                _value_and_grads(_xla, x, w, cotangent), ("y", "dx", "dw")):
    assert ours.shape == theirs.shape and ours.dtype == jnp.float32
    assert _relative(ours, theirs) <= OP_BOUND, (name, _relative(ours, theirs))


@pytest.mark.parametrize("strides,padding", [((2, 2), "SAME"), ((1, 2), "VALID"), ((1, 1), ((2, 0), (1, 3)))])
def test_strides_and_explicit_padding(strides, padding):
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.standard_normal((3, 9, 10, 5)), jnp.float32)
  w = jnp.asarray(rng.standard_normal((3, 2, 5, 4)), jnp.float32)
  ref = _xla(x, w, strides, padding)
  cotangent = jnp.asarray(rng.standard_normal(ref.shape), jnp.float32)
  conv = lambda x, w: onednn_conv.conv2d(x, w, strides, padding)
  for ours, theirs in zip(_value_and_grads(conv, x, w, cotangent),
                          _value_and_grads(lambda x, w: _xla(x, w, strides, padding), x, w, cotangent)):
    assert _relative(ours, theirs) <= OP_BOUND


def test_jit_grad_and_vmap_compose():
  rng = np.random.default_rng(2)
  x = jnp.asarray(rng.standard_normal((4, 2, 8, 8, 6)), jnp.float32)  # a vmapped axis of 4
  w = jnp.asarray(rng.standard_normal((3, 3, 6, 5)), jnp.float32)
  loss = lambda conv: (lambda x, w: jnp.sum(jnp.tanh(jax.vmap(conv, (0, None))(x, w))))
  ours = jax.jit(jax.grad(loss(onednn_conv.conv2d), (0, 1)))(x, w)
  theirs = jax.grad(loss(_xla), (0, 1))(x, w)
  for a, b in zip(ours, theirs):
    assert _relative(a, b) <= OP_BOUND
  # a per-example kernel (both operands batched) runs as a loop of calls
  ws = jnp.stack([w, 2 * w, -w, w + 1])
  assert _relative(jax.vmap(onednn_conv.conv2d)(x, ws), jax.vmap(_xla)(x, ws)) <= OP_BOUND


@pytest.mark.skipif(conv_ops.auto_skip_reason("bfloat16") is not None,
                    reason=f"oneDNN bfloat16: {conv_ops.auto_skip_reason('bfloat16')}")
def test_bfloat16_is_float64_rounded_to_bfloat16():
  rng = np.random.default_rng(3)
  x = jnp.asarray(rng.standard_normal((2, 8, 8, 64)), jnp.bfloat16)
  w = jnp.asarray(rng.standard_normal((3, 3, 64, 32)), jnp.bfloat16)
  cotangent = jnp.asarray(rng.standard_normal((2, 8, 8, 32)), jnp.bfloat16)
  with jax.enable_x64(True):
    exact = _value_and_grads(_xla, *(a.astype(jnp.float64) for a in (x, w, cotangent)))
  ours = _value_and_grads(onednn_conv.conv2d, x, w, cotangent)
  for a, b in zip(ours, exact):
    assert a.dtype == jnp.bfloat16
    assert _relative(a, b) <= 2.0 ** -8


def test_rejected_operands_name_the_problem():
  x = jnp.zeros((1, 4, 4, 3), jnp.float32)
  with pytest.raises(ValueError, match="float32 or bfloat16"):
    onednn_conv.conv2d(x.astype(jnp.float16), jnp.zeros((3, 3, 3, 2), jnp.float16))
  with pytest.raises(ValueError, match=r"x \[N, H, W, Ci\]"):
    onednn_conv.conv2d(x, jnp.zeros((3, 3, 4, 2), jnp.float32))
  with pytest.raises(ValueError, match="conv_impl must be one of"):
    video.build_model(dict(conv_impl="cudnn"))


def test_a_shape_onednn_refuses_goes_to_xla_under_auto_and_fails_in_one_line_under_onednn():
  # Negative padding (a crop): XLA takes it, oneDNN 3.2 makes no primitive for it.
  rng = np.random.default_rng(4)
  x = jnp.asarray(rng.standard_normal((2, 8, 8, 4)), jnp.float32)
  w = jnp.asarray(rng.standard_normal((3, 3, 4, 5)), jnp.float32)
  padding = ((-1, -1), (0, 0))
  reason = onednn_conv.refusal(x.shape, w.shape, (1, 1), padding, jnp.float32)
  assert reason is not None and "refuses the float32 forward convolution" in reason, reason
  with pytest.raises(onednn_conv.Refused, match="refuses"):
    onednn_conv.conv2d(x, w, (1, 1), padding)  # at trace time: nothing was compiled
  before = conv_ops.traced_paths().get("float32", {}).get("xla", 0)
  auto = conv_ops.conv_general_dilated("auto", jnp.float32)
  ours = jax.jit(lambda x, w: auto(x, w, (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC")))(x, w)
  np.testing.assert_array_equal(ours, _xla(x, w, (1, 1), padding))  # the same XLA convolution
  assert conv_ops.traced_paths()["float32"]["xla"] == before + 1
  strict = conv_ops.conv_general_dilated("onednn", jnp.float32)
  with pytest.raises(ValueError, match="model.conv_impl='onednn' cannot run here") as err:
    strict(x, w, (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))
  assert "\n" not in str(err.value)
  assert onednn_conv.refusal(x.shape, w.shape, (1, 1), ((1, 1), (1, 1)), jnp.float32) is None


_AVX2_SCRIPT = """
import json, logging
import jax, jax.numpy as jnp, numpy as np
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
from videmo.models import video
from videmo.models.input_convention import IMAGENET_CONVENTION
from videmo.ops import conv, native_build
from videmo.train import optim, steps
import tiny

out = dict(isa=native_build.effective_cpu_isa(), losses={})
for dtype in ("float32", "bfloat16"):
  model = video.build_model(dict(tiny.STEP_MODEL, dtype=dtype, conv_impl="auto"))
  params = tiny.random_params(model)  # the same float32 weights for both dtypes
  tx, _, _ = optim.make_optimizer(params, tiny.STEP_OPTIM, total_steps=10, steps_per_epoch=5)
  state = steps.TrainState(jnp.zeros((), jnp.int32), params, tx.init(params))
  step = jax.jit(steps.make_train_step(model, tx, lambda f: IMAGENET_CONVENTION.normalize(f, jnp.float32), 1.0))
  batch = tiny.step_batches(n=1)[0]
  compiled = step.lower(state, batch, jax.random.key(1)).compile()
  out.setdefault("onednn_calls", {})[dtype] = compiled.as_text().count("videmo_onednn_conv")
  _, metrics = compiled(state, batch, jax.random.key(1))
  out["losses"][dtype] = float(metrics["loss"])
out["paths"] = conv.traced_paths()
model = video.build_model(dict(tiny.STEP_MODEL, dtype="bfloat16", conv_impl="onednn"))
try:
  jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 2, 32, 32, 3)))
except ValueError as err:
  out["onednn_error"] = str(err)
print("RESULT " + json.dumps(out))
"""


@pytest.mark.slow
def test_bfloat16_under_an_avx2_cap_trains_on_xla_and_onednn_fails_in_one_line():
  """What an AVX2-only CPU sees (oneDNN 3.2 has no bf16 convolution there): one bf16 step with
  conv_impl='auto' runs XLA's convolutions, its loss agrees with float32's within the bound of
  tests/test_mixed_precision.py (1%), and conv_impl='onednn' fails before compiling, in one line."""
  env = dict(os.environ, ONEDNN_MAX_CPU_ISA="AVX2", XLA_FLAGS="--xla_cpu_max_isa=AVX2", JAX_PLATFORMS="cpu",
             PYTHONPATH=os.pathsep.join([str(tiny.REPO / "tests"), os.environ.get("PYTHONPATH", "")]))
  result = subprocess.run([sys.executable, "-c", _AVX2_SCRIPT], capture_output=True, text=True, env=env,
                          timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  out = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))[7:])
  assert out["isa"] == "avx2"
  # Layers traced per path (the model is traced more than once): bf16 all on XLA, float32 on oneDNN.
  assert set(out["paths"]["bfloat16"]) == {"xla"} and out["paths"]["bfloat16"]["xla"] % 13 == 0, out["paths"]
  assert set(out["paths"]["float32"]) == {"onednn"}, out["paths"]
  assert out["onednn_calls"]["bfloat16"] == 0 and out["onednn_calls"]["float32"] > 0  # float32 keeps oneDNN
  fallbacks = [line for line in result.stderr.splitlines() if "convolutions: XLA" in line]
  assert fallbacks == ["WARNING bf16 convolutions: XLA (oneDNN has no bf16 kernel for this CPU: instruction set avx2)"]
  loss32, loss16 = out["losses"]["float32"], out["losses"]["bfloat16"]
  assert abs(loss16 - loss32) < 1e-2 * abs(loss32) and loss16 != loss32, (loss16, loss32)
  error = out["onednn_error"]
  assert "\n" not in error and error.startswith("model.conv_impl='onednn' cannot run here"), error
  assert "instruction set avx2" in error and "AVX512-BF16" in error, error


def _step(conv_impl, dtype="float32", num_devices=1):
  """(initial params, params after one train step, loss, compiled HLO text)."""
  mesh = parallel.data_mesh(num_devices)
  model = video.build_model(dict(tiny.STEP_MODEL, conv_impl=conv_impl, dtype=dtype))
  params = jax.tree.map(lambda p: np.asarray(p, dtype), tiny.random_params(model))  # float32 values
  tx, _, schedule = optim.make_optimizer(params, tiny.STEP_OPTIM, total_steps=10, steps_per_epoch=5)
  state = parallel.replicate(steps.TrainState(jnp.zeros((), jnp.int32), params, tx.init(params)), mesh)
  normalise = lambda frames: VGGFACE_CONVENTION.normalize(frames, dtype)
  step = jax.jit(parallel.traced_on(mesh, steps.make_train_step(model, tx, normalise, 1.0, schedule)),
                 in_shardings=(parallel.replicated(mesh), parallel.batch_sharded(mesh), parallel.replicated(mesh)))
  batch = parallel.global_batch(tiny.step_batches(n=1)[0], mesh)
  hlo = step.lower(state, batch, jax.random.key(1)).compile().as_text()
  new_state, metrics = step(state, batch, jax.random.key(1))
  return params, jax.device_get(new_state.params), float(metrics["loss"]), hlo


def _update_errors(start, reference, other):
  """Per parameter: |other's update - reference's update| / |reference's update| (norms)."""
  return [np.linalg.norm(np.float64(b) - np.float64(a)) / np.linalg.norm(np.float64(a) - np.float64(s))
          for s, a, b in zip(jax.tree.leaves(start), jax.tree.leaves(reference), jax.tree.leaves(other))]


@pytest.mark.slow
def test_a_training_step_with_onednn_equals_one_with_xla():
  start, xla_params, xla_loss, _ = _step("xla")
  _, ours, loss, hlo = _step("onednn")
  assert "custom-call" in hlo and "videmo_onednn_conv" in hlo
  with jax.enable_x64(True):
    _, exact, _, _ = _step("xla", "float64")  # from the same float32 values
  # The step's float32 round-off level: XLA's own distance from the float64 step, over all
  # parameters (per parameter it is a matter of luck: some land nearer than others).
  round_off = max(_update_errors(start, exact, xla_params))
  ours_off = np.asarray(_update_errors(start, exact, ours))
  assert np.all(ours_off <= max(OP_BOUND, 2 * round_off)), (ours_off, round_off)  # as accurate as XLA
  apart = np.asarray(_update_errors(start, xla_params, ours))
  assert np.all(apart <= max(OP_BOUND, 3 * round_off)), (apart, round_off)  # the triangle: 2 + 1
  assert abs(loss - xla_loss) <= OP_BOUND * abs(xla_loss)


@pytest.mark.slow
def test_eight_devices_run_the_op_per_shard_without_gathering_activations():
  assert len(jax.devices()) == 8, "tests run with 8 simulated CPU devices (see conftest.py)"
  start, one, loss_one, _ = _step("onednn")
  _, eight, loss_eight, hlo = _step("onednn", num_devices=8)
  assert "all-gather" not in hlo and "all-to-all" not in hlo  # each device convolves its own shard
  assert "all-reduce" in hlo  # the gradients are summed across devices
  assert abs(loss_one - loss_eight) <= OP_BOUND * abs(loss_one)
  assert max(_update_errors(start, one, eight)) <= 1e-4  # the same step; only the order of sums differs


@pytest.mark.slow
def test_auto_falls_back_to_xla_when_the_library_is_absent(tmp_path):
  script = (
      "import jax, jax.numpy as jnp, numpy as np\n"
      "from videmo.ops import conv\n"
      "from videmo.models import video\n"
      "assert conv.resolve('auto', jnp.float32) == 'xla'\n"
      "import tiny\n"
      "model = video.build_model(dict(trunk_width_divisor=16, attention_hidden=4))\n"
      "frames = jnp.zeros((1, 2, 32, 32, 3))\n"
      "params = {'params': tiny.random_params(model, num_frames=2)}  # no init to compile (15 s)\n"
      "assert np.isfinite(np.asarray(jax.jit(model.apply)(params, frames)['log_probs'])).all()\n"
      "try:\n"
      "  conv.resolve('onednn', jnp.float32)\n"
      "except ValueError as err:\n"
      "  print('ERROR', err)\n")
  env = dict(os.environ, VIDEMO_ONEDNN_ROOT=str(tmp_path), VIDEMO_CACHE_DIR=str(tmp_path / "cache"),
             XLA_FLAGS="", JAX_PLATFORMS="cpu",
             PYTHONPATH=os.pathsep.join([str(tiny.REPO / "tests"), os.environ.get("PYTHONPATH", "")]))
  result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
  assert result.returncode == 0, result.stderr
  warnings = [line for line in result.stderr.splitlines() if "oneDNN convolutions unavailable" in line]
  assert len(warnings) == 1 and "VIDEMO_ONEDNN_ROOT" in warnings[0], result.stderr
  assert "ERROR model.conv_impl='onednn' cannot run here" in result.stdout
