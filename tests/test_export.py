"""`videmo export`: the exported ONNX and StableHLO networks give what videmo gives, for any frame count.

The model is conftest's `tiny_run` (configs/synthemo.py shrunk: a 1/16-width trunk, 2 heads,
32x32 crops, a 2x2 attention grid; trained 2 steps). It is exported once per format and run
on the same random crops as videmo's own forward pass (the run's config, so on this CPU its
oneDNN convolutions) for 3 and 7 frames, the 7 with one frame masked.

Tolerance: the two sides do the same float32 arithmetic in different orders (onnxruntime's
Conv and Gemm against oneDNN's and XLA's). A sum of K products summed in another order
differs by about sqrt(K) * 2^-24 of its scale: 1e-6 at the largest K here (9 * 32 = 288),
compounded over 13 convolutions and the head, a few 1e-6 of the frame scores' scale
(they are O(1) here). log p(c|S) = lse_f o - lse_{f,c} o moves at most twice as far as the
scores; probabilities (p(f|S), attention) move less than that. 1e-4 of max(1, |o|) bounds all
outputs with a margin for other CPUs' kernels (measured here: at most 5e-7).
"""

import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from videmo.main import main

# The tests share one trained work directory (module fixtures): keep them on one xdist worker.
pytestmark = [pytest.mark.xdist_group("predict"), pytest.mark.slow]

FRAME_COUNTS = (3, 7)
RELATIVE_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def workdir(tiny_workdir):
  return tiny_workdir


@pytest.fixture(scope="module")
def predictor(tiny_predictor):
  return tiny_predictor


@pytest.fixture(scope="module")
def clips(predictor):
  """{T: (crops [1, T, C, C, 3] uint8, mask [1, T] bool)}; frame 5 of the 7 is masked."""
  rng = np.random.default_rng(0)
  c = predictor.crop_size
  out = {}
  for t in FRAME_COUNTS:
    mask = np.ones((1, t), bool)
    if t > 5:
      mask[0, 5] = False
    out[t] = rng.integers(0, 256, (1, t, c, c, 3), dtype=np.uint8), mask
  return out


@pytest.fixture(scope="module")
def expected(predictor, clips):
  """videmo's own outputs for each clip: the run's model and parameters, `model.apply`."""
  @jax.jit
  def apply(frames, mask):
    x = predictor.convention.normalize(frames, jnp.float32)
    return predictor.model.apply({"params": predictor.params}, x, mask)

  return {t: {k: np.asarray(v) for k, v in apply(*clip).items()} for t, clip in clips.items()}


def export_extra():
  """(onnx, onnxruntime), or skip where the `export` extra is not installed."""
  reason = 'the export extra: pip install -e ".[export]"'
  pytest.importorskip("jax2onnx", reason=reason)
  return pytest.importorskip("onnx", reason=reason), pytest.importorskip("onnxruntime", reason=reason)


@pytest.fixture(scope="module")
def exported(workdir, tmp_path_factory):
  """{format: path} of the run exported by `videmo export` in each format."""
  export_extra()
  folder = tmp_path_factory.mktemp("export")
  paths = {"onnx": folder / "tiny.onnx", "stablehlo": folder / "tiny.stablehlo"}
  for fmt, path in paths.items():
    assert main(["export", "--checkpoint", str(workdir), "--format", fmt, str(path)]) == 0
  return paths


def assert_matches(got: dict, want: dict, mask: np.ndarray) -> None:
  """The exported outputs against videmo's (see the module docstring for the tolerance)."""
  atol = RELATIVE_TOLERANCE * max(1.0, float(np.abs(want["frame_scores"]).max()))
  assert set(got) == {"log_probs", "frame_importance", "attention", "frame_scores"}
  for name, value in got.items():
    assert value.shape == want[name].shape, name
    np.testing.assert_allclose(value, want[name], rtol=0, atol=atol, err_msg=name)
  assert np.all(got["frame_importance"][~mask] == 0)
  np.testing.assert_allclose(got["frame_importance"].sum(), 1, atol=1e-5)


def test_onnx_matches_videmo_for_any_frame_count(exported, predictor, clips, expected):
  onnx, ort = export_extra()
  model = onnx.load(str(exported["onnx"]))
  frames_dims = model.graph.input[0].type.tensor_type.shape.dim
  assert [d.dim_param or d.dim_value for d in frames_dims] == [1, "T", 32, 32, 3]
  assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
  assert not any(node.domain not in ("", "ai.onnx") for node in model.graph.node)  # standard ops only
  session = ort.InferenceSession(str(exported["onnx"]), providers=["CPUExecutionProvider"])
  assert [i.name for i in session.get_inputs()] == ["frames", "mask"]
  names = [o.name for o in session.get_outputs()]
  assert names == ["log_probs", "frame_importance", "attention", "frame_scores"]
  for t, (frames, mask) in clips.items():
    got = dict(zip(names, session.run(None, {"frames": frames, "mask": mask})))
    assert got["attention"].shape == (1, t, 2, 4)  # [1, T, N, L]: 2 heads over a 2x2 grid
    assert_matches(got, expected[t], mask)
  meta = session.get_modelmeta().custom_metadata_map
  assert json.loads(meta["classes"]) == list(predictor.class_names)
  assert int(meta["crop_size"]) == 32 and json.loads(meta["attention_grid"]) == [2, 2]
  assert json.loads(meta["input_convention"]) == predictor.convention.to_dict()
  assert meta["checkpoint"] == predictor.checkpoint and meta["pooling"] == "softmax"


