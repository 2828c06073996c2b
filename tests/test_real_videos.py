"""Videos as users bring them: variable frame rates, phone codecs and rotation, long files (caps).

Each video is made here with PyAV from real photographs, small and short, so a test runs in
seconds; an encoder the installed PyAV wheel lacks skips its test, saying which.
"""

import numpy as np
import pytest

import face_checks
from videmo.data import video_io
from videmo.data.preparation import clip_processing, faces
from videmo.predict import faces_input, record

# Uneven presentation times (seconds), as a phone records when the light or the load changes.
VFR_TIMES = (0.0, 0.033, 0.066, 0.2, 0.233, 0.5, 0.533, 0.566, 0.6, 1.0)


@pytest.fixture(scope="module")
def models():
  return faces.load_face_models()


@pytest.fixture(scope="module")
def astronaut():
  return face_checks.astronaut_clip(len(VFR_TIMES), height=240, width=320, seed=5)  # faces ~90-115 px


def _need_encoder(codec: str) -> None:
  import av

  if codec not in av.codecs_available:
    pytest.skip(f"this PyAV wheel has no {codec} encoder")


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".mov"])
def test_variable_frame_rate_times_come_from_the_timestamps(tmp_path, suffix):
  frames = face_checks.face_free_clip(len(VFR_TIMES), height=120, width=160)
  path = tmp_path / f"vfr{suffix}"
  video_io.write_video(path, frames, fps=30, times=VFR_TIMES)
  with video_io.VideoReader(path) as video:
    assert video.fps == video.header_fps  # before decoding, the container's figure
    assert len(list(video)) == len(VFR_TIMES) and not video.truncated
    np.testing.assert_allclose(video.frame_times, VFR_TIMES, atol=1e-3)
    assert video.fps == pytest.approx((len(VFR_TIMES) - 1) / VFR_TIMES[-1], rel=1e-3)  # 9 fps, not 30
  _, fps = video_io.read_video(path)
  assert fps == pytest.approx(9.0, rel=1e-3)


def test_a_constant_rate_keeps_the_header_s_exact_figure(tmp_path):
  """MKV rounds timestamps to milliseconds: 30 fps must not come out as 29.94."""
  path = tmp_path / "cfr.mkv"
  video_io.write_video(path, face_checks.face_free_clip(7, height=120, width=160), fps=30)
  with video_io.VideoReader(path) as video:
    list(video)
    assert video.fps == 30.0 and video.frame_times[-1] == pytest.approx(6 / 30, abs=1e-3)


def test_variable_frame_rate_clip_gives_each_face_its_time(tmp_path, models, astronaut):
  path = tmp_path / "phone.mp4"
  video_io.write_video(path, astronaut, fps=30, times=VFR_TIMES, crf=12)
  task = clip_processing.ClipTask("phone", str(path), "phone.mp4", 0, "test")
  result = clip_processing.process_clip(task, clip_processing.ClipOptions(), models)
  assert result.status == clip_processing.OK and result.num_source_frames == len(VFR_TIMES)
  assert result.fps == pytest.approx(9.0, rel=1e-3)
  np.testing.assert_allclose(result.frame_time, np.asarray(VFR_TIMES)[result.frame_index], atol=1e-3)
  crops = faces_input.faces_from_path(path, clip_processing.ClipOptions(), models, crop_size=224)
  assert crops.status == record.OK and len(crops.frame_index) >= 8
  np.testing.assert_allclose(crops.frame_time, np.asarray(VFR_TIMES)[crops.frame_index], atol=1e-3)
  prediction = record.Prediction("phone.mp4", record.OK, "", "ckpt", 1, ("a", "b"), "softmax",
                                 probabilities=np.array([0.5, 0.5]), fps=crops.fps, frame_index=crops.frame_index, frame_time=crops.frame_time)
  np.testing.assert_allclose(prediction.to_json()["frame_time"], np.asarray(VFR_TIMES)[crops.frame_index], atol=1e-3)
  without = record.Prediction("x", record.OK, "", "ckpt", 1, ("a", "b"), "softmax", fps=25.0,
                              probabilities=np.array([0.5, 0.5]), frame_index=np.array([0, 5, 10]))
  assert without.to_json()["frame_time"] == [0.0, 0.2, 0.4]  # a constant rate: frame_index / fps


@pytest.mark.parametrize("suffix, codec, rotation", [
    (".mov", "libx265", 90),      # an iPhone's HEVC .mov, recorded upright
    (".mp4", "libx265", -90),
    (".webm", "libvpx-vp9", 0),   # VP9 (YouTube, browsers)
    (".mkv", "libsvtav1", 180),   # AV1, decoded by libdav1d
    (".mp4", "libx264", 90),
])
def test_phone_and_web_codecs_decode_upright_with_their_times(tmp_path, suffix, codec, rotation):
  _need_encoder(codec)
  upright = face_checks.astronaut_clip(6, height=160, width=128, seed=1)
  path = tmp_path / f"clip_{codec}{suffix}"
  video_io.write_video(path, upright, fps=30, codec=codec, times=VFR_TIMES[:6], rotation=rotation)
  frames, fps = video_io.read_video(path)
  assert frames.shape == upright.shape, "turned as the display matrix says"
  assert np.abs(frames.astype(int) - upright).mean() < 12  # lossy codecs, same picture; turned wrong it is ~60
  assert fps == pytest.approx(5 / VFR_TIMES[5], rel=1e-3)


