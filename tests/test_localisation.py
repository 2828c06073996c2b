"""Where attention looks, measured against SynthEmo's ground truth.

* SynthEmo's knobs and ground truth: tiny datasets built with a one-frame window, a whole-clip
  window and distractor frames store the windows and region masks that the renderer's
  parameters give (videmo/data/synthemo/truth.py), and the expression's mask holds every pixel
  the expression changes, region by region, on the pixel grid and on the attention grid;
* the measures (videmo/train/localisation.py) on hand-made maps with known answers;
* `videmo eval` of the tiny run prints the localisation line and writes per-head numbers.
"""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow_datasets as tfds

import tiny
from tiny import REPO
from videmo.data.preparation.builders.synthemo import Builder, SynthEmoConfig
from videmo.data.preparation.builders.synthemo.synthemo_dataset_builder import record_job
from videmo.data.schema import AFEW_EMOTIONS
from videmo.data.synthemo import distractors, regions, render, truth
from videmo.train import evaluation, localisation

NEUTRAL = AFEW_EMOTIONS.index("Neutral")
TINY = dict(size=32, num_train=7, num_validation=7, min_frames=6, max_frames=12)
BUILDS = {
    "loc_one_frame": dict(window_min=0.01, window_max=0.01, window_min_frames=1),
    "loc_whole_clip": dict(window_min=1.0, window_max=1.0, apex_intensity=0.4, expression_set="pairs"),
    "loc_distractors": dict(distractor_rate=0.6, window_min=0.2, window_max=0.3),
    "loc_grid": dict(size=64, num_train=1, window_min=0.3, window_max=0.5),  # a 4 x 4 attention grid
}


# ----------------------------------------------------------------------------- SynthEmo's ground truth


@pytest.fixture(scope="module")
def built(tmp_path_factory):
  """{name: (config, {split: records}, the split sources)} of the BUILDS, each built with one worker."""
  root = tmp_path_factory.mktemp("synthemo_knobs")
  out = {}
  for name, knobs in BUILDS.items():
    config = SynthEmoConfig(name=name, **{**TINY, **knobs})
    Builder(config=config, data_dir=str(root), workers=1).download_and_prepare()
    source = tfds.data_source(f"synthemo/{name}", data_dir=str(root))
    out[name] = config, {split: [source[split][i] for i in range(len(source[split]))] for split in source}, source
  return out


def test_stored_windows_and_region_masks_are_what_the_renderers_parameters_give(built):
  for name, (config, splits, _) in built.items():
    for split, records in splits.items():
      for record in records:
        job = record_job(config, record["source"], record["label"])
        found = truth.clip_truth(job)
        truth.check_record(job, record, found)
        start, stop = (int(v) for v in record["window"])
        assert (start, stop) == found["window"] and int(record["num_frames"]) == found["num_frames"]
        np.testing.assert_array_equal(np.asarray(record["intensity"], np.float32), found["intensity"])
        stored = np.stack(record["region_mask"])[..., 0].astype(bool)
        np.testing.assert_array_equal(stored, found["region_mask"], err_msg=f"{name} {record['clip_id']}")
        assert not (found["expression_mask"] & ~found["region_mask"]).any()
        if int(record["label"]) == NEUTRAL:
          assert (start, stop) == (0, 0) and not found["expression_mask"].any()
          continue
        assert found["expression_mask"][start:stop].any()
        if name == "loc_one_frame":
          assert stop - start == 1 and found["intensity"][start] == 1.0
        if name == "loc_whole_clip":
          assert (start, stop) == (0, found["num_frames"]) and found["intensity"].max() == np.float32(0.4)


