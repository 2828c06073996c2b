"""Your own dataset, the standard way: fold layouts of video_folder, a k-fold sweep and its table,
and fine-tuning from a trained run onto another class set (docs/own_dataset.md).

The dataset is built by the real video_folder builder (dlib finds the face) from frame folders
of a photograph, 3 folds of 3 clips of 3 frames, DFEW's layout of per-fold train and test lists.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import traverse_util
from PIL import Image

import face_checks
import tiny
from videmo.data.preparation.builders.video_folder import list_video_folder
from videmo.main import main
from videmo.sweep import collect, plan as plan_lib
from videmo.train import config_check, experiment, from_run, loop, splits
from videmo.train.trained_run import TrainedRun

# The tests share one k-fold sweep (a session fixture): keep them on one xdist worker.
pytestmark = [pytest.mark.xdist_group("own_dataset")]

CLASSES = ("happy", "sad", "calm")  # the built dataset's classes are these, sorted: calm, happy, sad
FOLDS = {1: ("c1", "c2", "c3"), 2: ("c4", "c5", "c6"), 3: ("c7", "c8", "c9")}
LABELS = {clip: CLASSES[i % 3] for fold in FOLDS.values() for i, clip in enumerate(fold)}
DATASET = "video_folder/ownfolds"


def _frames(folder: Path, seed: int, count: int = 3) -> None:
  folder.mkdir(parents=True, exist_ok=True)
  for t, frame in enumerate(face_checks.astronaut_clip(count, seed=seed)):
    Image.fromarray(frame).save(folder / f"{t:05d}.jpg", quality=90)


def _dfew_lists(root: Path, folds: dict, labels: dict, prefix: str = "Clip/") -> None:
  """DFEW's layout: EmoLabel_DataSplit/{train,test}(single-labeled)/set_K.csv, rows video_name,label."""
  for k, clips in folds.items():
    others = [c for j, members in folds.items() if j != k for c in members]
    for role, listed in (("test", clips), ("train", others)):
      folder = root / "EmoLabel_DataSplit" / f"{role}(single-labeled)"
      folder.mkdir(parents=True, exist_ok=True)
      (folder / f"set_{k}.csv").write_text("video_name,label\n" + "".join(f"{prefix}{c},{labels[c]}\n" for c in listed))