def test_max_frames_and_max_seconds_stop_decoding_early(tmp_path):
  path = tmp_path / "long.mp4"
  video_io.write_video(path, face_checks.face_free_clip(12, height=120, width=160), fps=25)
  with video_io.VideoReader(path, max_frames=5) as video:
    assert len(list(video)) == 5 and not video.truncated
    assert video.stopped == "stopped at max_frames=5: the first 5 of 12 frames used"
  with video_io.VideoReader(path, max_seconds=0.2) as video:
    assert len(list(video)) == 5 and not video.truncated  # frames at 0, 0.04, ..., 0.16
    assert video.stopped.startswith("stopped at max_seconds=0.2: the first 5 frames")
  with video_io.VideoReader(path, max_frames=12, max_seconds=10) as video:
    assert len(list(video)) == 12 and video.stopped is None  # the video ended first
  with pytest.raises(ValueError, match="max_frames"):
    video_io.VideoReader(path, max_frames=0)
  with pytest.raises(ValueError, match="max_seconds"):
    video_io.VideoReader(path, max_seconds=-1)


def test_predict_s_faces_stop_at_the_limits_and_say_so(tmp_path, models, astronaut):
  path = tmp_path / "long.mp4"
  video_io.write_video(path, astronaut, fps=25, crf=12)
  options = clip_processing.ClipOptions()
  by_count = faces_input.faces_from_path(path, options, models, 224, max_frames=4)
  assert by_count.status == record.OK and by_count.num_source_frames == 4
  assert "max_frames=4" in by_count.message and list(by_count.frame_index) == [0, 1, 2, 3]
  by_time = faces_input.faces_from_path(path, options, models, 224, max_seconds=0.2)
  assert by_time.num_source_frames == 5 and "max_seconds=0.2" in by_time.message
  np.testing.assert_allclose(by_time.frame_time, np.arange(5) * 0.04, atol=1e-3)
  both = faces_input.faces_from_path(path, options, models, 224, max_frames=3, max_seconds=0.2)
  assert both.num_source_frames == 3
  whole = faces_input.faces_from_path(path, options, models, 224, max_frames=100)
  assert whole.num_source_frames == len(astronaut) and whole.message == ""
  aligned = faces_input.faces_from_path(path, options, None, 224, aligned=True, max_seconds=0.1)
  assert aligned.num_source_frames == 3 and "max_seconds=0.1" in aligned.message


def test_a_clip_with_two_people_keeps_the_main_one_and_its_return(tmp_path, models):
  """End to end on a file: the smaller person at the edge is alone at first; the main one comes,
  leaves and comes back. Only the main person's frames are kept, with their times."""
  n = 30
  main = [6 <= t < 14 or t >= 20 for t in range(n)]
  frames = face_checks.people_clip(main, [True] * n, height=300, width=480)
  path = tmp_path / "two.mp4"
  video_io.write_video(path, frames, fps=25, crf=10)
  options = clip_processing.ClipOptions(face=faces.FaceOptions(survey_every=4))
  task = clip_processing.ClipTask("two", str(path), "two.mp4", 0, "test")
  result = clip_processing.process_clip(task, options, models)
  assert result.status == clip_processing.OK
  assert result.frame_index == [t for t in range(n) if main[t]]
  np.testing.assert_allclose(result.frame_time, np.asarray(result.frame_index) / 25, atol=1e-3)
  from PIL import Image
  import io

  crops = [np.asarray(Image.open(io.BytesIO(jpeg))) for jpeg in result.frames]
  assert set(face_checks.which_person(models, crops)) == {"main"}


def test_cuts_back_to_the_same_person_keep_her_frames_when_preparing_and_predicting(tmp_path, models):
  """The same code serves `videmo prepare` and `videmo predict`: in a video that cuts twice,
  each time to the same person elsewhere in the frame, both keep >= 97% of the frames in
  which HOG on every frame finds her face."""
  import skimage.data

  import photo_video

  astronaut = skimage.data.astronaut()
  frames = np.concatenate([photo_video.shot(astronaut, 25, 288, 360, 0.3, seed=1),
                           photo_video.shot(astronaut, 25, 288, 360, 0.7, seed=2, drift=-0.05),
                           photo_video.shot(astronaut, 25, 288, 360, 0.5, seed=3, zoom=(1.2, 1.4))])
  path = tmp_path / "cuts.mp4"
  video_io.write_video(path, frames, fps=25, crf=12)
  decoded, _ = video_io.read_video(path)
  hog = {t for t, frame in enumerate(decoded) if len(models.detector(frame, 0))}
  assert len(hog) >= 70
  options = clip_processing.ClipOptions()
  result = clip_processing.process_clip(clip_processing.ClipTask("cuts", str(path), "cuts.mp4", 0, "test"),
                                        options, models)
  assert len(hog & set(result.frame_index)) >= 0.97 * len(hog), sorted(hog - set(result.frame_index))
  crops = faces_input.faces_from_path(path, options, models, crop_size=224)
  assert crops.status == record.OK and list(crops.frame_index) == result.frame_index
