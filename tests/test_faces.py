"""Face detection, tracking and alignment on a real photograph moving across frames."""

import numpy as np
import pytest
from PIL import Image

import face_checks
from videmo.data.preparation import clip_tracks, face_tracker, faces


@pytest.fixture(scope="module")
def models():
  return faces.load_face_models()


def test_landmark_and_descriptor_models_come_from_the_package(models):
  path = faces.landmark_model_path()
  assert path.name == "shape_predictor_5_face_landmarks.dat" and path.stat().st_size > 1_000_000
  path = faces.descriptor_model_path()
  assert path.name == "dlib_face_recognition_resnet_model_v1.dat" and path.stat().st_size > 10_000_000
  assert models.describer is not None and faces.load_face_models(describe=False).describer is None


@pytest.mark.parametrize("field, value", [("face_size", 8), ("redetect_every", 0), ("detect_scales", ()),
                                          ("roi_face_px", 40), ("min_overlap", 1.5), ("survey_every", -1),
                                          ("reentry_distance", 0.0), ("reentry_scale", 1.0),
                                          ("cut_threshold", 0.0), ("identity_distance", 2.5)])
def test_bad_options_name_the_field(field, value):
  with pytest.raises(ValueError, match=f"FaceOptions.{field}"):
    faces.FaceOptions(**{field: value})


def test_choose_face_continues_the_track_else_takes_the_largest():
  boxes = np.array([[0, 0, 50, 50], [100, 100, 200, 200], [300, 0, 340, 40]], float)
  assert faces.choose_face(boxes, None) == 1                              # largest
  assert faces.choose_face(boxes, np.array([305, 2, 345, 42.])) == 2      # overlaps the previous box
  assert faces.choose_face(boxes, np.array([500, 500, 560, 560.])) == 1   # no overlap: largest
  assert faces.choose_face(np.zeros((0, 4)), None) is None


def test_fit_similarity_recovers_a_known_transform():
  src = faces.canonical_landmarks(100, 0.0)
  angle, scale, shift = np.radians(12), 1.7, np.array([30.0, -12.0])
  rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
  dst = scale * src @ rot.T + shift
  s, a, t, residual = faces.fit_similarity(src, dst)
  assert s == pytest.approx(scale) and a == pytest.approx(angle)
  np.testing.assert_allclose(t, shift, atol=1e-9)
  assert residual < 1e-9


def test_moving_face_is_found_tracked_and_aligned(models):
  frames = face_checks.astronaut_clip(20, seed=3)
  options = faces.FaceOptions(redetect_every=5)
  out = list(face_tracker.align_video(frames, models, options))
  assert [o.index for o in out] == list(range(len(frames)))
  assert all(o.found for o in out)
  detected = sum(o.detected for o in out)
  assert detected <= 6, f"tracking should carry most frames, the detector ran on {detected}"
  assert all(o.face.shape == (256, 256, 3) and o.face.dtype == np.uint8 for o in out)
  errors = [face_checks.eye_error(models, o.face) for o in out[::4]]
  assert max(errors) < 8.0, errors  # pixels in a 256 crop
  every = list(face_tracker.align_video(frames, models, faces.FaceOptions(redetect_every=1)))
  assert all(o.found and o.detected for o in every)


def test_face_free_clip_has_no_face(models):
  out = list(face_tracker.align_video(face_checks.face_free_clip(6), models))
  assert len(out) == 6 and not any(o.found for o in out) and all(o.face is None for o in out)


def test_tracked_frames_count_only_once_the_detector_confirms_them(models):
  """From frame 6 on the face is blurred beyond what the detector finds, though the landmark
  model still follows it: frames tracked after the last detection are held back, and when
  the detector fails to confirm them they are reported without a face."""
  from PIL import ImageFilter

  frames = face_checks.astronaut_clip(14, seed=1)
  for t in range(6, 14):
    frames[t] = np.asarray(Image.fromarray(frames[t]).filter(ImageFilter.GaussianBlur(5)))
  assert not any(len(faces.detect_faces(models, faces.to_gray(f))) for f in frames[6:])
  tracker = face_tracker.FaceTracker(models, faces.FaceOptions(redetect_every=5))
  settled = {t: tracker.step(t, frame) for t, frame in enumerate(frames)}
  held_back = [t for t in range(6, 14) if settled[t] == []]
  assert held_back and held_back[0] == 6, "the blurred frames are first followed by the landmark model"
  out = [o for t in range(14) for o in settled[t]] + tracker.finish()
  assert [o.index for o in out] == list(range(14))
  assert [o.found for o in out] == [True] * 6 + [False] * 8


