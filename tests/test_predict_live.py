"""`videmo predict --stream`: rolling predictions on a live stream that another process feeds.

The stream: the astronaut photograph moving about (a real face, found by dlib), 40 frames at
10 fps written as MPEG-TS (MPEG-2 video) with PyAV, sent by a separate Python process in real
time (a constant byte rate over the clip's 4 s) or as fast as it can: through a pipe into
`videmo predict --stream -`, over UDP on 127.0.0.1, or into a named pipe read in this process.
The model is conftest's tiny run (2 training steps): its labels mean nothing, so the tests
check that each prediction is the model's on the right frames, not what it says.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import skimage.data

import photo_video
from face_checks import astronaut_clip
from videmo.data import video_io
from videmo.main import main
from videmo.predict import live, live_model, live_source, timeline
from videmo.predict.live_tracks import OnlineFaceTracker
from videmo.predict.live_window import RollingWindows

pytestmark = [pytest.mark.xdist_group("live"), pytest.mark.slow]

FPS, FRAMES = 10, 40
WINDOW, EVERY = 2.0, 1.0

# Sends the first STOP bytes of FILE to TARGET (- = stdout, udp:PORT, or a named pipe), in
# datagram-sized chunks at RATE bytes/s (0: at once), then keeps its end open HOLD seconds.
FEEDER = r"""
import socket, sys, time
path, target, rate, stop, hold = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
data = open(path, "rb").read()[:stop]
if target.startswith("udp:"):
  sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
  send = lambda chunk: sock.sendto(chunk, ("127.0.0.1", int(target[4:])))
else:
  out = sys.stdout.buffer if target == "-" else open(target, "wb")
  send = lambda chunk: (out.write(chunk), out.flush())
start = time.monotonic()
for offset in range(0, len(data), 1316):
  if rate > 0:
    time.sleep(max(0.0, start + offset / rate - time.monotonic()))
  send(data[offset:offset + 1316])
