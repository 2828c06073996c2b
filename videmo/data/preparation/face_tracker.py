"""Following one face through a video: landmark tracking, detector confirmation, honest flags.

  * Acquisition (no face being tracked): the detector runs on the whole frame at the scales
    `detect_scales`, coarse to fine (the full frame only when the downscaled one finds
    nothing, and directly after a frame where nothing was found). Among the detections,
    the one that continues the track (IoU >= `min_overlap` with the last known face box) is
    kept, else the largest. Given a `plan` (the clip's main person, from a survey of the
    whole clip: clip_tracks.py), the tracker takes up only the face the plan says is the
    main person (identity.py: where they are expected, else by their descriptor), none
    where the main person is not expected (there the frame has no face), reuses the
    survey's whole-frame detections on the frames it surveyed, and drops the face it
    follows at each shot cut the survey found, searching the whole new shot at once.
  * Tracking between detections: the landmark model is run inside the box expected in the
    new frame (the previous box moved at the previous frame's velocity); the similarity
    transform from the landmarks at the last detection to the new ones moves the detection
    box to the new frame; this is repeated from the moved box until the box stops moving
    (at most 3 passes; a landmark pass costs ~0.25 ms, a full-frame detection 20-30 ms). A step is
    rejected (track lost) when the landmarks do not fit a similarity of the reference
    landmarks (`max_landmark_error`), or the face jumps, grows, shrinks or turns more than a
    face plausibly does in one frame, or leaves the frame.
  * Confirmation: every `redetect_every` frames, and when the track is lost, the detector
    runs on a small crop around the face's expected box, resized so the face is
    `roi_face_px` wide (cheap, and independent of the face's size); if that misses, on the
    whole frame. A detection that continues the track confirms it and restarts the track
    (so does one the survey made in that frame, at no cost). When the face is not found
    there (it left: a cut, an occlusion), the detector checks the tracked frames before it,
    last first (again on crops, and again with the face 0.85x as large: a face half out of
    the frame is found at some scales only), until it finds the face; at a cut and at the
    end of the video, likewise.

Honest flags: a frame counts as "face found" when the detector ran on it and found the
face, or when it was tracked from a detection and the detector found the tracked face again
in that frame or a later tracked one. Tracked frames are held back until then; those the
detector does not confirm are reported as *not found* (their crops discarded), so no frame
counts on the word of the landmark model alone. `redetect_every=1` runs the detector on
every frame.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Iterator, Protocol

import numpy as np

from videmo.data.preparation.faces import (AlignedFrame, FaceModels, FaceOptions, align_face, choose_face,
                                           detect_faces, detect_near, fit_similarity, iou, predict_landmarks,
                                           to_gray)

_LANDMARK_PASSES = 3      # at most this many landmark passes per tracked frame, each from the last box
_CONVERGED_SHIFT = 0.03   # ... stopping once a pass moves the box less than this (in face widths)
_SECOND_ZOOM = 0.85       # a missed confirmation looks again with the face this much smaller


class Plan(Protocol):
  """What the tracker needs to know about the face to follow (clip_tracks.MainFacePlan)."""

  def expected(self, index: int) -> np.ndarray | None:
    """The box [4] where the face to follow is expected in frame `index`, or None."""

  def is_cut(self, index: int) -> bool:
    """Whether frame `index` starts a new shot."""

  def detections(self, index: int) -> np.ndarray | None:
    """Whole-frame detections [K, 4] already made in frame `index`, or None."""

  def pick(self, index: int, frame: np.ndarray, boxes: np.ndarray) -> int | None:
    """Index of the face to follow among boxes [K, 4] of frame `index`, or None."""


def _move_box(box: np.ndarray, scale: float, angle: float, translation: np.ndarray) -> np.ndarray:
  """The axis-aligned box of the same size ratio whose centre follows the similarity."""
  centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
  z = scale * np.exp(1j * angle) * (centre[0] + 1j * centre[1])
  new_centre = np.array([z.real, z.imag]) + translation
  half = np.array([box[2] - box[0], box[3] - box[1]]) * scale / 2
  return np.concatenate([new_centre - half, new_centre + half])


def _eye_distance(points: np.ndarray) -> float:
  return float(np.linalg.norm(points[0:2].mean(0) - points[2:4].mean(0)))


@dataclasses.dataclass
class _Track:
  """The followed face: its box now, and the detection it is referenced to."""

  ref_box: np.ndarray     # [4] box of the last detection
  ref_points: np.ndarray  # [5, 2] landmarks at the last detection
  box: np.ndarray         # [4] box in the latest frame
  velocity: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(4))  # box change per frame
  scale: float = 1.0      # similarity from the reference to the latest frame
  angle: float = 0.0
  since_detection: int = 0

  def predicted(self) -> np.ndarray:
    """The box expected in the next frame (constant velocity)."""
    return self.box + self.velocity


class FaceTracker:
  """Follows one face through a video; `align_video` is the simple way to use it.

  `step(index, frame)` takes frames in order and returns the frames whose outcome is settled
  (a list of AlignedFrame, in order; tracked frames wait for their confirmation);
  `finish()` settles the rest. Frames must come in order, one at a time; the tracker keeps
  the frames waiting for confirmation (at most `redetect_every - 1`) by reference, so do
  not overwrite a frame's array in place before it is settled.

  `plan`, when given (a `Plan`, clip_tracks.py), says which face to follow: the tracker
  then takes up only the face it picks (not the first or largest one), none where it
  expects no face, and starts afresh at each of its shot cuts.
  """

  def __init__(self, models: FaceModels, options: FaceOptions = FaceOptions(), plan: Plan | None = None):
    self.models = models
    self.options = options
    self.plan = plan
    self._track: _Track | None = None
    self._last_box: np.ndarray | None = None  # last known face box, kept across track losses
    self._pending: list[AlignedFrame] = []    # tracked frames awaiting a confirmation
    self._pending_views: list[tuple[np.ndarray, np.ndarray]] = []  # their (pixels, face box)
    self._searched_in_vain = False  # the last whole-frame search found no face

  # Detection -----------------------------------------------------------------------------

  def _pick(self, index: int, frame: np.ndarray, boxes: np.ndarray, previous: np.ndarray | None) -> int | None:
    """The detection in boxes [K, 4] to take up in frame `index`: without a plan, the one
    continuing `previous` (IoU >= min_overlap) else the largest; with one, the one the plan
    picks (none where it expects no face)."""
    if self.plan is None:
      return choose_face(boxes, previous, self.options.min_overlap)
    return self.plan.pick(index, frame, boxes)

  def _detect_full(self, frame: np.ndarray, index: int = 0) -> np.ndarray:
    """Face boxes on the whole frame, coarse scales first: [K, 4] (the plan's own
    detections where it made them in this frame).

    After a search that found nothing, only the finest scale runs: it finds every face the
    coarser ones would (dlib scans an image pyramid downwards from it), and a face that
    appears after a face-free frame is rarely a large one."""
    surveyed = None if self.plan is None else self.plan.detections(index)
    if surveyed is not None:
      self._searched_in_vain = len(surveyed) == 0
      return surveyed
    gray = to_gray(frame)
    scales = self.options.detect_scales[-1:] if self._searched_in_vain else self.options.detect_scales
    found = []
    for scale in scales:
      boxes = detect_faces(self.models, gray, scale)
      found.append(boxes)
      if self.plan is not None:
        if self._pick(index, frame, boxes, None) is not None:
          break
      elif len(boxes) and (self._last_box is None
                           or iou(self._last_box, boxes).max() >= self.options.min_overlap):
        break
    boxes = np.concatenate(found)
    self._searched_in_vain = len(boxes) == 0
    return boxes

  def _detect_near(self, frame: np.ndarray, box: np.ndarray, zoom: float = 1.0) -> np.ndarray:
    """Face boxes in a crop around `box`, resized so the face is zoom x roi_face_px wide: [K, 4]."""
    return detect_near(self.models, frame, box, zoom * self.options.roi_face_px, self.options.roi_margin)

  # Track updates ---------------------------------------------------------------------------

  def _start(self, index: int, frame: np.ndarray, box: np.ndarray) -> AlignedFrame:
    shape, points = predict_landmarks(self.models, frame, box)
    self._track = _Track(ref_box=box, ref_points=points, box=box)
    self._last_box = box
    return AlignedFrame(index, align_face(frame, shape, self.options), True, True, np.asarray(box, np.float64))

  def _follow(self, frame: np.ndarray):
    """One tracking step: (shape, new box) or None when the step is implausible."""
    track, options = self._track, self.options
    box, shape = track.predicted(), None
    for _ in range(_LANDMARK_PASSES):
      shape, points = predict_landmarks(self.models, frame, box)
      scale, angle, translation, residual = fit_similarity(track.ref_points, points)
      box, previous = _move_box(track.ref_box, scale, angle, translation), box
      if np.abs(box - previous).max() < _CONVERGED_SHIFT * (box[2] - box[0]):
        break
    eye_distance = max(_eye_distance(track.ref_points) * scale, 1.0)
    step_scale = scale / track.scale
    old_centre = (track.box[:2] + track.box[2:]) / 2
    centre = (box[:2] + box[2:]) / 2
    height, width = frame.shape[:2]
    turn = np.degrees(np.angle(np.exp(1j * (angle - track.angle))))
    ok = (residual <= options.max_landmark_error * eye_distance
          and 1.0 / options.max_step_scale <= step_scale <= options.max_step_scale
          and np.linalg.norm(centre - old_centre) <= options.max_step_shift * (box[2] - box[0])
          and abs(turn) <= options.max_step_rotation
          and 0 <= centre[0] < width and 0 <= centre[1] < height)
    if not ok:
      return None
    track.velocity = box - track.box
    track.scale, track.angle = scale, angle
    return shape, box

  def _settle_pending(self, confirmed: int) -> list[AlignedFrame]:
    """The waiting frames: the first `confirmed` keep their face, the rest are not found."""
    settled = self._pending[:confirmed] + [AlignedFrame(f.index, None, False, False)
                                           for f in self._pending[confirmed:]]
    self._pending, self._pending_views = [], []
    return settled

  def _continues(self, box: np.ndarray, boxes: np.ndarray) -> int | None:
    """Index of the detection in boxes [K, 4] that continues the track around `box`."""
    pick = choose_face(boxes, box, self.options.min_overlap)
    if pick is None or iou(box, boxes[pick:pick + 1])[0] < self.options.min_overlap:
      return None
    return pick

  def _pending_confirmed(self) -> int:
    """How many of the waiting frames the detector confirms: it looks for the tracked face
    in the last of them, then (if it misses) in the one before, and so on; the frames up to
    the last one where it finds the face are confirmed. A face half out of the frame (one
    walking out) is found by HOG at some scales and not others, so a miss is tried again
    with the face 0.85x as large in the crop."""
    for count in range(len(self._pending_views), 0, -1):
      frame, box = self._pending_views[count - 1]
      for zoom in (1.0, _SECOND_ZOOM):
        if self._continues(box, self._detect_near(frame, box, zoom)) is not None:
          return count
    return 0

  def _confirm(self, index: int, frame: np.ndarray, box: np.ndarray) -> list[AlignedFrame]:
    """Re-detect the face expected at `box` in frame `index`: near it, then on the whole
    frame. Settles the waiting frames and restarts the track from the detection."""
    boxes = self._detect_near(frame, box)
    pick = self._continues(box, boxes)
    if pick is None:
      self._last_box = box
      boxes = self._detect_full(frame, index)
      pick = self._continues(box, boxes)
    if pick is not None:
      return self._settle_pending(confirmed=len(self._pending)) + [self._start(index, frame, boxes[pick])]
    # The face is not here (a cut, an occlusion, or the track drifted): the waiting frames
    # count up to the last one where the detector finds the face.
    settled = self._settle_pending(confirmed=self._pending_confirmed())
    pick = self._pick(index, frame, boxes, None)  # another face, if any: the largest (or the plan's)
    if pick is None:
      self._track = None
      return settled + [AlignedFrame(index, None, False, False)]
    return settled + [self._start(index, frame, boxes[pick])]

  def _acquire(self, index: int, frame: np.ndarray) -> list[AlignedFrame]:
    """Looks for the face to follow on the whole frame `index` (no face is tracked)."""
    if self.plan is not None and self.plan.expected(index) is None:
      return [AlignedFrame(index, None, False, False)]  # the face followed is not in this frame
    boxes = self._detect_full(frame, index)
    pick = self._pick(index, frame, boxes, self._last_box)
    if pick is None:
      return [AlignedFrame(index, None, False, False)]
    return [self._start(index, frame, boxes[pick])]

  # Public ----------------------------------------------------------------------------------

  def step(self, index: int, frame: np.ndarray) -> list[AlignedFrame]:
    """Process frame `index` [H, W, 3] uint8; returns the frames settled so far, in order."""
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
      raise ValueError(f"frames must be RGB uint8 [H, W, 3], got {frame.dtype} {frame.shape}")
    frame = np.ascontiguousarray(frame)
    if self.plan is not None and self.plan.is_cut(index):
      self._searched_in_vain = False
      if self._track is not None:  # a new shot: the face is looked for on the whole frame at once
        return self.finish() + self._acquire(index, frame)
    if self._track is None:
      return self._acquire(index, frame)
    surveyed = None if self.plan is None else self.plan.detections(index)
    pick = None if surveyed is None else self._continues(self._track.predicted(), surveyed)
    if pick is not None:  # the survey's detector already found the face here: a free confirmation
      return self._settle_pending(confirmed=len(self._pending)) + [self._start(index, frame, surveyed[pick])]
    moved = self._follow(frame)
    track = self._track
    if moved is not None and track.since_detection + 1 < self.options.redetect_every:
      shape, box = moved
      track.box, self._last_box = box, box
      track.since_detection += 1
      self._pending.append(AlignedFrame(index, align_face(frame, shape, self.options), True, False,
                                        np.asarray(box, np.float64)))
      self._pending_views.append((frame, box))
      return []
    return self._confirm(index, frame, moved[1] if moved is not None else track.predicted())

  def finish(self) -> list[AlignedFrame]:
    """Settles the frames still waiting for a confirmation (the detector looks for the face
    in them, last first)."""
    settled = self._settle_pending(confirmed=self._pending_confirmed())
    self._track = None
    return settled


def align_video(frames: Iterable[np.ndarray], models: FaceModels, options: FaceOptions = FaceOptions(),
                plan: Plan | None = None) -> Iterator[AlignedFrame]:
  """The aligned face of every frame of a video, in order (see the module docstring), in one
  pass: frames are taken one at a time and not kept once settled.

  frames: RGB frames [H, W, 3] uint8. plan: see FaceTracker (None: the first face found,
  followed; `clip_tracks.align_main_face` surveys the clip first and follows its main person).
  Yields one AlignedFrame per frame; its `face` is [options.face_size, options.face_size, 3]
  uint8, or None when no face was found.
  """
  tracker = FaceTracker(models, options, plan)
  for index, frame in enumerate(frames):
    yield from tracker.step(index, frame)
  yield from tracker.finish()