@pytest.mark.parametrize("cut", [3, 7, 9])
def test_frames_before_a_cut_keep_their_face(models, cut):
  """A cut to a face-free shot: the tracked frames before it are confirmed by the detector
  (it looks back from the cut), those after it have no face, wherever the cut falls."""
  frames = face_checks.astronaut_clip(13, seed=4)
  frames[cut:] = face_checks.face_free_clip(13 - cut, seed=1)
  out = list(face_tracker.align_video(frames, models, faces.FaceOptions(redetect_every=5)))
  assert [o.found for o in out] == [True] * cut + [False] * (13 - cut)


def _two_faces(num_frames):
  """A colour face of constant size on the left; a grey face on the right that starts
  smaller and ends larger."""
  import skimage.data

  photo = skimage.data.astronaut()[20:240, 110:330]  # the face with some margin
  grey = np.repeat(np.asarray(Image.fromarray(photo).convert("L"))[..., None], 3, axis=-1)
  frames = []
  for t in range(num_frames):
    canvas = Image.new("RGB", (520, 300), (70, 90, 110))
    left = Image.fromarray(photo).resize((190, 190))
    side = int(150 + 110 * t / (num_frames - 1))
    right = Image.fromarray(grey).resize((side, side))
    canvas.paste(left, (20, 50))
    canvas.paste(right, (250, 10))
    frames.append(np.asarray(canvas))
  return np.stack(frames)


def test_track_keeps_the_same_face_when_another_grows_larger(models):
  frames = _two_faces(12)
  out = list(face_tracker.align_video(frames, models, faces.FaceOptions(redetect_every=3)))
  assert all(o.found for o in out)
  saturation = [np.ptp(o.face[96:160, 96:160].astype(int), axis=-1).mean() for o in out]
  assert min(saturation) > 15, saturation  # every crop is the colour face, never the grey one
  first, last = (faces.detect_faces(models, faces.to_gray(frames[i])) for i in (0, -1))
  assert first[faces.choose_face(first, None)][0] < 240  # the colour face (left) is the largest at first,
  assert last[faces.choose_face(last, None)][0] > 240    # the grey one (right) by the end


def test_same_person_matches_by_position_and_size():
  box = np.array([100, 100, 200, 200], float)
  boxes = np.array([[400, 100, 500, 200], [170, 120, 260, 210], [110, 90, 160, 140]], float)
  assert faces.same_person(box, boxes) == 1             # near and of a size; [2] is too small
  assert faces.same_person(box, boxes[[0, 2]]) is None  # too far, too small
  assert faces.same_person(box, boxes[[0]], distance=3.5) == 0
  assert faces.same_person(box, np.zeros((0, 4))) is None


def test_a_person_is_expected_near_where_the_survey_saw_them():
  track = clip_tracks.PersonTrack([0, 10, 40], [np.array([0, 0, 10, 10.]), np.array([10, 0, 20, 10.]),
                                                np.array([50, 0, 60, 10.])])
  np.testing.assert_allclose(track.expected(5, every=10), [5, 0, 15, 10])  # between two sightings
  np.testing.assert_allclose(track.expected(19, every=10), [10, 0, 20, 10])  # just after one
  assert track.expected(20, every=10) is None and track.expected(30, every=10) is None  # gone
  np.testing.assert_allclose(track.expected(31, every=10), [50, 0, 60, 10])  # just before the next
  assert track.expected(50, every=10) is None
  assert clip_tracks.centrality(np.array([40, 30, 60, 50.]), 80, 100) == 1.0
  assert clip_tracks.centrality(np.array([-10, -10, 10, 10.]), 80, 100) == pytest.approx(0.25)