def test_distractor_frames_lie_outside_the_window_and_are_recorded(built):
  config, splits, _ = built["loc_distractors"]
  kinds = []
  for record in splits["train"] + splits["validation"]:
    found = truth.clip_truth(record_job(config, record["source"], record["label"]), frames=[])
    start, stop = found["window"]
    assert not found["distractor"][start:stop].any()
    kinds += list(found["distractor"][found["distractor"] > 0])
  assert len(kinds) >= 10 and set(kinds) == {1, 2, 3, 4}  # 60% of the frames outside the windows


def test_a_record_of_another_renderer_is_refused(built):
  config, splits, _ = built["loc_one_frame"]
  record = dict(next(r for r in splits["train"] if int(r["label"]) != NEUTRAL))
  job = record_job(config, record["source"], record["label"])
  record["window"] = np.array([0, 2], np.int32)
  with pytest.raises(ValueError, match="not rendered by this renderer: stored window"):
    truth.check_record(job, record)
  with pytest.raises(ValueError, match="is stored with label"):
    record_job(config, record["source"], (int(record["label"]) + 1) % 7)
  with pytest.raises(ValueError, match="not a SynthEmo clip source"):
    record_job(config, "video.mp4", 0)


def test_evaluation_scores_each_frames_attention_against_its_own_clips_mask(built):
  """SynthEmoMeasures, as evaluate feeds it: head 0 looks at a cell inside each expressive frame's
  mask, head 1 at one outside; frames of a clip come in batches with padding."""
  config, splits, sources = built["loc_grid"]
  source = sources["validation"]
  exp = SimpleNamespace(eval=evaluation.EvalSplit([], None, True, synthemo=config), eval_source=source,
                        config=SimpleNamespace(input=SimpleNamespace(crop_size=64)),
                        model=SimpleNamespace(temporal="softmax", temperature=1.0))
  measures = evaluation.SynthEmoMeasures(exp)
  expected_frames, expected_share, same_cell, real_frames = 0, [], 0, 0
  for i in range(len(source)):
    found = truth.clip_truth(record_job(config, source[i]["source"], source[i]["label"]))
    masks = localisation.grid_mask(found["expression_mask"], 64)  # [F, 16]
    start, stop = found["window"]
    frames = np.arange(found["num_frames"])[::-1]  # any order of frames, then padding
    attention = np.zeros((1, 16, 2, 16), np.float32)
    for slot, f in enumerate(frames):
      attention[0, slot, 0, np.argmax(masks[f])] = 1.0
      attention[0, slot, 1, np.argmin(masks[f])] = 1.0
      same_cell += int(np.argmax(masks[f]) == np.argmin(masks[f]))  # an empty (Neutral) or a full mask
      real_frames += 1
      if start <= f < stop and masks[f].any():
        expected_frames += 1
        expected_share.append(masks[f].mean())
    frame = np.full((1, 16), -1)
    frame[0, :len(frames)] = frames
    measures.add(np.array([i]), frame, np.zeros((1, 16, 7), np.float32), np.ones((1, 16), np.float32), attention)
  record = measures.localisation()
  assert record["frames"] == expected_frames > 10 and record["grid"] == [4, 4]
  assert record["heads"][0] == dict(relevance_mass=1.0, pointing_game=1.0)
  assert record["heads"][1] == dict(relevance_mass=0.0, pointing_game=0.0)
  assert record["chance"]["relevance_mass"] == pytest.approx(np.mean(expected_share))
  assert 0.1 < record["chance"]["relevance_mass"] < 0.7
  assert record["head_overlap"]["min_sum"] == pytest.approx(same_cell / real_frames)  # one-hot heads: 1 or 0
  assert record["head_overlap"]["frames"] == record["mean_map"]["frames"] == real_frames
  assert set(exp.eval.truths) == set(range(len(source)))  # each clip's truth rendered once, kept for the split
  faithful = measures.faithfulness(np.array([int(source[i]["label"]) for i in range(len(source))]))
  assert faithful["clips"] == sum(int(source[i]["label"]) != NEUTRAL for i in range(len(source)))


