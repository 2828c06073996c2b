"""Prediction on many videos: bucketed pooling, frames of several videos per forward pass, the
background faces thread, a bounded number of compilations, the new flags, an offline report.

Most tests use a tiny randomly initialised model (32x32 faces, 2x2 attention grid; no
training, no face detection: frames given as arrays are aligned faces); the command-line
ones use conftest's trained `tiny_run`. Every comparison is with one call of the whole
model on the unpadded clip, in float32: padding and packing only add masked entries to
reductions, so the bounds allow a few float32 roundings of values of order 1.
"""

import json
from html.parser import HTMLParser
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from videmo.data.preparation import clip_processing, faces
from videmo.main import main
from videmo.models import video
from videmo.models.input_convention import IMAGENET_CONVENTION
from videmo.predict import Predictor, cli, stream
from videmo.predict import predictor as predictor_lib
from videmo.predict.faces_input import FaceFrames

import tiny

CLASSES = ("Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise")


def tiny_predictor(batch_frames: int = 8, **model_fields) -> Predictor:
  """A Predictor for a tiny random model over 32x32 faces (tiny.random_params: nothing to compile)."""
  model = video.build_model(dict(trunk_width_divisor=16, attention_hidden=8, lstm_hidden=8, **model_fields))
  params = tiny.random_params(model, num_frames=1)
  options = clip_processing.ClipOptions(face=faces.FaceOptions(face_size=32))
  return Predictor.from_parts(model, params, IMAGENET_CONVENTION, CLASSES, options, 32, batch_frames=batch_frames)


def clips(lengths, seed: int = 0) -> list[np.ndarray]:
  """Random crops [T, 32, 32, 3] uint8, one clip per length."""
  rng = np.random.default_rng(seed)
  return [rng.integers(0, 256, (t, 32, 32, 3), dtype=np.uint8) for t in lengths]


def whole_clip(predictor: Predictor, crops: np.ndarray) -> dict:
  """One call of the whole model on the unpadded clip (no mask), compiled for its length."""
  apply = jax.jit(lambda params, frames: predictor.model.apply(
      {"params": params}, predictor.convention.normalize(frames, jnp.float32)))
  out = apply(predictor.params, jnp.asarray(crops[None]))
  return {key: np.asarray(value[0]) for key, value in out.items() if key != "penalty"}


@pytest.mark.parametrize("temporal", ["softmax", "lstm", "max"])
def test_packed_and_bucketed_equal_the_unpadded_clip(temporal):
  predictor = tiny_predictor(temporal=temporal)
  lengths = (3, 5, 7, 9, 11, 17)  # 52 frames: 7 chunks of 8 together, 10 one clip at a time
  many = predictor.run_many(clips(lengths))
  assert predictor.forward_passes == 7
  for crops, out in zip(clips(lengths), many):
    t = len(crops)
    whole = whole_clip(predictor, crops)
    np.testing.assert_allclose(out["log_probs"], whole["log_probs"], atol=2e-6, rtol=1e-5)
    np.testing.assert_allclose(out["frame_importance"], whole["frame_importance"], atol=1e-6, rtol=1e-5)
    np.testing.assert_allclose(out["frame_scores"], whole["frame_scores"], atol=2e-6, rtol=1e-5)
    tau = predictor.model.temperature if temporal == "softmax" else 1.0
    np.testing.assert_allclose(out["frame_probabilities"], jax.nn.softmax(whole["frame_scores"] / tau, -1),
                               atol=1e-6, rtol=1e-5)
    np.testing.assert_allclose(out["attention"].reshape(t, 2, 4), whole["attention"], atol=1e-6, rtol=1e-5)
  alone = predictor.run(clips(lengths)[2])  # one video alone gives what it gives packed with others
  for key in ("log_probs", "frame_importance", "frame_probabilities", "attention"):
    np.testing.assert_allclose(alone[key], many[2][key], atol=1e-6, rtol=1e-5)


def test_predict_one_video_is_unchanged():
  """`predict` (frames as arrays, aligned) == the stream's prediction of the same video."""
  predictor = tiny_predictor()
  frames = clips([13], seed=4)[0]
  one = predictor.predict(frames, aligned=True, name="v")
  (streamed,) = stream.predict_stream(predictor, [stream.VideoJob(frames, name="v")], aligned=True)
  assert one.ok and streamed.ok and one.video == streamed.video == "v"
  np.testing.assert_array_equal(one.probabilities, streamed.probabilities)
  np.testing.assert_array_equal(one.frame_importance, streamed.frame_importance)


class CompileCounter:
  """Counts XLA lowerings (each one a compilation: a jit cache miss, an eager op on a new shape)."""

  def __init__(self):
    self.count = 0

  def __call__(self, event: str, duration: float, **kwargs) -> None:
    if event == "/jax/core/compile/jaxpr_to_mlir_module_duration":
      self.count += 1

  def __enter__(self):
    jax.monitoring.register_event_duration_secs_listener(self)
    return self

  def __exit__(self, *exc):
    jax.monitoring.unregister_event_duration_listener(self)