def test_the_main_face_is_the_larger_central_one_even_when_the_other_comes_first(models):
  """A smaller person at the edge of the shot is alone in the first frames; the larger one in
  the middle comes later and stays: the clip's face is the larger, central one, and the
  frames before it came have no face."""
  n = 18
  frames = face_checks.people_clip([t >= 6 for t in range(n)], [True] * n)
  options = faces.FaceOptions(survey_every=4)
  first_found = list(face_tracker.align_video(frames, models, options))  # without the survey: the first face, followed
  assert face_checks.which_person(models, [o.face for o in first_found]) == ["other"] * n
  out = list(clip_tracks.align_main_face(frames, models, options))
  assert [o.index for o in out] == list(range(n))
  assert face_checks.which_person(models, [o.face for o in out]) == ["-"] * 6 + ["main"] * (n - 6)
  found = clip_tracks.survey(frames, models, options)
  # The main person pops into the shot at frame 6, which changes its colours like a cut: the
  # survey looks at frame 6 as the first of a new shot (else at 8, its next sample).
  assert found.cuts == [6] and len(found.tracks) == 2 and found.tracks[found.main].indices[0] == 6


def test_a_face_that_leaves_and_comes_back_is_followed_again(models):
  """The main person leaves the shot for 8 frames while the other stays: the gap has no face
  (never the other person's), and the frames after the return are used. The other person is
  the main one's mirror image, the same person to dlib's descriptor (0.18 apart): they stay
  two people because the survey sees them together, and the one at the edge is where the
  other person is expected, never the main one."""
  n = 24
  frames = face_checks.people_clip([not 8 <= t < 16 for t in range(n)], [True] * n)
  options = faces.FaceOptions(survey_every=4)
  out = list(clip_tracks.align_main_face(frames, models, options))
  assert face_checks.which_person(models, [o.face for o in out]) == ["main"] * 8 + ["-"] * 8 + ["main"] * 8
  found = clip_tracks.survey(frames, models, options)
  assert found.tracks[found.main].indices == [0, 4, 16, 20]  # one person across the gap
  assert len(found.tracks) == 2


def test_faces_are_found_one_frame_at_a_time(models, monkeypatch):
  """Memory is bounded however long the clip: a video longer than the survey's buffer is
  decoded again for the second pass, and then at most a few frames (those waiting for a
  confirmation) are alive at once; one that fits is decoded once."""
  import gc
  import weakref

  clip = face_checks.astronaut_clip(8, seed=2)
  alive, most, decodes = [], [0], [0]

  def frames(track: bool):
    def frames_of_a_pass():
      decodes[0] += 1
      for t in range(40):
        frame = clip[t % 8].copy()
        if track:  # count the frames still alive (gc first: only what something still holds)
          alive.append(weakref.ref(frame))
          gc.collect(0)
          most[0] = max(most[0], sum(r() is not None for r in alive))
        yield frame
    return frames_of_a_pass

  options = faces.FaceOptions(redetect_every=5, survey_every=10)
  monkeypatch.setattr(clip_tracks, "SURVEY_BUFFER_BYTES", 10 * clip[0].nbytes)  # 10 of the 40 frames
  found = [o.found for o in clip_tracks.align_main_face(frames(True), models, options)]
  assert len(found) == 40 and all(found) and decodes[0] == 2
  assert most[0] <= 10 + options.redetect_every + 2, most[0]  # the buffer, dropped when full, and a few
  monkeypatch.setattr(clip_tracks, "SURVEY_BUFFER_BYTES", 40 * clip[0].nbytes)  # the whole clip fits
  decodes[0] = 0
  again = [o.found for o in clip_tracks.align_main_face(frames(False), models, options)]
  assert again == found and decodes[0] == 1
  with pytest.raises(TypeError, match="twice"):
    list(clip_tracks.align_main_face(iter(clip), models, options))


def test_a_video_that_fits_the_survey_buffer_is_decoded_once_and_a_longer_one_twice():
  from videmo.data.preparation import clip_tracks

  frames = [np.full((4, 4, 3), i, np.uint8) for i in range(5)]
  decodes = []

  def decode():
    decodes.append(1)
    yield from frames

  passes = clip_tracks._passes(decode, buffer_bytes=5 * 48)
  assert [f[0, 0, 0] for f in passes()] == list(range(5))
  assert [f[0, 0, 0] for f in passes()] == list(range(5)) and len(decodes) == 1  # from the buffer
  decodes.clear()
  passes = clip_tracks._passes(decode, buffer_bytes=4 * 48)  # one frame too many: decoded again
  assert [f[0, 0, 0] for f in passes()] == list(range(5))
  assert [f[0, 0, 0] for f in passes()] == list(range(5)) and len(decodes) == 2
  with pytest.raises(TypeError, match="needs the frames twice"):
    clip_tracks._passes(iter(frames))
