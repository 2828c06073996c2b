"""Pre-trained weights: every published format converts to a trunk that matches an independent
float64 numpy VGG16; BGR and RGB releases give the same trunk; bad files fail in one line that
says what was expected; loading into a model is strict; conventions travel with the weights.

Source files hold random full-shape VGG16 convolutions (He init, ~59 MB each), written once per
session under pytest's tmp directory by tests/weight_writers.py; fc layers are small (pool5 of
2x2 cells, 64-48-10 units) so --check runs on a 64x64 image.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

import vgg_reference as ref
import weight_writers as W
from videmo import convert
from videmo.main import COMMANDS
from videmo.models.input_convention import IMAGENET_CONVENTION, VGGFACE_CONVENTION, InputConvention
from videmo.models.vgg import VGG16
from videmo.weights import converted as converted_weights  # `converted` is a fixture here
from videmo.weights import formats, torch_pickle
from videmo.weights.common import WeightFileError

# Each release's own preprocessing, typed here from the releases' documentation (not imported).
VGGFACE_MEAN_RGB = np.array([129.186279296875, 104.76238250732422, 93.59396362304688])
CAFFE_MEAN_BGR = np.array([93.5940, 104.7624, 129.1863])
IMAGENET_MEAN, IMAGENET_STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
FEATURES_MEAN = np.array([0.48235, 0.45882, 0.40784])
SIZE = 48  # test image side: conv5_3 is 3x3x512
CLASS_NAMES = [f"identity {i}" for i in range(10)]


def pre_vggface(img):  # RGB 0..255 minus the mean face pixel
  return (img.astype(np.float64) - VGGFACE_MEAN_RGB).transpose(2, 0, 1)


def pre_caffe(img):  # BGR 0..255 minus the BGR mean
  return (img[..., ::-1].astype(np.float64) - CAFFE_MEAN_BGR).transpose(2, 0, 1)


def pre_imagenet(img):  # RGB 0..1, ImageNet mean/std
  return ((img / 255.0 - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)


def pre_features(img):  # RGB 0..255 minus (123, 117, 104)
  return ((img / 255.0 - FEATURES_MEAN) * 255.0).transpose(2, 0, 1)


@dataclasses.dataclass(frozen=True)
class Case:
  format: str
  write: object  # (directory, conv, fc) -> path
  preprocess: object
  container: str  # what the reader must report having parsed
  bgr: bool = False  # the file holds the BGR version of the network


def _nan_head(conv, fc):  # torchvision's IMAGENET1K_FEATURES: the classifier is NaN
  return W.torchvision_state_dict(
      conv, {n: (np.full_like(w, np.nan), np.full_like(b, np.nan)) for n, (w, b) in fc.items()})


def _pth(filename, state_dict, container, **kwargs):
  return lambda d, c, f: W.write_pth(d / filename, state_dict(c, f), container, **kwargs)


def _mat(filename, **kwargs):
  return lambda d, c, f: W.write_mat(d / filename, c, f, VGGFACE_MEAN_RGB, CLASS_NAMES, **kwargs)


def _caffe(filename, style):
  return lambda d, c, f: W.write_caffemodel(d / filename, W.to_bgr(c), f, style)


# case -> (format, writer (directory, conv, fc) -> path, the release's preprocessing, BGR file?)
CASES = {
    "vggface-pth zip": Case(
        "vggface-pth", _pth("vgg_face_dag.pth", W.vggface_state_dict, "zip"), pre_vggface,
        "torch zip"),
    "vggface-pth legacy": Case(
        "vggface-pth", _pth("vgg_face_dag_legacy.pth", W.vggface_state_dict, "legacy",
                            share_storage=True), pre_vggface, "torch legacy stream"),
    "vggface-mat": Case("vggface-mat", _mat("vgg-face.mat"), pre_vggface, "MatConvNet simplenn"),
    "vggface-mat net": Case("vggface-mat", _mat("vgg_face.mat", layout="net"), pre_vggface,
                            "MatConvNet simplenn (net.*)"),
    "vggface-mat dagnn": Case("vggface-mat", _mat("vgg-face-dag.mat", layout="dagnn"), pre_vggface,
                              "MatConvNet DagNN"),
    "vggface-caffe v1": Case("vggface-caffe", _caffe("VGG_FACE.caffemodel", "v1"), pre_caffe,
                             "Caffe NetParameter (layers)", bgr=True),
    "vggface-caffe new": Case("vggface-caffe", _caffe("VGG_FACE_new.caffemodel", "new"), pre_caffe,
                              "Caffe NetParameter (layer)", bgr=True),
    "torchvision-vgg16": Case(
        "torchvision-vgg16", _pth("vgg16-397923af.pth", W.torchvision_state_dict, "tar"),
        pre_imagenet, "torch tar"),
    "torchvision-vgg16 legacy": Case(
        "torchvision-vgg16", _pth("vgg16-legacy.pth", W.torchvision_state_dict, "legacy"),
        pre_imagenet, "torch legacy stream"),
    "torchvision-vgg16-features": Case(
        "torchvision-vgg16-features",
        _pth("vgg16_features-amdegroot-88682ab5.pth", _nan_head, "zip"), pre_features, "torch zip"),
}


@pytest.fixture
def scratch(tmp_path):
  """tmp_path, deleted after the test: the weight files written there are tens of MB each."""
  yield tmp_path
  shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.fixture(scope="session")
def weights():
  """(conv, fc) of one random RGB VGG16: conv [O, I, 3, 3], fc dense [out, in]."""
  return W.random_vgg16(seed=0, k=2)


@pytest.fixture(scope="session")
def source(tmp_path_factory, weights):
  """source(case_name) -> path of that case's file, written on first use."""
  directory = tmp_path_factory.mktemp("sources")
  written: dict[str, Path] = {}

  def get(name: str) -> Path:
    if name not in written:
      written[name] = Path(CASES[name].write(directory, *weights))
    return written[name]
  yield get
  shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def converted(tmp_path_factory, source):
  """converted(case_name, *flags) -> output directory of `videmo convert-weights`, made once."""
  directory = tmp_path_factory.mktemp("converted")
  done: dict[tuple, Path] = {}

  def get(name: str, *flags: str) -> Path:
    key = (name,) + flags
    if key not in done:
      out = directory / f"{len(done)}"
      assert run_convert(CASES[name].format, source(name), out, *flags)[0] == 0
      done[key] = out
    return done[key]
  yield get
  shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def trunk_apply():
  return jax.jit(VGG16().apply)


