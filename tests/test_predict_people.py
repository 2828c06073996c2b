"""`videmo predict --faces all` and `--timeline`: everyone in the shot, each frame with its time.

The video: two real photographs side by side, skimage's astronaut on the left and a face of
skimage's LFW subset on the right, each moving a little; the right person leaves the shot
(frames 24-43) and comes back. It is written with variable timestamps, as a phone does.
"""

import csv
import json
import re

import numpy as np
import pytest
import skimage.data
from PIL import Image

import photo_video
import tiny
from videmo.data import video_io
from videmo.main import main
from videmo.predict import timeline

pytestmark = [pytest.mark.xdist_group("predict"), pytest.mark.slow]

HEIGHT, HALF = 288, 360
FRAMES, AWAY = 68, range(24, 44)
# Phone-like timestamps: 15 fps with a stutter every 7th frame.
TIMES = np.cumsum([0.0] + [0.1 if i % 7 == 6 else 1 / 15 for i in range(FRAMES - 1)]).round(3)


def _lfw_person(k: int) -> np.ndarray:
  """[240, 240, 3]: face k of skimage's LFW subset (25x25 grey), enlarged: another person."""
  face = (np.clip(skimage.data.lfw_subset()[k], 0, 1) * 255).astype(np.uint8)
  return np.repeat(np.asarray(Image.fromarray(face).resize((240, 240), Image.BICUBIC))[..., None], 3, axis=-1)


@pytest.fixture(scope="module")
def two_people(tmp_path_factory):
  left = photo_video.shot(skimage.data.astronaut(), FRAMES, HEIGHT, HALF, x=0.5, seed=1)
  right = photo_video.shot(_lfw_person(1), FRAMES, HEIGHT, HALF, x=0.5, seed=2, anchor=(120, 120),
                           zoom=(0.5, 0.6), drift=-0.05)
  right[AWAY.start:AWAY.stop] = photo_video.background(HEIGHT, HALF, seed=2)  # gone, the wall behind stays
  path = tmp_path_factory.mktemp("people") / "two_people.mp4"
  video_io.write_video(path, np.concatenate([left, right], axis=2), fps=15, times=TIMES, crf=14)
  return path


def _records(capsys) -> list[dict]:
  return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def everyone(two_people, tiny_workdir, tmp_path_factory):
  """(records, timeline rows) of `videmo predict --faces all --timeline t.csv --json`."""
  out = tmp_path_factory.mktemp("everyone")
  capture = out / "stdout.txt"
  import contextlib
  import io

  buffer = io.StringIO()
  with contextlib.redirect_stdout(buffer):
    code = main(["predict", str(two_people), f"--checkpoint={tiny_workdir}", "--faces=all", "--json", "--quiet",
                 f"--timeline={out / 't.csv'}", f"--report={out / 'report'}"])
  capture.write_text(buffer.getvalue())
  assert code == 0
  records = [json.loads(line) for line in buffer.getvalue().splitlines()]
  with open(out / "t.csv") as f:
    rows = list(csv.DictReader(f))
  return records, rows, out


def _centre_x(record) -> np.ndarray:
  boxes = np.asarray(record["face_box"])
  return (boxes[:, 0] + boxes[:, 2]) / 2


def test_every_person_is_followed_and_keeps_their_identity_through_an_exit(everyone):
  records, _, out = everyone
  assert [r["person"] for r in records] == [0, 1] and all(r["status"] == "ok" for r in records)
  left, right = sorted(records, key=lambda r: _centre_x(r).mean())
  assert (_centre_x(left) < HALF).all() and (_centre_x(right) > HALF).all(), "identities swapped"
  assert len(left["frames"]) >= 0.9 * FRAMES
  away = set(AWAY)
  assert not away & set(right["frames"]), "the right person was found while out of the shot"
  present = set(range(FRAMES)) - away
  assert len(set(right["frames"]) & present) >= 0.85 * len(present), "the right person lost after coming back"
  assert max(right["frames"]) >= FRAMES - 3 and min(right["frames"]) <= 2
  for r in records:  # its own frames, every one seen (the timeline asks for every frame)
    assert r["frame_index"] == r["frames"]
    assert set(r["frames_without_face"]) == set(range(FRAMES)) - set(r["frames"])
  page = (out / "report" / "index.html").read_text()
  assert "two_people.mp4 [person 0]" in page and "two_people.mp4 [person 1]" in page


