"""The main face of a clip: chosen over the whole clip by identity, then followed (two passes,
bounded memory).

Films and phone videos show several people, cut between shots, and people leave the shot
and come back. The face to keep is the clip's main person's, in every shot they appear in:

1. Survey (`survey`, pass 1): every frame's small colour histogram is compared with the
   previous one's to find shot cuts (shot_cuts.py). The detector runs on the whole frame at
   the first frame of every shot and then every `FaceOptions.survey_every` frames (coarse
   scales first, or the finest directly when the previous sample of the shot found faces
   only there or none). Its boxes are linked into fragments by position within a shot,
   fragments into people by appearance (identity.py: dlib's face descriptor, computed only
   where it decides something), and each person scores the sum over their sightings of face
   area x centrality (1 at the frame's centre, 0.25 in its corners); the main person has the
   highest score. Only boxes and one 150x150 chip per fragment are kept, never frames.
2. Follow (`face_tracker.align_video` with a `MainFacePlan`, pass 2): the tracker takes up
   only the main person (identity.Recognizer: a face where the main person is expected, or
   one whose descriptor is theirs), starts afresh on the whole frame at each cut, reuses the
   survey's detections on the frames it surveyed, and takes up nobody where the survey did
   not see the main person within `survey_every` frames in the same shot (they left, or had
   not come yet): those frames count as frames without a face.

A clip in which the survey finds no face at all is followed as before (the first face found),
so faces that only the finer per-frame search finds are not lost. `survey_every=0` skips
the survey. Frames come from a callable that returns a fresh iterator per pass (a video,
decoded one frame at a time: once when its frames fit SURVEY_BUFFER_BYTES, which the survey
keeps for the follow pass, twice for a longer one) or from a sequence already in memory.
"""

from __future__ import annotations

import bisect
import dataclasses
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from videmo.data.preparation import face_tracker, faces, identity, shot_cuts
from videmo.data.preparation.identity import PersonTrack  # noqa: F401  (re-exported)

Frames = Callable[[], Iterable[np.ndarray]] | Sequence[np.ndarray]


@dataclasses.dataclass
class Survey:
  """What pass 1 found: every person (identity.PersonTrack, the main one marked) and which is
  the main one (None: no face seen), the survey interval, the first frame of every shot
  after the first (`cuts`), the whole-frame detections [K, 4] on each surveyed frame, how
  many descriptors it computed, and how many frames it read."""

  tracks: list[PersonTrack]
  every: int
  main: int | None
  cuts: list[int] = dataclasses.field(default_factory=list)
  detections: dict[int, np.ndarray] = dataclasses.field(default_factory=dict)
  descriptors: int = 0
  num_frames: int = 0

  def shot(self, index: int) -> int:
    """The shot (0, 1, ...) frame `index` belongs to."""
    return bisect.bisect_right(self.cuts, index)

  def target(self, index: int) -> np.ndarray | None:
    """The main person's expected box [4] in frame `index` (PersonTrack.expected), or None."""
    if self.main is None:
      return None
    return self.tracks[self.main].expected(index, self.every, self.shot(index))


def centrality(box: np.ndarray, height: int, width: int) -> float:
  """1 for a face at the frame's centre, falling linearly to 0.25 at a corner."""
  centre = (box[:2] + box[2:]) / 2
  half_diagonal = 0.5 * np.hypot(width, height)
  distance = np.hypot(centre[0] - width / 2, centre[1] - height / 2)
  return float(1.0 - 0.75 * min(distance / half_diagonal, 1.0))