@pytest.fixture(scope="session")
def image():
  return np.random.default_rng(1).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)


def run_convert(fmt, path, out, *flags, capsys=None):
  rc = convert.main(["--format", fmt, "--input", str(path), "--output", str(out), *flags])
  return rc, (capsys.readouterr() if capsys else None)


def rel_err(got, want):
  return float(np.linalg.norm(np.asarray(got, np.float64) - want) / np.linalg.norm(want))


def flax_features(trunk_apply, trunk, convention, image):
  return np.asarray(trunk_apply({"params": trunk},
                                convention.normalize(image[None]))[0])  # [h, w, 512]


def reference_features(case: Case, weights, image):
  conv, _ = weights
  return ref.conv5_3(case.preprocess(image),
                     W.to_bgr(conv) if case.bgr else conv).transpose(1, 2, 0)


# ------------------------------------------------------------------------------------------------
# Numerical agreement with the reference, per format


@pytest.mark.parametrize("name", list(CASES))
def test_converted_trunk_matches_float64_reference(name, converted, weights, image, trunk_apply):
  trunk, convention, extras = converted_weights.load_converted(converted(name))
  assert convention.channel_order == "RGB"
  assert sorted(trunk) == sorted(ref.NAMES) and extras["fc"] is None
  assert extras["source"]["format"] == CASES[name].format
  assert extras["source"]["container"] == CASES[name].container
  got = flax_features(trunk_apply, trunk, convention, image)
  want = reference_features(CASES[name], weights, image)
  assert got.shape == want.shape == (SIZE // 16, SIZE // 16, 512)
  assert np.linalg.norm(want) > 0 and (want > 0).mean() > 0.05  # the random network is alive
  assert rel_err(got, want) < 1e-4


def test_bgr_and_rgb_releases_give_the_same_trunk(converted, weights, image, trunk_apply, source):
  caffe = converted_weights.load_converted(converted("vggface-caffe v1"))
  for rgb_case in ("vggface-mat", "vggface-pth zip"):
    rgb = converted_weights.load_converted(converted(rgb_case))
    np.testing.assert_array_equal(caffe[0]["conv1_1"]["kernel"], rgb[0]["conv1_1"]["kernel"])
    np.testing.assert_allclose(caffe[1].mean, rgb[1].mean, atol=1e-4)
    assert rel_err(flax_features(trunk_apply, *caffe[:2], image),
                   flax_features(trunk_apply, *rgb[:2], image)) < 1e-5
  # Control: without the first-layer conversion the Caffe trunk computes something else.
  raw = formats.read("vggface-caffe", source("vggface-caffe v1"))
  assert raw.convention.channel_order == "BGR"
  unconverted = {n: {"kernel": k, "bias": b} for n, (k, b) in raw.conv.items()}
  wrong = flax_features(trunk_apply, unconverted, raw.convention.as_rgb(), image)
  assert rel_err(wrong, reference_features(CASES["vggface-mat"], weights, image)) > 1e-2


def test_caffe_convention_is_stored_as_rgb(converted):
  convention = converted_weights.load_convention(converted("vggface-caffe v1"))
  assert convention == InputConvention("RGB", 1.0, (129.1863, 104.7624, 93.5940), (1.0, 1.0, 1.0))
  tv = converted_weights.load_convention(converted("torchvision-vgg16"))
  assert tv.scale == pytest.approx(1 / 255) and tv.std == (0.229, 0.224, 0.225)


# ------------------------------------------------------------------------------------------------
# One-line errors that say what was expected


def assert_one_line_error(rc, captured, *fragments):
  assert rc == 2
  err = captured.err
  assert err.count("\n") == 1 and err.startswith("videmo convert-weights: error: "), err
  assert "expect" in err, err
  for fragment in fragments:
    assert fragment in err, err


@pytest.mark.parametrize("name", ["vggface-pth zip", "vggface-pth legacy", "vggface-mat",
                                  "vggface-caffe v1", "torchvision-vgg16"])
def test_truncated_file_gives_one_line_error(name, source, scratch, capsys):
  data = source(name).read_bytes()
  truncated = scratch / source(name).name
  truncated.write_bytes(data[: len(data) * 3 // 5])
  rc, captured = run_convert(CASES[name].format, truncated, scratch / "out", capsys=capsys)
  assert_one_line_error(rc, captured, "truncated")
  assert not (scratch / "out" / converted_weights.METADATA_FILE).exists()


@pytest.mark.parametrize("name,wrong,fragments", [
    ("vggface-mat", "vggface-caffe", ["MATLAB", "use --format vggface-mat"]),
    ("vggface-caffe v1", "vggface-pth", ["protobuf", "use --format vggface-caffe"]),
    ("vggface-pth zip", "vggface-mat", ["zip archive", "vggface-pth"]),
    ("vggface-pth zip", "torchvision-vgg16", ["features.0.weight", "--format vggface-pth"]),
    ("torchvision-vgg16", "vggface-pth", ["conv1_1.weight", "--format torchvision-vgg16"]),
    ("torchvision-vgg16-features", "torchvision-vgg16", ["NaN", "torchvision-vgg16-features"]),
    ("torchvision-vgg16", "torchvision-vgg16-features",
     ["finite", "use --format torchvision-vgg16"]),
])
def test_wrong_format_gives_one_line_error(name, wrong, fragments, source, scratch, capsys):
  rc, captured = run_convert(wrong, source(name), scratch / "out", capsys=capsys)
  assert_one_line_error(rc, captured, *fragments)


def test_downloaded_archive_is_recognised(scratch, capsys):
  import gzip
  path = scratch / "vgg_face_caffe.tar.gz"
  path.write_bytes(gzip.compress(b"not extracted"))
  rc, captured = run_convert("vggface-caffe", path, scratch / "out", capsys=capsys)
  assert_one_line_error(rc, captured, "gzip", "extract it first")


def _tiny(*shape):
  return np.zeros(shape, np.float32)


def write_other_network(kind: str, directory: Path) -> tuple[str, Path]:
  if kind == "resnet":
    sd = {
        "conv1.weight": _tiny(64, 3, 7, 7),
        "bn1.weight": _tiny(64),
        "bn1.running_mean": _tiny(64),
        "layer1.0.conv1.weight": _tiny(64, 64, 3, 3),
        "fc.weight": _tiny(1000, 512)
    }
    return "vggface-pth", W.write_pth(directory / "resnet50.pth", sd, "zip")
  if kind == "vgg19":
    sd = {
        f"features.{i}.weight": _tiny(1)
        for i in (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)
    }
    return "torchvision-vgg16", W.write_pth(directory / "vgg19-dcbb9e9d.pth", sd, "legacy")
  if kind == "vgg16_bn":
    sd = {"features.0.weight": _tiny(64, 3, 3, 3), "features.1.weight": _tiny(64),
          "features.1.running_mean": _tiny(64), "features.3.weight": _tiny(64, 64, 3, 3)}
    return "torchvision-vgg16", W.write_pth(directory / "vgg16_bn.pth", sd, "zip")
  if kind == "alexnet-caffe":
    conv = {n: (_tiny(4, 3, 3, 3), _tiny(4)) for n in ref.NAMES}
    return "vggface-caffe", W.write_caffemodel(directory / "bvlc_alexnet.caffemodel",
                                               conv,
                                               None,
                                               "v1",
                                               conv_names=[f"conv{i}" for i in range(1, 14)])
  if kind == "vggm-mat":
    conv = {n: (_tiny(4, 3, 3, 3), _tiny(4)) for n in ref.NAMES}
    return "vggface-mat", W.write_mat(directory / "vgg-m.mat", conv, None, VGGFACE_MEAN_RGB,
                                      conv_names=[f"conv{i}" for i in range(1, 14)])
  raise ValueError(kind)


@pytest.mark.parametrize("kind,fragments", [
    ("resnet", ["expected key conv1_1.weight of shape [64,3,3,3]", "ResNet"]),
    ("vgg19", ["features.17.weight", "VGG19"]),
    ("vgg16_bn", ["batch normalisation"]),
    ("alexnet-caffe", ["expected layer conv1_1", "AlexNet"]),
    ("vggm-mat", ["expected a conv layer named conv1_1"]),
])
def test_other_network_gives_one_line_error(kind, fragments, scratch, capsys):
  fmt, path = write_other_network(kind, scratch)
  rc, captured = run_convert(fmt, path, scratch / "out", capsys=capsys)
  assert_one_line_error(rc, captured, *fragments)


def test_imagenet_vgg16_in_caffe_format_is_refused(weights, scratch, capsys):
  conv, _ = weights
  _, fc = W.random_vgg16(seed=3, k=1, fc_sizes=(8, 8, 1000))
  path = W.write_caffemodel(scratch / "VGG_ILSVRC_16_layers.caffemodel", W.to_bgr(conv), fc)
  rc, captured = run_convert("vggface-caffe", path, scratch / "out", capsys=capsys)
  assert_one_line_error(rc, captured, "1000 outputs", "2622")


def test_mis_shaped_and_non_finite_weights_are_refused(weights, scratch, capsys):
  conv, fc = weights
  bad = dict(conv)
  bad["conv3_1"] = (conv["conv3_1"][0][:, :64], conv["conv3_1"][1])
  path = W.write_pth(scratch / "bad_shape.pth", W.vggface_state_dict(bad, None), "legacy")
  rc, captured = run_convert("vggface-pth", path, scratch / "a", capsys=capsys)
  assert_one_line_error(rc, captured, "conv3_1.weight of shape [256,128,3,3], found [256,64,3,3]")
  nan = dict(conv)
  nan["conv4_2"] = (conv["conv4_2"][0].copy(), conv["conv4_2"][1])
  nan["conv4_2"][0][0, 0, 0, 0] = np.nan
  path = W.write_pth(scratch / "nan.pth", W.vggface_state_dict(nan, None), "legacy")
  rc, captured = run_convert("vggface-pth", path, scratch / "b", capsys=capsys)
  assert_one_line_error(rc, captured, "conv4_2.weight contains NaN")


def test_pth_reader_never_runs_code_from_the_file(scratch, capsys):
  marker = scratch / "pwned"
  payload = (b"\x80\x02cbuiltins\nopen\nq\x00X" + len(str(marker)).to_bytes(4, "little")
             + str(marker).encode() + b"X\x01\x00\x00\x00w\x86R.")
  path = W.write_raw_pickle_pth(scratch / "evil.pth", payload)
  with pytest.raises(torch_pickle.TorchFileError, match="refusing to load builtins.open"):
    torch_pickle.load(path)
  assert not marker.exists()
  whole_model = W.write_raw_pickle_pth(scratch / "model.pth",
                                       b"\x80\x02cvgg_face_dag\nVgg_face_dag\n)R.")
  rc, captured = run_convert("vggface-pth", whole_model, scratch / "out", capsys=capsys)
  assert_one_line_error(rc, captured, "vgg_face_dag.Vgg_face_dag", "state_dict()")


def test_existing_output_needs_force(converted, source, capsys):
  out = converted("vggface-mat")
  rc, captured = run_convert("vggface-mat", source("vggface-mat"), out, capsys=capsys)
  assert_one_line_error(rc, captured, "--force")
  assert run_convert("vggface-mat", source("vggface-mat"), out, "--force")[0] == 0


# ------------------------------------------------------------------------------------------------
# fc layers and --check


def check_lines(stdout: str) -> list[tuple[int, float, str]]:
  rows = []
  for line in stdout.splitlines():
    parts = line.split()
    if len(parts) >= 4 and parts[0].rstrip(".").isdigit() and parts[1] == "class":
      rows.append((int(parts[2]), float(parts[3][2:]), " ".join(parts[4:])))
  return rows


def reference_top(case: Case, weights, img64, top=5):
  conv, fc = weights
  probs = ref.head(ref.conv5_3(case.preprocess(img64), W.to_bgr(conv) if case.bgr else conv), fc)
  order = np.argsort(-probs)[:top]
  return [int(i) for i in order], probs[order]


@pytest.mark.parametrize("name,keep_fc,names_file", [("vggface-mat", True, False),
                                                     ("vggface-caffe v1", False, True),
                                                     ("torchvision-vgg16", True, False),
                                                     ("vggface-pth legacy", True, False)])
def test_check_prints_the_reference_top_classes(name, keep_fc, names_file, source, weights,
                                                scratch, capsys):
  rng = np.random.default_rng(2)
  Image.fromarray(rng.integers(0, 256, (80, 64, 3), dtype=np.uint8)).save(scratch / "face.png")
  flags = ["--check", str(scratch / "face.png")] + (["--keep-fc"] if keep_fc else [])
  if names_file:
    (scratch / "names.txt").write_text("\n".join(CLASS_NAMES) + "\n")
    flags += ["--names", str(scratch / "names.txt")]
  rc, captured = run_convert(CASES[name].format,
                             source(name),
                             scratch / "out",
                             *flags,
                             capsys=capsys)
  assert rc == 0, captured.err
  rows = check_lines(captured.out)
  img64 = convert.prepare_image(scratch / "face.png", 64)
  assert img64.shape == (64, 64, 3) and img64.dtype == np.uint8
  want_idx, want_p = reference_top(CASES[name], weights, img64)
  assert [r[0] for r in rows] == want_idx
  np.testing.assert_allclose([r[1] for r in rows], want_p, atol=2e-4)
  has_names = name == "vggface-mat" or names_file
  assert [r[2] for r in rows] == ([CLASS_NAMES[i] for i in want_idx] if has_names else [""] * 5)
  _, _, extras = converted_weights.load_converted(scratch / "out")
  assert (extras["fc"] is not None) == keep_fc
  if keep_fc:
    assert extras["fc"]["fc6"]["kernel"].shape == (2, 2, 512, 64)
    assert extras["fc"]["fc8"]["kernel"].shape == (48, 10)
    assert extras["class_names"] == (CLASS_NAMES if name == "vggface-mat" else None)


def test_check_names_file_must_match_the_classes(source, scratch, capsys):
  Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(scratch / "face.png")
  (scratch / "names.txt").write_text("only\ntwo\n")
  rc, captured = run_convert("vggface-caffe",
                             source("vggface-caffe v1"),
                             scratch / "out",
                             "--check",
                             str(scratch / "face.png"),
                             "--names",
                             str(scratch / "names.txt"),
                             capsys=capsys)
  assert_one_line_error(rc, captured, "expected 10 class names", "found 2")


def test_check_needs_usable_fc_layers(source, scratch, capsys):
  Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(scratch / "face.png")
  rc, captured = run_convert("torchvision-vgg16-features", source("torchvision-vgg16-features"),
                             scratch / "out", "--check", str(scratch / "face.png"), capsys=capsys)
  assert_one_line_error(rc, captured, "NaN")


# ------------------------------------------------------------------------------------------------
# Strict loading into a model


@pytest.fixture(scope="session")
def model_params():
  """A model's params: a full-width VGG16 trunk (random jax arrays) under 'trunk', and a head."""
  shapes = jax.eval_shape(VGG16().init, jax.random.key(0), jnp.zeros((1, 32, 32, 3)))["params"]
  rng = np.random.default_rng(5)
  trunk = jax.tree.map(lambda s: jnp.asarray(0.01 * rng.standard_normal(s.shape, np.float32)),
                       shapes)
  return {"trunk": trunk, "head": {"kernel": np.ones((512, 7), np.float32)}}


def test_load_trunk_into_replaces_every_trunk_array(model_params, converted):
  directory = converted("vggface-mat")
  new, report = converted_weights.load_trunk_into(model_params, directory)
  trunk, convention, _ = converted_weights.load_converted(directory)
  for name in ref.NAMES:
    for leaf in ("kernel", "bias"):
      got = new["trunk"][name][leaf]
      assert isinstance(got, jax.Array) and got.dtype == jnp.float32
      np.testing.assert_array_equal(np.asarray(got), trunk[name][leaf])
      assert not np.array_equal(np.asarray(model_params["trunk"][name][leaf]), trunk[name][leaf])
  assert new["head"] is model_params["head"]
  assert len(report.loaded) == 26 and report.num_params == 14_714_688
  assert report.convention == convention and report.source["format"] == "vggface-mat"
  text = str(report)
  assert "26 arrays (14,714,688 parameters)" in text and "vgg-face.mat" in text
  assert convention.describe() in text


@pytest.fixture(scope="session")
def partial_dir(tmp_path_factory, source):
  """A converted directory without conv5_3 (as a file from a shorter network would be)."""
  raw = formats.to_rgb(formats.read("vggface-mat", source("vggface-mat")))
  conv = {n: v for n, v in raw.conv.items() if n != "conv5_3"}
  directory = tmp_path_factory.mktemp("partial")
  yield converted_weights.save_converted(directory, dataclasses.replace(raw, conv=conv))
  shutil.rmtree(directory, ignore_errors=True)


def test_missing_parameters_fail_unless_allowed(model_params, partial_dir):
  with pytest.raises(ValueError) as info:
    converted_weights.load_trunk_into(model_params, partial_dir)
  lines = str(info.value).splitlines()
  assert "2 missing, 0 unexpected, 0 mis-shaped" in lines[0]
  assert sorted(line.split()[1] for line in lines[1:]) == ["conv5_3/bias", "conv5_3/kernel"]
  new, report = converted_weights.load_trunk_into(model_params, partial_dir,
                                                  allow_missing=("^conv5_3/",))
  assert report.kept_at_init == ("conv5_3/bias", "conv5_3/kernel") and len(report.loaded) == 24
  assert new["trunk"]["conv5_3"]["kernel"] is model_params["trunk"]["conv5_3"]["kernel"]
  assert "left at initialisation (allowed missing): conv5_3/bias, conv5_3/kernel" in str(report)


def test_unexpected_parameters_fail_unless_allowed(model_params, converted):
  short = dict(model_params)
  short["trunk"] = {n: v for n, v in model_params["trunk"].items() if n != "conv5_3"}
  with pytest.raises(ValueError,
                     match=r"(?s)0 missing, 2 unexpected.*unexpected: conv5_3/bias \[512\]"):
    converted_weights.load_trunk_into(short, converted("vggface-mat"))
  new, report = converted_weights.load_trunk_into(short,
                                                  converted("vggface-mat"),
                                                  allow_unexpected="^conv5_",
                                                  allow_missing=("^fc",))
  assert "conv5_3" not in new["trunk"] and report.ignored == ("conv5_3/bias", "conv5_3/kernel")
  assert report.notes == ("allow_missing pattern '^fc' matched nothing",)


def test_mis_shaped_parameters_always_fail(model_params, converted):
  odd = dict(model_params)
  odd["trunk"] = dict(model_params["trunk"])
  odd["trunk"]["conv5_3"] = {
      "kernel": np.zeros((3, 3, 512, 256), np.float32),
      "bias": np.zeros(256, np.float32)
  }
  with pytest.raises(ValueError) as info:
    converted_weights.load_trunk_into(odd, converted("vggface-mat"), allow_missing=".",
                                      allow_unexpected=".")
  assert "mis-shaped: conv5_3/kernel is [3,3,512,256] in the model but [3,3,512,512]" in str(
      info.value)
  assert "0 missing, 0 unexpected, 2 mis-shaped" in str(info.value)


def test_narrow_trunk_is_refused_with_an_explanation(converted):
  narrow = jax.eval_shape(VGG16(width_divisor=8).init, jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
  with pytest.raises(ValueError,
                     match=r"narrow VGG16 \(width_divisor=8.*full-width.*width_divisor=1"):
    converted_weights.load_trunk_into({"trunk": narrow["params"]}, converted("vggface-mat"))


def test_a_trained_narrow_trunk_round_trips_and_names_a_width_mismatch(tmp_path):
  trunk = jax.eval_shape(VGG16(width_divisor=8).init, jax.random.key(0), jnp.zeros((1, 32, 32, 3)))["params"]
  rng = np.random.default_rng(0)
  trunk = jax.tree.map(lambda s: rng.standard_normal(s.shape).astype(np.float32), trunk)
  source = {"format": "videmo-run", "file": "runs/x/checkpoints/5", "step": 5, "dataset": "synthemo/stills"}
  out = converted_weights.save_trained_trunk(tmp_path / "trunk", trunk, IMAGENET_CONVENTION, source)
  loaded, report = converted_weights.load_trunk_into({"trunk": jax.tree.map(np.zeros_like, trunk)}, out)
  jax.tree.map(np.testing.assert_array_equal, loaded["trunk"], trunk)
  assert "source: format videmo-run, file runs/x/checkpoints/5, step 5" in str(report)
  assert converted_weights.load_convention(out) == IMAGENET_CONVENTION
  narrower = jax.eval_shape(VGG16(width_divisor=16).init, jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
  with pytest.raises(ValueError, match=r"width_divisor=16 .*holds a trunk of width_divisor=8"):
    converted_weights.load_trunk_into({"trunk": narrower["params"]}, out)
  trunk["conv1_1"]["bias"][0] = np.nan
  with pytest.raises(ValueError, match="conv1_1/bias hold NaN"):
    converted_weights.save_trained_trunk(tmp_path / "bad", trunk, IMAGENET_CONVENTION, source)


def test_bad_allow_pattern_is_refused(model_params, converted):
  with pytest.raises(ValueError, match=r"init.allow_missing: 'conv5_\*\[' is not a valid regular"):
    converted_weights.load_trunk_into(model_params, converted("vggface-mat"),
                                      allow_missing=["conv5_*["])


def test_params_without_a_trunk_or_a_bad_directory_are_refused(model_params, scratch, converted):
  with pytest.raises(ValueError, match="under 'trunk'.*variables\\['params'\\]"):
    converted_weights.load_trunk_into({"params": model_params}, converted("vggface-mat"))
  with pytest.raises(WeightFileError, match="expected a converted weight directory"):
    converted_weights.load_trunk_into(model_params, scratch)


def test_home_relative_paths_are_expanded(converted, monkeypatch):
  directory = converted("vggface-mat")
  monkeypatch.setenv("HOME", str(directory.parent))
  home_relative = converted_weights.load_convention(f"~/{directory.name}")
  assert home_relative == converted_weights.load_convention(directory)


def test_edited_converted_directory_is_detected(converted, scratch):
  copy = Path(shutil.copytree(converted("vggface-mat"), scratch / "copy"))
  meta = json.loads((copy / converted_weights.METADATA_FILE).read_text())
  meta["arrays"]["conv1_1/kernel"] = [3, 3, 3, 32]
  (copy / converted_weights.METADATA_FILE).write_text(json.dumps(meta))
  with pytest.raises(WeightFileError, match="does not match"):
    converted_weights.load_converted(copy)


# ------------------------------------------------------------------------------------------------
# Input conventions


def test_input_convention_normalises_numpy_and_jax_alike():
  img = np.random.default_rng(0).integers(0, 256, (2, 4, 5, 3), dtype=np.uint8)
  want = (img.astype(np.float64) - VGGFACE_MEAN_RGB).astype(np.float32)
  got = VGGFACE_CONVENTION.normalize(img)
  assert isinstance(got, np.ndarray) and got.dtype == np.float32 and got.shape == img.shape
  np.testing.assert_allclose(got, want, atol=1e-4)
  got_jax = jax.jit(VGGFACE_CONVENTION.normalize)(jnp.asarray(img))
  assert isinstance(got_jax, jax.Array)
  np.testing.assert_allclose(np.asarray(got_jax), want, atol=1e-4)
  bgr = InputConvention("BGR", 1 / 255, (0.1, 0.2, 0.3), (0.5, 0.25, 0.125))
  want_bgr = (img[..., ::-1] / 255.0 - [0.1, 0.2, 0.3]) / [0.5, 0.25, 0.125]
  np.testing.assert_allclose(bgr.normalize(img), want_bgr, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(bgr.denormalize(bgr.normalize(img)), img, atol=1e-3)
  rgb = bgr.as_rgb()
  np.testing.assert_allclose(rgb.normalize(img)[..., ::-1], bgr.normalize(img), atol=1e-6)
  assert InputConvention.from_dict(json.loads(json.dumps(bgr.to_dict()))) == bgr


@pytest.mark.parametrize("kwargs,match", [
    (dict(channel_order="RBG"), "channel_order"), (dict(mean=(1.0, 2.0)), "mean"),
    (dict(std=(1.0, 0.0, 1.0)), "std"), (dict(scale=0), "scale")])
def test_input_convention_rejects_bad_values(kwargs, match):
  with pytest.raises(ValueError, match=match):
    InputConvention(**kwargs)


def test_convert_weights_is_a_videmo_command():
  assert COMMANDS["convert-weights"][0] == "videmo.convert"
  assert set(formats.formats()) == {"vggface-pth", "vggface-mat", "vggface-caffe",
                                           "torchvision-vgg16", "torchvision-vgg16-features"}