PAIR_REGIONS = {"Angry": ("eyes", "brows"), "Disgust": ("mouth", "eyes", "brows"), "Fear": ("mouth", "eyes", "brows"),
                "Happy": ("mouth",), "Neutral": (), "Sad": ("mouth", "eyes", "brows"),
                "Surprise": ("mouth", "eyes", "brows")}


@pytest.mark.parametrize("expressions", ["afew", "pairs"])
def test_the_expression_mask_holds_every_changed_pixel_and_each_region_it_lists_moves(expressions):
  for label, name in enumerate(AFEW_EMOTIONS):
    seed = 40 + label
    clip = render.render_clip(seed, 10, 64, label, with_neutral=True, expressions=expressions)
    expected = PAIR_REGIONS[name] if expressions == "pairs" else (() if label == NEUTRAL else regions.REGIONS)
    assert clip["expression_regions"] == expected, (expressions, name)
    changed = (clip["frames"] != clip["neutral_frames"]).any(-1)  # [F, S, S]
    assert not (changed & ~clip["expression_mask"]).any(), (expressions, name)
    if label == NEUTRAL:
      assert not changed.any() and not clip["expression_mask"].any()
      continue
    apex = clip["apex"]
    plan = render.plan_clip(seed, 10, 64, label, expressions=expressions)
    for region in expected:  # not one region too many: each listed region has changed pixels of its own
      assert (changed[apex] & plan.region_mask(apex, (region,))).any(), (expressions, name, region)
    cells = localisation.grid_mask(changed[apex][None], 64)
    assert not (cells & ~localisation.grid_mask(clip["expression_mask"][apex][None], 64)).any()


@pytest.mark.parametrize("expressions", ["afew", "pairs"])
def test_distractors_change_only_their_frames_and_stay_inside_the_regions_unless_they_hide_them(expressions):
  label = AFEW_EMOTIONS.index("Sad")
  base = render.render_clip(9, 30, 48, label, expressions=expressions)
  with_them = render.render_clip(9, 30, 48, label, expressions=expressions, distractors=render.Distractors(rate=0.8))
  kind = with_them["distractor"]
  changed = (base["frames"] != with_them["frames"]).any(-1)
  assert set(np.flatnonzero(changed.any((1, 2)))) == set(np.flatnonzero(kind))
  moves = np.isin(kind, [1, 2, 3])  # another expression, a blink, talking: inside the face's regions
  assert moves.any() and not (changed[moves] & ~with_them["region_mask"][moves]).any()
  np.testing.assert_array_equal(base["intensity"], with_them["intensity"])
  occluded = np.flatnonzero(kind == 4)
  assert len(occluded) and all(changed[f].sum() > 20 for f in occluded)
  only_blinks = render.render_clip(9, 30, 48, label, expressions=expressions,
                                   distractors=render.Distractors(rate=0.8, kinds=("blink",)))
  assert set(np.unique(only_blinks["distractor"])) <= {0, distractors.KINDS.index("blink") + 1}


@pytest.mark.parametrize("knobs,field", [
    (dict(window_min_frames=0), "window_min_frames"),
    (dict(apex_intensity=0.0), "apex_intensity"),
    (dict(apex_intensity=1.5), "apex_intensity"),
    (dict(distractor_rate=1.5), "distractor_rate"),
    (dict(distractor_kinds=("sneeze",)), "distractor_kinds"),
    (dict(distractor_strength=0.0), "distractor_strength"),
])
def test_bad_knobs_name_the_field(knobs, field):
  with pytest.raises(ValueError, match=f"SynthEmoConfig: {field}") as raised:
    SynthEmoConfig(name="bad", **knobs)
  assert "\n" not in str(raised.value)


# ----------------------------------------------------------------------------- the measures


