"""Decoding videos and frame folders: round trips, frame rate, and every kind of bad file."""

import numpy as np
import pytest
from PIL import Image

from videmo.data import video_io


def _frames(num=6, height=64, width=96):
  """Frames whose content changes over time (a moving bright square)."""
  frames = np.full((num, height, width, 3), 40, np.uint8)
  for t in range(num):
    frames[t, 16:40, 8 + 8 * t: 32 + 8 * t] = (220, 180, 60)
  return frames


@pytest.mark.parametrize("suffix", [".avi", ".mp4", ".mkv", ".webm"])
def test_video_round_trip(tmp_path, suffix):
  frames = _frames()
  path = tmp_path / f"clip{suffix}"
  video_io.write_video(path, frames, fps=30)
  decoded, fps = video_io.read_video(path)
  assert decoded.shape == frames.shape and decoded.dtype == np.uint8
  assert fps == pytest.approx(30)
  assert np.abs(decoded.astype(int) - frames).mean() < 8  # lossy codecs, same picture
  with video_io.VideoReader(path) as video:
    assert sum(1 for _ in video) == len(frames) and not video.truncated


def test_frame_folder_reads_in_natural_order(tmp_path):
  frames = _frames(num=11)
  for t, frame in enumerate(frames):  # frame_1 ... frame_11: lexical order would put 10 after 1
    Image.fromarray(frame).save(tmp_path / f"frame_{t + 1}.png")
  (tmp_path / "notes.txt").write_text("not a frame")
  assert video_io.is_frame_folder(tmp_path) and not video_io.is_video_file(tmp_path)
  decoded, fps = video_io.read_video(tmp_path)
  assert fps is None
  np.testing.assert_array_equal(decoded, frames)


def test_truncated_video_keeps_the_frames_before_the_damage(tmp_path):
  path = tmp_path / "clip.avi"
  noise = np.random.default_rng(0).integers(0, 256, (12, 128, 160, 3), dtype=np.uint8)  # large frames
  video_io.write_video(path, noise, fps=25)
  data = path.read_bytes()
  cut = tmp_path / "cut.avi"
  cut.write_bytes(data[: len(data) // 2])
  with video_io.VideoReader(cut) as video:
    count = sum(1 for _ in video)
    assert 0 < count < 12
    assert video.truncated and video.num_frames == 12


def test_a_decode_a_few_frames_short_of_the_container_s_promise_is_complete(tmp_path):
  """Frame counts and durations in headers are estimates (B-frames, edit lists): 98 promised
  and 95 decoded is a whole video; half the promise is not."""
  path = tmp_path / "clip.mp4"
  video_io.write_video(path, np.random.default_rng(1).integers(0, 256, (40, 64, 64, 3), dtype=np.uint8), fps=25)
  with video_io.VideoReader(path) as video:
    assert sum(1 for _ in video) == 40 and video.duration_frames == 40 and not video.truncated
    for promised, truncated in ((42, False), (43, False), (44, True), (60, True)):
      video.num_frames = video.duration_frames = promised
      assert video.truncated == truncated, promised
    video.num_frames, video.duration_frames = None, 41  # no frame count: the duration's promise
    assert not video.truncated and video.expected_frames == 41
    video.duration_frames = 60
    assert video.truncated


@pytest.mark.parametrize("degrees", [90, -90, 180])
def test_a_phone_video_recorded_upright_comes_out_upright(tmp_path, degrees):
  """The sensor's frames are stored turned, with a display rotation saying how to turn them back."""
  import av
  import skimage.data

  upright = np.ascontiguousarray(skimage.data.astronaut()[::2, ::2][:, :192])  # [256, 192, 3], a face
  stored = np.ascontiguousarray(np.rot90(upright, k=-degrees // 90))
  path = tmp_path / "phone.mp4"
  with av.open(str(path), "w") as container:
    stream = container.add_stream("libx264", rate=25)
    stream.width, stream.height, stream.pix_fmt = stored.shape[1], stored.shape[0], "yuv420p"
    stream.set_display_rotation(degrees)
    for _ in range(3):
      container.mux(stream.encode(av.VideoFrame.from_ndarray(stored, format="rgb24")))
    container.mux(stream.encode())
  frames, _ = video_io.read_video(path)
  assert frames.shape == (3, *upright.shape)
  assert np.abs(frames.astype(int) - upright).mean() < 8  # H.264 round-off; turned wrong it is ~80


def test_a_file_with_sound_and_no_picture_is_a_clear_error(tmp_path):
  import av

  path = tmp_path / "voice.m4a"
  with av.open(str(path), "w") as container:
    stream = container.add_stream("aac", rate=16000)
    for i in range(5):
      frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
      frame.sample_rate, frame.pts = 16000, i * 1024
      container.mux(stream.encode(frame))
    container.mux(stream.encode())
  with pytest.raises(video_io.VideoReadError, match="voice.m4a: has no video stream"):
    video_io.VideoReader(path)


def test_unreadable_inputs_raise_a_clear_error(tmp_path):
  garbage = tmp_path / "garbage.avi"
  garbage.write_bytes(np.random.default_rng(0).bytes(4000))
  empty = tmp_path / "empty.mp4"
  empty.write_bytes(b"")
  no_frames = tmp_path / "no_frames"
  no_frames.mkdir()
  with pytest.raises(video_io.VideoReadError, match="garbage.avi: cannot open as a video"):
    video_io.VideoReader(garbage)
  with pytest.raises(video_io.EmptyVideoError, match="zero-length"):
    video_io.VideoReader(empty)
  with pytest.raises(video_io.VideoReadError, match="no such file"):
    video_io.VideoReader(tmp_path / "missing.avi")
  with pytest.raises(video_io.VideoReadError, match="no frame images"):
    video_io.VideoReader(no_frames)


def test_write_video_rejects_bad_input(tmp_path):
  with pytest.raises(ValueError, match="no default codec"):
    video_io.write_video(tmp_path / "x.xyz", _frames())
  with pytest.raises(ValueError, match="uint8"):
    video_io.write_video(tmp_path / "x.avi", _frames().astype(np.float32))
