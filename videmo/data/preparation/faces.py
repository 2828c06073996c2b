"""Faces in a frame: dlib HOG detection, 5-point landmarks, aligned crops, and their options.

The paper (Sec. 4.1) keeps the face that dlib finds in each frame, aligned frontal at
256x256. This module holds the per-frame parts; `face_tracker.py` follows a face through a
video, `clip_tracks.py` chooses the clip's main person, `identity.py` tells people apart.

  * Detector: dlib's HOG frontal face detector (`dlib-bin` wheels). Landmarks: the 5-point
    model `shape_predictor_5_face_landmarks.dat` of the `face-recognition-models` package.
    Alignment: `dlib.get_face_chip(frame, landmarks, size, padding)` (a similarity warp that
    puts eyes and nose at fixed places; `canonical_landmarks` says where). Identity: the
    128-d face descriptor `dlib_face_recognition_resnet_model_v1.dat` of the same package
    (`identity.py`).
  * Whole-frame detection runs at the scales `detect_scales`, coarse to fine (default 0.5
    then 1.0: a downscaled frame first, which finds faces >= ~160 px at a quarter of the
    cost; the full frame when that finds nothing). Boxes are mapped back to full-frame pixels.

Boxes are float arrays [4] = (left, top, right, bottom) in full-frame pixels; landmarks are
[5, 2] (x, y) in dlib's 5-point order: right eye outer, right eye inner, left eye outer,
left eye inner, nose base (subject's right/left).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

LANDMARK_MODEL = "shape_predictor_5_face_landmarks.dat"
DESCRIPTOR_MODEL = "dlib_face_recognition_resnet_model_v1.dat"

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
  survey_every: the main person of a clip is chosen from whole-frame detections every this
    many frames and at every shot cut, over the whole clip (clip_tracks.py); 0 follows the
    first face found instead (no survey, no cut detection, no descriptors).
  reentry_distance: the position prior: a face is taken for a person without looking at it
    when its centre is within this many face widths of where that person is expected ...
  reentry_scale: ... and its size is within this factor of the expected size; other faces
    are told apart by their descriptors (identity.py).
  cut_threshold: a frame starts a new shot when the colour histogram of a small copy of it
    differs from the previous frame's by more than this (total variation, 0..1) and 3x
    more than over the previous frames (shot_cuts.py; 1: no cuts).
  identity_distance: two face descriptors closer than this are the same person (dlib's
    documented threshold for its 128-d descriptor is 0.6).
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
  reentry_scale: float = 1.75
  cut_threshold: float = 0.15
  identity_distance: float = 0.6

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
    if not 0.0 < self.cut_threshold <= 1.0:
      raise ValueError(f"FaceOptions.cut_threshold must be in (0, 1] (1: no cuts), got {self.cut_threshold}")
    if not 0.0 < self.identity_distance < 2.0:
      raise ValueError(f"FaceOptions.identity_distance must be in (0, 2), got {self.identity_distance}")


class FaceModels(NamedTuple):
  """dlib's HOG face detector, the 5-point shape predictor and the face descriptor network
  (load once per process; `describer` None: people are told apart by position only)."""

  detector: object
  predictor: object
  describer: object = None


class AlignedFrame(NamedTuple):
  """One video frame's outcome: its index, the aligned face [S, S, 3] uint8 (None when no
  face was found), whether a face was found, whether the detector itself found it (False
  for confirmed tracked frames), and the face's box [4] (x0, y0, x1, y1) in the frame's
  pixels (None when no face was found)."""

  index: int
  face: np.ndarray | None
  found: bool
  detected: bool
  box: np.ndarray | None = None


def _package_model(name: str, what: str) -> Path:
  spec = importlib.util.find_spec("face_recognition_models")
  if spec is None or not spec.submodule_search_locations:
    raise FileNotFoundError("the face-recognition-models package is not installed "
                            f"(pip install face-recognition-models); videmo needs its {what}")
  path = Path(list(spec.submodule_search_locations)[0]) / "models" / name
  if not path.is_file():
    raise FileNotFoundError(f"{path}: {what} missing from the face-recognition-models package; reinstall it")
  return path


def landmark_model_path() -> Path:
  """Path of the 5-point landmark model inside the installed face-recognition-models package."""
  return _package_model(LANDMARK_MODEL, "5-point landmark model")


def descriptor_model_path() -> Path:
  """Path of dlib's 128-d face descriptor network inside the face-recognition-models package."""
  return _package_model(DESCRIPTOR_MODEL, "face descriptor model")


def load_face_models(landmark_path: str | os.PathLike | None = None, describe: bool = True) -> FaceModels:
  """dlib's frontal face detector, the 5-point predictor and (describe=True) the face
  descriptor network (about 0.2 s; do it once per process)."""
  import dlib

  path = Path(landmark_path) if landmark_path is not None else landmark_model_path()
  describer = dlib.face_recognition_model_v1(os.fspath(descriptor_model_path())) if describe else None
  return FaceModels(dlib.get_frontal_face_detector(), dlib.shape_predictor(os.fspath(path)), describer)


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


def detect_near(models: FaceModels, frame: np.ndarray, box: np.ndarray, face_px: float = 100.0,
                margin: float = 0.5) -> np.ndarray:
  """Face boxes [K, 4] (frame pixels) in a crop of frame [H, W, 3] around box [4], extending
  `margin` face widths beyond it, resized so the face is `face_px` wide (a crop costs a
  fraction of a whole-frame search, whatever the face's size)."""
  height, width = frame.shape[:2]
  face_width = max(box[2] - box[0], 1.0)
  left, top = int(max(0, np.floor(box[0] - margin * face_width))), int(max(0, np.floor(box[1] - margin * face_width)))
  right = int(min(width, np.ceil(box[2] + margin * face_width)))
  bottom = int(min(height, np.ceil(box[3] + margin * face_width)))
  if right - left < 8 or bottom - top < 8:
    return np.zeros((0, 4))
  gray = to_gray(np.ascontiguousarray(frame[top:bottom, left:right]))
  boxes = detect_faces(models, gray, face_px / face_width)
  return boxes + np.array([left, top, left, top], np.float64)


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