def _detect_survey(models: faces.FaceModels, frame: np.ndarray, scales: Sequence[float],
                   every_scale: bool = False) -> tuple[np.ndarray, float]:
  """Whole-frame detections [K, 4] at the first of `scales` (coarse to fine) that finds a
  face, and that scale (the finest when none does). every_scale: at every scale instead,
  a face found at several kept once (its coarsest box), so people of every size are seen."""
  gray = faces.to_gray(frame)
  boxes = np.zeros((0, 4))
  if every_scale:
    for scale in scales:
      for box in faces.detect_faces(models, gray, scale):
        if not len(boxes) or faces.iou(box, boxes).max() < 0.3:
          boxes = np.concatenate([boxes, box[None]])
    return boxes, scales[-1]
  for scale in scales:
    boxes = faces.detect_faces(models, gray, scale)
    if len(boxes):
      return boxes, scale
  return boxes, scales[-1]


def survey(frames: Iterable[np.ndarray], models: faces.FaceModels, options: faces.FaceOptions,
           every_scale: bool = False) -> Survey:
  """Pass 1 (see the module docstring) over frames [H, W, 3] uint8: shot cuts, whole-frame
  detections at each shot's start and every `options.survey_every` frames, every person of
  the clip and the main one. Each frame is dropped as soon as the next one comes.
  every_scale: detect at every scale of `options.detect_scales` on each surveyed frame, not
  only up to the first that finds a face (slower; for following everyone, `align_people`)."""
  every = max(1, options.survey_every)
  is_cut = shot_cuts.CutDetector(options.cut_threshold)
  found = Survey([], every, None)
  fragments: list[identity.Fragment] = []
  recent: list[identity.Fragment] = []  # the current shot's fragments seen in the last two samples
  last, finest_first = None, False
  for index, frame in enumerate(frames):
    found.num_frames = index + 1
    frame = np.ascontiguousarray(frame)
    if is_cut(frame):
      found.cuts.append(index)
      recent, finest_first = [], False
    elif last is not None and index - last < every:
      continue
    last = index
    scales = options.detect_scales[-1:] if finest_first and not every_scale else options.detect_scales
    boxes, scale = _detect_survey(models, frame, scales, every_scale)
    finest_first = scale == options.detect_scales[-1]
    found.detections[index] = boxes
    recent = [f for f in recent if index - f.indices[-1] <= 2 * every]
    height, width = frame.shape[:2]
    for box, k in zip(boxes, identity.link(recent, index, boxes, options)):
      if k is None:
        fragments.append(identity.Fragment(found.shot(index)))
        recent.append(fragments[-1])
      fragment = fragments[-1] if k is None else recent[k]
      area = float((box[2] - box[0]) * (box[3] - box[1]))
      fragment.indices.append(index)
      fragment.boxes.append(box)
      fragment.score += area * centrality(box, height, width)
      if area > fragment.chip_area and models.describer is not None:
        fragment.chip, fragment.chip_area = identity.face_chip(models, frame, box), area

  def describe(fragment: identity.Fragment) -> np.ndarray | None:
    if fragment.chip is None:
      return None
    found.descriptors += 1
    return identity.descriptor(models, fragment.chip)

  found.tracks, found.main = identity.people(fragments, describe, options.identity_distance)
  return found


class MainFacePlan:
  """The follow pass's guide (face_tracker.Plan) from a survey: where the main person is
  expected, the shot cuts, the surveyed detections, and which face is the main person."""

  def __init__(self, found: Survey, models: faces.FaceModels, options: faces.FaceOptions):
    self.survey = found
    self.recognizer = identity.Recognizer(found.tracks, found.main, found.every, found.shot, models, options)
    self._cuts = set(found.cuts)

  def expected(self, index: int) -> np.ndarray | None:
    return self.recognizer.expected(index)

  def is_cut(self, index: int) -> bool:
    return index in self._cuts

  def detections(self, index: int) -> np.ndarray | None:
    return self.survey.detections.get(index)

  def pick(self, index: int, frame: np.ndarray, boxes: np.ndarray) -> int | None:
    return self.recognizer.pick(index, frame, boxes)


# Frames of the survey pass kept for the follow pass, at most this many bytes per video (a
# 720x576 RGB frame is 1.2 MiB: about 200 frames, 8 s at 25 fps, longer than most clips of
# AFEW-like datasets). A longer video is decoded a second time instead, so memory stays bounded.
SURVEY_BUFFER_BYTES = 256 * 2**20


