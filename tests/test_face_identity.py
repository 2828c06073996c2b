"""Who is who: the main person followed across shot cuts and re-entries, by appearance.

Clips are made from real photographs: skimage's astronaut (the main person) and faces of
skimage's LFW subset (other people). The yardstick is dlib's HOG detector run on every full
frame: preparation must keep at least 97% of the frames in which it finds the face.
"""

import numpy as np
import pytest
import skimage.data
from PIL import Image

import photo_video
from videmo.data.preparation import clip_tracks, faces, identity, shot_cuts

HEIGHT, WIDTH = 288, 360
ASTRONAUT = skimage.data.astronaut()


@pytest.fixture(scope="module")
def models():
  return faces.load_face_models()


def _shot(num_frames, x, seed, photo=ASTRONAUT, **kwargs):
  return photo_video.shot(photo, num_frames, HEIGHT, WIDTH, x, seed, **kwargs)


def _lfw_person(k: int) -> np.ndarray:
  """[240, 240, 3]: face k of skimage's LFW subset (25x25 grey), enlarged: another person."""
  face = (np.clip(skimage.data.lfw_subset()[k], 0, 1) * 255).astype(np.uint8)
  return np.repeat(np.asarray(Image.fromarray(face).resize((240, 240), Image.BICUBIC))[..., None], 3, axis=-1)


def _walk_clip():
  """The astronaut's head and shoulders walk out at the right edge and come back from the left."""
  person = np.ascontiguousarray(ASTRONAUT[photo_video.ASTRONAUT_PERSON])
  path = photo_video.walk_path(75, WIDTH, HEIGHT, speed=12.0, away=8, margin=150)
  motion = photo_video.PhotoMotion(scale=(1.0, 1.3), rotation=8.0, cycles=0.5)
  return photo_video.photo_clip(person, 75, HEIGHT, WIDTH, motion, anchor=photo_video.PERSON_FACE_CENTRE,
                                seed=4, path=path)


CLIPS = {
    "cut_back_elsewhere_same_scene": lambda: np.concatenate([_shot(35, 0.3, 1), _shot(40, 0.7, 1, drift=-0.05)]),
    "cut_back_elsewhere_other_scene": lambda: np.concatenate([_shot(35, 0.3, 1), _shot(40, 0.7, 2, drift=-0.05)]),
    "two_cuts": lambda: np.concatenate([_shot(25, 0.3, 1), _shot(25, 0.7, 2, drift=-0.05),
                                        _shot(25, 0.5, 3, zoom=(1.2, 1.4), y=0.45)]),
    "walk_out_and_back_from_the_other_edge": _walk_clip,
}


def _kept_share(models, frames, found):
  """Share of the frames where HOG on the full frame finds a face that preparation kept."""
  hog = np.array([len(models.detector(frame, 0)) > 0 for frame in frames])
  found = np.asarray(found)
  assert hog.sum() >= 35, "the clip must show the face in most frames"
  return (hog & found).sum() / hog.sum(), int((found & ~hog).sum())


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_the_main_person_is_kept_across_cuts_and_re_entries(models, name):
  frames = CLIPS[name]()
  out = list(clip_tracks.align_main_face(frames, models))
  assert [o.index for o in out] == list(range(len(frames)))
  share, extra = _kept_share(models, frames, [o.found for o in out])
  assert share >= 0.97, f"{name}: kept {share:.1%} of the frames where HOG finds the face"
  assert extra <= 2, f"{name}: {extra} frames kept where HOG finds no face"
  found = clip_tracks.survey(frames, models, faces.FaceOptions())
  assert len(found.tracks) == 1 and found.tracks[0].main, "one person, whatever the cuts and gaps"
  assert 2 <= found.descriptors <= 4  # one per fragment that had to be compared, no more


def test_cuts_are_found_where_the_shot_changes(models):
  frames = CLIPS["two_cuts"]()
  assert clip_tracks.survey(frames, models, faces.FaceOptions()).cuts == [25, 50]
  detector = shot_cuts.CutDetector()
  moving = photo_video.photo_clip(ASTRONAUT, 40, HEIGHT, WIDTH, photo_video.PhotoMotion(travel=0.6, cycles=2), seed=3)
  assert not any(detector(frame) for frame in moving), "motion and zoom within a shot are not cuts"
  assert shot_cuts.distance(shot_cuts.histogram(moving[0]), shot_cuts.histogram(moving[0])) == 0.0


