"""Evaluation counts what the protocol counts: every listed clip, under three no-face policies.

A tiny AFEW-layout tree made from real photographs: face clips in both splits, and in the
validation split a face-free clip and an unreadable file, which preparation cannot write.
EmotiW scores every listed clip; 'wrong' counts those two as misses, 'prior' gives them the
training split's most frequent class, 'exclude' leaves them out.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

import face_checks
import tiny
from videmo.data import clip_list, video_io
from videmo.data.preparation import builders  # noqa: F401  (registers afew)
from videmo.train import experiment
from videmo.train import loop

NAMES = ["Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise"]
ANGRY, FEAR, HAPPY, SURPRISE = (NAMES.index(n) for n in ("Angry", "Fear", "Happy", "Surprise"))


@pytest.fixture(scope="module")
def afew_dir(tmp_path_factory):
  """Built afew: train 2 Happy + 1 Angry face clips; validation a Surprise and a Happy face
  clip (written), a face-free Happy clip and an unreadable Fear file (listed, not written)."""
  root = tmp_path_factory.mktemp("AFEW")
  faces = {"Train_AFEW/Happy/h1.avi": 0, "Train_AFEW/Happy/h2.avi": 1, "Train_AFEW/Angry/a1.avi": 2,
           "Val_AFEW/Surprise/s1.avi": 3, "Val_AFEW/Happy/h3.avi": 4}
  for rel, seed in faces.items():
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    video_io.write_video(root / rel, face_checks.astronaut_clip(6, seed=seed), fps=25)
  video_io.write_video(root / "Val_AFEW/Happy/no_face.avi", face_checks.face_free_clip(5), fps=25)
  (root / "Val_AFEW/Fear").mkdir()
  (root / "Val_AFEW/Fear/broken.avi").write_bytes(np.random.default_rng(0).bytes(5000))
  data_dir = tmp_path_factory.mktemp("tfds")
  builder = tfds.builder("afew", data_dir=os.fspath(data_dir), workers=1, progress=False)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(root)))
  return data_dir, Path(builder.data_dir)


def afew_config(data_dir):
  config = tiny.shrink(tiny.load("table1_sa2_reg1"), data_dir, steps=2)
  config.dataset = "afew"
  return config


@pytest.mark.slow
def test_every_listed_clip_is_scored_under_each_policy(afew_dir, tmp_path, capsys):
  data_dir, dataset_dir = afew_dir
  listed = json.loads((dataset_dir / clip_list.CLIP_LIST_NAME).read_text())["splits"]["validation"]
  assert sorted((e["source"], e["status"]) for e in listed) == [
      ("Val_AFEW/Fear/broken.avi", "unreadable"), ("Val_AFEW/Happy/h3.avi", "ok"),
      ("Val_AFEW/Happy/no_face.avi", "no_face"), ("Val_AFEW/Surprise/s1.avi", "ok")]

  record = loop.train_and_evaluate(afew_config(data_dir), tmp_path)
  printed = capsys.readouterr().out
  assert record == json.loads((tmp_path / "metrics.json").read_text())
  wrong, prior, exclude = record["wrong"], record["prior"], record["exclude"]
  assert record["prior_class"] == "Happy" and record["clip_list_known"] and record["frames"] == "every frame"
  assert sorted(c["clip"] for c in record["clips_without_face"]) == ["Val_AFEW/Fear/broken.avi",
                                                                      "Val_AFEW/Happy/no_face.avi"]
  assert [(m["clips_listed"], m["clips_scored"], m["clips_without_face"]) for m in (wrong, prior, exclude)] == \
      [(4, 4, 2), (4, 4, 2), (4, 2, 2)]
  # What the model got right on the two clips it saw, from the 'exclude' confusion (rows: true class).
  seen = np.array(exclude["confusion"])
  surprise, happy = int(seen[SURPRISE, SURPRISE]), int(seen[HAPPY, HAPPY])
  assert seen.sum() == 2
  # 'wrong': the two clips are misses in no column; 'prior': both are called Happy.
  assert np.array(wrong["confusion"]).sum() == 2 and np.array(wrong["confusion"])[FEAR].sum() == 0
  assert np.array(prior["confusion"])[FEAR, HAPPY] == 1 and np.array(prior["confusion"])[HAPPY, HAPPY] == happy + 1
  assert wrong["war"] == pytest.approx((surprise + happy) / 4)
  assert prior["war"] == pytest.approx((surprise + happy + 1) / 4)
  assert exclude["war"] == pytest.approx((surprise + happy) / 2)
  assert wrong["uar"] == pytest.approx((surprise + happy / 2 + 0) / 3)  # Surprise, Happy (2 clips), Fear
  assert prior["uar"] == pytest.approx((surprise + (happy + 1) / 2 + 0) / 3)
  assert exclude["uar"] == pytest.approx((surprise + happy) / 2)
  assert "wrong: WAR" in printed and "|  prior: WAR" in printed and "|  exclude: WAR" in printed
  assert "(4 of 4 clips scored, 2 without a face)" in printed and "(2 of 4 clips scored, 2 without a face)" in printed

  # A dataset prepared before clip lists were recorded: its written clips, and a one-line warning.
  (dataset_dir / clip_list.CLIP_LIST_NAME).unlink()
  config = afew_config(data_dir)
  config.no_face_policy = "exclude"
  old = experiment.evaluate_saved(config, str(tmp_path)).record
  captured = capsys.readouterr()
  warnings = [line for line in captured.err.splitlines() if "clip lists" in line]
  assert len(warnings) == 1 and "unknown and not counted" in warnings[0]
  assert old["exclude"]["war"] == exclude["war"] and old["exclude"]["clips_listed"] == 2
  assert old["wrong"]["clips_listed"] == 2 and not old["clip_list_known"]
  assert captured.out.splitlines()[0].startswith("afew validation at step 2 (every frame): exclude: WAR")