time.sleep(hold)
"""


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
  """(the MPEG-TS file, its decoded frames [40, H, W, 3], their times [40] from the first frame's)."""
  path = tmp_path_factory.mktemp("live") / "astronaut.ts"
  video_io.write_video(path, astronaut_clip(FRAMES, seed=3), fps=FPS, codec="mpeg2video", bit_rate=3_000_000)
  with video_io.VideoReader(path) as video:
    frames = np.stack(list(video))
    times = np.asarray(video.frame_times)
  assert len(frames) == FRAMES
  return path, frames, times


def _feeder(path, target: str, *, real_time: bool, fraction: float = 1.0, hold: float = 0.0, **popen):
  """The feeding process (see FEEDER): all of the clip or its first `fraction` of bytes (cut mid-packet)."""
  size = path.stat().st_size
  rate = size / (FRAMES / FPS) if real_time else 0
  return subprocess.Popen([sys.executable, "-c", FEEDER, str(path), target, str(rate), str(int(size * fraction)),
                           str(hold)], **popen)


def _command(workdir, source: str, *flags: str) -> list[str]:
  return [sys.executable, "-m", "videmo.main", "predict", "--stream", source, f"--checkpoint={workdir}", "--json",
          f"--window_seconds={WINDOW:g}", f"--every={EVERY:g}", *flags]


def _wait_for(path, text: str, seconds: float = 120.0) -> None:
  deadline = time.monotonic() + seconds
  while text not in (path.read_text() if path.exists() else ""):
    assert time.monotonic() < deadline, f"no {text!r} in {path.read_text()}"
    time.sleep(0.05)


def _check_rolling(records: list[dict], classes: list[str]) -> None:
  """At least two rolling predictions, then the final one; windows of WINDOW s every EVERY s."""
  assert len(records) >= 3, records
  assert [r["final"] for r in records] == [False] * (len(records) - 1) + [True]
  ends = [r["end_s"] for r in records]
  assert ends == sorted(ends) and 1.0 <= ends[0] < 1.0 + 1.5 / FPS and ends[1] >= 2.0
  for r in records:
    assert r["status"] == "ok" and r["person"] == 0 and r["label"] in classes
    assert r["start_s"] == pytest.approx(max(0.0, r["end_s"] - WINDOW), abs=1e-6)
    assert 1 <= r["frames"] <= WINDOW * FPS and r["frames"] <= r["frame"] + 1
    assert sum(r["probabilities"]) == pytest.approx(1, abs=1e-4) and r["probability"] == max(r["probabilities"])
    assert [name for name, _ in r["top3"]][0] == r["label"] and len(r["top3"]) == 3
    assert len(r["box"]) == 4 and r["lag_s"] >= 0


def test_live_crops_are_the_crops_a_file_gets(tiny_predictor, clip):
  """Every face the online tracker finds is cut as `Predictor.faces` cuts the same frame: bit for bit."""
  _, frames, _ = clip
  tracker = OnlineFaceTracker(tiny_predictor.face_models, tiny_predictor.clip_options.face)
  compared = 0
  for index in range(0, FRAMES, 3):
    sightings = tracker.step(index / FPS, frames[index])
    offline = tiny_predictor.faces(frames[index:index + 1])
    if not offline.status == "ok":
      continue
    assert [s.person for s in sightings] == [0]
    np.testing.assert_array_equal(live_model.face_crops([sightings[0].face], tiny_predictor), offline.crops)
    compared += 1
  assert compared >= 10


def test_a_person_keeps_their_number_across_a_gap_and_a_second_person_gets_another(tiny_predictor):
  """Two people side by side; the right one leaves for 2 s (longer than the tracker's gap) and comes back."""
  height, half, frames, away = 288, 360, 50, range(15, 35)
  left = photo_video.shot(skimage.data.astronaut(), frames, height, half, x=0.5, seed=1)
  face = (np.clip(skimage.data.lfw_subset()[1], 0, 1) * 255).astype(np.uint8)
  from PIL import Image

  other = np.repeat(np.asarray(Image.fromarray(face).resize((240, 240), Image.BICUBIC))[..., None], 3, axis=-1)
  right = photo_video.shot(other, frames, height, half, x=0.5, seed=2, anchor=(120, 120), zoom=(0.5, 0.6),
                           drift=-0.05)
  right[away.start:away.stop] = photo_video.background(height, half, seed=2)
  video = np.concatenate([left, right], axis=2)
  tracker = OnlineFaceTracker(tiny_predictor.face_models, tiny_predictor.clip_options.face, gap_seconds=1.0)
  side = {"left": [], "right": []}
  for index in range(frames):
    for sighting in tracker.step(index / FPS, video[index]):
      side["left" if (sighting.box[0] + sighting.box[2]) / 2 < half else "right"].append((index, sighting.person))
  (left_person,) = {p for _, p in side["left"]}
  right_before = {p for i, p in side["right"] if i < away.start}
  right_after = {p for i, p in side["right"] if i >= away.stop}
  assert len(side["left"]) >= frames - 3 and right_before and right_after
  assert right_before == right_after == {1 - left_person}  # numbered 0 and 1, the same before and after
  assert not [i for i, _ in side["right"] if i in away]


def test_each_rolling_prediction_is_the_model_on_its_window(tiny_predictor, clip, tmp_path):
  """In this process from a named pipe: each prediction equals `Predictor.run` on the crops of the
  frames of its window; the timeline has a row per frame with a face and the window's label."""
  path, frames, times = clip
  fifo = tmp_path / "feed.ts"
  os.mkfifo(fifo)
  feeder = _feeder(path, str(fifo), real_time=False)
  predictions = []
  with timeline.TimelineWriter(tmp_path / "t.jsonl", tiny_predictor.class_names) as writer:
    summary = live.predict_live(tiny_predictor, str(fifo), live.StreamOptions(WINDOW, EVERY, queue_frames=1000),
                                emit=predictions.append, timeline=writer)
  assert feeder.wait(timeout=60) == 0
  assert summary.ended == "end of stream" and summary.decoded == summary.seen == FRAMES and summary.dropped == 0
  records = [p.to_json() for p in predictions]
  _check_rolling(records, list(tiny_predictor.class_names))
  crops = {i: tiny_predictor.faces(frames[i:i + 1]).crops for i in range(FRAMES)}
  for prediction in predictions:
    window = [i for i in range(prediction.frame + 1) if times[i] > prediction.end_s - WINDOW + 1e-6 and len(crops[i])]
    assert prediction.end_s == pytest.approx(times[prediction.frame]) and prediction.frames == len(window)
    expected = tiny_predictor.run(np.concatenate([crops[i] for i in window]))
    np.testing.assert_allclose(prediction.probabilities, np.exp(expected["log_probs"]), atol=2e-5)
  rows = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
  assert [r["frame"] for r in rows] == [i for i in range(FRAMES) if len(crops[i])]
  assert list(rows[0]) == timeline.columns(tiny_predictor.class_names)
  by_frame = {r["frame"]: r for r in rows}
  for prediction in predictions:
    assert by_frame[prediction.frame]["label_so_far"] == prediction.label
  classes = tiny_predictor.class_names
  for r in rows:  # each row: its frame in the window ending at it, as Predictor.run sees that window
    assert r["video"] == str(fifo) and r["person"] == 0 and r["time_s"] == pytest.approx(times[r["frame"]], abs=1e-6)
    window = [i for i in range(r["frame"] + 1) if times[i] > times[r["frame"]] - WINDOW + 1e-6 and len(crops[i])]
    expected = tiny_predictor.run(np.concatenate([crops[i] for i in window]))
    assert r["label_so_far"] == classes[int(np.argmax(expected["log_probs"]))]
    assert r["importance"] == pytest.approx(expected["frame_importance"][-1], abs=2e-6)
    np.testing.assert_allclose([r[f"p_{c}"] for c in classes], expected["frame_probabilities"][-1], atol=2e-6)
  assert rows[0]["importance"] == 1.0  # alone in its window


def test_a_slow_model_drops_the_oldest_frames_and_counts_them(tiny_predictor, clip, tmp_path, monkeypatch):
  path, _, _ = clip
  score = live_model.FrameScorer.score

  def slow(self, crops):
    time.sleep(0.3)
    return score(self, crops)

  monkeypatch.setattr(live_model.FrameScorer, "score", slow)
  fifo = tmp_path / "feed.ts"
  os.mkfifo(fifo)
  feeder = _feeder(path, str(fifo), real_time=False)
  predictions, rows = [], tmp_path / "t.csv"
  with timeline.TimelineWriter(rows, tiny_predictor.class_names) as writer:
    summary = live.predict_live(tiny_predictor, str(fifo), live.StreamOptions(WINDOW, EVERY, queue_frames=2),
                                emit=predictions.append, timeline=writer)
  assert feeder.wait(timeout=60) == 0
  assert summary.decoded == FRAMES and summary.dropped > FRAMES // 2
  assert summary.seen + summary.dropped == FRAMES  # every frame seen or dropped, none lost silently
  assert predictions[-1].final and predictions[-1].frames_dropped == summary.dropped
  assert [p.frames_dropped for p in predictions] == sorted(p.frames_dropped for p in predictions)
  with open(rows) as f:
    seen = [int(r["frame"]) for r in csv.DictReader(f)]
  assert len(seen) <= summary.seen and seen[-1] >= FRAMES - 3  # the newest frames are kept


def _receiver(command: list[str], stdin, tmp_path: Path) -> tuple[subprocess.Popen, Path]:
  """`videmo predict --stream ...` started, once it says it is reading: (process, its stderr file)."""
  stderr = tmp_path / "stderr.txt"
  with open(stderr, "w") as err:
    process = subprocess.Popen(command, stdin=stdin, stdout=subprocess.PIPE, stderr=err, text=True)
  try:
    _wait_for(stderr, "videmo predict: reading ")
  except BaseException:
    process.kill()
    raise
  return process, stderr


def test_a_pipe_cut_mid_clip_gives_rolling_predictions_and_a_clean_exit(tiny_workdir, tiny_predictor, clip, tmp_path):
  path, _, _ = clip
  read_end, write_end = os.pipe()
  receiver, stderr = _receiver(_command(tiny_workdir, "-", "--queue_frames=1000", f"--timeline={tmp_path / 't.csv'}"),
                               read_end, tmp_path)
  feeder = _feeder(path, "-", real_time=True, fraction=0.8, stdout=write_end)
  os.close(read_end)
  os.close(write_end)
  try:
    out, _ = receiver.communicate(timeout=120)
  finally:
    receiver.kill()
  assert feeder.wait(timeout=30) == 0
  assert receiver.returncode == 0, stderr.read_text()
  records = [json.loads(line) for line in out.splitlines()]
  _check_rolling(records, list(tiny_predictor.class_names))
  decoded = records[-1]["frames_decoded"]
  assert 20 <= decoded < FRAMES and records[-1]["frames_dropped"] == 0  # cut off mid-clip
  assert "stream ended (end of stream)" in stderr.read_text()
  with open(tmp_path / "t.csv") as f:
    rows = list(csv.DictReader(f))
  assert [int(r["frame"]) for r in rows] == list(range(len(rows))) and len(rows) >= decoded - 2
  assert {r["video"] for r in rows} == {"-"} and {r["person"] for r in rows} == {"0"}


def test_udp_stream_that_stops_mid_clip_ends_after_idle_seconds(tiny_workdir, tiny_predictor, clip, tmp_path):
  path, _, _ = clip
  with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
  receiver, stderr = _receiver(_command(tiny_workdir, f"udp://127.0.0.1:{port}", "--idle_seconds=2",
                                        "--queue_frames=1000"), subprocess.DEVNULL, tmp_path)
  try:
    time.sleep(0.5)  # the socket is bound just after that line
    feeder = _feeder(path, f"udp:{port}", real_time=True, fraction=0.8)
    out, _ = receiver.communicate(timeout=120)
  finally:
    receiver.kill()
  assert feeder.wait(timeout=30) == 0
  assert receiver.returncode == 0, stderr.read_text()
  records = [json.loads(line) for line in out.splitlines()]
  _check_rolling(records, list(tiny_predictor.class_names))
  assert 20 <= records[-1]["frames_decoded"] < FRAMES
  assert "stream ended (no new data for 2 s)" in stderr.read_text()


def test_ctrl_c_ends_the_stream_with_a_final_prediction_and_status_0(tiny_workdir, clip, tmp_path):
  path, _, _ = clip
  read_end, write_end = os.pipe()
  # The pipe stays open and silent after the clip: only Ctrl-C may end the stream, however long a
  # loaded machine takes to give the first two predictions (not the idle timeout).
  receiver, stderr = _receiver(_command(tiny_workdir, "-", "--queue_frames=1000", "--idle_seconds=600"),
                               read_end, tmp_path)
  feeder = _feeder(path, "-", real_time=True, hold=300, stdout=write_end)
  os.close(read_end)
  os.close(write_end)
  try:
    lines = [receiver.stdout.readline() for _ in range(2)]  # two rolling predictions, then Ctrl-C
    receiver.send_signal(signal.SIGINT)
    out, _ = receiver.communicate(timeout=60)
  finally:
    receiver.kill()
    feeder.kill()
  assert receiver.returncode == 0, stderr.read_text()
  records = [json.loads(line) for line in lines + out.splitlines()]
  assert len(records) >= 3 and records[-1]["final"] and not any(r["final"] for r in records[:-1])
  assert "stream ended (interrupted)" in stderr.read_text()


def test_bad_sources_and_flags_fail_in_one_line(tiny_workdir, tmp_path, capsys):
  checkpoint = f"--checkpoint={tiny_workdir}"
  for flags, message in [
      (["--stream", str(tmp_path / "missing.ts")], "no such file, device or URL"),
      (["--stream", str(tmp_path)], "is a folder"),
      (["--stream", "udp://127.0.0.1:9", "--every", "0"], "--every must be > 0 seconds, got 0.0"),
      (["--stream", "udp://127.0.0.1:9", "--window_seconds", "-1"], "--window_seconds must be > 0"),
      (["--stream", "udp://127.0.0.1:9", "--queue_frames", "0"], "--queue_frames must be >= 1"),
      (["--stream", "udp://127.0.0.1:9", "--report", str(tmp_path)], "--report applies to videos and folders"),
      (["--stream", "udp://127.0.0.1:9", "--timeline", str(tmp_path / "t.txt")], "must end in .csv or .jsonl"),
      (["clip.mp4", "--stream", "udp://127.0.0.1:9"], "not both"),
      ([], "give VIDEO_OR_FOLDER, or --stream SOURCE"),
  ]:
    with pytest.raises(SystemExit, match=message.replace(".", r"\.")):
      main(["predict", checkpoint, *flags])
  garbage = tmp_path / "garbage.ts"
  garbage.write_bytes(np.random.default_rng(0).bytes(50_000))
  assert main(["predict", checkpoint, "--stream", str(garbage), "--idle_seconds=1", "--quiet"]) == 1
  lines = capsys.readouterr().err.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith(f"videmo predict: --stream {garbage}: ")
  with pytest.raises(live_source.SourceError, match="no video data within 1 s"):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
      probe.bind(("127.0.0.1", 0))
      port = probe.getsockname()[1]
    live_source.open_source(f"udp://127.0.0.1:{port}", idle_seconds=1)


def test_the_queue_drops_the_oldest_and_windows_forget_old_frames():
  queue = live_source.FrameQueue(3)
  for i in range(5):
    queue.put(live_source.LiveFrame(i, i / FPS, np.zeros((2, 2, 3), np.uint8), 0.0))
  assert queue.dropped == 2 and [f.index for f in queue.take(10, timeout=0)] == [2, 3, 4]
  assert queue.take(10, timeout=0) == []
  queue.close()
  assert queue.take(10, timeout=0) is None
  windows = RollingWindows(window_seconds=0.95)  # frames at 0.1 s steps: none on the window's edge
  for i in range(25):
    windows.advance(i / FPS)
    if i < 12 or i > 20:  # person 1 leaves at frame 12
      windows.add(i % 2, i, i / FPS, np.zeros(4), np.full(3, i, np.float32))
  people = dict(windows.people())
  assert sorted(people) == [0, 1] and windows.frames_seen == 10 and windows.start_s() == pytest.approx(1.45)
  assert [f.index for f in people[0].frames] == [22, 24] and people[1].vectors()[:, 0].tolist() == [21, 23]