def test_a_different_person_after_a_cut_is_not_taken_for_the_main_one(models):
  """Astronaut, then (a cut) someone else where she was, then (a cut) the astronaut again
  elsewhere: only the astronaut's frames are kept, in both her shots."""
  other = _shot(20, 0.45, 2, photo=_lfw_person(1), anchor=(120, 120), zoom=(0.5, 0.6))
  frames = np.concatenate([_shot(30, 0.45, 1), other, _shot(25, 0.7, 3, drift=-0.05)])
  found = clip_tracks.survey(frames, models, faces.FaceOptions())
  assert found.cuts == [30, 50] and len(found.tracks) == 2
  main = found.tracks[found.main]
  assert {found.shot(i) for i in main.indices} == {0, 2}
  gap = np.linalg.norm(main.descriptor - found.tracks[1 - found.main].descriptor)
  assert gap > 0.6, gap  # two people by dlib's measure
  out = [o.found for o in clip_tracks.align_main_face(frames, models)]
  assert not any(out[30:50]), "the other person's shot has no main face"
  share, _ = _kept_share(models, np.concatenate([frames[:30], frames[50:]]), out[:30] + out[50:])
  assert share >= 0.97


def test_one_person_in_one_shot_needs_no_descriptor(models):
  frames = _shot(40, 0.4, 5, drift=0.2)
  found = clip_tracks.survey(frames, models, faces.FaceOptions())
  assert found.cuts == [] and found.descriptors == 0 and len(found.tracks) == 1


def _fragment(shot, indices, score):
  boxes = [np.array([i, 0, i + 10, 10.]) for i in indices]  # a face moving right, one pixel a frame
  return identity.Fragment(shot, list(indices), boxes, score)


def test_people_merge_by_descriptor_but_never_faces_seen_together():
  """Fragments: the main person in shots 0 and 1; their look-alike beside them in shot 0;
  a small false detection in shot 0. Look-alikes seen together stay two people."""
  a = np.zeros(128)
  fragments = [_fragment(0, [0, 10, 20], 300.0), _fragment(1, [30, 40], 200.0),
               _fragment(0, [0, 10, 20], 250.0), _fragment(0, [10], 1.0)]
  looks = {0: a, 1: a + 0.01, 2: a + 0.03, 3: a + 0.5}
  asked = []

  def describe(fragment):
    k = next(i for i, f in enumerate(fragments) if f is fragment)
    asked.append(k)
    return looks[k]

  tracks, main = identity.people(fragments, describe, distance=0.6)
  assert sorted(asked) == [0, 1, 2, 3]  # 3 could be merged with 1: it is compared too
  assert len(tracks) == 3 and tracks[main].main and sum(t.main for t in tracks) == 1
  assert tracks[main].indices == [0, 10, 20, 30, 40] and tracks[main].score == 500.0
  assert tracks[main].shots == [0, 0, 0, 1, 1]
  np.testing.assert_allclose(tracks[main].expected(35, every=10, shot=1), [35, 0, 45, 10])  # interpolated
  np.testing.assert_allclose(tracks[main].expected(28, every=10, shot=0), [20, 0, 30, 10])  # not across the cut
  assert tracks[main].expected(31, every=10, shot=2) is None


def test_descriptors_are_computed_only_where_they_decide_something():
  """One shot: the main person, a look-alike beside them, and two false detections at
  different times: nobody can be merged with the main person or change who it is (the two
  false detections together score 2 < 300), so nothing is described."""
  one_shot = [_fragment(0, [0, 10, 20], 300.0), _fragment(0, [0, 10, 20], 250.0), _fragment(0, [0], 1.0),
              _fragment(0, [20], 1.0)]
  tracks, main = identity.people(one_shot, lambda f: pytest.fail("described"))
  assert len(tracks) == 4 and tracks[main].score == 300.0 and tracks[main].indices == [0, 10, 20]


def test_a_single_fragment_is_the_main_person_without_descriptors():
  tracks, main = identity.people([_fragment(0, [0, 10], 5.0)], lambda f: pytest.fail("described"))
  assert main == 0 and tracks[0].main
  assert identity.people([], lambda f: None) == ([], None)