@pytest.fixture(scope="session")
def fold_data(tmp_path_factory):
  """(data_dir, manual_dir) of video_folder/ownfolds: 3 folds x 3 clips, built once."""
  import tensorflow_datasets as tfds

  from videmo.data.preparation.prepare import load_builder

  root = tmp_path_factory.mktemp("own_dataset")
  manual = root / "DFEW"
  for i, clip in enumerate(LABELS):
    _frames(manual / "Clip" / clip, seed=i)
  _dfew_lists(manual, FOLDS, LABELS)
  data_dir = root / "tfds"
  load_builder(DATASET, data_dir, workers=1).download_and_prepare(
      file_format="array_record", download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
  return data_dir, manual


def _overrides(data_dir) -> dict:
  """A paper config shrunk to the tiny model (tiny.FIELDS) on video_folder/ownfolds, 2 steps."""
  return dict(tiny.FIELDS, dataset=DATASET, data_dir=str(data_dir), num_train_steps=2)


@pytest.fixture(scope="session")
def fold_sweep(fold_data, tmp_path_factory):
  """(plan file, work directory, exit code) of a 3-fold sweep of one row, seed 0. One run at a
  time: the folds' programs have the same shapes, so the first run fills the persistent
  compilation cache for the other two (tests/test_sweep.py runs its sweep two at a time)."""
  data_dir, _ = fold_data
  root = tmp_path_factory.mktemp("fold_sweep")
  plan = root / "plan.py"
  plan.write_text(f"FOLDS = 3\nSEEDS = (0,)\n\ndef get_rows():\n"
                  f"  return [dict(name='SA2', config='{tiny.REPO}/configs/table1_sa2_reg1.py', "
                  f"overrides={_overrides(data_dir)!r})]\n")
  workdir = root / "work"
  return plan, workdir, main(["sweep", "run", f"--plan={plan}", f"--workdir={workdir}", "--parallel=1"])


# ------------------------------------------------------------------------------------------------
# Fold layouts (listing only: nothing is decoded)


def _touch_clips(root: Path, clips) -> None:
  for clip in clips:
    (root / "Clip" / clip).mkdir(parents=True, exist_ok=True)
    (root / "Clip" / clip / "00000.jpg").write_bytes(b"listing does not decode")


def _listed(splits_found) -> dict:
  return {split: sorted(task.clip_id for task in tasks) for split, tasks in splits_found.items()}


def test_every_fold_layout_lists_the_same_folds(tmp_path):
  want = {f"fold_{k}": sorted(f"Clip/{c}" for c in clips) for k, clips in FOLDS.items()}
  dfew = tmp_path / "dfew"
  _touch_clips(dfew, LABELS)
  _dfew_lists(dfew, FOLDS, LABELS)
  found, names, issues = list_video_folder(dfew)
  assert _listed(found) == want and names == sorted(CLASSES) and not issues
  assert {task.clip_id: names[task.label] for tasks in found.values() for task in tasks} == {
      f"Clip/{c}": label for c, label in LABELS.items()}

  per_fold = tmp_path / "per_fold"  # set_K/train.csv and set_K/test.csv
  _touch_clips(per_fold, LABELS)
  for k, clips in FOLDS.items():
    others = [c for j, members in FOLDS.items() if j != k for c in members]
    for role, listed in (("test", clips), ("train", others)):
      (per_fold / f"set_{k}").mkdir(exist_ok=True)
      (per_fold / f"set_{k}" / f"{role}.csv").write_text("".join(f"Clip/{c},{LABELS[c]}\n" for c in listed))
  assert _listed(list_video_folder(per_fold)[0]) == want

  one_csv = tmp_path / "one_csv"  # one CSV whose third column is the fold
  _touch_clips(one_csv, LABELS)
  (one_csv / "folds.csv").write_text("path,label,fold\n" + "".join(
      f"Clip/{c},{LABELS[c]},{k}\n" for k, clips in FOLDS.items() for c in clips))
  assert _listed(list_video_folder(one_csv)[0]) == want


def test_a_training_list_that_is_not_the_other_folds_is_a_one_line_error(tmp_path):
  root = tmp_path / "dfew"
  _touch_clips(root, LABELS)
  _dfew_lists(root, FOLDS, LABELS)
  train_2 = root / "EmoLabel_DataSplit" / "train(single-labeled)" / "set_2.csv"
  train_2.write_text(train_2.read_text().replace("Clip/c9,calm\n", ""))
  with pytest.raises(ValueError, match=r"set_2.csv \(fold 2's training list\) is not the other folds' clips: "
                                       r"0 listed there only, 1 of the other folds not listed \(first: Clip/c9 calm\)"):
    list_video_folder(root)
  for test_list in (root / "EmoLabel_DataSplit" / "test(single-labeled)").iterdir():
    test_list.unlink()
  with pytest.raises(ValueError, match="no file lists fold 1's own clips") as error:
    list_video_folder(root)
  assert "\n" not in str(error.value)


def test_split_unions_and_fold_splits():
  assert splits.parts("fold_1+fold_3") == ("fold_1", "fold_3") and splits.parts("train") == ("train",)
  assert splits.fold_splits(2, (1, 2, 3)) == ("fold_1+fold_3", "fold_2")
  for bad in ("fold_1++fold_2", "", "fold_1+fold_1"):
    with pytest.raises(ValueError):
      splits.parts(bad)
  union = splits.ConcatSource([[{"i": 0}, {"i": 1}], [], [{"i": 2}]])
  assert len(union) == 3 and [union[i]["i"] for i in range(3)] == [0, 1, 2] and union[-1]["i"] == 2
  with pytest.raises(IndexError):
    union[3]
  assert plan_lib.parse_folds("3") == (1, 2, 3) == plan_lib.parse_folds(3)
  assert plan_lib.parse_folds("0-4") == (0, 1, 2, 3, 4) and plan_lib.parse_folds("2,5") == (2, 5)
  with pytest.raises(ValueError, match="at least 2"):
    plan_lib.parse_folds("1")


def test_a_union_of_folds_reads_as_one_split_with_a_store_per_fold(fold_data):
  from videmo.data import clip_list
  from videmo.data.loading import pipeline
  from videmo.train import evaluation

  config = tiny.shrink(tiny.load("table1_sa2_reg1"), fold_data[0])
  config.dataset, config.train_split, config.eval_split = DATASET, "fold_1+fold_3", "fold_2"
  train, held_out, facts = experiment.open_dataset(config)
  assert len(train) == 6 and len(held_out) == 3
  names = list(facts.class_names)
  labels = [names[int(train[i]["label"])] for i in range(len(train))]
  parts = [pipeline.open_split(DATASET, name, fold_data[0]) for name in ("fold_1", "fold_3")]
  assert labels == [names[int(part[i]["label"])] for part in parts for i in range(len(part))]
  assert sorted(labels) == sorted(LABELS[c] for c in FOLDS[1] + FOLDS[3])
  listed = [names[i] for i in evaluation._listed(clip_list.split_labels, facts.directory, config.train_split, names)]
  assert sorted(listed[:3]) == sorted(labels[:3]) and sorted(listed[3:]) == sorted(labels[3:])  # part by part
  stores = sorted(p.name for p in (facts.directory / "decoded").iterdir())
  assert "fold_1" in stores and "fold_3" in stores and not any("+" in name for name in stores)


def test_config_errors_name_the_field(tmp_path):
  config = tiny.shrink(tiny.load("synthemo"), tmp_path)
  config.train_split = "fold_1++fold_2"
  with pytest.raises(ValueError, match=r"^config.train_split: a split is a name or names joined by '\+'"):
    config_check.check_config(config)
  config = tiny.shrink(tiny.load("synthemo"), tmp_path)
  config.init.weights, config.init.from_run = str(tmp_path / "trunk"), str(tmp_path / "run")
  with pytest.raises(ValueError, match="config.init.weights and config.init.from_run are both set") as error:
    config_check.check_config(config)
  assert "\n" not in str(error.value)
  config.init.weights = ""
  config.pretrain = tiny.shrink(tiny.load("synthemo"), tmp_path)
  with pytest.raises(ValueError, match="config.pretrain and config.init.from_run are both set"):
    config_check.check_config(config)


# ------------------------------------------------------------------------------------------------
# The k-fold sweep


@pytest.mark.slow
def test_a_3_fold_sweep_reports_each_fold_and_the_mean_over_folds(fold_sweep, capsys):
  plan, workdir, code = fold_sweep
  assert code == 0
  runs = plan_lib.plan_runs(plan_lib.load_plan_file(plan).rows, (0,), workdir, (1, 2, 3))
  assert [run.fold for run in runs] == [1, 2, 3] and all(run.finished() for run in runs)
  metrics = {}
  for run in runs:
    config = json.loads((run.workdir / "config.json").read_text())
    others = "+".join(f"fold_{k}" for k in (1, 2, 3) if k != run.fold)
    assert (config["train_split"], config["eval_split"]) == (others, f"fold_{run.fold}")
    metrics[run.fold] = json.loads((run.workdir / "metrics.json").read_text())
    assert metrics[run.fold]["split"] == f"fold_{run.fold}" and metrics[run.fold]["wrong"]["clips_listed"] == 3

  with open(workdir / "folds.csv") as f:
    lines = {line["fold"]: line for line in csv.DictReader(f)}
  assert list(lines) == ["1", "2", "3", "mean", "std"]
  for key in ("war", "uar"):
    per_fold = [metrics[k]["wrong"][key] for k in (1, 2, 3)]
    assert [float(lines[str(k)][key]) for k in (1, 2, 3)] == pytest.approx(per_fold)
    assert float(lines["mean"][key]) == pytest.approx(np.mean(per_fold))
    assert float(lines["std"][key]) == pytest.approx(np.std(per_fold, ddof=1))
  with open(workdir / "results.csv") as f:
    result = next(csv.DictReader(f))
  assert float(result["uar"]) == pytest.approx(float(lines["mean"]["uar"])) and result["war_n"] == "3"

  summed = np.sum([metrics[k]["wrong"]["confusion"] for k in (1, 2, 3)], axis=0)
  with open(workdir / "folds_confusion.csv") as f:
    confusion = list(csv.reader(f))
  assert confusion[0] == ["row", "true", "predicted_calm", "predicted_happy", "predicted_sad"]
  assert np.array([[int(v) for v in line[2:]] for line in confusion[1:]]).tolist() == summed.tolist()
  assert summed.sum() + sum(metrics[k]["wrong"]["clips_without_face"] for k in (1, 2, 3)) == 9
  image = Image.open(workdir / "folds.png")
  assert image.size[0] > 300 and np.asarray(image.convert("L")).std() > 10

  # the table command prints the folds and the summed confusion; finished runs are not run again
  assert main(["sweep", "run", f"--plan={plan}", f"--workdir={workdir}"]) == 0
  out = capsys.readouterr().out
  assert "3 finished already, 0 to run" in out
  mean = f"| mean ± std | {100 * float(lines['mean']['war']):.1f} ± {100 * float(lines['std']['war']):.1f} |"
  assert mean in out and "Confusion summed over the 3 folds" in out
  assert "| true \\ predicted | calm | happy | sad |" in out
  assert "Confusion summed over the 3 folds" in (workdir / "results.md").read_text()


def test_folds_on_the_command_line(tmp_path, capsys):
  config = f"{tiny.REPO}/configs/table1_sa2_reg1.py"
  assert main(["sweep", "list", f"--config={config}", "--folds=3", f"--workdir={tmp_path}"]) == 0
  out = capsys.readouterr().out.splitlines()
  assert len(out) == 3 and "fold 2 seed 0" in out[1]
  assert "--config.train_split=fold_1+fold_3 --config.eval_split=fold_2" in out[1]
  assert main(["sweep", "list", f"--config={config}", "--folds=3", "--set=eval_split=fold_1",
               f"--workdir={tmp_path}"]) == 2
  assert "sets train_split or eval_split" in capsys.readouterr().err


def test_rows_compared_over_folds_pair_their_runs_by_fold_and_seed():
  correct = lambda n: np.ones(n, bool)
  records = [dict(row=row, seed=0, fold=fold, war=war, correct=correct(2 + fold))
             for row, fold, war in [("A", 1, 0.9), ("A", 2, 0.8), ("A", 3, 0.7),
                                    ("B", 1, 0.5), ("B", 2, 0.6), ("B", 3, 0.4)]]
  found = collect.compare(records, "A", "B")
  assert found["seeds"] == 3 and found["wins"] == 3 and found["t"].mean == pytest.approx(0.3)
  assert found["clips"] is None  # the folds hold other clips: no bootstrap over one clip set


# ------------------------------------------------------------------------------------------------
# Fine-tuning from a trained run


def test_what_a_transfer_takes_follows_names_shapes_and_classes():
  trunk = {"trunk/conv1_1/kernel": (3, 3, 3, 4), "trunk/conv1_1/bias": (4,)}
  head = lambda classes: {"classifier/kernel": (8, classes), "classifier/bias": (classes,)}
  same = from_run.plan_transfer({**trunk, **head(2)}, ["a", "b"], {**trunk, **head(2)}, ["a", "b"])
  assert same.classifier == "whole" and set(same.copied) == {*trunk, *head(2)} and not same.fresh
  by_class = from_run.plan_transfer({**trunk, **head(3)}, ["Angry", "Happy", "Sad"],
                                    {**trunk, "spatial/w": (4, 2), **head(2)}, ["sad", "calm"])
  assert by_class.classifier == "by class" and by_class.class_columns == ((0, 2),)
  assert by_class.fresh == ("spatial/w",) and by_class.new_classes == ("calm",)
  assert by_class.describe("R") == ("init.from_run R: loaded trunk (2 arrays); classifier: 1 classes remapped "
                                    "(sad<-Sad), 1 new (calm); initialised fresh: spatial (1 array)")
  lstm = {**trunk, "temporal/cell/w": (4, 4), "temporal/classifier/kernel": (4, 3), "temporal/classifier/bias": (3,)}
  other_head = from_run.plan_transfer(lstm, ["a", "b", "c"], {**trunk, **head(3)}, ["a", "b", "c"])
  assert other_head.classifier == "fresh" and set(other_head.left_out) == set(lstm) - set(trunk)
  source = {"trunk/conv1_1/kernel": np.ones((3, 3, 3, 4)), "trunk/conv1_1/bias": np.ones(4),
            "classifier/kernel": np.arange(24.).reshape(8, 3), "classifier/bias": np.arange(3.)}
  fresh = {"trunk/conv1_1/kernel": np.zeros((3, 3, 3, 4)), "trunk/conv1_1/bias": np.zeros(4),
           "spatial/w": np.zeros((4, 2)), "classifier/kernel": -np.ones((8, 2)), "classifier/bias": -np.ones(2)}
  flat = from_run.apply_transfer(by_class, source, fresh)
  assert flat["trunk/conv1_1/kernel"].sum() == 108 and flat["spatial/w"].sum() == 0
  assert flat["classifier/kernel"][:, 0].tolist() == np.arange(24.).reshape(8, 3)[:, 2].tolist()
  assert flat["classifier/kernel"][:, 1].tolist() == [-1] * 8 and flat["classifier/bias"].tolist() == [2, -1]


def _flat(params) -> dict:
  return {k: np.asarray(v) for k, v in traverse_util.flatten_dict(jax.device_get(params), sep="/").items()}


def _source_without_its_data(tiny_run, tmp_path) -> Path:
  """A copy of the tiny SynthEmo run whose dataset folder no longer exists."""
  source = tmp_path / "source"
  shutil.copytree(tiny_run[0], source)
  config = json.loads((source / "config.json").read_text())
  config["data_dir"] = str(tmp_path / "gone")
  (source / "config.json").write_text(json.dumps(config))
  return source


def _fine_tune_config(fold_data, source):
  config = tiny.shrink(tiny.load("synthemo"), fold_data[0], steps=2)
  config.dataset, config.train_split, config.eval_split = DATASET, "fold_1+fold_2", "fold_3"
  config.init.from_run = str(source)
  return config


def _initial_params(config):
  exp = experiment.make_experiment(config)
  state, *_ = experiment.init_state(config, exp.model, exp.mesh, 4, 32, 1, 2, exp.class_names)
  return exp, _flat(state.params)


@pytest.mark.slow
def test_fine_tuning_from_a_run_loads_its_trunk_and_remaps_its_classes(fold_data, tiny_run, tmp_path, capsys):
  source = _source_without_its_data(tiny_run, tmp_path)
  run = TrainedRun.open(source)
  theirs = _flat(run.restore()[0])
  source_classes = list(run.class_names)  # AFEW's seven, read although the dataset is gone

  config = _fine_tune_config(fold_data, source)
  exp, mine = _initial_params(config)
  assert exp.class_names == ["calm", "happy", "sad"]
  assert f"init.from_run {source} (step 2): loaded trunk (26 arrays), spatial (2 arrays); " in capsys.readouterr().out
  assert exp.convention == run.convention
  for name, value in mine.items():
    if not name.startswith("classifier/"):
      np.testing.assert_array_equal(value, theirs[name], err_msg=name)
  config.init.from_run = ""
  _, fresh = _initial_params(config)
  assert not np.array_equal(fresh["trunk/conv1_1/kernel"], theirs["trunk/conv1_1/kernel"])
  for leaf in ("kernel", "bias"):
    new, old = mine[f"classifier/{leaf}"], theirs[f"classifier/{leaf}"]
    assert new.shape[-1] == 3 and old.shape[-1] == 7
    np.testing.assert_array_equal(new[..., 1], old[..., source_classes.index("Happy")])
    np.testing.assert_array_equal(new[..., 2], old[..., source_classes.index("Sad")])
    np.testing.assert_array_equal(new[..., 0], fresh[f"classifier/{leaf}"][..., 0])  # calm: a new class

  # Trained with its trunk frozen, the run ends with the source's trunk: it started from it.
  config.init.from_run = str(source)
  config.optim.groups.trunk.frozen = True
  record = loop.train_and_evaluate(config, tmp_path / "fine_tuned")
  printed = capsys.readouterr().out
  assert "classifier: 2 classes remapped (happy<-Happy, sad<-Sad), 1 new (calm)" in printed
  assert record["classes"] == ["calm", "happy", "sad"] and record["split"] == "fold_3"
  trained = _flat(TrainedRun.open(tmp_path / "fine_tuned").restore()[0])
  for name in theirs:
    if name.startswith("trunk/"):
      np.testing.assert_array_equal(trained[name], theirs[name], err_msg=name)


@pytest.mark.slow
def test_a_run_of_another_shape_fails_in_one_line_naming_the_parameter(fold_data, tiny_run, tmp_path):
  config = _fine_tune_config(fold_data, _source_without_its_data(tiny_run, tmp_path))
  config.model.trunk_width_divisor = 8
  with pytest.raises(ValueError, match=r"init.from_run: trunk/conv1_1/\w+ is \[.*\] in the source run but "
                                       r"\[.*\] in this run's model \(model fields that differ: "
                                       r"trunk_width_divisor 16 there, 8 here\)") as error:
    _initial_params(config)
  assert "\n" not in str(error.value)
  config.init.from_run = str(tmp_path / "nowhere")
  with pytest.raises(FileNotFoundError, match="config.init.from_run .*nowhere does not exist"):
    _initial_params(config)


@pytest.mark.slow
def test_a_fold_run_fine_tunes_another_fold_with_the_same_classes(fold_sweep, fold_data, tmp_path, capsys):
  """A video_folder run whose dataset is gone: its classes come from its metrics; same classes,
  so the classifier is loaded whole."""
  plan, workdir, _ = fold_sweep
  fold_run = plan_lib.plan_runs(plan_lib.load_plan_file(plan).rows, (0,), workdir, (1, 2, 3))[0].workdir
  source = _source_without_its_data((fold_run,), tmp_path)
  config = tiny.shrink(tiny.load("table1_sa2_reg1"), fold_data[0], steps=2)
  config.dataset, config.train_split, config.eval_split = DATASET, "fold_2+fold_3", "fold_1"
  config.init.from_run = str(source / "checkpoints" / "2")
  _, mine = _initial_params(config)
  assert "classifier loaded (the same classes)" in capsys.readouterr().out
  theirs = _flat(TrainedRun.open(source).restore()[0])
  assert mine.keys() == theirs.keys()
  for name in theirs:
    np.testing.assert_array_equal(mine[name], theirs[name], err_msg=name)