def test_relevance_mass_all_inside_is_one_and_a_uniform_map_gives_the_masks_share():
  mask = np.array([True, False, True, False, False, False, False, False])
  inside = np.array([0.5, 0.0, 0.5, 0, 0, 0, 0, 0])
  assert localisation.relevance_mass(inside, mask) == 1.0
  assert localisation.relevance_mass(np.full(8, 1 / 8), mask) == pytest.approx(0.25)
  assert localisation.mask_share(mask) == 0.25
  outside = np.array([0, 0.6, 0, 0.4, 0, 0, 0, 0])
  assert localisation.relevance_mass(outside, mask) == 0.0
  maps = np.stack([inside, outside, np.full(8, 1 / 8)])  # [3, L], one mask broadcast
  np.testing.assert_allclose(localisation.relevance_mass(maps, mask), [1.0, 0.0, 0.25])


def test_pointing_game_looks_at_the_argmax_only():
  mask = np.array([False, False, True, False])
  assert localisation.pointing_game(np.array([0.2, 0.2, 0.4, 0.2]), mask)  # mostly outside, argmax inside
  assert not localisation.pointing_game(np.array([0.0, 0.9, 0.1, 0.0]), mask)
  assert not localisation.pointing_game(np.full(4, 0.25), mask)  # ties: the first cell, outside
  np.testing.assert_array_equal(localisation.pointing_game(np.eye(4), mask), [False, False, True, False])


def test_head_overlap_is_one_for_identical_maps_and_zero_for_disjoint_ones():
  same = np.array([[0.5, 0.5, 0, 0], [0.5, 0.5, 0, 0]])
  apart = np.array([[1.0, 0, 0, 0], [0, 0, 0, 1.0]])
  half = np.array([[0.5, 0.5, 0, 0], [0, 0.5, 0.5, 0]])
  np.testing.assert_allclose(localisation.head_overlap(np.stack([same, apart, half])), [1.0, 0.0, 0.5])
  np.testing.assert_allclose(localisation.head_cosine(np.stack([same, apart, half])), [1.0, 0.0, 0.5])
  three = np.array([[1.0, 0, 0], [1.0, 0, 0], [0, 0, 1.0]])  # pairs: 1, 0, 0
  assert localisation.head_overlap(three) == pytest.approx(1 / 3)
  with pytest.raises(ValueError, match="N >= 2 heads"):
    localisation.head_overlap(np.ones((1, 4)) / 4)


def test_grid_mask_takes_the_centre_crop_and_marks_the_cells_a_pixel_touches():
  pixels = np.zeros((2, 48, 48), bool)
  pixels[0, 20, 37] = True   # crop 32 starts at 8: pixel (12, 29) of the crop, cell (0, 1)
  pixels[1, 2, 2] = True     # outside the crop
  pixels[1, 47 - 8, 8] = True  # crop pixel (31, 0): cell (1, 0)
  np.testing.assert_array_equal(localisation.grid_mask(pixels, 32), [[False, True, False, False],
                                                                    [False, False, True, False]])
  assert localisation.grid_mask(np.ones((1, 64, 64), bool), 64).shape == (1, 16)
  with pytest.raises(ValueError, match="multiple of the trunk's stride"):
    localisation.grid_mask(pixels, 40)


