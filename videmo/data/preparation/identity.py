"""Who is who in a clip, by appearance: face descriptors, person tracks, the main person.

A person track holds one person's sightings over a clip (frame indices, boxes, the shot of
each) and, when it was needed, the person's 128-d face descriptor; `people` returns every
person of a clip with the main one marked, so both the main-face preparation
(clip_tracks.py) and a later every-person mode can use them.

Sightings are first linked into *fragments* by position alone: within one shot, a face
seen by the survey continues the fragment whose box it matches (`faces.same_person`: centre
within `reentry_distance` face widths, size within `reentry_scale`) where that fragment was
last seen or where its last motion puts it, when that fragment was seen at most two survey
samples earlier. Whether two fragments are the same person (across a cut, or after someone
left the shot and came back, anywhere in the frame) is decided by what the face looks
like: dlib's face descriptor (`dlib_face_recognition_resnet_model_v1.dat`), computed on a
150x150 chip of the fragment's largest sighting aligned as `get_face_chip` aligns it; two
descriptors closer than `identity_distance` (0.6, dlib's threshold) are one person.

A descriptor costs ~70 ms of CPU (three whole-frame detections at 720x576), so it is computed
only where it decides something:
  * only for fragments that could change who the main person is or which frames are theirs:
    a fragment whose best possible person (its score plus that of every fragment it could
    be merged with) scores at least as high as the best single fragment, and that has such
    a fragment to be merged with; and then for every fragment these could be merged with
    (so a fragment is merged with the nearest look, not the first one described). A false
    detection beside the main person, or anyone in a clip with one person in one shot, is
    never described;
  * in the follow pass (`Recognizer`), only for a face that no person is expected near
    (after a cut or a loss, a face elsewhere), once per face (a face seen in the next frame
    at the same place keeps its verdict).
Two faces in the same survey frame are never the same person (cannot-link), so people whose
descriptors agree (twins, the same photograph twice) stay apart when they are seen together.
Each cluster of fragments is a person; its score is the sum of face area x centrality
over its sightings, and the main person is the highest-scoring one.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from videmo.data.preparation import faces

CHIP_SIZE = 150       # the descriptor network's input: a 150x150 face chip ...
CHIP_PADDING = 0.25   # ... aligned by get_face_chip with dlib's default padding
STRANGER = -1         # the verdict on a face that is nobody surveyed


def face_chip(models: faces.FaceModels, frame: np.ndarray, box: np.ndarray) -> np.ndarray:
  """The descriptor's input [150, 150, 3] uint8: the face in box [4] of frame [H, W, 3],
  aligned on its 5 landmarks."""
  import dlib

  shape, _ = faces.predict_landmarks(models, frame, box)
  return dlib.get_face_chip(frame, shape, size=CHIP_SIZE, padding=CHIP_PADDING)


def descriptor(models: faces.FaceModels, chip: np.ndarray) -> np.ndarray:
  """dlib's 128-d face descriptor [128] of a face chip [150, 150, 3] uint8 (~70 ms)."""
  return np.asarray(models.describer.compute_face_descriptor(np.ascontiguousarray(chip)), np.float64)


@dataclasses.dataclass
class Fragment:
  """One face's sightings within one shot, linked by position: frame indices [n], boxes
  [n, 4], the score (sum of area x centrality), the chip [150, 150, 3] of its largest
  sighting and, once computed, its descriptor [128]."""

  shot: int
  indices: list[int] = dataclasses.field(default_factory=list)
  boxes: list[np.ndarray] = dataclasses.field(default_factory=list)
  score: float = 0.0
  chip: np.ndarray | None = None
  chip_area: float = 0.0
  descriptor: np.ndarray | None = None

  def overlaps(self, other: "Fragment") -> bool:
    """Whether the two were seen at the same time (then they are two people)."""
    return (self.shot == other.shot and self.indices[0] <= other.indices[-1]
            and other.indices[0] <= self.indices[-1])

  def predicted(self, index: int) -> np.ndarray:
    """The box [4] where the last two sightings' motion puts this face in frame `index`."""
    if len(self.indices) < 2:
      return self.boxes[-1]
    velocity = (self.boxes[-1] - self.boxes[-2]) / (self.indices[-1] - self.indices[-2])
    return self.boxes[-1] + velocity * (index - self.indices[-1])


def link(fragments: list[Fragment], index: int, boxes: np.ndarray, options: faces.FaceOptions) -> list[int | None]:
  """For each box of boxes [K, 4] (frame `index`), the fragment of `fragments` it continues
  by position (where it was last seen, or where its motion puts it), or None: [K]. Each
  fragment takes at most one box, the nearest first."""
  pairs = []
  for f, fragment in enumerate(fragments):
    for reference in (fragment.boxes[-1], fragment.predicted(index)):
      for b, box in enumerate(boxes):
        if faces.same_person(reference, box[None], options.reentry_distance, options.reentry_scale) is not None:
          gap = np.linalg.norm((box[:2] + box[2:]) / 2 - (reference[:2] + reference[2:]) / 2)
          pairs.append((gap / max(box[2] - box[0], 1.0), f, b))
  chosen: list[int | None] = [None] * len(boxes)
  taken = set()
  for _, f, b in sorted(pairs):
    if chosen[b] is None and f not in taken:
      chosen[b] = f
      taken.add(f)
  return chosen