@pytest.mark.parametrize("temporal", ["softmax", "lstm"])
def test_twenty_lengths_compile_once_per_bucket(temporal):
  predictor = tiny_predictor(temporal=temporal)
  lengths = list(range(1, 41, 2))  # 20 clips of 1..39 frames: buckets 16 and 32 (+ 64 below)
  jobs = [stream.VideoJob(frames, name=f"v{t}") for t, frames in zip(lengths, clips(lengths, seed=1))]
  with CompileCounter() as compiles:
    predictions = list(stream.predict_stream(predictor, jobs, aligned=True, prefetch=4))
  assert [p.status for p in predictions] == ["ok"] * 20
  assert [len(p.frame_index) for p in predictions] == lengths
  buckets = {predictor_lib.pipeline.bucket_length(t, predictor.buckets) for t in lengths}
  assert buckets == {16, 32, 64}
  assert 2 <= compiles.count <= 1 + len(buckets) + 1, compiles.count  # the frame program, one per bucket, 1 spare
  others = [t + 1 for t in lengths[:-1]]  # 19 new lengths in the same buckets: nothing new to compile
  with CompileCounter() as again:
    list(stream.predict_stream(predictor, [stream.VideoJob(f) for f in clips(others, seed=2)], aligned=True))
  assert again.count == 0


def test_a_failing_video_is_reported_and_the_others_run(monkeypatch):
  predictor = tiny_predictor()
  good = clips([6, 9, 4], seed=3)
  jobs = [stream.VideoJob(good[0], name="a"), stream.VideoJob("/no/such/video.mp4", name="missing"),
          stream.VideoJob(good[1], name="boom"), stream.VideoJob(np.zeros((0, 32, 32, 3), np.uint8), name="empty"),
          stream.VideoJob(good[2], name="c")]
  faces_of = predictor.faces

  def faces(source, **kwargs):
    if isinstance(source, np.ndarray) and len(source) == 9:
      raise RuntimeError("decoder exploded")
    return faces_of(source, **kwargs)

  monkeypatch.setattr(predictor, "faces", faces)
  timing = stream.StreamTiming()
  out = list(stream.predict_stream(predictor, jobs, aligned=True, prefetch=2, timing=timing))
  assert [(p.video, p.status) for p in out] == [("a", "ok"), ("missing", "unreadable"), ("boom", "unreadable"),
                                                 ("empty", "unreadable"), ("c", "ok")]
  assert out[2].message == "RuntimeError: decoder exploded"
  assert out[3].message == "ValueError: predict: no frames given"
  assert timing.videos == 5 and timing.frames == 10 and "5 videos, 10 frames seen" in timing.summary()

  # An error inside the model on one video of a group: that video says so, the others are predicted.
  run_many = predictor.run_many

  def fragile(crops_list):
    if any(len(c) == 4 for c in crops_list):
      raise FloatingPointError("the model broke")
    return run_many(crops_list)

  monkeypatch.setattr(predictor, "run_many", fragile)
  group = [(job, predictor.faces(job.source, aligned=True)) for job in (jobs[0], jobs[4])]
  first, last = stream._predict_group(predictor, group, keep_faces=False)
  assert first.ok and last.status == "unreadable"
  assert last.message == "the model failed on it: FloatingPointError: the model broke"


def test_caps_reach_faces_from_path(monkeypatch, tmp_path):
  predictor = tiny_predictor()
  seen = []
  monkeypatch.setattr(predictor_lib.faces_input, "faces_from_path",
                      lambda path, *args, **kwargs: seen.append(kwargs) or FaceFrames(
                          np.zeros((0, 0, 0, 3), np.uint8), np.zeros(0, np.int64), 0, [], None, "unreadable", "x"))
  predictor.predict(tmp_path / "a.mp4", aligned=True)
  assert seen[-1] == {"max_frames": None, "max_seconds": None}
  capped = Predictor.from_parts(predictor.model, predictor.params, predictor.convention, CLASSES,
                                predictor.clip_options, 32, max_frames=5, max_seconds=2.5)
  capped.predict(tmp_path / "a.mp4", aligned=True)
  assert seen[-1] == {"max_frames": 5, "max_seconds": 2.5}
  frames = clips([40], seed=5)[0]  # frames given as arrays: the first 5 (max_frames), the first 2.5 s at 4 fps
  assert len(capped.predict(frames, aligned=True, fps=10).frame_index) == 5
  assert len(Predictor.from_parts(predictor.model, predictor.params, predictor.convention, CLASSES,
                                  predictor.clip_options, 32, max_seconds=2.5).predict(
                                      frames, aligned=True, fps=4).frame_index) == 10
  with pytest.raises(ValueError, match="max_seconds needs the frame rate"):
    capped.faces(frames, aligned=True)
  with pytest.raises(ValueError, match="max_frames must be >= 1"):
    Predictor.from_parts(predictor.model, predictor.params, predictor.convention, CLASSES,
                         predictor.clip_options, 32, max_frames=0)