def test_the_tally_gives_each_head_the_mean_map_baseline_and_chance():
  tally = localisation.SpatialTally(num_heads=2, num_cells=4)
  mask = np.array([True, False, False, False])
  head_in, head_out = np.array([0.7, 0.1, 0.1, 0.1]), np.array([0.1, 0.1, 0.1, 0.7])
  # clip 1: three frames, the first outside its window; clip 2 (Neutral): maps only
  attention = np.stack([np.stack([head_out, head_in])] + [np.stack([head_in, head_out])] * 2)  # [3, 2, 4]
  tally.add(attention, np.stack([mask] * 3), np.array([False, True, True]))
  tally.add(np.full((2, 2, 4), 0.25), None, None)
  record = tally.summary()
  assert record["frames"] == 2 and record["clips"] == 1 and record["grid"] == [2, 2]
  assert record["heads"][0] == dict(relevance_mass=pytest.approx(0.7), pointing_game=1.0)
  assert record["heads"][1] == dict(relevance_mass=pytest.approx(0.1), pointing_game=0.0)
  assert record["overall"]["relevance_mass"] == pytest.approx(0.4)
  assert record["overall"]["pointing_game"] == 1.0  # the heads' mean (0.4, 0.1, 0.1, 0.4): first maximum
  assert record["chance"] == dict(relevance_mass=0.25, pointing_game=0.25)
  # the mean map over the 5 real frames: head 0 = (0.1 + 0.7 + 0.7 + 0.25 + 0.25) / 5 = 0.4 on the masked cell
  assert record["mean_map"]["heads"][0] == dict(relevance_mass=pytest.approx(0.4), pointing_game=1.0)
  assert record["mean_map"]["heads"][1]["relevance_mass"] == pytest.approx((0.7 + 0.1 + 0.1 + 0.25 + 0.25) / 5)
  assert record["mean_map"]["heads"][1]["pointing_game"] == 0.0
  # overlap per frame: 0.4 (three frames of one head in, one out), 1 (two uniform frames)
  assert record["head_overlap"]["min_sum"] == pytest.approx((3 * 0.4 + 2 * 1.0) / 5)
  assert localisation.SpatialTally(1, 4).summary() is None
  one_head = localisation.SpatialTally(1, 4)
  one_head.add(head_in[None, None], mask[None], np.array([True]))
  assert one_head.summary()["head_overlap"] is None
  assert one_head.summary()["overall"]["relevance_mass"] == pytest.approx(0.7)
  line = localisation.summary_line(record)
  # the heads' mean of the mean maps: (0.34, 0.16, 0.16, 0.34)
  assert record["mean_map"]["overall"] == dict(relevance_mass=pytest.approx(0.34), pointing_game=1.0)
  assert line.startswith("localisation: relevance mass 0.40 (heads 0.70 0.10; mean map 0.34; chance 0.25)")
  assert "pointing game 1.00" in line and "2 expressive frames of 1 clips" in line


def test_each_class_gets_its_heads_mean_maps_and_mask_over_its_expressive_frames():
  tally = localisation.SpatialTally(num_heads=2, num_cells=4)
  left, right = np.array([True, False, False, False]), np.array([False, False, False, True])
  a, b = np.array([0.7, 0.1, 0.1, 0.1]), np.array([0.1, 0.1, 0.1, 0.7])
  # class 3: two expressive frames (and one outside the window, left out); class 5: one frame
  tally.add(np.stack([np.stack([b, b]), np.stack([a, b]), np.stack([b, a])]), np.stack([left] * 3),
            np.array([False, True, True]), label=3)
  tally.add(np.stack([a, a])[None], right[None], np.array([True]), label=5)
  tally.add(np.full((1, 2, 4), 0.25), left[None], np.array([True]))  # no label: not in the class maps
  maps = tally.summary()["class_maps"]
  assert [(m["label"], m["frames"]) for m in maps] == [(3, 2), (5, 1)]
  np.testing.assert_allclose(maps[0]["heads"], [(a + b) / 2, (a + b) / 2])
  np.testing.assert_allclose(maps[0]["mask"], left.astype(float))
  np.testing.assert_allclose(maps[1]["heads"], [a, a])
  np.testing.assert_allclose(maps[1]["mask"], right.astype(float))


def test_the_tally_leaves_out_frames_whose_regions_are_hidden():
  tally = localisation.SpatialTally(num_heads=1, num_cells=4)
  masks = np.array([[True, False, False, False], [False] * 4])
  tally.add(np.full((2, 1, 4), 0.25), masks, np.array([True, True]))
  assert tally.summary()["frames"] == 1 and tally.summary()["frames_hidden"] == 1


