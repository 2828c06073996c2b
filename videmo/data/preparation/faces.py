"""Faces in a video: dlib HOG detection, 5-point landmarks, one face track, aligned crops.

The paper (Sec. 4.1) keeps the face that dlib finds in each frame, aligned frontal at
256x256. This module does that, fast enough for whole datasets:

  * Detector: dlib's HOG frontal face detector (`dlib-bin` wheels). Landmarks: the 5-point
    model `shape_predictor_5_face_landmarks.dat` of the `face-recognition-models` package.
    Alignment: `dlib.get_face_chip(frame, landmarks, size, padding)` (a similarity warp that
    puts eyes and nose at fixed places; `canonical_landmarks` says where).
  * Acquisition (no face being tracked): the detector runs on the whole frame at the scales
    `detect_scales`, coarse to fine (default 0.5 then 1.0: a downscaled frame first, which
    finds faces >= ~160 px at a quarter of the cost; the full frame only when that finds
    nothing, and directly after a frame where nothing was found). Boxes are mapped back to
    full-frame pixels.
  * One face track per video: among the detections, the one that continues the track
    (IoU >= `min_overlap` with the last known face box) is kept, else the largest. Given a
    `target` (the main face's expected box per frame, from a survey of the whole clip:
    `clip_tracks.py`), the tracker only takes up the face that matches it (centre within
    `reentry_distance` face widths, size within `reentry_scale`), and none where the main
    face is not expected: there the frame has no face.
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
    whole frame. A detection that continues the track confirms it and restarts the track.
    When the face is not found there (it left: a cut, an occlusion), the detector checks the
    tracked frames before it, last first (again on crops), until it finds the face; at the
    end of the video, likewise.

Honest flags: a frame counts as "face found" when the detector ran on it and found the
face, or when it was tracked from a detection and the detector found the tracked face again
in that frame or a later tracked one. Tracked frames are held back until then; those the
detector does not confirm are reported as *not found* (their crops discarded), so no frame
counts on the word of the landmark model alone. `redetect_every=1` runs the detector on
every frame.

Boxes are float arrays [4] = (left, top, right, bottom) in full-frame pixels; landmarks are
[5, 2] (x, y) in dlib's 5-point order: right eye outer, right eye inner, left eye outer,
left eye inner, nose base (subject's right/left).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from pathlib import Path
from typing import Callable, Iterable, Iterator, NamedTuple

import numpy as np

LANDMARK_MODEL = "shape_predictor_5_face_landmarks.dat"
_LANDMARK_PASSES = 3      # at most this many landmark passes per tracked frame, each from the last box
_CONVERGED_SHIFT = 0.03   # ... stopping once a pass moves the box less than this (in face widths)

# dlib's template for the 5-point model in a unit square without padding (dlib's
# get_face_chip_details, interpolation.h): where get_face_chip puts the 5 landmarks.
_TEMPLATE_5 = np.array([
    [0.8595674595992, 0.2134981538014],
    [0.6460604764104, 0.2289674387677],
    [0.1205750620789, 0.2137274526848],
    [0.3340850613712, 0.2290642403242],
    [0.4901123135679, 0.6277975316475],
])


@dataclasses.dataclass(frozen=True)
class FaceOptions:
  """How faces are found, followed and cropped. Defaults reproduce the paper's 256x256 crops.

  face_size: side of the aligned crop in pixels (paper: 256).
  padding: dlib's crop padding around the landmark template (0.25 = dlib's default).
  detect_scales: frame scales the detector tries, coarse to fine, when no face is tracked; the
    first scale with a detection wins (finer scales are still tried when the detections
    found do not continue a recently lost track). The HOG window is 80 px, so a scale s
    finds faces of >= ~80/s px; 2.0 finds small faces (like dlib's upsample=1).
  redetect_every: the detector confirms the tracked face every this many frames (1: every
    frame, no landmark-only frames).
  roi_face_px: the tracked face's width in the re-detection crop.
  roi_margin: the re-detection crop extends this many face widths beyond the face box.
  min_overlap: IoU above which a detection continues the track.
  max_landmark_error: largest RMS residual of the similarity fit of the landmarks, in
    inter-ocular distances, for a tracking step to be accepted.
  max_step_scale: largest face size ratio between consecutive frames while tracking.
  max_step_shift: largest move of the face between consecutive frames, in face widths.
  max_step_rotation: largest in-plane rotation between consecutive frames, in degrees.
  survey_every: the main face of a clip is chosen from a whole-frame detection every this
    many frames, over the whole clip (clip_tracks.py); 0 follows the first face found instead.
  reentry_distance: a face seen again (after a gap, or a survey interval later) is the same
    person when its centre is within this many face widths of where that person was last ...
  reentry_scale: ... and its size is within this factor of that person's last size.
  """

  face_size: int = 256
  padding: float = 0.25
  detect_scales: tuple[float, ...] = (0.5, 1.0)
  redetect_every: int = 5
  roi_face_px: int = 100
  roi_margin: float = 0.5
  min_overlap: float = 0.3
  max_landmark_error: float = 0.2
  max_step_scale: float = 1.25
  max_step_shift: float = 0.5
  max_step_rotation: float = 20.0
  survey_every: int = 10
  reentry_distance: float = 1.0
  reentry_scale: float = 1.5

  def __post_init__(self):
    if self.face_size < 16:
      raise ValueError(f"FaceOptions.face_size must be >= 16, got {self.face_size}")
    if not 0.0 <= self.padding <= 2.0:
      raise ValueError(f"FaceOptions.padding must be in [0, 2], got {self.padding}")
    scales = tuple(sorted(float(s) for s in self.detect_scales))  # coarse to fine
    if not scales or any(not 0.1 <= s <= 4.0 for s in scales):
      raise ValueError("FaceOptions.detect_scales must be a non-empty list of scales in [0.1, 4], "
                       f"got {self.detect_scales}")
    object.__setattr__(self, "detect_scales", scales)
    if self.redetect_every < 1:
      raise ValueError(f"FaceOptions.redetect_every must be >= 1, got {self.redetect_every}")
    if self.roi_face_px < 80:
      raise ValueError(f"FaceOptions.roi_face_px must be >= 80 (dlib's HOG window), got {self.roi_face_px}")
    if not 0.0 < self.min_overlap < 1.0:
      raise ValueError(f"FaceOptions.min_overlap must be in (0, 1), got {self.min_overlap}")
    if self.max_step_scale <= 1.0:
      raise ValueError(f"FaceOptions.max_step_scale must be > 1, got {self.max_step_scale}")
    if self.survey_every < 0:
      raise ValueError(f"FaceOptions.survey_every must be >= 0 (0: no survey), got {self.survey_every}")
    if self.reentry_distance <= 0:
      raise ValueError(f"FaceOptions.reentry_distance must be > 0, got {self.reentry_distance}")
    if self.reentry_scale <= 1.0:
      raise ValueError(f"FaceOptions.reentry_scale must be > 1, got {self.reentry_scale}")


class FaceModels(NamedTuple):
  """dlib's HOG face detector and the 5-point shape predictor (load once per process)."""

  detector: object
  predictor: object


class AlignedFrame(NamedTuple):
  """One video frame's outcome: its index, the aligned face [S, S, 3] uint8 (None when no
  face was found), whether a face was found, and whether the detector itself found it
  (False for confirmed tracked frames)."""

  index: int
  face: np.ndarray | None
  found: bool
  detected: bool


def landmark_model_path() -> Path:
  """Path of the 5-point landmark model inside the installed face-recognition-models package."""
  spec = importlib.util.find_spec("face_recognition_models")
  if spec is None or not spec.submodule_search_locations:
    raise FileNotFoundError("the face-recognition-models package is not installed "
                            "(pip install face-recognition-models); videmo needs its 5-point landmark model")
  path = Path(list(spec.submodule_search_locations)[0]) / "models" / LANDMARK_MODEL
  if not path.is_file():
    raise FileNotFoundError(f"{path}: landmark model missing from the face-recognition-models package; reinstall it")
  return path


def load_face_models(landmark_path: str | os.PathLike | None = None) -> FaceModels:
  """dlib's frontal face detector and the 5-point predictor (about 0.1 s; do it once per process)."""
  import dlib

  path = Path(landmark_path) if landmark_path is not None else landmark_model_path()
  return FaceModels(dlib.get_frontal_face_detector(), dlib.shape_predictor(os.fspath(path)))


def canonical_landmarks(size: int = 256, padding: float = 0.25) -> np.ndarray:
  """Where `get_face_chip` puts the 5 landmarks in a size x size crop: [5, 2] (x, y) pixels."""
  return (_TEMPLATE_5 + padding) / (1.0 + 2.0 * padding) * size


def to_gray(frame: np.ndarray) -> np.ndarray:
  """Luma [H, W] uint8 of an RGB frame [H, W, 3] uint8 (the HOG detector works on luma)."""
  from PIL import Image

  return np.asarray(Image.fromarray(frame).convert("L"))


def _resize(gray: np.ndarray, scale: float) -> np.ndarray:
  from PIL import Image

  if scale == 1.0:
    return gray
  height, width = gray.shape
  size = (max(1, round(width * scale)), max(1, round(height * scale)))
  image = Image.fromarray(gray)
  if scale == 0.5:
    return np.asarray(image.reduce(2))
  return np.asarray(image.resize(size, Image.BILINEAR))


def detect_faces(models: FaceModels, gray: np.ndarray, scale: float = 1.0) -> np.ndarray:
  """Face boxes found by the HOG detector on `gray` [H, W] resized by `scale`: [K, 4] in
  the pixels of `gray` (left, top, right, bottom)."""
  image = np.ascontiguousarray(_resize(gray, scale))
  rects = models.detector(image, 0)
  boxes = np.array([[r.left(), r.top(), r.right() + 1, r.bottom() + 1] for r in rects], np.float64)
  return boxes.reshape(-1, 4) / scale


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
  """Intersection over union of one box [4] with boxes [K, 4]: [K]."""
  boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
  left = np.maximum(box[0], boxes[:, 0])
  top = np.maximum(box[1], boxes[:, 1])
  right = np.minimum(box[2], boxes[:, 2])
  bottom = np.minimum(box[3], boxes[:, 3])
  inter = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
  area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
  return inter / np.maximum(area(box) + area(boxes) - inter, 1e-9)


def choose_face(boxes: np.ndarray, previous: np.ndarray | None, min_overlap: float = 0.3) -> int | None:
  """Index of the box to keep in boxes [K, 4]: the one that continues the track (largest
  IoU with `previous` [4], if >= min_overlap), else the largest; None when K = 0."""
  if len(boxes) == 0:
    return None
  if previous is not None:
    overlaps = iou(previous, boxes)
    best = int(np.argmax(overlaps))
    if overlaps[best] >= min_overlap:
      return best
  areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
  return int(np.argmax(areas))


def same_person(box: np.ndarray, boxes: np.ndarray, distance: float = 1.0, scale: float = 1.5) -> int | None:
  """Index of the box in boxes [K, 4] that is the face `box` [4] seen again: the nearest
  whose centre lies within `distance` face widths (the larger of the two) of `box`'s and
  whose width is within a factor `scale` of it; None when none is."""
  boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
  if len(boxes) == 0:
    return None
  width = box[2] - box[0]
  widths = boxes[:, 2] - boxes[:, 0]
  gaps = np.linalg.norm((boxes[:, :2] + boxes[:, 2:]) / 2 - (box[:2] + box[2:]) / 2, axis=1)
  ratio = np.maximum(widths, width) / np.maximum(np.minimum(widths, width), 1e-9)
  ok = (gaps <= distance * np.maximum(widths, width)) & (ratio <= scale)
  if not ok.any():
    return None
  return int(np.argmin(np.where(ok, gaps, np.inf)))


def predict_landmarks(models: FaceModels, frame: np.ndarray, box: np.ndarray):
  """dlib's 5-point landmarks of the face in box [4] of frame [H, W, 3]: (shape, [5, 2])."""
  import dlib

  rect = dlib.rectangle(int(round(box[0])), int(round(box[1])), int(round(box[2])) - 1, int(round(box[3])) - 1)
  shape = models.predictor(frame, rect)
  points = np.array([[p.x, p.y] for p in shape.parts()], np.float64)
  return shape, points


def align_face(frame: np.ndarray, shape, options: FaceOptions) -> np.ndarray:
  """The aligned face crop [S, S, 3] uint8 of frame [H, W, 3] given dlib's 5-point shape."""
  import dlib

  return dlib.get_face_chip(frame, shape, size=options.face_size, padding=options.padding)


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> tuple[float, float, np.ndarray, float]:
  """Least-squares similarity dst ~ s R src + t for points [N, 2] (Umeyama).

  Returns (scale s, rotation angle in radians, translation [2], RMS residual in pixels)."""
  src_mean, dst_mean = src.mean(0), dst.mean(0)
  a, b = src - src_mean, dst - dst_mean
  # Complex-number form of the 2-D similarity: b ~ z * a with z = s e^{i theta}.
  za = a[:, 0] + 1j * a[:, 1]
  zb = b[:, 0] + 1j * b[:, 1]
  z = np.vdot(za, zb) / max(np.vdot(za, za).real, 1e-12)
  pred = z * za
  residual = float(np.sqrt(np.mean(np.abs(zb - pred) ** 2)))
  scale, angle = float(abs(z)), float(np.angle(z))
  rotated = z * (src_mean[0] + 1j * src_mean[1])
  translation = dst_mean - np.array([rotated.real, rotated.imag])
  return scale, angle, translation, residual


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

  `target(index)`, when given, is the box [4] where the face to follow is expected in frame
  `index`, or None where it is not expected: the tracker then takes up only that face (not
  the first or largest one), and none where it is not expected (clip_tracks.py).
  """

  def __init__(self, models: FaceModels, options: FaceOptions = FaceOptions(),
               target: Callable[[int], np.ndarray | None] | None = None):
    self.models = models
    self.options = options
    self.target = target
    self._track: _Track | None = None
    self._last_box: np.ndarray | None = None  # last known face box, kept across track losses
    self._pending: list[AlignedFrame] = []    # tracked frames awaiting a confirmation
    self._pending_views: list[tuple[np.ndarray, np.ndarray]] = []  # their (pixels, face box)
    self._searched_in_vain = False  # the last whole-frame search found no face

  # Detection -----------------------------------------------------------------------------

  def _pick(self, index: int, boxes: np.ndarray, previous: np.ndarray | None) -> int | None:
    """The detection in boxes [K, 4] to take up in frame `index`: without a target, the one
    continuing `previous` (IoU >= min_overlap) else the largest; with one, the one matching
    the target's box there (none where the target is not expected)."""
    if self.target is None:
      return choose_face(boxes, previous, self.options.min_overlap)
    expected = self.target(index)
    if expected is None:
      return None
    return same_person(expected, boxes, self.options.reentry_distance, self.options.reentry_scale)

  def _detect_full(self, frame: np.ndarray, index: int = 0) -> np.ndarray:
    """Face boxes on the whole frame, coarse scales first: [K, 4].

    After a search that found nothing, only the finest scale runs: it finds every face the
    coarser ones would (dlib scans an image pyramid downwards from it), and a face that
    appears after a face-free frame is rarely a large one."""
    gray = to_gray(frame)
    scales = self.options.detect_scales[-1:] if self._searched_in_vain else self.options.detect_scales
    found = []
    for scale in scales:
      boxes = detect_faces(self.models, gray, scale)
      found.append(boxes)
      if self.target is not None:
        if self._pick(index, boxes, None) is not None:
          break
      elif len(boxes) and (self._last_box is None
                           or iou(self._last_box, boxes).max() >= self.options.min_overlap):
        break
    boxes = np.concatenate(found)
    self._searched_in_vain = len(boxes) == 0
    return boxes

  def _detect_near(self, frame: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Face boxes in a crop around `box`, resized so the face is roi_face_px wide: [K, 4]."""
    height, width = frame.shape[:2]
    face_width = max(box[2] - box[0], 1.0)
    margin = self.options.roi_margin * face_width
    left, top = int(max(0, np.floor(box[0] - margin))), int(max(0, np.floor(box[1] - margin)))
    right, bottom = int(min(width, np.ceil(box[2] + margin))), int(min(height, np.ceil(box[3] + margin)))
    if right - left < 8 or bottom - top < 8:
      return np.zeros((0, 4))
    gray = to_gray(np.ascontiguousarray(frame[top:bottom, left:right]))
    boxes = detect_faces(self.models, gray, self.options.roi_face_px / face_width)
    return boxes + np.array([left, top, left, top], np.float64)

  # Track updates ---------------------------------------------------------------------------

  def _start(self, index: int, frame: np.ndarray, box: np.ndarray) -> AlignedFrame:
    shape, points = predict_landmarks(self.models, frame, box)
    self._track = _Track(ref_box=box, ref_points=points, box=box)
    self._last_box = box
    return AlignedFrame(index, align_face(frame, shape, self.options), True, True)

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
    the last one where it finds the face are confirmed."""
    for count in range(len(self._pending_views), 0, -1):
      frame, box = self._pending_views[count - 1]
      if self._continues(box, self._detect_near(frame, box)) is not None:
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
    pick = self._pick(index, boxes, None)  # another face, if any: the largest (or the target's)
    if pick is None:
      self._track = None
      return settled + [AlignedFrame(index, None, False, False)]
    return settled + [self._start(index, frame, boxes[pick])]

  # Public ----------------------------------------------------------------------------------

  def step(self, index: int, frame: np.ndarray) -> list[AlignedFrame]:
    """Process frame `index` [H, W, 3] uint8; returns the frames settled so far, in order."""
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
      raise ValueError(f"frames must be RGB uint8 [H, W, 3], got {frame.dtype} {frame.shape}")
    frame = np.ascontiguousarray(frame)
    if self._track is None:
      if self.target is not None and self.target(index) is None:
        return [AlignedFrame(index, None, False, False)]  # the face followed is not in this frame
      boxes = self._detect_full(frame, index)
      pick = self._pick(index, boxes, self._last_box)
      if pick is None:
        return [AlignedFrame(index, None, False, False)]
      return [self._start(index, frame, boxes[pick])]
    moved = self._follow(frame)
    track = self._track
    if moved is not None and track.since_detection + 1 < self.options.redetect_every:
      shape, box = moved
      track.box, self._last_box = box, box
      track.since_detection += 1
      self._pending.append(AlignedFrame(index, align_face(frame, shape, self.options), True, False))
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
                target: Callable[[int], np.ndarray | None] | None = None) -> Iterator[AlignedFrame]:
  """The aligned face of every frame of a video, in order (see the module docstring), in one
  pass: frames are taken one at a time and not kept once settled.

  frames: RGB frames [H, W, 3] uint8. target: see FaceTracker (None: the first face found,
  followed; `clip_tracks.align_main_face` surveys the clip first and follows its main face).
  Yields one AlignedFrame per frame; its `face` is [options.face_size, options.face_size, 3]
  uint8, or None when no face was found.
  """
  tracker = FaceTracker(models, options, target)
  for index, frame in enumerate(frames):
    yield from tracker.step(index, frame)
  yield from tracker.finish()
