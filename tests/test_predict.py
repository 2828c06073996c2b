"""`videmo predict`, its report, `videmo render-clip` and `videmo eval --report`, end to end.

One tiny model is trained for two steps on synthemo/tiny (conftest's `tiny_run`) (32x32 faces, 2x2 attention grid) by
`videmo.train.loop.train_and_evaluate`, so the work directory is the one training writes.
Videos: the astronaut photograph moving about (a real face, found by dlib), a face-free
photograph, a file that is not a video, and a rendered SynthEmo clip.
"""

import json
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.text
import numpy as np
import pytest

from face_checks import astronaut_clip, face_free_clip
from videmo.data.preparation import clip_processing, faces
from videmo.data.loading import pipeline
from videmo.data import video_io
from videmo.data.synthemo import render_clip as render_clip_lib
from videmo.main import main
from videmo.models import video
from videmo.models.input_convention import IMAGENET_CONVENTION
from videmo.predict import PREDICTION_FIELDS, Predictor, report
from videmo.predict import faces_input, split_report
from videmo.predict.faces_input import FaceFrames

import tiny
from record_checks import check_record
from tiny import REPO

# The tests share one trained work directory (module fixtures): keep them on one xdist worker.
pytestmark = [pytest.mark.xdist_group("predict"), pytest.mark.slow]


@pytest.fixture(scope="module")
def workdir(tiny_workdir):
  return tiny_workdir


@pytest.fixture(scope="module")
def predictor(tiny_predictor):
  return tiny_predictor


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
  """A folder: a real face, a face-free photograph (in a subfolder), a non-video and garbage."""
  folder = tmp_path_factory.mktemp("videos")
  video_io.write_video(folder / "astronaut.mp4", astronaut_clip(14, seed=3), fps=25)
  (folder / "objects").mkdir()
  video_io.write_video(folder / "objects" / "cup.mp4", face_free_clip(6), fps=25)
  (folder / "broken.avi").write_bytes(np.random.default_rng(0).bytes(3000))
  (folder / "notes.txt").write_text("not a video")
  return folder


def test_prediction_on_a_real_face(predictor, videos):
  prediction = predictor.predict(videos / "astronaut.mp4", keep_faces=True)
  assert prediction.ok, prediction.message
  assert prediction.num_source_frames == 14
  t = len(prediction.frame_index)
  assert t + len(prediction.frames_without_face) == 14 and t >= 10  # dlib finds the astronaut
  assert prediction.probabilities.shape == (7,) and prediction.probabilities.sum() == pytest.approx(1, abs=1e-5)
  assert prediction.frame_importance.shape == (t,) and prediction.frame_importance.sum() == pytest.approx(1, abs=1e-5)
  assert prediction.frame_probabilities.shape == (t, 7)
  np.testing.assert_allclose(prediction.frame_probabilities.sum(1), 1, atol=1e-5)
  assert prediction.attention.shape == (t, 2, 2, 2)  # [T, N heads, 32/16, 32/16]
  np.testing.assert_allclose(prediction.attention.sum((2, 3)), 1, atol=1e-5)
  assert prediction.faces.shape == (t, 32, 32, 3) and prediction.faces.dtype == np.uint8
  assert prediction.checkpoint.endswith("checkpoints/2") and prediction.step == 2
  assert [name for name, _ in prediction.top(3)][0] == prediction.label
  record = json.loads(json.dumps(prediction.to_json()))
  assert tuple(record) == PREDICTION_FIELDS
  check_record(record)
  in_memory = predictor.predict(astronaut_clip(3, seed=3))  # frames [T, H, W, 3] work too
  assert in_memory.ok and in_memory.video == "<frames>" and len(in_memory.frame_index) == 3
  broken = dict(record, frame_importance=record["frame_importance"][:-1])
  with pytest.raises(ValueError, match="frame_importance"):
    check_record(broken)


def test_chunks_give_the_whole_clip_call(predictor, videos):
  """Frames in chunks of 3, pooled afterwards == one model call on the whole clip."""
  crops = predictor.faces(videos / "astronaut.mp4").crops
  chunked = Predictor.from_parts(predictor.model, predictor.params, predictor.convention, predictor.class_names,
                                 predictor.clip_options, 32, batch_frames=3).run(crops)
  apply = jax.jit(lambda params, frames: predictor.model.apply({"params": params}, frames))
  whole = apply(predictor.params, predictor.convention.normalize(jnp.asarray(crops[None]), jnp.float32))
  np.testing.assert_allclose(chunked["log_probs"], whole["log_probs"][0], atol=1e-5)
  np.testing.assert_allclose(chunked["frame_importance"], whole["frame_importance"][0], atol=1e-6)
  np.testing.assert_allclose(chunked["attention"].reshape(len(crops), 2, 4), whole["attention"][0], atol=1e-6)