def test_deletion_and_insertion_curves_follow_the_frames_that_carry_the_class():
  # two clips of class 1 whose evidence sits on one frame; sum pooling; 10 frames each
  scores = []
  for frame in (3, 7):
    s = np.zeros((10, 2), np.float32)
    s[:, 0] = 0.1
    s[frame, 1] = 5.0
    scores.append(s)
  pool = lambda s, m: np.where(m[..., None], s, 0.0).sum(1)
  rng = np.random.default_rng(0)
  orders = [localisation.frame_order(s[:, 1], np.arange(10) == f, np.ones(10), rng) for s, f in zip(scores, (3, 7))]
  assert orders[0]["importance"][0] == 3 and orders[0]["window"][0] == 3
  assert sorted(orders[0]["random"]) == list(range(10))
  curves = localisation.faithfulness(scores, np.array([1, 1]), orders, pool)
  for name in ("importance", "window"):  # the carrying frame goes first: accuracy 1, then 0
    assert curves[name]["deletion"] == [1.0] + [0.0] * 9
    assert curves[name]["insertion"] == [1.0] * 10
  random = curves["random"]
  assert random["deletion"][0] == 1.0 and random["deletion_area"] > curves["importance"]["deletion_area"]
  assert curves["clips"] == 2 and len(curves["deletion_fractions"]) == len(random["deletion"])
  assert set(localisation.faithfulness(scores, np.array([1, 1]), orders, pool, skip=("importance",))) >= {"random"}
  assert "importance" not in localisation.faithfulness(scores, np.array([1, 1]), orders, pool, skip=("importance",))


# ----------------------------------------------------------------------------- videmo eval


@pytest.mark.slow
def test_videmo_eval_prints_the_localisation_line_and_writes_per_head_numbers(synthemo_tiny, tiny_run, tmp_path,
                                                                            capsys):
  from videmo.main import main

  shutil.copytree(tiny_run[0], tmp_path, dirs_exist_ok=True)
  argv = ["eval", f"--config={REPO / 'configs' / 'synthemo.py'}", f"--checkpoint={tmp_path}",
          *tiny.flags(synthemo_tiny)]
  assert main(argv) == 0
  lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("localisation:")]
  assert len(lines) == 1 and "relevance mass" in lines[0] and "pointing game" in lines[0]
  record = json.loads((tmp_path / "eval_validation_2.json").read_text())["localisation"]
  heads = tiny.load("synthemo").model.num_heads
  assert len(record["heads"]) == len(record["mean_map"]["heads"]) == heads
  for entry in record["heads"] + [record["overall"], record["chance"], record["mean_map"]["overall"]]:
    assert 0.0 <= entry["relevance_mass"] <= 1.0 and 0.0 <= entry["pointing_game"] <= 1.0
  assert 0.0 <= record["head_overlap"]["min_sum"] <= 1.0
  # the expressive frames counted are those of the validation clips' windows whose regions show
  config = Builder.builder_configs["tiny"]
  source = tfds.data_source("synthemo/tiny", data_dir=str(synthemo_tiny))["validation"]
  expected = 0
  for i in range(len(source)):
    found = truth.clip_truth(record_job(config, source[i]["source"], source[i]["label"]))
    start, stop = found["window"]
    expected += int(localisation.grid_mask(found["expression_mask"][start:stop], 32).any(-1).sum())
  assert record["frames"] == expected > 0
  assert record["clips"] == 12  # 14 validation clips, 2 of them Neutral
  trained = tiny_run[1]["localisation"]  # the final evaluation of `videmo train` has it too
  masses = [h["relevance_mass"] for h in record["heads"]]
  assert [h["relevance_mass"] for h in trained["heads"]] == pytest.approx(masses)
  faithful = json.loads((tmp_path / "eval_validation_2.json").read_text())["frame_importance_faithfulness"]
  assert faithful["clips"] == 12 and set(faithful) >= {"importance", "random", "window"}