def test_the_onnx_export_loads_only_the_jax_and_flax_converters(exported):
  """jax2onnx's equinox plugins build and run models as they load (most of an export's time):
  the export above matched videmo without them (onnx_format._import_plugins)."""
  loaded = {name.split(".")[2] for name in sys.modules if name.startswith("jax2onnx.plugins.") and name.count(".") >= 3}
  assert {"jax", "flax"} <= loaded and not loaded & {"equinox", "examples"}, loaded


def test_stablehlo_matches_videmo_for_any_frame_count(exported, predictor, clips, expected):
  path = exported["stablehlo"]
  restored = jax.export.deserialize(bytearray(path.read_bytes()))
  assert set(restored.platforms) == {"cpu", "cuda", "tpu"}
  for t, (frames, mask) in clips.items():
    got = {k: np.asarray(v) for k, v in restored.call(frames, mask).items()}
    assert_matches(got, expected[t], mask)
  meta = json.loads(path.with_name(path.name + ".json").read_text())
  assert json.loads(meta["classes"]) == list(predictor.class_names)


def test_the_onnx_example_predicts_as_videmo(exported, predictor, clips, tmp_path, capsys):
  from videmo.export import run_onnx

  crops = clips[7][0][0]
  np.save(tmp_path / "crops.npy", crops)
  assert run_onnx.main([str(exported["onnx"]), str(tmp_path / "crops.npy")]) == 0
  line = capsys.readouterr().out.strip()
  prediction = predictor.run(crops)  # chunked frames, then pooled: the Predictor's own path
  label = predictor.class_names[int(np.argmax(prediction["log_probs"]))]
  assert line.startswith(f"{tmp_path / 'crops.npy'}: {label} ") and "7 frames" in line
  # A folder of 32x32 face images: each image is already the crop.
  (tmp_path / "faces").mkdir()
  from PIL import Image

  for i, crop in enumerate(crops):
    Image.fromarray(crop).save(tmp_path / "faces" / f"{i:03d}.png")
  assert run_onnx.main([str(exported["onnx"]), str(tmp_path / "faces")]) == 0
  assert capsys.readouterr().out.strip().split(": ", 1)[1] == line.split(": ", 1)[1]


def one_line_error(argv: list[str], capsys) -> str:
  assert main(argv) != 0
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1, err
  assert err.startswith("videmo export: ")
  return err


def test_a_bad_checkpoint_is_a_one_line_error(tmp_path, capsys):
  missing = tmp_path / "no_such_run"
  argv = ["export", "--format", "stablehlo", str(tmp_path / "m.stablehlo"), "--checkpoint"]
  assert str(missing) in one_line_error([*argv, str(missing)], capsys)
  (tmp_path / "empty").mkdir()
  assert "config.json is missing" in one_line_error([*argv, str(tmp_path / "empty")], capsys)
  assert not (tmp_path / "m.stablehlo").exists()


def test_a_bad_format_is_a_one_line_error(tmp_path, capsys):
  err = one_line_error(["export", "--checkpoint", str(tmp_path), "--format", "tflite", str(tmp_path / "m")], capsys)
  assert "--format must be one of onnx, stablehlo, got 'tflite'" in err


def test_a_missing_export_extra_names_the_pip_command(tmp_path, capsys, monkeypatch):
  monkeypatch.setitem(sys.modules, "jax2onnx", None)  # as if not installed
  err = one_line_error(["export", "--checkpoint", str(tmp_path), str(tmp_path / "m.onnx")], capsys)
  assert "jax2onnx" in err and 'pip install -e ".[export]"' in err


@pytest.mark.parametrize("pooling", ["max", "lstm"])
def test_max_and_lstm_poolings_export_to_stablehlo_not_onnx(pooling, tmp_path):
  """A random tiny model (nothing trained): ONNX refuses in one line, StableHLO exports and matches."""
  import tiny
  from videmo.export import network, onnx_format, stablehlo_format
  from videmo.models import video
  from videmo.models.input_convention import IMAGENET_CONVENTION

  model = video.build_model(dict(tiny.STEP_MODEL, lstm_hidden=8, temporal=pooling, conv_impl="xla"))
  run = network.ExportableRun(model, tiny.random_params(model), IMAGENET_CONVENTION, tuple("ABCDEFG"), 32, 32,
                              "checkpoints/0", 0)
  with pytest.raises(ValueError, match=f"model.temporal='{pooling}' does not convert to ONNX.*--format stablehlo"):
    onnx_format.check_convertible(run)
  restored = jax.export.deserialize(bytearray(stablehlo_format.write(run, tmp_path / "m.stablehlo").read_bytes()))
  rng = np.random.default_rng(1)
  for t in (3, 5):
    frames, mask = rng.integers(0, 256, (1, t, 32, 32, 3), dtype=np.uint8), np.arange(t)[None] < t - 1
    got, want = restored.call(frames, mask), jax.jit(run.forward)(frames, mask)
    atol = RELATIVE_TOLERANCE * max(1.0, float(np.abs(want["frame_scores"]).max()))
    for name in run.output_names:
      np.testing.assert_allclose(np.asarray(got[name]), np.asarray(want[name]), rtol=0, atol=atol, err_msg=name)