@dataclasses.dataclass
class PersonTrack:
  """One person over a clip: sighting frames [n] and boxes [n, 4] (in frame order), the shot
  of each sighting and the fragment it belongs to (both all 0 when not given), the score
  (sum of face area x centrality), the fragments, the descriptor [128] (None until needed)
  and whether this is the clip's main person."""

  indices: list[int] = dataclasses.field(default_factory=list)
  boxes: list[np.ndarray] = dataclasses.field(default_factory=list)
  score: float = 0.0
  shots: list[int] = dataclasses.field(default_factory=list)
  parts: list[int] = dataclasses.field(default_factory=list)
  fragments: list[Fragment] = dataclasses.field(default_factory=list)
  descriptor: np.ndarray | None = None
  main: bool = False

  def __post_init__(self):
    self.shots = self.shots or [0] * len(self.indices)
    self.parts = self.parts or [0] * len(self.indices)

  @classmethod
  def of(cls, fragments: list[Fragment]) -> "PersonTrack":
    """The person made of these fragments (their sightings merged in frame order)."""
    rows = sorted((i, k, f.shot, box) for k, f in enumerate(fragments) for i, box in zip(f.indices, f.boxes))
    described = [f.descriptor for f in fragments if f.descriptor is not None]
    return cls([r[0] for r in rows], [r[3] for r in rows], float(sum(f.score for f in fragments)),
               [r[2] for r in rows], [r[1] for r in rows], list(fragments),
               np.mean(described, axis=0) if described else None)

  def expected(self, index: int, every: int, shot: int = 0) -> np.ndarray | None:
    """The box [4] where this person is expected in frame `index` of shot `shot`:
    interpolated between two sightings of one fragment at most two survey intervals apart,
    else the nearest sighting of that shot less than `every` frames away; None when the
    person was not seen near that frame."""
    position = int(np.searchsorted(self.indices, index))
    before = position - 1 if position > 0 and self.shots[position - 1] == shot else None
    after = position if position < len(self.indices) and self.shots[position] == shot else None
    if after is not None and self.indices[after] == index:
      return self.boxes[after]
    if (before is not None and after is not None and self.parts[before] == self.parts[after]
        and self.indices[after] - self.indices[before] <= 2 * every):
      a, b = self.indices[before], self.indices[after]
      w = (index - a) / (b - a)
      return (1 - w) * self.boxes[before] + w * self.boxes[after]
    near = [(abs(self.indices[k] - index), k) for k in (before, after)
            if k is not None and abs(self.indices[k] - index) < every]
    return self.boxes[min(near)[1]] if near else None

  def describe(self, models: faces.FaceModels) -> np.ndarray | None:
    """The person's descriptor [128], computed now from its largest chip if it was not
    needed before (None without a chip or a descriptor model)."""
    if self.descriptor is None and models.describer is not None:
      chips = [f for f in self.fragments if f.chip is not None]
      if chips:
        best = max(chips, key=lambda f: f.chip_area)
        best.descriptor = descriptor(models, best.chip)
        self.descriptor = best.descriptor
    return self.descriptor


def people(fragments: list[Fragment], describe: Callable[[Fragment], np.ndarray | None],
           distance: float = 0.6) -> tuple[list[PersonTrack], int | None]:
  """Every person of a clip (PersonTrack, in order of first sighting, the main one marked)
  and the main one's index (None without fragments): fragments clustered by descriptor
  where that decides something (see the module docstring). `describe(fragment)` gives a
  fragment's descriptor [128] (None: unknown, the fragment stays a person of its own)."""
  if not fragments:
    return [], None
  n = len(fragments)
  best = max(f.score for f in fragments)
  partners = [[j for j in range(n) if j != i and not fragments[i].overlaps(fragments[j])] for i in range(n)]
  relevant = {i for i in range(n) if fragments[i].score + sum(fragments[j].score for j in partners[i]) >= best}
  compared = {i for i in relevant if any(j in relevant for j in partners[i])}
  compared |= {j for i in compared for j in partners[i]}  # whatever they could be merged with
  for i in sorted(compared):
    if fragments[i].descriptor is None:
      fragments[i].descriptor = describe(fragments[i])
  group = list(range(n))
  members = {i: [i] for i in range(n)}
  described = [i for i in sorted(compared) if fragments[i].descriptor is not None]
  pairs = sorted((float(np.linalg.norm(fragments[i].descriptor - fragments[j].descriptor)), i, j)
                 for a, i in enumerate(described) for j in described[a + 1:] if j in partners[i])
  for gap, i, j in pairs:
    a, b = group[i], group[j]
    if gap >= distance or a == b:
      continue
    if any(fragments[x].overlaps(fragments[y]) for x in members[a] for y in members[b]):
      continue
    for k in members.pop(b):
      group[k] = a
      members[a].append(k)
  tracks = sorted((PersonTrack.of([fragments[k] for k in sorted(m)]) for m in members.values()),
                  key=lambda t: t.indices[0])
  main = int(np.argmax([t.score for t in tracks]))
  tracks[main].main = True
  return tracks, main