def test_no_face_and_unreadable_videos_say_so(predictor, videos, tmp_path):
  no_face = predictor.predict(videos / "objects" / "cup.mp4")
  assert no_face.status == "no_face" and no_face.label is None
  assert no_face.message == "no face in any of its 6 frames"
  assert no_face.frames_without_face == list(range(6))
  assert no_face.summary().endswith("cup.mp4: no prediction: no face in any of its 6 frames")
  check_record(no_face.to_json())
  unreadable = predictor.predict(videos / "broken.avi")
  assert unreadable.status == "unreadable" and "broken.avi" not in unreadable.message and unreadable.message
  empty = tmp_path / "empty.mp4"
  empty.write_bytes(b"")
  assert predictor.predict(empty).message == "zero-length file (0 bytes)"


def test_predict_command_on_a_folder_with_json_and_report(workdir, videos, tmp_path, capsys):
  out = tmp_path / "report"
  assert main(["predict", str(videos), "--checkpoint", str(workdir / "checkpoints" / "2"), "--json",
               "--report", str(out)]) == 0
  captured = capsys.readouterr()
  records = [json.loads(line) for line in captured.out.splitlines()]
  for record in records:
    check_record(record)
  assert [(Path(r["video"]).name, r["status"]) for r in records] == [
      ("astronaut.mp4", "ok"), ("broken.avi", "unreadable"), ("cup.mp4", "no_face")]
  assert "skipping 1 file(s) that are not videos (notes.txt)" in captured.err
  # a SynthEmo-trained model on a real photograph's face: one note line, a field, a banner
  notes = [line for line in captured.err.splitlines() if "synthetic drawn faces" in line]
  assert notes == ["videmo predict: note: this model was trained on synthemo/tiny, synthetic drawn faces: it "
                   "knows nothing of real faces, and on them its labels and attention maps mean nothing"]
  assert all(r["trained_on"] == {"dataset": "synthemo/tiny", "synthetic": True} for r in records)

  page = (out / "index.html").read_text()
  images = re.findall(r'<img src="([^"]+)"', page)
  assert images == ["figures/0001_astronaut.png"]  # relative; no figure for the failures
  assert (out / images[0]).stat().st_size > 10_000
  assert "<script" not in page and "http" not in page and "<link" not in page  # offline
  assert "no face in any of its 6 frames" in page and "unreadable" in page
  assert page.count('class="banner"') == 1 and "trained on synthemo/tiny, synthetic drawn faces" in page
  assert [json.loads(line)["status"] for line in (out / "predictions.jsonl").read_text().splitlines()] == \
      ["ok", "unreadable", "no_face"]


def test_aligned_synthemo_clip(predictor, workdir, tmp_path, capsys):
  path = tmp_path / "happy.mp4"
  assert main(["render-clip", str(path), "--label", "Happy", "--seed", "3", "--size", "32", "--frames", "12"]) == 0
  truth = json.loads(path.with_suffix(".json").read_text())
  assert truth["label"] == "Happy" and len(truth["intensity"]) == 12
  start, stop = truth["window"]
  assert 0 <= start < stop <= 12 and max(truth["intensity"]) == 1.0
  from videmo.data.synthemo.render import render_clip

  decoded, fps = video_io.read_video(path)
  clip = render_clip(3, 12, 32, 3, with_neutral=True)
  assert decoded.shape == clip["frames"].shape and fps == 25
  luma = lambda frames: frames.astype(np.float64) @ np.array([0.299, 0.587, 0.114])  # noqa: E731
  assert np.abs(luma(decoded) - luma(clip["frames"])).mean() < 3  # near-lossless (yuv420p halves colour)
  apex = truth["apex"]  # the expression survives encoding: the apex frame is nearer the smile than neutral
  assert np.abs(luma(decoded[apex]) - luma(clip["frames"][apex])).sum() < \
      np.abs(luma(decoded[apex]) - luma(clip["neutral_frames"][apex])).sum()
  # The ground truth comes from happy.json beside the video, and the figure shades the window.
  assert render_clip_lib.ground_truth_beside(path) == ("Happy", (start, stop))
  prediction = predictor.predict(path, aligned=True, keep_faces=True, true_label="Happy", true_window=(start, stop))
  assert prediction.ok and list(prediction.frame_index) == list(range(12)) and not prediction.frames_without_face
  check_record(prediction.to_json())
  assert prediction.true_label == "Happy" and prediction.true_window == (start, stop)
  assert f"true expressive window ({start}-{stop - 1})" in figure_text(prediction)
  assert "true: Happy" in figure_text(prediction)
  capsys.readouterr()
  assert main(["predict", str(path), "--checkpoint", str(workdir), "--aligned", "--json"]) == 0
  printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert printed["true_label"] == "Happy" and printed["true_window"] == [start, stop]
  path.with_suffix(".json").write_text('{"label": "Happy"}')  # not a render-clip record: ignored
  assert render_clip_lib.ground_truth_beside(path) is None
  assert predictor.predict(path, aligned=True).true_window is None
  bad = predictor.predict(path, aligned=True).to_json()
  bad["true_window"] = [5, 2]
  with pytest.raises(ValueError, match="true_window"):
    check_record(bad)
  with pytest.raises(SystemExit):
    main(["render-clip", str(tmp_path / "odd.mp4"), "--size", "33"])
  assert "--size must be even" in capsys.readouterr().err