def test_cli_flags_reach_the_predictor(monkeypatch, tmp_path, capsys):
  (tmp_path / "a.mp4").write_bytes(b"")
  made = {}

  class Recorder:
    def __init__(self, checkpoint, **kwargs):
      made.update(kwargs, checkpoint=checkpoint)
      raise ValueError("recorded")

  monkeypatch.setattr(predictor_lib, "Predictor", Recorder)
  assert main(["predict", str(tmp_path / "a.mp4"), "--checkpoint", "run", "--max_frames", "30",
               "--max_seconds", "1.5", "--batch_frames", "4"]) == 1
  assert made == dict(checkpoint="run", num_frames=None, batch_frames=4, max_frames=30, max_seconds=1.5)
  assert "videmo predict: recorded" in capsys.readouterr().err
  for flag, value, says in (("--max_frames", "0", "--max_frames must be >= 1, got 0"),
                            ("--max_seconds", "-1", "--max_seconds must be > 0, got -1.0"),
                            ("--prefetch", "-2", "--prefetch must be >= 0, got -2")):
    with pytest.raises(SystemExit, match=says):
      cli.main([str(tmp_path / "a.mp4"), "--checkpoint", "run", flag, value])


class Links(HTMLParser):
  """Every src and href of a page, and its element ids."""

  def __init__(self):
    super().__init__()
    self.links, self.ids = [], set()

  def handle_starttag(self, tag, attrs):
    for name, value in attrs:
      if name in ("src", "href", "srcset", "data", "poster", "action"):
        self.links.append(value)
      if name == "id":
        self.ids.add(value)


@pytest.mark.slow
@pytest.mark.xdist_group("predict")
def test_folder_report_works_offline(tiny_run, tmp_path, capsys, monkeypatch):
  """A folder of render-clip videos (and a damaged file) through `videmo predict --report`: every
  link of index.html is relative and exists, no URL anywhere; --timing and --quiet as documented."""
  folder = tmp_path / "clips dir"
  for seed, (label, frames) in enumerate([("Happy", 12), ("Sad", 20), ("Fear", 7)]):
    assert main(["render-clip", str(folder / f"{label} #{seed}.mp4"), "--label", label, "--seed", str(seed),
                 "--size", "32", "--frames", str(frames)]) == 0
  (folder / "damaged.mp4").write_bytes(np.random.default_rng(0).bytes(2000))
  capsys.readouterr()
  out = tmp_path / "report"
  assert main(["predict", str(folder), "--checkpoint", str(tiny_run[0]), "--aligned", "--report", str(out),
               "--json", "--timing", "--quiet", "--max_frames", "16"]) == 0
  captured = capsys.readouterr()
  records = [json.loads(line) for line in captured.out.splitlines()]
  assert [(Path(r["video"]).name, r["status"]) for r in records] == [
      ("Fear #2.mp4", "ok"), ("Happy #0.mp4", "ok"), ("Sad #1.mp4", "ok"), ("damaged.mp4", "unreadable")]
  assert [len(r["frame_index"]) for r in records[:3]] == [7, 12, 16]  # --max_frames 16 cut the 20-frame clip
  assert [r["frame_time"][:2] for r in records[:3]] == [[0.0, 0.04]] * 3  # the frames' times reach the records
  assert captured.err.startswith("timing: 4 videos, 35 frames seen")  # --quiet: no bar, no notes
  page = (out / "index.html").read_text(encoding="utf-8")
  assert "http://" not in page and "https://" not in page
  parser = Links()
  parser.feed(page)
  images = [link for link in parser.links if not link.startswith("#")]
  assert len(images) == 3
  for link in parser.links:
    assert "://" not in link and not link.startswith(("/", "data:", "file:")), link
    if link.startswith("#"):
      assert link[1:] in parser.ids, link
    else:
      from urllib.parse import unquote
      assert (out / unquote(link)).is_file() and (out / unquote(link)).resolve().is_relative_to(out.resolve())

  # Ctrl-C after two videos: the report holds those two, and says it was interrupted.
  real = stream.predict_stream

  def interrupted(*args, **kwargs):
    for number, prediction in enumerate(real(*args, **kwargs)):
      if number == 2:
        raise KeyboardInterrupt
      yield prediction

  monkeypatch.setattr(stream, "predict_stream", interrupted)
  capsys.readouterr()
  assert main(["predict", str(folder), "--checkpoint", str(tiny_run[0]), "--aligned", "--report",
               str(tmp_path / "cut"), "--quiet"]) == 130
  assert "interrupted after 2 of 4 videos" in capsys.readouterr().err
  assert len((tmp_path / "cut" / "predictions.jsonl").read_text().splitlines()) == 2
  assert "(interrupted)" in (tmp_path / "cut" / "index.html").read_text(encoding="utf-8")