def test_the_main_person_alone_gives_the_default_prediction(everyone, two_people, tiny_workdir, capsys):
  records, _, _ = everyone
  assert main(["predict", str(two_people), f"--checkpoint={tiny_workdir}", "--json", "--quiet", "--frames=0"]) == 0
  (default,) = _records(capsys)
  assert default["person"] is None
  (same,) = [r for r in records if r["frames"] == default["frames"]]  # the main person, followed alike
  assert same["probabilities"] == default["probabilities"] and same["face_box"] == default["face_box"]


def test_the_timeline_has_a_row_per_frame_and_person_with_the_stream_s_times(everyone):
  records, rows, _ = everyone
  assert list(rows[0]) == timeline.columns(records[0]["classes"])
  assert len(rows) == sum(len(r["frame_index"]) for r in records)
  for r in records:
    mine = [row for row in rows if int(row["person"]) == r["person"]]
    assert [int(row["frame"]) for row in mine] == r["frame_index"]
    times = np.array([float(row["time_s"]) for row in mine])
    np.testing.assert_allclose(times, TIMES[r["frame_index"]], atol=1e-3)  # the timestamps, not frame / fps
    np.testing.assert_allclose(times, r["frame_time"], atol=1e-6)
    boxes = np.array([[float(row[f"box_{k}"]) for k in ("x0", "y0", "x1", "y1")] for row in mine])
    np.testing.assert_allclose(boxes, r["face_box"], atol=1e-6)
    # softmax pooling: p(c|S) = sum_f p(f|S) p(c|f,S), from the timeline's columns alone
    assert r["pooling"] == "softmax"
    importance = np.array([float(row["importance"]) for row in mine])
    per_frame = np.array([[float(row[f"p_{c}"]) for c in r["classes"]] for row in mine])
    np.testing.assert_allclose(importance @ per_frame, r["probabilities"], atol=len(mine) * 2e-6)
    assert all(row["label_so_far"] == "" for row in mine)  # a file, not a stream


def test_bad_timeline_and_faces_flags_fail_in_one_line(two_people, tiny_workdir, tmp_path):
  with pytest.raises(SystemExit, match="--timeline .*t.xlsx: the file must end in .csv or .jsonl"):
    main(["predict", str(two_people), f"--checkpoint={tiny_workdir}", f"--timeline={tmp_path / 't.xlsx'}"])
  with pytest.raises(SystemExit, match="--faces all finds the faces, so it cannot be used with --aligned"):
    main(["predict", str(two_people), f"--checkpoint={tiny_workdir}", "--faces=all", "--aligned"])
  with pytest.raises(SystemExit, match="does not exist"):
    main(["predict", str(two_people), f"--checkpoint={tiny_workdir}", f"--timeline={tmp_path / 'no' / 't.csv'}"])


def test_jsonl_timeline_rows_hold_the_same_fields(two_people, tiny_workdir, tmp_path, capsys):
  path = tmp_path / "t.jsonl"
  assert main(["predict", str(two_people), f"--checkpoint={tiny_workdir}", "--json", "--quiet",
               "--max_frames=12", f"--timeline={path}"]) == 0
  (record,) = _records(capsys)
  rows = [json.loads(line) for line in path.read_text().splitlines()]
  assert [row["frame"] for row in rows] == record["frame_index"] and len(rows) == 12
  assert list(rows[0]) == timeline.columns(record["classes"]) and rows[0]["label_so_far"] is None


def test_docs_list_every_timeline_column():
  text = (tiny.REPO / "docs" / "predict.md").read_text()
  section = text.split("\n## Everyone in the shot, and a timeline\n")[1].split("\n## ")[0]
  first_cells = "\n".join(line.split("|")[1] for line in section.splitlines() if line.startswith("| `"))
  assert re.findall(r"`(\w+?)(?:<class>)?`", first_cells) == [*timeline.FIXED_COLUMNS, "p_"]