def _passes(frames: Frames, buffer_bytes: int | None = None) -> Callable[[], Iterable[np.ndarray]]:
  """A callable giving the frames once per pass. From a callable source (a video file), the
  first pass keeps what it decodes up to `buffer_bytes` (None: SURVEY_BUFFER_BYTES); if the
  whole video fits, the second pass reads that instead of decoding the video again."""
  buffer_bytes = SURVEY_BUFFER_BYTES if buffer_bytes is None else buffer_bytes
  if isinstance(frames, Iterator):
    raise TypeError("align_main_face needs the frames twice: pass a sequence or a callable returning "
                    "a fresh iterator, not a one-shot iterator")
  if not callable(frames):
    return lambda: frames
  kept: list[np.ndarray] = []
  state = dict(passes=0, complete=False)

  def first_pass() -> Iterator[np.ndarray]:
    size = 0
    for frame in frames():
      size += frame.nbytes
      if size <= buffer_bytes:
        kept.append(frame)
      elif kept:
        kept.clear()  # over budget: the next pass decodes again
      yield frame
    state["complete"] = size <= buffer_bytes

  def next_pass() -> Iterable[np.ndarray]:
    state["passes"] += 1
    if state["passes"] == 1:
      return first_pass()
    return list(kept) if state["complete"] else frames()

  return next_pass


def align_main_face(frames: Frames, models: faces.FaceModels,
                    options: faces.FaceOptions = faces.FaceOptions()) -> Iterator[faces.AlignedFrame]:
  """The aligned main face of every frame, in order: an AlignedFrame per frame (see faces.py),
  `face` [S, S, 3] uint8 or None where the main person was not found.

  frames: a sequence of RGB frames [H, W, 3] uint8, or a callable returning a fresh iterator
  of them on each call (a video decoded frame by frame: the survey's pass keeps its frames
  for the follow pass when the video fits SURVEY_BUFFER_BYTES, else it is called again).
  survey_every=0: one pass, following the first face found."""
  if options.survey_every <= 0:  # one pass: nothing to keep
    yield from face_tracker.align_video(frames() if callable(frames) else frames, models, options, None)
    return
  passes = _passes(frames)
  found = survey(passes(), models, options)
  plan = MainFacePlan(found, models, options) if found.main is not None else None
  yield from face_tracker.align_video(passes(), models, options, plan)


def align_people(frames: Frames, models: faces.FaceModels, options: faces.FaceOptions = faces.FaceOptions()
                 ) -> tuple[Survey, Iterator[tuple[int, faces.AlignedFrame]]]:
  """Every person of a clip, each followed as `align_main_face` follows the main one.

  Returns the survey (its `tracks`: every person, in order of first sighting, the main one
  marked) and an iterator of (person, AlignedFrame): for each person p (an index into
  `tracks`), every frame once, in order, its face found only where p was followed. The
  survey detects at every scale (a small face beside a large one is a person too). One
  follow pass serves everyone (a tracker per person on each frame), so a video is decoded
  as often as for the main face alone. Raises ValueError when `options.survey_every` is 0
  (there is no survey to find the people)."""
  if options.survey_every <= 0:
    raise ValueError("following every person needs the survey: FaceOptions.survey_every must be >= 1")
  passes = _passes(frames)
  found = survey(passes(), models, options, every_scale=True)

  def follow() -> Iterator[tuple[int, faces.AlignedFrame]]:
    trackers = [face_tracker.FaceTracker(models, options, MainFacePlan(dataclasses.replace(found, main=p), models,
                                                                       options))
                for p in range(len(found.tracks))]
    if not trackers:
      return
    for index, frame in enumerate(passes()):
      for p, tracker in enumerate(trackers):
        for aligned in tracker.step(index, frame):
          yield p, aligned
    for p, tracker in enumerate(trackers):
      for aligned in tracker.finish():
        yield p, aligned

  return found, follow()