class Recognizer:
  """The follow pass's question: which of a frame's detections is the main person?

  tracks: every person (`people`); main: the main one's index; every: the survey interval;
  shot_of(index): the shot of a frame. A detection is taken for a person without looking
  at it when it matches where that person is expected (the position prior, or the verdict
  on the face at the same place in the previous frame); a face that matches nobody is
  compared by descriptor with the people described so far (the main person's descriptor is
  computed when first needed): it is the main person when it is nearer to them than to
  anyone else and within `identity_distance`.
  """

  def __init__(self, tracks: list[PersonTrack], main: int, every: int, shot_of: Callable[[int], int],
               models: faces.FaceModels, options: faces.FaceOptions):
    self.tracks, self.main, self.every, self.shot_of = tracks, main, every, shot_of
    self.models, self.options = models, options
    self.descriptors = 0  # computed in this pass
    self._verdicts: tuple[int, list[tuple[np.ndarray, int | None]]] = (-2, [])  # (frame, [(box, person)])

  def expected(self, index: int) -> np.ndarray | None:
    """The main person's expected box [4] in frame `index`, or None."""
    return self.tracks[self.main].expected(index, self.every, self.shot_of(index))

  def _remembered(self, index: int, box: np.ndarray) -> int | None:
    """The verdict on the face at the same place in this frame or the one before (in the
    same shot): a person's index, STRANGER, or None (no verdict)."""
    frame, verdicts = self._verdicts
    if index - frame not in (0, 1) or self.shot_of(frame) != self.shot_of(index):
      return None
    for seen, person in verdicts:
      if faces.iou(seen, box[None])[0] >= (0.99 if frame == index else self.options.min_overlap):
        return person
    return None

  def _by_position(self, index: int, box: np.ndarray) -> int | None:
    """The person expected nearest to box [4] in frame `index`, within the position prior."""
    shot = self.shot_of(index)
    best = None
    for p, track in enumerate(self.tracks):
      expected = track.expected(index, self.every, shot)
      if expected is None or faces.same_person(expected, box[None], self.options.reentry_distance,
                                               self.options.reentry_scale) is None:
        continue
      gap = float(np.linalg.norm((box[:2] + box[2:]) / 2 - (expected[:2] + expected[2:]) / 2))
      best = min(best or (gap, p), (gap, p))
    return None if best is None else best[1]

  def _by_appearance(self, frame: np.ndarray, box: np.ndarray) -> int:
    """The person whose descriptor is nearest to the face in box [4], if within
    identity_distance, else STRANGER (people not described yet are not compared)."""
    main = self.tracks[self.main]
    if main.descriptor is None:
      self.descriptors += main.describe(self.models) is not None
    if main.descriptor is None:
      return STRANGER
    self.descriptors += 1
    face = descriptor(self.models, face_chip(self.models, frame, box))
    gap, person = min((float(np.linalg.norm(face - t.descriptor)), p)
                      for p, t in enumerate(self.tracks) if t.descriptor is not None)
    return person if gap < self.options.identity_distance else STRANGER

  def pick(self, index: int, frame: np.ndarray, boxes: np.ndarray) -> int | None:
    """Index of the main person's box among boxes [K, 4] found in frame `index` [H, W, 3],
    or None (also where the main person is not expected)."""
    expected = self.expected(index)
    if expected is None or len(boxes) == 0:
      return None
    people = []
    for box in boxes:
      person = self._remembered(index, box)
      people.append(self._by_position(index, box) if person is None else person)
    if self.main not in people and self.models.describer is not None:
      unknown = [k for k, person in enumerate(people) if person is None]
      for k in sorted(unknown, key=lambda k: -(boxes[k][2] - boxes[k][0])):  # the largest face first
        people[k] = self._by_appearance(frame, boxes[k])
        if people[k] == self.main:
          break
    earlier = self._verdicts[1] if self._verdicts[0] == index else []
    self._verdicts = (index, [(box, person) for box, person in zip(boxes, people) if person is not None] + earlier)
    mains = [k for k, person in enumerate(people) if person == self.main]
    if not mains:
      return None
    centre = (expected[:2] + expected[2:]) / 2
    return min(mains, key=lambda k: float(np.linalg.norm((boxes[k][:2] + boxes[k][2:]) / 2 - centre)))
