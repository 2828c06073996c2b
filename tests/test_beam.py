"""Preparation on Apache Beam gives what `videmo prepare` gives.

Runs where apache-beam is installed (`pip install -e ".[test,beam]"`). apache-beam pins older
pillow and protobuf than videmo's own environment uses, so `.ci/run` runs this file in a
second virtual environment with the `beam` extra; elsewhere it is skipped.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

import face_checks
from videmo.data import video_io
from videmo.data.preparation import builders  # noqa: F401  (registers video_folder)

beam = pytest.importorskip("apache_beam")

CLIPS = {"train/happy/a.mp4": 6, "train/sad/b.mp4": 5, "train/happy/c.mp4": 7, "test/sad/d.mp4": 6}
VOLATILE = {"note"}  # the report's only difference by design: "built with Apache Beam"


def _videos(root: Path) -> Path:
  for seed, (rel, frames) in enumerate(CLIPS.items()):
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    video_io.write_video(root / rel, face_checks.astronaut_clip(frames, seed=seed), fps=25)
  video_io.write_video(root / "train/sad/no_face.mp4", face_checks.face_free_clip(4, 128, 128), fps=25)
  (root / "test/sad/broken.mp4").write_bytes(np.random.default_rng(0).bytes(5_000))
  return root


def _examples(builder, split: str) -> dict[str, dict]:
  return {e["clip_id"].decode(): e for e in tfds.data_source(builder.name + "/" + builder.builder_config.name,
                                                            data_dir=os.fspath(Path(builder.data_dir).parents[2]),
                                                            split=split)}


def _report(builder) -> dict:
  def strip(value):
    if isinstance(value, dict):
      return {k: strip(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
      return [strip(v) for v in value]
    return value

  return strip(json.loads((Path(builder.data_dir) / "prepare_report.json").read_text()))


def test_beam_direct_runner_in_processes_gives_the_examples_and_report_of_videmo_prepare(tmp_path):
  root = _videos(tmp_path / "videos")
  local = tfds.builder("video_folder/beamcheck", data_dir=os.fspath(tmp_path / "local"), workers=1, progress=False)
  local.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(root)))
  options = beam.options.pipeline_options.PipelineOptions(
      flags=["--direct_num_workers=2", "--direct_running_mode=multi_processing"])
  on_beam = tfds.builder("video_folder/beamcheck", data_dir=os.fspath(tmp_path / "beam"), progress=False)
  on_beam.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(root),
                                                                            beam_options=options))
  assert on_beam.info.features["label"].names == local.info.features["label"].names == ["happy", "sad"]
  for split in ("train", "test"):
    ours, theirs = _examples(on_beam, split), _examples(local, split)
    assert sorted(ours) == sorted(theirs) and ours
    for clip_id, example in theirs.items():
      other = ours[clip_id]
      assert set(other) == set(example)
      for key, value in example.items():
        if key == "frames":  # the same JPEG bytes, frame by frame
          assert [bytes(f) for f in other[key]] == [bytes(f) for f in value], clip_id
        else:
          np.testing.assert_array_equal(other[key], value, err_msg=f"{clip_id} {key}")
  report_beam, report_local = _report(on_beam), _report(local)
  assert report_beam == report_local
  assert report_local["clips_without_face"] and report_local["unreadable_files"]
  lists = [json.loads((Path(b.data_dir) / "clip_list.json").read_text()) for b in (on_beam, local)]
  assert lists[0]["splits"] == lists[1]["splits"]  # every clip listed, with its status, in both
