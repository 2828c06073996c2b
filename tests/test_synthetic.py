"""SynthEmo: determinism, where and when the emotion shows, class balance, and the TFDS builder."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from videmo.data.synthemo import render
from videmo.data.preparation.builders.synthemo import Builder, SynthEmoConfig
from videmo.data.schema import AFEW_EMOTIONS

NEUTRAL = AFEW_EMOTIONS.index("Neutral")
EXPRESSIVE = [c for c in range(len(AFEW_EMOTIONS)) if c != NEUTRAL]


def _abs_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """Mean absolute difference over colour channels [..., H, W] of two uint8 images."""
  return np.abs(a.astype(np.int32) - b.astype(np.int32)).mean(-1)


# ----------------------------------------------------------------------------- renderer


def test_render_clip_shapes_and_ground_truth():
  clip = render.render_clip(3, 20, 48, AFEW_EMOTIONS.index("Happy"))
  assert clip["frames"].shape == (20, 48, 48, 3) and clip["frames"].dtype == np.uint8
  assert clip["intensity"].shape == (20,) and clip["intensity"].dtype == np.float32
  assert clip["region_mask"].shape == (20, 48, 48) and clip["region_mask"].dtype == bool
  start, stop = clip["window"]
  positive = np.flatnonzero(clip["intensity"] > 0)
  np.testing.assert_array_equal(positive, np.arange(start, stop))
  assert clip["intensity"].max() == 1.0 and clip["intensity"][clip["apex"]] == 1.0
  assert clip["region_mask"].any(axis=(1, 2)).all()
  assert 0.02 < clip["region_mask"].mean() < 0.35  # a few regions, not the whole face


def test_neutral_clip_has_no_expression():
  clip = render.render_clip(4, 12, 32, NEUTRAL, with_neutral=True)
  assert clip["window"] == (0, 0) and clip["apex"] == -1
  assert not clip["intensity"].any()
  np.testing.assert_array_equal(clip["frames"], clip["neutral_frames"])


@pytest.mark.parametrize("num_frames", [16, 37, 80])
def test_window_covers_15_to_40_percent(num_frames):
  for seed in range(40):
    rng = np.random.default_rng(seed)
    intensity, (start, stop), apex = render.intensity_curve(rng, num_frames, label=0)
    length = stop - start
    assert max(3, np.floor(0.15 * num_frames)) <= length <= np.ceil(0.40 * num_frames)
    assert 0 <= start < stop <= num_frames and start <= apex < stop
    assert intensity[apex] == 1.0 and np.all(intensity[start:stop] > 0)
    assert np.all(np.diff(intensity[start:apex + 1]) >= 0) and np.all(np.diff(intensity[apex:stop]) <= 0)


def test_same_seed_same_arrays_different_seed_different_clip():
  a = render.render_clip(7, 10, 40, 2)
  b = render.render_clip(7, 10, 40, 2)
  for key in ("frames", "intensity", "region_mask"):
    np.testing.assert_array_equal(a[key], b[key])
  assert (a["window"], a["apex"]) == (b["window"], b["apex"])
  c = render.render_clip(8, 10, 40, 2)
  assert _abs_diff(a["frames"], c["frames"]).mean() > 10  # another person, scene and timing
  # Asking for the neutral counterfactual draws no extra random numbers: same clip.
  np.testing.assert_array_equal(render.render_clip(7, 10, 40, 2, with_neutral=True)["frames"], a["frames"])


def test_clip_seed_depends_on_seed_split_and_index_only():
  base = render.generate_clip(0, "train", 5, 1, 32, 8, 12)
  again = render.generate_clip(0, "train", 5, 1, 32, 8, 12)
  np.testing.assert_array_equal(base["frames"], again["frames"])
  assert base["source"] == "synthemo:seed=0:split=train:index=5"
  for other in (render.generate_clip(1, "train", 5, 1, 32, 8, 12),
                render.generate_clip(0, "validation", 5, 1, 32, 8, 12),
                render.generate_clip(0, "train", 6, 1, 32, 8, 12)):
    n = min(len(base["frames"]), len(other["frames"]))
    assert _abs_diff(base["frames"][:n], other["frames"][:n]).mean() > 10


@pytest.mark.parametrize("size", [32, 64, 128])
def test_emotion_is_confined_to_the_region_mask(size):
  """>= 90% of |apex - neutral| lies inside the ground-truth mask, and the change is visible.

  The neutral frame is the apex frame rendered with the expression switched off (same person,
  pose, lighting, noise and occluder), so the difference is the emotion and nothing else.
  """
  for seed in range(6):
    label = EXPRESSIVE[seed % len(EXPRESSIVE)]
    clip = render.render_clip(100 * size + seed, 12, size, label, with_neutral=True)
    apex = clip["apex"]
    diff = _abs_diff(clip["frames"][apex], clip["neutral_frames"][apex])
    mask = clip["region_mask"][apex]
    assert diff[mask].sum() >= 0.9 * diff.sum(), (size, seed, label)
    # Visible: several pixels change by a lot, yet only a small part of the frame changes.
    assert (diff > 10).sum() >= size * size // 400, (size, seed, label)
    assert (diff > 0).mean() < 0.12


def test_only_the_window_carries_the_emotion():
  clip = render.render_clip(11, 30, 48, AFEW_EMOTIONS.index("Surprise"), with_neutral=True)
  start, stop = clip["window"]
  changed = _abs_diff(clip["frames"], clip["neutral_frames"]).sum(axis=(1, 2)) > 0
  np.testing.assert_array_equal(np.flatnonzero(changed), np.arange(start, stop))


def test_expressions_are_distinct_and_neutral_is_zero():
  table = np.stack([e.as_array() for e in render.EXPRESSIONS])
  assert table.shape == (len(AFEW_EMOTIONS), 6)
  assert not table[NEUTRAL].any()
  distances = np.linalg.norm(table[:, None] - table[None], axis=-1) + np.eye(len(table)) * 1e9
  assert distances.min() >= 1.0


def test_pair_expressions_need_two_regions():
  """'pairs': every class is a mouth state and an upper-face state; no single region's state
  identifies a class (each is shared by >= 2 classes), yet the pair does, and classes stay apart."""
  table = np.stack([e.as_array() for e in render.PAIR_EXPRESSIONS])
  assert table.shape == (len(AFEW_EMOTIONS), 6) and not table[NEUTRAL].any()
  mouth = [tuple(row[:3]) for row in table]
  upper = [tuple(row[3:]) for row in table]
  for states in (mouth, upper):
    assert all(states.count(state) >= 2 for state in states)
  assert len(set(zip(mouth, upper))) == len(AFEW_EMOTIONS)
  distances = np.linalg.norm(table[:, None] - table[None], axis=-1) + np.eye(len(table)) * 1e9
  assert distances.min() >= 1.0


def test_pair_expression_moves_mouth_and_brows_inside_the_mask():
  sad = AFEW_EMOTIONS.index("Sad")  # M1 + U1 in the 'pairs' set
  clip = render.render_clip(5, 12, 64, sad, with_neutral=True, expressions="pairs")
  apex = clip["apex"]
  diff = _abs_diff(clip["frames"][apex], clip["neutral_frames"][apex])
  assert diff[clip["region_mask"][apex]].sum() >= 0.9 * diff.sum()
  rows = np.flatnonzero(diff.sum(axis=1) > 0)
  assert rows.max() - rows.min() > 64 // 5  # from the brows down to the mouth, not one region


@pytest.mark.parametrize("share", [(0.10, 0.25), (0.5, 0.5)])
def test_window_share_is_configurable(share):
  for seed in range(30):
    _, (start, stop), _ = render.intensity_curve(np.random.default_rng(seed), 40, 0, window_share=share)
    assert max(3, np.floor(share[0] * 40)) <= stop - start <= np.ceil(share[1] * 40)
  # the defaults render exactly what they always did
  a = render.generate_clip(0, "train", 2, 1, 32, 8, 12)
  b = render.generate_clip(0, "train", 2, 1, 32, 8, 12, expressions="afew", window_share=(0.15, 0.40))
  np.testing.assert_array_equal(a["frames"], b["frames"])


def test_split_labels_are_balanced_and_seeded():
  for n in (7, 50, 773):
    counts = np.bincount(render.split_labels(0, "train", n), minlength=7)
    assert counts.max() - counts.min() <= 1 and counts.sum() == n
  np.testing.assert_array_equal(render.split_labels(3, "train", 100), render.split_labels(3, "train", 100))
  assert (render.split_labels(3, "train", 100) != render.split_labels(3, "validation", 100)).any()
  assert (render.split_labels(3, "train", 100) != render.split_labels(4, "train", 100)).any()


@pytest.mark.parametrize("call, field", [
    (lambda: render.render_clip(0, 8, 16, 0), "size"),
    (lambda: render.render_clip(0, 0, 32, 0), "num_frames"),
    (lambda: render.render_clip(0, 8, 32, 7), "label"),
    (lambda: render.clip_seed(0, "dev", 0), "split"),
    (lambda: render.generate_clip(0, "train", 0, 0, 32, 9, 8), "min_frames"),
    (lambda: SynthEmoConfig(name="bad", size=8), "size"),
    (lambda: SynthEmoConfig(name="bad", min_frames=0), "min_frames"),
    (lambda: SynthEmoConfig(name="bad", expression_set="smiles"), "expression_set"),
    (lambda: SynthEmoConfig(name="bad", window_min=0.5, window_max=0.2), "window_share"),
    (lambda: render.render_clip(0, 8, 32, 0, window_share=(0.0, 0.3)), "window_share"),
    (lambda: Builder(workers=0), "workers"),
])
def test_bad_arguments_name_the_field(call, field):
  with pytest.raises(ValueError, match=field):
    call()


# ----------------------------------------------------------------------------- builder

TINY = dict(size=32, num_train=14, num_validation=7, min_frames=4, max_frames=9)


def _build(data_dir, workers: int, seed: int = 0) -> Builder:
  builder = Builder(config=SynthEmoConfig(name="test_build", seed=seed, **TINY), data_dir=str(data_dir), workers=workers)
  builder.download_and_prepare()
  return builder


def _shards(builder: Builder) -> dict[str, bytes]:
  files = sorted(p for p in builder.data_path.iterdir() if ".array_record-" in p.name)
  assert files, f"no array_record shards in {builder.data_path}"
  return {p.name: p.read_bytes() for p in files}


@pytest.fixture(scope="module")
def tiny_builds(tmp_path_factory):
  """The tiny config built with seed 0 here (1 worker) and in another process (2 workers,
  so anything that varies between processes shows), and with seed 1."""
  root = tmp_path_factory.mktemp("synthemo")
  script = (f"from videmo.data.preparation.builders.synthemo import Builder, SynthEmoConfig; "
            f"Builder(config=SynthEmoConfig(name='test_build', seed=0, **{TINY!r}), data_dir={str(root / 'b')!r}, "
            f"workers=2).download_and_prepare()")
  subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
  other_process = Builder(config=SynthEmoConfig(name="test_build", seed=0, **TINY), data_dir=str(root / "b"))
  return _build(root / "a", workers=1), other_process, _build(root / "c", workers=1, seed=1)


def test_builds_are_byte_identical_for_a_seed(tiny_builds):
  one_worker, two_workers, other_seed = tiny_builds
  assert _shards(one_worker) == _shards(two_workers)
  assert _shards(one_worker).keys() == _shards(other_seed).keys()
  assert all(a != b for a, b in zip(_shards(one_worker).values(), _shards(other_seed).values()))


def test_shards_read_back_through_data_source(tiny_builds):
  builder = tiny_builds[0]
  source = tfds.data_source("synthemo/test_build", data_dir=builder.data_dir_root)
  assert {split: len(source[split]) for split in source} == {"train": 14, "validation": 7}
  assert "tensorflow" not in sys.modules
  frame_counts = []
  for split in ("train", "validation"):
    labels = [source[split][i]["label"] for i in range(len(source[split]))]
    counts = np.bincount(labels, minlength=7)
    assert counts.max() - counts.min() <= 1
    for i in range(len(source[split])):
      example = source[split][i]
      f = example["num_frames"]
      frame_counts.append(f)
      assert TINY["min_frames"] <= f <= TINY["max_frames"]
      assert len(example["frames"]) == len(example["region_mask"]) == len(example["intensity"]) == f
      assert all(example["face_found"])
  assert len(set(frame_counts)) >= 3  # frame counts are spread over the range
  example = source["train"][0]
  index = int(example["clip_id"].decode().split("-")[1])
  clip = render.generate_clip(0, "train", index, example["label"], TINY["size"], TINY["min_frames"],
                                 TINY["max_frames"])
  frames, masks = np.stack(example["frames"]), np.stack(example["region_mask"])
  assert frames.shape == clip["frames"].shape and masks.shape == clip["region_mask"].shape + (1,)
  assert _abs_diff(frames, clip["frames"]).mean() < 12  # JPEG
  np.testing.assert_array_equal(masks[..., 0].astype(bool), clip["region_mask"])
  np.testing.assert_array_equal(np.asarray(example["intensity"], np.float32), clip["intensity"])
  np.testing.assert_array_equal(example["window"], clip["window"])
  assert example["apex_frame"] == clip["apex"]
  assert example["source"].decode() == clip["source"]


def test_prepare_loads_the_registered_builder_with_workers(tmp_path):
  from videmo.data.preparation import builders, prepare

  assert "synthemo" in builders.NAMES
  builder = prepare.load_builder("synthemo/small", tmp_path, workers=3)
  assert isinstance(builder, Builder) and builder._workers == 3
  assert builder.builder_config.size == 64 and builder.info.file_format.value == "array_record"
  assert Builder(data_dir=str(tmp_path)).builder_config.num_train == 773  # the default: AFEW's scale