def faces_frames(crops):
  """FaceFrames of crops [T, C, C, 3] made elsewhere."""
  return FaceFrames(crops, np.arange(len(crops)), len(crops), [])


def random_predictor(class_names, **model_fields):
  """A Predictor for a tiny randomly initialised model over 32x32 faces (tiny.random_params: no init to compile)."""
  model = video.build_model(dict(trunk_width_divisor=16, attention_hidden=8, lstm_hidden=8, **model_fields))
  params = tiny.random_params(model, num_frames=1)
  options = clip_processing.ClipOptions(face=faces.FaceOptions(face_size=32))
  return Predictor.from_parts(model, params, IMAGENET_CONVENTION, class_names, options, 32, batch_frames=4)


def figure_text(prediction) -> str:
  return " ".join(t.get_text() for t in report.figure(prediction).findobj(matplotlib.text.Text))


def test_figures_say_what_a_model_does_not_have(predictor, videos):
  frames = faces_frames(predictor.faces(videos / "astronaut.mp4").crops[:5])
  trained = figure_text(predictor.predict_faces(frames, "a", keep_faces=True))
  assert report.NO_ATTENTION_NOTE not in trained and report.IMPORTANCE_LABELS["softmax"] in trained

  plain = random_predictor(predictor.class_names, spatial="average", temporal="average")
  prediction = plain.predict_faces(frames, "plain", keep_faces=True)
  assert prediction.attention is None and prediction.pooling == "average"
  np.testing.assert_allclose(prediction.frame_importance, 0.2, atol=1e-6)
  check_record(prediction.to_json())
  shown = figure_text(prediction)
  assert report.NO_ATTENTION_NOTE in shown and report.NO_IMPORTANCE_NOTE in shown

  lstm = random_predictor(predictor.class_names, spatial="attention", temporal="lstm")
  prediction = lstm.predict_faces(frames, "lstm", keep_faces=True)  # 5 frames in one call, padded to 8
  assert prediction.attention.shape == (5, 2, 2, 2) and prediction.frame_importance.shape == (5,)
  check_record(prediction.to_json())
  assert report.IMPORTANCE_LABELS["lstm"] in figure_text(prediction)


def test_split_report_order_puts_mistakes_first():
  from videmo.train.evaluation import Evaluation

  unused = np.full(5, -1)
  evaluation = Evaluation(metrics={}, loss=0.0, labels=np.array([0, 1, 2, 0, 1]),
                          predictions=np.array([0, 2, -1, 1, 1]), has_face=np.array([True, True, False, True, True]),
                          probabilities=np.array([[.9, .1, 0], [.2, .3, .5], [0, 0, 0], [.1, .8, .1], [.4, .6, 0]]),
                          top_frame_importance=unused, top_frame_evidence=unused, windows=np.full((5, 2), -1),
                          num_faces=np.ones(5, int))
  # wrong (most confident first): 3 (0.8), 1 (0.5); no face: 2; right: 0 (0.9), 4 (0.6)
  assert split_report.report_order(evaluation) == [3, 1, 2, 0, 4]


def test_eval_command_writes_the_split_report(workdir, synthemo_tiny, predictor, tmp_path, capsys):
  out = tmp_path / "eval_report"
  argv = ["eval", f"--config={REPO / 'configs' / 'synthemo.py'}", f"--checkpoint={workdir}",
          f"--report={out}", "--report_clips=5", *tiny.flags(synthemo_tiny)]
  assert main(argv) == 0
  assert "agree with the evaluation on 5 of 5 clips" in capsys.readouterr().out
  records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
  assert len(records) == 5 and all(r["true_label"] for r in records)
  assert all(len(r["true_window"]) == 2 for r in records)  # SynthEmo's expressive windows
  wrong = [r["label"] != r["true_label"] for r in records]
  assert wrong == sorted(wrong, reverse=True)  # misclassified clips first
  for group in (True, False):
    confidence = [r["probability"] for r, w in zip(records, wrong) if w == group]
    assert confidence == sorted(confidence, reverse=True)
  page = (out / "index.html").read_text()
  assert len(re.findall(r'<img src="figures/[^"]+\.png"', page)) == 5
  # The work directory's own predictor sees the same crops and gives the same answer.
  source = pipeline.open_split("synthemo/tiny", "validation", synthemo_tiny)
  clip_ids = [source[i]["clip_id"].decode() for i in range(len(source))]
  first = records[0]
  frames = faces_input.faces_from_record(source[clip_ids.index(first["video"])], 32, None)
  again = predictor.predict_faces(frames, first["video"])
  np.testing.assert_allclose(again.probabilities, first["probabilities"], atol=1e-5)


def test_docs_list_exactly_the_record_fields():
  text = (REPO / "docs" / "predict.md").read_text()
  section = text.split("\n## The JSON record\n")[1].split("\n## ")[0]
  documented = re.findall(r"^\| `(\w+)` \|", section, flags=re.MULTILINE)
  assert tuple(documented) == PREDICTION_FIELDS
