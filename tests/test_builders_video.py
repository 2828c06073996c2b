"""The afew and video_folder builders on videos made from a real photograph, end to end.

Every test makes its own data: clips of skimage's astronaut photograph moving, zooming and
turning (720x576 like AFEW for the AFEW test, smaller elsewhere), a face-free clip, and
broken files. Nothing is downloaded and TensorFlow is never imported.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

import face_checks
from videmo.data.preparation import clip_processing, faces, prepare
from videmo.data import video_io
from videmo.data.preparation import builders  # importing it registers afew and video_folder

AFEW_FACE_CLIPS = {  # relative path -> number of frames, all with a face
    "Train_AFEW/Angry/a1.avi": 14,
    "Train_AFEW/Happy/h1.avi": 10,
    "Val_AFEW/Surprise/s1.mp4": 10,
}


def _clip(path: Path, frames: np.ndarray) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  video_io.write_video(path, frames, fps=25)


def _read(data_dir, name, split):
  return list(tfds.data_source(name, data_dir=os.fspath(data_dir), split=split))


def _shards(dataset_dir: Path) -> dict[str, bytes]:
  return {p.name: p.read_bytes() for p in sorted(dataset_dir.glob("*.array_record*"))}


@pytest.fixture(scope="module")
def afew_root(tmp_path_factory):
  """An AFEW-layout tree: three face clips at 720x576 (one .mp4), a face-free clip, a corrupt
  file, a truncated video, a zero-length file, a text file and a folder that is no emotion."""
  root = tmp_path_factory.mktemp("AFEW")
  for seed, (rel, num) in enumerate(AFEW_FACE_CLIPS.items()):
    _clip(root / rel, face_checks.astronaut_clip(num, 576, 720, zoom=(1.2, 2.0), seed=seed))
  _clip(root / "Train_AFEW/Happy/no_face.avi", face_checks.face_free_clip(5, 576, 720))
  (root / "Train_AFEW/Sad").mkdir()
  (root / "Train_AFEW/Sad/corrupt.avi").write_bytes(np.random.default_rng(0).bytes(20_000))
  (root / "Train_AFEW/Sad/readme.txt").write_text("not a video")
  (root / "Train_AFEW/Contempt").mkdir()
  shutil.copy(root / "Train_AFEW/Angry/a1.avi", root / "Train_AFEW/Contempt/c1.avi")
  data = (root / "Train_AFEW/Angry/a1.avi").read_bytes()
  (root / "Val_AFEW/Fear").mkdir()
  (root / "Val_AFEW/Fear/cut.avi").write_bytes(data[: int(len(data) * 0.6)])
  (root / "Val_AFEW/Neutral").mkdir()
  (root / "Val_AFEW/Neutral/empty.avi").write_bytes(b"")
  return root


@pytest.fixture(scope="module")
def afew_built(afew_root, tmp_path_factory):
  """The afew dataset built from afew_root with a pool of 2 workers."""
  data_dir = tmp_path_factory.mktemp("tfds")
  builder = tfds.builder("afew", data_dir=os.fspath(data_dir), workers=2)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(afew_root)))
  return data_dir, Path(builder.data_dir)


def test_afew_build_finds_aligns_and_reports(afew_built):
  data_dir, dataset_dir = afew_built
  report = json.loads((dataset_dir / "prepare_report.json").read_text())
  clips = {c["source"]: c for c in report["clips"]}
  # Faces: >= 95% of the face frames (the truncated copy of a1 counts with the frames it has).
  face_frames = sum(AFEW_FACE_CLIPS.values()) + clips["Val_AFEW/Fear/cut.avi"]["frames_decoded"]
  found = sum(clips[s]["frames_with_face"] for s in [*AFEW_FACE_CLIPS, "Val_AFEW/Fear/cut.avi"])
  assert found >= 0.95 * face_frames, (found, face_frames)
  # Problems are all in the report, and did not stop the build.
  assert [c["source"] for c in report["clips_without_face"]] == ["Train_AFEW/Happy/no_face.avi"]
  assert [c["source"] for c in report["unreadable_files"]] == ["Train_AFEW/Sad/corrupt.avi"]
  assert [c["source"] for c in report["empty_videos"]] == ["Val_AFEW/Neutral/empty.avi"]
  assert [c["source"] for c in report["truncated_videos"]] == ["Val_AFEW/Fear/cut.avi"]
  assert [c["path"] for c in report["not_video_files"]] == ["Train_AFEW/Sad/readme.txt"]
  assert [c["path"] for c in report["unknown_class_folders"]] == ["Train_AFEW/Contempt"]
  assert report["summary"]["clips_written"] == 4
  # Shards read back (tfds.data_source, no TensorFlow) with the right labels and frame counts.
  names = ["Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise"]
  models = faces.load_face_models()
  seen = {}
  for split in ("train", "validation"):
    for example in _read(data_dir, "afew", split):
      source = example["source"].decode()
      seen[source] = split
      assert names[example["label"]] == source.split("/")[1]
      assert example["num_frames"] == len(example["frames"]) == clips[source]["frames_with_face"]
      assert all(example["face_found"]) and list(example["frame_index"]) == sorted(example["frame_index"])
      assert example["fps"] == pytest.approx(25)
      frames = np.stack(example["frames"])
      assert frames.shape[1:] == (256, 256, 3) and frames.dtype == np.uint8
      errors = [face_checks.eye_error(models, frame) for frame in frames[::5]]
      assert max(errors) < 10.0, (source, errors)  # eyes where get_face_chip puts them
  assert seen == {"Train_AFEW/Angry/a1.avi": "train", "Train_AFEW/Happy/h1.avi": "train",
                  "Val_AFEW/Surprise/s1.mp4": "validation", "Val_AFEW/Fear/cut.avi": "validation"}
  assert "tensorflow" not in sys.modules
  assert not (dataset_dir.parent / "prepare_cache-1.0.0").exists()  # removed after success


def test_prepare_command_prints_the_report(afew_root, afew_built, capsys):
  data_dir, _ = afew_built
  code = prepare.main(["--dataset", "afew", "--manual_dir", os.fspath(afew_root), "--data_dir", os.fspath(data_dir)])
  out = capsys.readouterr().out
  assert code == 0
  for line in ("train: 2 clips", "validation: 2 clips", "clips_written: 4", "clips_without_face: 1",
               "Train_AFEW/Happy/no_face.avi", "unreadable_files: 1", "Train_AFEW/Sad/corrupt.avi"):
    assert line in out, out


def test_prepare_command_explains_an_empty_manual_dir(tmp_path, capsys):
  (tmp_path / "manual").mkdir()
  code = prepare.main(["--dataset", "afew", "--manual_dir", os.fspath(tmp_path / "manual"),
                       "--data_dir", os.fspath(tmp_path / "data")])
  assert code == 1
  err = capsys.readouterr().err
  assert "manual_dir" in err and "missing or empty" in err and "Train_AFEW" in err


def _small_afew(root: Path, clips: int = 4, frames: int = 8) -> Path:
  classes = ["Angry", "Happy", "Sad", "Fear"]
  for i in range(clips):
    split = "Train_AFEW" if i % 2 == 0 else "Val_AFEW"
    _clip(root / split / classes[i % 4] / f"{i:03d}.avi", face_checks.astronaut_clip(frames, seed=i))
  return root


def _count_process_clip(monkeypatch):
  calls = []
  original = clip_processing.process_clip

  def counting(task, options, models):
    calls.append(task.source)
    return original(task, options, models)

  monkeypatch.setattr(clip_processing, "process_clip", counting)
  return calls


@pytest.mark.slow
def test_killed_build_resumes_without_redoing_clips_and_writes_identical_shards(tmp_path, monkeypatch):
  manual = _small_afew(tmp_path / "AFEW", clips=6, frames=24)
  config = tfds.download.DownloadConfig(manual_dir=os.fspath(manual))
  reference = tfds.builder("afew", data_dir=os.fspath(tmp_path / "clean"), workers=1, progress=False)
  reference.download_and_prepare(download_config=config)

  # Kill a `videmo prepare` (2 workers) as soon as it has finished its first clip.
  data_dir = tmp_path / "killed"
  cache = data_dir / "afew/default/prepare_cache-1.0.0"
  command = [sys.executable, "-m", "videmo.main", "prepare", "--dataset", "afew", "--manual_dir",
             os.fspath(manual), "--data_dir", os.fspath(data_dir), "--workers", "2"]
  process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
  deadline = time.time() + 120
  while not list(cache.glob("*/*.pkl")) and process.poll() is None and time.time() < deadline:
    time.sleep(0.01)
  os.killpg(process.pid, signal.SIGKILL)
  process.wait()
  done = len(list(cache.glob("*/*.pkl")))
  assert 1 <= done < 6, f"the kill should land mid-build ({done} clips done)"
  assert not (data_dir / "afew/default/1.0.0").exists()

  calls = _count_process_clip(monkeypatch)
  resumed = tfds.builder("afew", data_dir=os.fspath(data_dir), workers=1, progress=False)
  resumed.download_and_prepare(download_config=config)
  assert len(calls) == 6 - done, "finished clips are not redone"
  assert _shards(Path(resumed.data_dir)) == _shards(Path(reference.data_dir)) != {}


def test_missing_face_policies(tmp_path):
  frames = face_checks.astronaut_clip(12, seed=2)
  frames[4:7] = face_checks.face_free_clip(3)
  path = tmp_path / "clip.avi"
  _clip(path, frames)
  task = clip_processing.ClipTask("clip", os.fspath(path), "clip.avi", 0, "train")
  models = faces.load_face_models()
  skip = clip_processing.process_clip(task, clip_processing.ClipOptions(missing_face="skip"), models)
  reuse = clip_processing.process_clip(task, clip_processing.ClipOptions(missing_face="reuse_last"), models)
  assert skip.missing_frames == reuse.missing_frames == [4, 5, 6]
  assert skip.frame_index == [0, 1, 2, 3, 7, 8, 9, 10, 11] and all(skip.face_found)
  assert reuse.frame_index == list(range(12))
  assert reuse.face_found == [True] * 4 + [False] * 3 + [True] * 5
  assert reuse.frames[4] == reuse.frames[5] == reuse.frames[6] == reuse.frames[3]
  with pytest.raises(ValueError, match="missing_face must be one of"):
    clip_processing.ClipOptions(missing_face="drop")


def test_video_folder_with_an_annotation_csv(tmp_path, monkeypatch):
  root = tmp_path / "data"
  _clip(root / "videos/v1.avi", face_checks.astronaut_clip(6, seed=1))
  _clip(root / "videos/v2.mp4", face_checks.astronaut_clip(6, seed=2))
  (root / "frames/v3").mkdir(parents=True)
  for t, frame in enumerate(face_checks.astronaut_clip(5, seed=3)):
    Image.fromarray(frame).save(root / f"frames/v3/{t + 1}.jpg", quality=95)
  (root / "annotations.csv").write_text(
      "path,label,fold\n"
      "videos/v1.avi,happy,1\n"
      "videos/v2,sad,1\n"             # suffix left out
      "frames/v3,happy,2\n"            # a folder of frames
      "videos/v1.avi,happy,2\n"        # the same video in another fold: prepared once
      "videos/v1.avi,happy,2\n"        # listed twice in one fold: reported
      "videos/missing.avi,sad,2\n")    # no such file: reported
  calls = _count_process_clip(monkeypatch)
  builder = tfds.builder("video_folder/mini", data_dir=os.fspath(tmp_path / "tfds"), workers=1, progress=False)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(root)))
  assert sorted(calls) == ["frames/v3", "videos/v1.avi", "videos/v2.mp4"]
  assert builder.info.features["label"].names == ["happy", "sad"]
  assert set(builder.info.splits) == {"fold_1", "fold_2"}
  fold_1 = {e["source"].decode(): e for e in _read(tmp_path / "tfds", "video_folder/mini", "fold_1")}
  fold_2 = {e["source"].decode(): e for e in _read(tmp_path / "tfds", "video_folder/mini", "fold_2")}
  assert {s: e["label"] for s, e in fold_1.items()} == {"videos/v1.avi": 0, "videos/v2.mp4": 1}
  assert {s: e["label"] for s, e in fold_2.items()} == {"frames/v3": 0, "videos/v1.avi": 0}
  assert fold_2["frames/v3"]["num_frames"] == 5 and fold_2["frames/v3"]["fps"] == 0
  assert fold_1["videos/v1.avi"]["num_frames"] == 6 == len(fold_2["videos/v1.avi"]["frames"])
  report = json.loads((Path(builder.data_dir) / "prepare_report.json").read_text())
  kinds = sorted(issue["kind"] for issue in report["other_issues"])
  assert kinds == ["duplicate", "missing_file"]


def test_video_folder_tree_of_frame_folders(tmp_path):
  root = tmp_path / "data"
  layout = {"train/neutral/c1": 1, "train/smile/c2": 2, "test/smile/c3": 3}
  for rel, seed in layout.items():
    (root / rel).mkdir(parents=True)
    for t, frame in enumerate(face_checks.astronaut_clip(4, seed=seed)):
      Image.fromarray(frame).save(root / rel / f"img_{t:03d}.png")
  (root / "test/smile/notes.md").write_text("not a clip")
  builder = tfds.builder("video_folder/frames", data_dir=os.fspath(tmp_path / "tfds"), workers=1, progress=False)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(root)))
  assert builder.info.features["label"].names == ["neutral", "smile"]
  train = {e["clip_id"].decode(): e for e in _read(tmp_path / "tfds", "video_folder/frames", "train")}
  test = {e["clip_id"].decode(): e for e in _read(tmp_path / "tfds", "video_folder/frames", "test")}
  assert {k: e["label"] for k, e in train.items()} == {"train/neutral/c1": 0, "train/smile/c2": 1}
  assert {k: e["label"] for k, e in test.items()} == {"test/smile/c3": 1}
  assert all(e["num_frames"] == 4 and np.stack(e["frames"]).shape == (4, 256, 256, 3)
             for e in [*train.values(), *test.values()])
  report = json.loads((Path(builder.data_dir) / "prepare_report.json").read_text())
  assert [i["path"] for i in report["not_video_files"]] == ["test/smile/notes.md"]


def test_tfds_build_builds_the_dataset_folder(tmp_path):
  """`tfds build videmo/data/preparation/builders/afew` (TFDS's build command, without its TensorFlow-
  importing entry point) loads the builder from its folder and writes the same dataset."""
  simple_parsing = pytest.importorskip("simple_parsing")
  from tensorflow_datasets.scripts.cli import build

  manual = _small_afew(tmp_path / "AFEW", clips=2, frames=6)
  folder = Path(builders.__file__).parent / "afew"
  args = simple_parsing.parse(build.Args, args=[
      os.fspath(folder), "--config", "default", "--manual_dir", os.fspath(manual),
      "--data_dir", os.fspath(tmp_path / "tfds")])
  args.execute()
  train = _read(tmp_path / "tfds", "afew", "train")
  assert [e["source"].decode() for e in train] == ["Train_AFEW/Angry/000.avi"]
  report = json.loads((tmp_path / "tfds/afew/default/1.0.0/prepare_report.json").read_text())
  assert report["summary"]["clips_written"] == 2


def test_afew_layout_accepts_the_usual_spellings(tmp_path):
  from videmo.data.preparation.builders.afew import list_afew

  root = tmp_path / "download"
  for rel in ["AFEW_7.0/train_afew/angry/a.avi", "AFEW_7.0/train_afew/Happiness/b.avi",
              "AFEW_7.0/Validation/SURPRISED/c.mp4", "AFEW_7.0/Validation/AlignedFaces_LBPTOP_Points/d.avi"]:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_bytes(b"listing does not open files")
  splits, names, issues = list_afew(root)
  labels = {split: [(t.source, names[t.label]) for t in tasks] for split, tasks in splits.items()}
  assert labels == {"train": [("AFEW_7.0/train_afew/Happiness/b.avi", "Happy"),
                              ("AFEW_7.0/train_afew/angry/a.avi", "Angry")],
                    "validation": [("AFEW_7.0/Validation/SURPRISED/c.mp4", "Surprise")]}
  assert [(i.kind, i.path) for i in issues] == [("unknown_class", "AFEW_7.0/Validation/AlignedFaces_LBPTOP_Points")]
  with pytest.raises(FileNotFoundError, match="no Train_AFEW or Val_AFEW folder"):
    list_afew(root / "AFEW_7.0" / "train_afew")


def test_each_clip_is_reported_once_under_its_cause(tmp_path):
  """A face-free clip cut short is a clip without a face, not also a truncated video; a face
  clip cut short is a truncated video (written, with the frames before the damage)."""
  root = tmp_path / "data"
  _clip(root / "train/happy/whole.avi", face_checks.astronaut_clip(8, seed=1))
  for name, frames in (("face", face_checks.astronaut_clip(14, seed=2)),
                       ("coffee", face_checks.face_free_clip(14))):
    _clip(root / f"train/sad/{name}_full.avi", frames)
    data = (root / f"train/sad/{name}_full.avi").read_bytes()
    (root / f"train/sad/{name}_full.avi").unlink()
    (root / f"train/sad/{name}_cut.avi").write_bytes(data[: int(len(data) * 0.6)])
  builder = tfds.builder("video_folder/once", data_dir=os.fspath(tmp_path / "tfds"), workers=1, progress=False)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(root)))
  report = json.loads((Path(builder.data_dir) / "prepare_report.json").read_text())
  assert [c["source"] for c in report["clips_without_face"]] == ["train/sad/coffee_cut.avi"]
  assert "decoded frames" in report["clips_without_face"][0]["error"]
  assert [c["source"] for c in report["truncated_videos"]] == ["train/sad/face_cut.avi"]
  listed = [c["source"] for key in ("clips_without_face", "unreadable_files", "empty_videos", "truncated_videos")
            for c in report[key]]
  assert len(listed) == len(set(listed))
  assert report["summary"]["truncated_videos"] == 1 and report["summary"]["clips_without_face"] == 1
