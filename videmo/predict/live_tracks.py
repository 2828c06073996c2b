"""Faces followed online through a live stream: every person, with a number that stays over gaps.

    tracker = OnlineFaceTracker(face_models, clip_options.face)
    for sighting in tracker.step(time_s, frame):     # frame [H, W, 3] uint8 RGB, in stream order
      sighting.person, sighting.box, sighting.face    # int, [4] pixels, [S, S, 3] uint8 aligned

Each frame, with preparation's own functions (videmo/data/preparation/faces.py):

1. detection: dlib's HOG detector on the whole frame, coarse scales first, stopping at the
   first scale that finds a face (as preparation's survey does); every `survey_every` frames
   every scale runs, so a small face beside a large one is found too. A person seen in the
   last `gap_seconds` but not found there is looked for in a crop around where they are
   expected (`faces.detect_near`, cheap whatever the face's size).
2. association: detections continue people by box overlap with where each was last seen or
   where its motion puts it (IoU >= min_overlap), else by position (`faces.same_person`:
   centre within reentry_distance face widths, size within reentry_scale), within
   `gap_seconds` of their last sighting, the best pairs first, one detection per person.
3. identity: a face that continues nobody is described (dlib's 128-d descriptor, identity.py,
   ~70 ms, once per new face) and takes the number of the nearest person seen before within
   identity_distance who is not in this frame already (someone back after a longer gap, or
   after a cut); else it is a new person: 0, 1, 2, ... in order of appearance.
4. alignment: 5-point landmarks on the detection's box and dlib's get_face_chip at the
   dataset's face size and padding, as preparation aligns a face the detector found. Every
   face comes from a detection in its own frame: none on the landmark model's word alone.

`remember` bounds the people kept for re-identification (the least recently seen go first).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from videmo.data.preparation import faces, identity
from videmo.predict import faces_input

_SAME_FACE_IOU = 0.5  # two detections overlapping this much (another scale, a crop) are one face


@dataclasses.dataclass(frozen=True)
class Sighting:
  """One person in one frame: their number, the face box [4] (x0, y0, x1, y1) in the frame's
  pixels and the aligned face [S, S, 3] uint8."""

  person: int
  box: np.ndarray
  face: np.ndarray


@dataclasses.dataclass
class _Person:
  """Where a person was last seen: box [4] at time_s, the box's velocity [4] per second, and
  their descriptor [128] when computed."""

  number: int
  box: np.ndarray
  time_s: float
  velocity: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(4))
  descriptor: np.ndarray | None = None

  def references(self, time_s: float) -> tuple[np.ndarray, np.ndarray]:
    """(last box, the box its motion predicts at time_s), each [4]."""
    return self.box, self.box + self.velocity * (time_s - self.time_s)


def _distinct(boxes: np.ndarray, more: np.ndarray) -> np.ndarray:
  """boxes [K, 4] followed by those of more [M, 4] that overlap none of them: [K', 4]."""
  kept = [np.asarray(b, np.float64) for b in boxes]
  for box in np.asarray(more, np.float64).reshape(-1, 4):
    if not kept or faces.iou(box, np.stack(kept)).max() < _SAME_FACE_IOU:
      kept.append(box)
  return np.stack(kept) if kept else np.zeros((0, 4))


class OnlineFaceTracker:
  """Every face of a stream, frame by frame, each with a stable person number (module docstring)."""

  def __init__(self, models: faces.FaceModels, options: faces.FaceOptions = faces.FaceOptions(), *,
               gap_seconds: float = 1.0, remember: int = 64):
    if not gap_seconds > 0:
      raise ValueError(f"gap_seconds must be > 0, got {gap_seconds}")
    self.models, self.options = models, options
    self.gap_seconds, self.remember = float(gap_seconds), int(remember)
    self.people: list[_Person] = []  # least recently seen first
    self.descriptors = 0  # computed so far
    self._frames = 0
    self._next_number = 0  # numbers are never reused, even once a person is forgotten

  # 1. detection --------------------------------------------------------------------------

  def _detect(self, frame: np.ndarray, recent: list[_Person], time_s: float) -> np.ndarray:
    """Face boxes [K, 4] in frame [H, W, 3]: whole frame, then crops around missing recent people."""
    gray = faces.to_gray(frame)
    every_scale = self.options.survey_every > 0 and self._frames % self.options.survey_every == 0
    boxes = np.zeros((0, 4))
    for scale in self.options.detect_scales:
      boxes = _distinct(boxes, faces.detect_faces(self.models, gray, scale))
      if len(boxes) and not every_scale:
        break
    for person in recent:
      expected = person.references(time_s)[1]
      if len(boxes) and faces.iou(expected, boxes).max() >= self.options.min_overlap:
        continue
      near = faces.detect_near(self.models, frame, expected, self.options.roi_face_px, self.options.roi_margin)
      boxes = _distinct(boxes, near)
    return boxes

  # 2. association --------------------------------------------------------------------------

  def _match(self, recent: list[_Person], boxes: np.ndarray, time_s: float) -> dict[int, _Person]:
    """{box index: person} for the detections that continue recent people."""
    pairs = []
    for p, person in enumerate(recent):
      for reference in person.references(time_s):
        overlaps = faces.iou(reference, boxes)
        for b, box in enumerate(boxes):
          if overlaps[b] >= self.options.min_overlap:
            pairs.append((0, -float(overlaps[b]), p, b))
          elif faces.same_person(reference, box[None], self.options.reentry_distance,
                                 self.options.reentry_scale) is not None:
            gap = np.linalg.norm((box[:2] + box[2:]) / 2 - (reference[:2] + reference[2:]) / 2)
            pairs.append((1, float(gap / max(box[2] - box[0], 1.0)), p, b))
    matched: dict[int, _Person] = {}
    taken: set[int] = set()
    for _, _, p, b in sorted(pairs):
      if b not in matched and p not in taken:
        matched[b] = recent[p]
        taken.add(p)
    return matched

  # 3. identity -----------------------------------------------------------------------------

  def _identify(self, frame: np.ndarray, box: np.ndarray, time_s: float, present: set[int]) -> _Person:
    """The person a face that continues nobody is: someone seen before, by descriptor, or someone new."""
    described = None
    if self.models.describer is not None:
      described = identity.descriptor(self.models, identity.face_chip(self.models, frame, box))
      self.descriptors += 1
      known = [(float(np.linalg.norm(described - p.descriptor)), k) for k, p in enumerate(self.people)
               if p.descriptor is not None and p.number not in present]
      if known and min(known)[0] < self.options.identity_distance:
        return self.people[min(known)[1]]
    person = _Person(self._next_number, box, time_s, descriptor=described)
    self._next_number += 1
    self.people.append(person)
    return person

  # Public ----------------------------------------------------------------------------------

  def step(self, time_s: float, frame: np.ndarray) -> list[Sighting]:
    """The faces of the frame at `time_s` [H, W, 3] uint8, frames in stream order: a Sighting per
    face found, by person number."""
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
      raise ValueError(f"frames must be RGB uint8 [H, W, 3], got {frame.dtype} {frame.shape}")
    frame = np.ascontiguousarray(frame)
    recent = [p for p in self.people if time_s - p.time_s <= self.gap_seconds]
    boxes = self._detect(frame, recent, time_s)
    self._frames += 1
    matched = self._match(recent, boxes, time_s)
    present = {person.number for person in matched.values()}
    for b in range(len(boxes)):
      if b not in matched:
        matched[b] = self._identify(frame, boxes[b], time_s, present)
        present.add(matched[b].number)
    sightings = []
    for b, person in matched.items():
      box = boxes[b]
      shape, _ = faces.predict_landmarks(self.models, frame, box)
      sightings.append(Sighting(person.number, box, faces.align_face(frame, shape, self.options)))
      elapsed = time_s - person.time_s
      person.velocity = (box - person.box) / elapsed if 0 < elapsed <= self.gap_seconds else np.zeros(4)
      person.box, person.time_s = box, time_s
    self.people.sort(key=lambda p: p.time_s)
    del self.people[:max(0, len(self.people) - self.remember)]
    return sorted(sightings, key=lambda s: s.person)


class AlignedFaces:
  """`--aligned` streams: each frame already is one aligned face (person 0), its central square
  resized to the dataset's face size as `faces_input.stored_face` does for a file."""

  def __init__(self, face_size: int):
    self.face_size = int(face_size)

  def step(self, time_s: float, frame: np.ndarray) -> list[Sighting]:
    height, width = frame.shape[:2]
    side = min(height, width)
    left, top = (width - side) // 2, (height - side) // 2
    box = np.array([left, top, left + side, top + side], np.float64)
    return [Sighting(0, box, faces_input.stored_face(frame, self.face_size))]
