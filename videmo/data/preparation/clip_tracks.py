"""The main face of a clip: chosen over the whole clip, then followed (two passes, bounded memory).

Films and phone videos show several people, and a person may leave the shot and come back.
The face to keep is the clip's main one, not whichever face is found first:

1. Survey (`survey`, pass 1): the detector runs on the whole frame every
   `FaceOptions.survey_every` frames (coarse scales first, as when acquiring a face). Its
   boxes are linked into person tracks: a box continues the track it matches
   (`faces.same_person`: centre within `reentry_distance` face widths of the track's last
   box, size within `reentry_scale`), the most recently seen track first, so a person who
   leaves and comes back near where they left is the same track after any gap. Each track
   scores the sum over its sightings of face area x centrality (1 at the frame's centre, 0.25
   in its corners); the main track has the highest score. Only boxes are kept, never frames.
2. Follow (`faces.align_video` with a `target`, pass 2): the tracker takes up only the main
   face, near where the survey saw it; in frames where the survey did not see the main person
   within `survey_every` frames (they left, or had not yet come) nobody is taken up, so those
   frames count as frames without a face, and frames after the return are used.

A clip in which the survey finds no face at all is followed as before (the first face found),
so faces that only the finer per-frame search finds are not lost. `survey_every=0` skips
the survey. Frames come from a callable that returns a fresh iterator per pass (a video is
decoded twice, one frame at a time) or from a sequence already in memory.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from videmo.data.preparation import faces

Frames = Callable[[], Iterable[np.ndarray]] | Sequence[np.ndarray]


@dataclasses.dataclass
class PersonTrack:
  """One person's sightings in the survey: frame indices [n] and boxes [n, 4], and the
  track's score (sum of face area x centrality)."""

  indices: list[int] = dataclasses.field(default_factory=list)
  boxes: list[np.ndarray] = dataclasses.field(default_factory=list)
  score: float = 0.0

  def expected(self, index: int, every: int) -> np.ndarray | None:
    """The box [4] where this person is expected in frame `index`: interpolated between two
    sightings at most two survey intervals apart, else the nearest sighting less than `every`
    frames away; None when the person was not seen near that frame."""
    position = int(np.searchsorted(self.indices, index))
    before = position - 1 if position > 0 else None
    after = position if position < len(self.indices) else None
    if after is not None and self.indices[after] == index:
      return self.boxes[after]
    if before is not None and after is not None and self.indices[after] - self.indices[before] <= 2 * every:
      a, b = self.indices[before], self.indices[after]
      w = (index - a) / (b - a)
      return (1 - w) * self.boxes[before] + w * self.boxes[after]
    if before is not None and index - self.indices[before] < every:
      return self.boxes[before]
    if after is not None and self.indices[after] - index < every:
      return self.boxes[after]
    return None


@dataclasses.dataclass
class Survey:
  """Every person track the survey found, and which is the main one (None: no face seen)."""

  tracks: list[PersonTrack]
  every: int
  main: int | None

  def target(self, index: int) -> np.ndarray | None:
    """The main face's expected box [4] in frame `index` (PersonTrack.expected), or None."""
    return None if self.main is None else self.tracks[self.main].expected(index, self.every)


def centrality(box: np.ndarray, height: int, width: int) -> float:
  """1 for a face at the frame's centre, falling linearly to 0.25 at a corner."""
  centre = (box[:2] + box[2:]) / 2
  half_diagonal = 0.5 * np.hypot(width, height)
  distance = np.hypot(centre[0] - width / 2, centre[1] - height / 2)
  return float(1.0 - 0.75 * min(distance / half_diagonal, 1.0))


def _detect_survey(models: faces.FaceModels, frame: np.ndarray, options: faces.FaceOptions) -> np.ndarray:
  """Whole-frame detections [K, 4], coarse scales first; finer scales run only when the
  coarser ones found nothing."""
  gray = faces.to_gray(frame)
  for scale in options.detect_scales:
    boxes = faces.detect_faces(models, gray, scale)
    if len(boxes):
      return boxes
  return np.zeros((0, 4))


def _link(tracks: list[PersonTrack], index: int, boxes: np.ndarray, options: faces.FaceOptions) -> None:
  """Adds the sightings boxes [K, 4] of frame `index` to `tracks`: each box joins the most
  recently seen track it matches (faces.same_person), else starts a new track."""
  free = list(range(len(boxes)))
  for track in sorted(tracks, key=lambda t: -t.indices[-1]):
    if not free:
      break
    pick = faces.same_person(track.boxes[-1], boxes[free], options.reentry_distance, options.reentry_scale)
    if pick is not None:
      track.indices.append(index)
      track.boxes.append(boxes[free.pop(pick)])
  for k in free:
    tracks.append(PersonTrack([index], [boxes[k]]))


def survey(frames: Iterable[np.ndarray], models: faces.FaceModels, options: faces.FaceOptions) -> Survey:
  """Pass 1 (see the module docstring): person tracks from whole-frame detections every
  `options.survey_every` frames of frames [H, W, 3] uint8, and the main one. Keeps boxes
  only; each frame is dropped as soon as the next one comes."""
  every = max(1, options.survey_every)
  tracks: list[PersonTrack] = []
  for index, frame in enumerate(frames):
    if index % every:
      continue
    boxes = _detect_survey(models, np.ascontiguousarray(frame), options)
    before = {id(t): len(t.indices) for t in tracks}
    _link(tracks, index, boxes, options)
    height, width = frame.shape[:2]
    for track in tracks:
      if len(track.indices) > before.get(id(track), 0):
        box = track.boxes[-1]
        track.score += float((box[2] - box[0]) * (box[3] - box[1])) * centrality(box, height, width)
  main = int(np.argmax([t.score for t in tracks])) if tracks else None
  return Survey(tracks, every, main)


def _passes(frames: Frames) -> Callable[[], Iterable[np.ndarray]]:
  if callable(frames):
    return frames
  if isinstance(frames, Iterator):
    raise TypeError("align_main_face needs the frames twice: pass a sequence or a callable returning "
                    "a fresh iterator, not a one-shot iterator")
  return lambda: frames


def align_main_face(frames: Frames, models: faces.FaceModels,
                    options: faces.FaceOptions = faces.FaceOptions()) -> Iterator[faces.AlignedFrame]:
  """The aligned main face of every frame, in order: an AlignedFrame per frame (see faces.py),
  `face` [S, S, 3] uint8 or None where the main person was not found.

  frames: a sequence of RGB frames [H, W, 3] uint8, or a callable returning a fresh iterator
  of them on each call (called twice: survey, then follow). survey_every=0: one pass,
  following the first face found."""
  passes = _passes(frames)
  target = None
  if options.survey_every > 0:
    found = survey(passes(), models, options)
    target = found.target if found.main is not None else None
  yield from faces.align_video(passes(), models, options, target)
