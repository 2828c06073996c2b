"""SynthEmo: seeded procedural face videos whose emotion, its timing and its place are known.

AFEW is licensed and the VGG-Face weights are a separate download, so videmo ships this
renderer to run end to end the minute it is installed, on data where the paper's two claims
hold by construction:

1. Space: the emotion is a small deformation of three face regions (mouth: corner curvature,
   opening, width; eyebrows: angle, height; eyes: opening), a few pixels at 64x64, while
   identity (face shape, size, skin, hair, features), position, background, lighting, head
   motion, sensor noise and an optional occluder vary a lot. Spatial attention should help.
2. Time: only an onset-apex-offset window covering a random 15-40% of the clip shows the
   emotion; every other frame is neutral (Neutral clips have no window). Temporal softmax
   pooling should beat averaging.

Ground truth comes with every clip: the per-frame expression intensity (0..1, 1 at the apex)
and a per-frame mask of the expressive regions (boxes around mouth, eyes and brows that
follow the head and contain every shape those features can take in the clip, minus what the
occluder fully hides). Rendering the same clip with the expression switched off
(`with_neutral=True`) gives a counterfactual with identical nuisances, so the pixels the
emotion changes are exactly `frames != neutral_frames`.

Portability: pixels are computed with numpy using only +, -, *, /, sqrt, min, max and
rounding (IEEE 754 makes these identical on every machine), small rotations use a
polynomial instead of libm's sin/cos, there are no reductions whose order could vary, and
random numbers come from PCG64 streams seeded by (seed, split, index) only. A clip's arrays
therefore depend on its seed alone, not on the machine or on which worker renders it.

    clip = render_clip(seed=0, num_frames=32, size=64, label=3)  # a Happy clip
    clip["frames"]       # [32, 64, 64, 3] uint8
    clip["intensity"]    # [32] float32
    clip["region_mask"]  # [32, 64, 64] bool

The synthemo TFDS builder (videmo/data/builders/synthemo) stores these clips; `encode_clip`
is the per-clip work it runs in its process pool.
"""

from __future__ import annotations

import dataclasses
import io
import math
from typing import Any, NamedTuple

import numpy as np

from videmo.data.schema import AFEW_EMOTIONS, JPEG_QUALITY, encode_jpeg

SPLITS: tuple[str, ...] = ("train", "validation", "test")
NEUTRAL: int = AFEW_EMOTIONS.index("Neutral")
MIN_SIZE = 32  # smallest frame side the face geometry is drawn at


@dataclasses.dataclass(frozen=True)
class Expression:
  """An expression's apex deformation, each in -1..1 (scaled to face units by the renderer).

  mouth_curve: + corners up (smile), - corners down.   mouth_open: lips apart (0..1).
  mouth_width: + wider, - pressed narrower.            brow_angle: + inner ends down (frown),
  - inner ends up (worry).   brow_height: + raised.    eye_open: + wide, - narrowed.
  """
  mouth_curve: float
  mouth_open: float
  mouth_width: float
  brow_angle: float
  brow_height: float
  eye_open: float

  def as_array(self) -> np.ndarray:
    """The six values as float64 [6], in field order."""
    return np.array(dataclasses.astuple(self), np.float64)


# One expression per AFEW class, in AFEW_EMOTIONS order (Angry, Disgust, Fear, Happy,
# Neutral, Sad, Surprise). Any two differ by >= 1 in Euclidean norm (tests check it).
EXPRESSIONS: tuple[Expression, ...] = (
    Expression(mouth_curve=-0.35, mouth_open=0.0, mouth_width=-0.6, brow_angle=1.0, brow_height=-0.7, eye_open=-0.3),
    Expression(mouth_curve=-0.7, mouth_open=0.35, mouth_width=-0.2, brow_angle=0.35, brow_height=-0.5, eye_open=-0.9),
    Expression(mouth_curve=-0.4, mouth_open=0.55, mouth_width=0.6, brow_angle=-0.8, brow_height=0.6, eye_open=0.8),
    Expression(mouth_curve=1.0, mouth_open=0.35, mouth_width=0.6, brow_angle=0.0, brow_height=0.15, eye_open=-0.5),
    Expression(mouth_curve=0.0, mouth_open=0.0, mouth_width=0.0, brow_angle=0.0, brow_height=0.0, eye_open=0.0),
    Expression(mouth_curve=-1.0, mouth_open=0.0, mouth_width=-0.1, brow_angle=-1.0, brow_height=-0.15, eye_open=-0.35),
    Expression(mouth_curve=0.0, mouth_open=1.0, mouth_width=-0.4, brow_angle=-0.1, brow_height=1.0, eye_open=1.0),
)


class ClipJob(NamedTuple):
  """Everything that determines one stored clip (picklable: the builder's pool maps over these)."""
  seed: int
  split: str
  index: int
  label: int
  size: int
  min_frames: int
  max_frames: int
  jpeg_quality: int = JPEG_QUALITY


# ----------------------------------------------------------------------------- seeding


def _split_code(split: str) -> int:
  if split not in SPLITS:
    raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
  return SPLITS.index(split)


def clip_seed(seed: int, split: str, index: int) -> np.random.SeedSequence:
  """The seed of clip `index` of `split`: a function of (seed, split, index) only."""
  if seed < 0 or index < 0:
    raise ValueError(f"seed and index must be >= 0, got seed={seed}, index={index}")
  return np.random.SeedSequence(entropy=seed, spawn_key=(_split_code(split), 1, index))


def split_labels(seed: int, split: str, num_clips: int, num_classes: int = len(AFEW_EMOTIONS)) -> np.ndarray:
  """Labels of a split's clips [num_clips] int64: balanced (counts differ by <= 1), shuffled by seed."""
  if num_clips < 0:
    raise ValueError(f"num_clips must be >= 0, got {num_clips}")
  rng = np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(_split_code(split), 0)))
  return rng.permutation(np.arange(num_clips, dtype=np.int64) % num_classes)


def _as_rng(seed: int | np.random.SeedSequence | np.random.Generator) -> np.random.Generator:
  if isinstance(seed, np.random.Generator):
    return seed
  return np.random.default_rng(seed)


# ----------------------------------------------------------------------------- time


def intensity_curve(rng: np.random.Generator, num_frames: int, label: int) -> tuple[np.ndarray, tuple[int, int], int]:
  """Onset-apex-offset expression intensity of one clip.

  Returns (intensity [F] float32 in 0..1, window (start, stop) with intensity > 0 exactly on
  frames start..stop-1, apex frame index). The window covers round(u * F) frames, u uniform in
  0.15..0.40 (at least 3 frames), at a uniform position; the apex plateau (intensity 1) takes
  20-50% of it, the rest splits between a smooth onset and offset. Neutral: all zeros,
  window (0, 0), apex -1.
  """
  intensity = np.zeros(num_frames, np.float32)
  if label == NEUTRAL:
    return intensity, (0, 0), -1
  length = min(num_frames, max(3, int(round(rng.uniform(0.15, 0.40) * num_frames))))
  start = int(rng.integers(0, num_frames - length + 1))
  plateau = max(1, int(round(rng.uniform(0.2, 0.5) * length)))
  ramps = length - plateau
  onset = int(round(rng.uniform(0.35, 0.65) * ramps))
  offset = ramps - onset
  values = [_smoothstep((i + 1) / (onset + 1)) for i in range(onset)]
  values += [1.0] * plateau
  values += [_smoothstep((offset - i) / (offset + 1)) for i in range(offset)]
  intensity[start:start + length] = values
  return intensity, (start, start + length), start + onset + plateau // 2


def _smoothstep(t: float) -> float:
  return t * t * (3.0 - 2.0 * t)


# ----------------------------------------------------------------------------- clip parameters


class _Pose(NamedTuple):
  """Where the face is in one frame: centre (pixels), face half-width R (pixels), roll (cos, sin)."""
  cx: float
  cy: float
  radius: float
  cos: float
  sin: float


@dataclasses.dataclass(frozen=True)
class _Identity:
  """A person: face shape, colours and the neutral geometry of the features (face units)."""
  aspect: float        # face half-height / half-width
  taper: float         # narrowing of the lower face
  skin: np.ndarray     # [3] float32 RGB
  hair: np.ndarray
  lips: np.ndarray
  iris: np.ndarray
  clothes: np.ndarray
  hair_style: int      # 0 bald, 1 short, 2 long
  hair_volume: float
  hair_length: float
  fringe: float        # v of the fringe's lower edge at u = 0
  shift: float         # horizontal offset of all features (a little yaw)
  eye_y: float
  eye_dx: float
  eye_w: float
  eye_h: float
  gaze: float
  brow_gap: float
  brow_thick: float
  mouth_y: float
  mouth_w: float
  lip_thick: float
  base_curve: float
  expressiveness: float  # scale of this person's apex deformation


def _rotation(angle: float) -> tuple[float, float]:
  """(cos, sin) of a small angle (|angle| < 0.5) by Taylor polynomials: identical on every machine."""
  a2 = angle * angle
  cos = 1.0 - a2 / 2 * (1.0 - a2 / 12 * (1.0 - a2 / 30 * (1.0 - a2 / 56)))
  sin = angle * (1.0 - a2 / 6 * (1.0 - a2 / 20 * (1.0 - a2 / 42 * (1.0 - a2 / 72))))
  return cos, sin


def _color(rng: np.random.Generator, base, jitter: float) -> np.ndarray:
  return np.clip(np.asarray(base, np.float64) + rng.uniform(-jitter, jitter, 3), 0, 255).astype(np.float32)


def _sample_identity(rng: np.random.Generator) -> _Identity:
  tone = rng.uniform(0.0, 1.0)
  skin = _color(rng, [238 - 150 * tone, 200 - 140 * tone, 178 - 140 * tone], 14)
  hair = [(25, 20, 20), (90, 55, 30), (200, 165, 100), (150, 60, 30), (165, 165, 165)][int(rng.integers(5))]
  iris = [(90, 55, 30), (70, 110, 170), (80, 120, 70), (110, 110, 120)][int(rng.integers(4))]
  aspect = rng.uniform(1.18, 1.42)
  eye_y = rng.uniform(-0.24, -0.12)
  brow_gap = rng.uniform(0.23, 0.27)
  return _Identity(
      aspect=aspect, taper=rng.uniform(0.0, 0.28),
      skin=skin, hair=_color(rng, hair, 18),
      lips=np.clip(skin * np.float32([0.78, 0.5, 0.52]) + np.float32([45, 8, 12]), 0, 255).astype(np.float32),
      iris=_color(rng, iris, 15), clothes=_color(rng, [128, 128, 128], 120),
      hair_style=int(rng.choice(3, p=[0.12, 0.5, 0.38])), hair_volume=rng.uniform(0.05, 0.25),
      hair_length=rng.uniform(0.6, 1.8), fringe=rng.uniform(-0.95, -0.6) * aspect,
      shift=rng.uniform(-0.06, 0.06),
      eye_y=eye_y, eye_dx=rng.uniform(0.34, 0.42), eye_w=rng.uniform(0.15, 0.19), eye_h=rng.uniform(0.08, 0.095),
      gaze=rng.uniform(-0.03, 0.03), brow_gap=brow_gap, brow_thick=rng.uniform(0.06, 0.1),
      mouth_y=rng.uniform(0.48, 0.6), mouth_w=rng.uniform(0.31, 0.36), lip_thick=rng.uniform(0.045, 0.065),
      base_curve=rng.uniform(-0.015, 0.015), expressiveness=rng.uniform(0.8, 1.2))


class _Features(NamedTuple):
  """The expressive features' geometry (face units) for one expression vector."""
  eye_open: float      # multiplier of the eye aperture's half-height
  brow_inner: float    # v offsets of the brows' inner and outer ends
  brow_outer: float
  mouth_w: float       # half-width
  mouth_k: float       # corner lift
  mouth_o: float       # opening at the centre


def _features(face: _Identity, e: np.ndarray) -> _Features:
  """Geometry of the features for expression vector e [6] (an Expression times intensity)."""
  curve, open_, width, angle, height, eye = (float(x) for x in e)
  return _Features(
      eye_open=max(0.2, 1.0 + 0.6 * eye),
      brow_inner=-0.16 * height + 0.13 * angle,
      brow_outer=-0.16 * height - 0.04 * angle,
      mouth_w=face.mouth_w * (1.0 + 0.3 * width),
      mouth_k=face.base_curve + 0.22 * curve,
      mouth_o=0.34 * max(0.0, open_))


def _region_boxes(face: _Identity, margin: float) -> list[tuple[float, float, float, float]]:
  """Boxes (centre u, centre v, half-width, half-height) containing every shape the mouth, eyes
  and brows take in this clip (any class, any intensity), grown by `margin` face units."""
  shapes = [_features(face, np.zeros(6))]
  shapes += [_features(face, face.expressiveness * x.as_array()) for x in EXPRESSIONS]
  boxes = []
  # Mouth: top and bottom edges are linear in t^2, so their extremes are at t = 0 or |t| = 1.
  lip = face.lip_thick
  top = min(min(f.mouth_k / 3 - f.mouth_o / 2 - lip, -2 * f.mouth_k / 3 - 0.45 * lip) for f in shapes)
  bottom = max(max(f.mouth_k / 3 + f.mouth_o / 2 + 1.2 * lip, -2 * f.mouth_k / 3 + 0.54 * lip) for f in shapes)
  half_w = max(f.mouth_w for f in shapes)
  boxes.append((face.shift, face.mouth_y + (top + bottom) / 2, half_w + margin, (bottom - top) / 2 + margin))
  brow_v = face.eye_y - face.brow_gap
  ends = [brow_v + f.brow_inner for f in shapes] + [brow_v + f.brow_outer + 0.02 for f in shapes]
  brow_top, brow_bottom = min(ends) - face.brow_thick / 2, max(ends) + face.brow_thick / 2
  for side in (-1.0, 1.0):
    boxes.append((face.shift + side * face.eye_dx, face.eye_y,
                  1.3 * face.eye_w + margin, 1.9 * face.eye_h + margin))
    inner, outer = face.eye_dx - 0.17, face.eye_dx + 0.2
    boxes.append((face.shift + side * (inner + outer) / 2, (brow_top + brow_bottom) / 2,
                  (outer - inner + face.brow_thick) / 2 + margin, (brow_bottom - brow_top) / 2 + margin))
  return boxes


def _walk(rng: np.random.Generator, num_frames: int, amplitude: float) -> list[float]:
  """A smooth random walk over frames, centred and scaled to peak |value| = amplitude (Python floats)."""
  value, velocity, walk = 0.0, 0.0, []
  for step in rng.uniform(-1.0, 1.0, num_frames):
    velocity = 0.7 * velocity + 0.3 * float(step)
    value += velocity
    walk.append(value)
  low, high = min(walk), max(walk)
  centre, half = (low + high) / 2, max((high - low) / 2, 1e-9)
  return [(w - centre) / half * amplitude for w in walk]


def _sample_poses(rng: np.random.Generator, num_frames: int, size: int) -> list[_Pose]:
  radius = rng.uniform(0.24, 0.32) * size
  cx, cy = size * (0.5 + rng.uniform(-0.08, 0.08)), size * (0.5 + rng.uniform(-0.06, 0.06))
  roll = rng.uniform(-0.12, 0.12)
  move = rng.uniform(0.005, 0.035) * size
  dx, dy = _walk(rng, num_frames, move), _walk(rng, num_frames, move)
  droll, dscale = _walk(rng, num_frames, rng.uniform(0.0, 0.08)), _walk(rng, num_frames, rng.uniform(0.0, 0.03))
  poses = []
  for f in range(num_frames):
    cos, sin = _rotation(roll + droll[f])
    poses.append(_Pose(cx + dx[f], cy + dy[f], radius * (1.0 + dscale[f]), cos, sin))
  return poses


# ----------------------------------------------------------------------------- drawing


def _coverage(d: np.ndarray, radius: float) -> np.ndarray:
  """Anti-aliased coverage of a shape from its signed distance d (face units; < 0 inside)."""
  return np.clip(0.5 - d * radius, 0.0, 1.0)


def _over(image: np.ndarray, alpha: np.ndarray, color) -> None:
  """Composites `color` over `image` (a view, modified in place) with coverage alpha [h, w]."""
  image += alpha[..., None] * (np.asarray(color, np.float32) - image)


def _ellipse(u: np.ndarray, v: np.ndarray, cu: float, cv: float, a: float, b: float) -> np.ndarray:
  """Signed distance (face units) to an axis-aligned ellipse, accurate near its edge.

  Outside and near the edge: k0 (k0 - 1) / k1 (first-order, good however elongated);
  deep inside, where that estimate degenerates, the more negative of it and (k0 - 1) min(a, b).
  """
  x, y = u - cu, v - cv
  xa, yb = x / a, y / b
  xaa, ybb = xa / a, yb / b
  k0 = np.sqrt(xa * xa + yb * yb)
  k1 = np.maximum(np.sqrt(xaa * xaa + ybb * ybb), 1e-12)
  edge = k0 * (k0 - 1.0) / k1
  return np.where(k0 < 1.0, np.minimum(edge, (k0 - 1.0) * min(a, b)), edge)


def _box(u: np.ndarray, v: np.ndarray, cu: float, cv: float, hu: float, hv: float, r: float = 0.0) -> np.ndarray:
  """Signed distance to a box of half-sizes (hu, hv) with corners rounded by r."""
  qx, qy = np.abs(u - cu) - (hu - r), np.abs(v - cv) - (hv - r)
  ox, oy = np.maximum(qx, 0.0), np.maximum(qy, 0.0)
  return np.sqrt(ox * ox + oy * oy) + np.minimum(np.maximum(qx, qy), 0.0) - r


def _capsule(u, v, p, q, r: float) -> np.ndarray:
  """Signed distance to the segment p-q thickened by r."""
  du, dv = q[0] - p[0], q[1] - p[1]
  pu, pv = u - p[0], v - p[1]
  h = np.clip((pu * du + pv * dv) / (du * du + dv * dv), 0.0, 1.0)
  eu, ev = pu - h * du, pv - h * dv
  return np.sqrt(eu * eu + ev * ev) - r


class _Canvas:
  """One frame being drawn, with the face coordinates (u, v) of its pixel centres [S, S]."""

  def __init__(self, image: np.ndarray, pose: _Pose, uv: tuple[np.ndarray, np.ndarray] | None = None):
    self.image, self.pose, self.size = image, pose, image.shape[0]
    if uv is None:
      x = np.arange(self.size, dtype=np.float32) + np.float32(0.5 - pose.cx)
      y = np.arange(self.size, dtype=np.float32) + np.float32(0.5 - pose.cy)
      c, s = np.float32(pose.cos / pose.radius), np.float32(pose.sin / pose.radius)
      uv = (x[None, :] * c + y[:, None] * s, y[:, None] * c - x[None, :] * s)
    self.uv = uv

  def grid(self, cu: float, cv: float, hu: float, hv: float):
    """(slices, u, v) of the pixels that the face-unit box (centre, half-sizes) touches, or None."""
    p = self.pose
    corners_u, corners_v = (cu - hu, cu + hu, cu - hu, cu + hu), (cv - hv, cv - hv, cv + hv, cv + hv)
    xs = [p.cx + p.radius * (a * p.cos - b * p.sin) for a, b in zip(corners_u, corners_v)]
    ys = [p.cy + p.radius * (a * p.sin + b * p.cos) for a, b in zip(corners_u, corners_v)]
    x0, x1 = max(0, math.floor(min(xs)) - 1), min(self.size, math.ceil(max(xs)) + 2)
    y0, y1 = max(0, math.floor(min(ys)) - 1), min(self.size, math.ceil(max(ys)) + 2)
    if x0 >= x1 or y0 >= y1:
      return None
    sl = (slice(y0, y1), slice(x0, x1))
    return sl, self.uv[0][sl], self.uv[1][sl]


def _draw_head(canvas: _Canvas, face: _Identity) -> None:
  """Shoulders, neck, hair at the back, ears and the face's skin (nothing expressive)."""
  b, r = face.aspect, canvas.pose.radius
  g = canvas.grid(0.0, b + 1.4, 2.3, 1.0)
  if g:
    sl, u, v = g
    _over(canvas.image[sl], _coverage(_ellipse(u, v, 0.0, b + 1.4, 2.2, 0.9), r), face.clothes)
  g = canvas.grid(0.0, b, 0.5, 0.8)
  if g:
    sl, u, v = g
    _over(canvas.image[sl], _coverage(_box(u, v, 0.0, b + 0.3, 0.42, 0.7, 0.05), r), face.skin * 0.82)
  if face.hair_style:
    width = 1.12 + face.hair_volume
    g = canvas.grid(0.0, 0.0, width + 0.1, b + face.hair_length + 0.4)
    if g:
      sl, u, v = g
      d = _ellipse(u, v, 0.0, -0.12 * b, width, 1.1 * b)
      if face.hair_style == 2:
        d = np.minimum(d, _box(u, v, 0.0, face.hair_length / 2 - 0.1 * b, width,
                               face.hair_length / 2 + 0.2 * b, 0.3))
      _over(canvas.image[sl], _coverage(d, r), face.hair)
  for side in (-1.0, 1.0):
    g = canvas.grid(side * 0.98, 0.0, 0.2, 0.3)
    if g:
      sl, u, v = g
      _over(canvas.image[sl], _coverage(_ellipse(u, v, side * 0.98, 0.0, 0.13, 0.24), r), face.skin * 0.93)
  g = canvas.grid(0.0, 0.0, 1.05, b + 0.05)
  sl, u, v = g
  a = 1.0 - face.taper * np.maximum(v, 0.0) / b
  x, y = u / a, v / b
  q = np.sqrt(x * x + y * y)
  _over(canvas.image[sl], _coverage((q - 1.0) * a, r), face.skin)
  rim = np.clip((q - 0.75) * 4.0, 0.0, 1.0) * np.clip(1.0 - (q - 1.0) * r, 0.0, 1.0) * 0.22
  _over(canvas.image[sl], rim, face.skin * 0.6)
  for side in (-1.0, 1.0):  # nostrils
    nu = face.shift + side * 0.07
    g = canvas.grid(nu, 0.24, 0.06, 0.05)
    if g:
      sl, u, v = g
      _over(canvas.image[sl], _coverage(_ellipse(u, v, nu, 0.24, 0.045, 0.03), r) * 0.6, face.skin * 0.55)


def _draw_features(canvas: _Canvas, face: _Identity, f: _Features) -> None:
  """Eyes, eyebrows and mouth: the only parts an expression changes."""
  r = canvas.pose.radius
  for side in (-1.0, 1.0):
    cu, cv = face.shift + side * face.eye_dx, face.eye_y
    ew, eh = face.eye_w, face.eye_h
    g = canvas.grid(cu, cv, 1.3 * ew, 1.9 * eh)
    if g:
      sl, u, v = g
      img = canvas.image[sl]
      _over(img, _coverage(_ellipse(u, v, cu, cv, 1.3 * ew, 1.9 * eh), r) * 0.5, face.skin * 0.8)
      d_eye = _ellipse(u, v, cu, cv, ew, eh * f.eye_open)
      eye = _coverage(d_eye, r)
      _over(img, eye, (240, 236, 228))
      iris_r = 0.075
      d_iris = _ellipse(u, v, cu + face.gaze, cv, iris_r, iris_r)
      _over(img, np.minimum(_coverage(d_iris, r), eye), face.iris)
      _over(img, np.minimum(_coverage(d_iris + 0.045, r), eye), (20, 15, 15))
      _over(img, _coverage(np.abs(d_eye) - 0.012, r) * 0.8, (40, 30, 30))
    brow_v = face.eye_y - face.brow_gap
    inner = (face.shift + side * (face.eye_dx - 0.17), brow_v + f.brow_inner)
    outer = (face.shift + side * (face.eye_dx + 0.2), brow_v + f.brow_outer + 0.02)
    g = canvas.grid((inner[0] + outer[0]) / 2, (inner[1] + outer[1]) / 2,
                    0.2 + face.brow_thick, abs(inner[1] - outer[1]) / 2 + face.brow_thick)
    if g:
      sl, u, v = g
      _over(canvas.image[sl], _coverage(_capsule(u, v, inner, outer, face.brow_thick / 2), r),
            np.minimum(face.hair * 0.55, face.skin * 0.5))
  # Mouth, in local coordinates x (along) and y (down) around (shift, mouth_y); t = x / w.
  w, k, o, lip = f.mouth_w, f.mouth_k, f.mouth_o, face.lip_thick
  g = canvas.grid(face.shift, face.mouth_y, w + 0.05, abs(k) + o / 2 + 1.2 * lip + 0.05)
  if not g:
    return
  sl, u, v = g
  img = canvas.image[sl]
  x, y = u - face.shift, v - face.mouth_y
  t = np.clip(x / w, -1.0, 1.0)
  t2 = t * t
  y = y - k * (1.0 / 3.0 - t2)          # distance below the mouth's centre line
  h = (o / 2) * (1.0 - t2)              # half-opening
  thick = lip * (1.0 - 0.55 * t2)
  ends = np.abs(x) - w
  _over(img, _coverage(np.maximum(ends, np.maximum(y - h - 1.2 * thick, -y - h - thick)), r), face.lips)
  cavity = _coverage(np.maximum(ends + 0.03 * w, np.abs(y) - h - 0.012), r)
  _over(img, cavity, (60, 20, 25))
  if o > 0:
    teeth = np.minimum(cavity, _coverage(y + 0.35 * h, r)) * min(1.0, o / 0.06)
    _over(img, teeth, (235, 230, 215))


def _draw_fringe(canvas: _Canvas, face: _Identity, fringe: float) -> None:
  g = canvas.grid(0.0, -face.aspect, 1.05, 0.6 * face.aspect)
  if face.hair_style and g:
    sl, u, v = g
    d = np.maximum(_ellipse(u, v, 0.0, 0.0, 1.02, 1.02 * face.aspect), v - (fringe + 0.08 * u * u))
    _over(canvas.image[sl], _coverage(d, canvas.pose.radius), face.hair)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
  """A static background [S, S, 3] float32: two-colour gradient, blotches, sometimes stripes."""
  c0, c1 = rng.uniform(0, 255, 3).astype(np.float32), rng.uniform(0, 255, 3).astype(np.float32)
  ax, ay = rng.uniform(-1.0, 1.0, 2)
  coord = (np.arange(size, dtype=np.float32) + np.float32(0.5)) / np.float32(size) - np.float32(0.5)
  ramp = np.clip(np.float32(0.5) + coord[None, :] * np.float32(ax) + coord[:, None] * np.float32(ay), 0.0, 1.0)
  image = c0 + ramp[..., None] * (c1 - c0)
  # Blotches: a coarse random colour grid, bilinearly upsampled.
  n = int(rng.integers(2, 6))
  grid = rng.uniform(-60, 60, (n + 1, n + 1, 3)).astype(np.float32)
  pos = (np.arange(size, dtype=np.float32) + np.float32(0.5)) * np.float32(n / size)
  i0 = np.minimum(pos.astype(np.int64), n - 1)
  w = (pos - i0.astype(np.float32))
  rows = grid[i0] * (1 - w)[:, None, None] + grid[i0 + 1] * w[:, None, None]          # [S, n+1, 3]
  blot = rows[:, i0] * (1 - w)[None, :, None] + rows[:, i0 + 1] * w[None, :, None]    # [S, S, 3]
  image += blot * np.float32(rng.uniform(0.2, 1.0))
  if rng.uniform() < 0.35:
    period = rng.uniform(0.05, 0.2) * size
    px, py = rng.uniform(-1.0, 1.0, 2)
    phase = (coord[None, :] * np.float32(px) + coord[:, None] * np.float32(py)) * np.float32(size / period)
    tri = np.abs(phase - np.floor(phase) - np.float32(0.5)) * np.float32(4.0) - np.float32(1.0)
    image += tri[..., None] * rng.uniform(-35, 35, 3).astype(np.float32)
  return np.clip(image, 0, 255)


def _lighting(rng: np.random.Generator, size: int) -> np.ndarray:
  """A multiplicative light map [S, S, 3]: brightness, colour tint and a linear gradient."""
  coord = (np.arange(size, dtype=np.float32) + np.float32(0.5)) / np.float32(size) - np.float32(0.5)
  gx, gy = rng.uniform(-1.0, 1.0, 2)
  norm = math.sqrt(gx * gx + gy * gy) or 1.0
  strength = rng.uniform(0.2, 0.9)
  gx, gy = strength * gx / norm, strength * gy / norm
  gradient = np.float32(1.0) + coord[None, :] * np.float32(gx) + coord[:, None] * np.float32(gy)
  tint = (rng.uniform(0.6, 1.25) * rng.uniform(0.88, 1.12, 3)).astype(np.float32)
  return np.clip(gradient, 0.35, 2.0)[..., None] * tint


class _Occluder(NamedTuple):
  cx: float
  cy: float
  hw: float
  hh: float
  round: float
  color: np.ndarray
  stripes: float


def _sample_occluder(rng: np.random.Generator, pose: _Pose) -> _Occluder | None:
  """With probability 0.3, a plain or striped rounded box (a hand, a microphone) over part of the face."""
  if rng.uniform() >= 0.3:
    return None
  r = pose.radius
  side = int(rng.integers(3))
  if side < 2:  # from the left or right
    cx = pose.cx + (2 * side - 1) * r * rng.uniform(0.9, 1.4)
    cy = pose.cy + r * rng.uniform(-0.6, 1.2)
  else:  # from below
    cx, cy = pose.cx + r * rng.uniform(-0.6, 0.6), pose.cy + r * rng.uniform(1.2, 1.7)
  hw, hh = r * rng.uniform(0.35, 0.7), r * rng.uniform(0.3, 0.7)
  return _Occluder(cx, cy, hw, hh, min(hw, hh) * rng.uniform(0.1, 0.9),
                   rng.uniform(0, 255, 3).astype(np.float32), rng.uniform(0.0, 0.4) * (rng.uniform() < 0.5))


def _draw_occluder(image: np.ndarray, occ: _Occluder, jx: float, jy: float) -> tuple | None:
  """Draws the occluder (moved by jx, jy pixels); returns (slices, coverage) of what it covers."""
  size = image.shape[0]
  cx, cy = occ.cx + jx, occ.cy + jy
  x0, x1 = max(0, math.floor(cx - occ.hw) - 1), min(size, math.ceil(cx + occ.hw) + 2)
  y0, y1 = max(0, math.floor(cy - occ.hh) - 1), min(size, math.ceil(cy + occ.hh) + 2)
  if x0 >= x1 or y0 >= y1:
    return None
  x = np.arange(x0, x1, dtype=np.float32) + np.float32(0.5 - cx)
  y = np.arange(y0, y1, dtype=np.float32) + np.float32(0.5 - cy)
  u, v = np.broadcast_to(x[None, :], (y1 - y0, x1 - x0)), np.broadcast_to(y[:, None], (y1 - y0, x1 - x0))
  alpha = np.clip(0.5 - _box(u, v, 0.0, 0.0, occ.hw, occ.hh, occ.round), 0.0, 1.0)
  sl = (slice(y0, y1), slice(x0, x1))
  if occ.stripes:
    phase = v * np.float32(0.25)
    shade = np.float32(1.0) - np.float32(occ.stripes) * (np.abs(phase - np.floor(phase) - np.float32(0.5)))
    _over(image[sl], alpha, occ.color * shade[..., None])
  else:
    _over(image[sl], alpha, occ.color)
  return sl, alpha


# ----------------------------------------------------------------------------- clips


def render_clip(
    seed: int | np.random.SeedSequence | np.random.Generator,
    num_frames: int,
    size: int,
    label: int,
    *,
    with_neutral: bool = False,
) -> dict[str, Any]:
  """Renders one SynthEmo clip; the same seed (and arguments) gives the same arrays everywhere.

  Args:
    seed: an int, a SeedSequence or a Generator (which is advanced).
    num_frames: F >= 1.   size: S, the frame side in pixels (>= 32).
    label: class index into AFEW_EMOTIONS (4 = Neutral: no expression window).
    with_neutral: also return `neutral_frames`, the same clip with the expression switched
      off (identical pose, lighting, noise and occluder in every frame).

  Returns a dict:
    frames        [F, S, S, 3] uint8
    intensity     [F] float32 in 0..1 (1 at the apex plateau, 0 outside the window)
    region_mask   [F, S, S] bool: mouth, eye and brow regions, minus what the occluder hides
    label         int
    window        (start, stop): frames with intensity > 0; (0, 0) for Neutral
    apex          int: a frame of maximal intensity (-1 for Neutral)
    neutral_frames [F, S, S, 3] uint8, only when with_neutral
  """
  if num_frames < 1:
    raise ValueError(f"num_frames must be >= 1, got {num_frames}")
  if size < MIN_SIZE:
    raise ValueError(f"size must be >= {MIN_SIZE} pixels, got {size}")
  if not 0 <= label < len(AFEW_EMOTIONS):
    raise ValueError(f"label must be in 0..{len(AFEW_EMOTIONS) - 1} ({', '.join(AFEW_EMOTIONS)}), got {label}")
  rng = _as_rng(seed)
  face = _sample_identity(rng)
  poses = _sample_poses(rng, num_frames, size)
  background = _background(rng, size)
  light = _lighting(rng, size)
  occluder = _sample_occluder(rng, poses[0])
  intensity, window, apex = intensity_curve(rng, num_frames, label)
  noise_sigma = rng.uniform(1.0, 7.0)
  flicker = rng.uniform(-0.03, 0.03, num_frames)
  occ_jitter = rng.uniform(-0.01, 0.01, (num_frames, 2)) * size
  boxes = _region_boxes(face, margin=0.02)
  fringe = min(face.fringe, min(cv - hv for cu, cv, hu, hv in boxes) - 0.1)
  apex_e = face.expressiveness * EXPRESSIONS[label].as_array()

  frames = np.empty((num_frames, size, size, 3), np.uint8)
  neutral = np.empty_like(frames) if with_neutral else None
  masks = np.zeros((num_frames, size, size), bool)
  noise_scale = np.float32(noise_sigma * math.sqrt(6.0))
  for i, pose in enumerate(poses):
    head = background.copy()
    canvas = _Canvas(head, pose)
    _draw_head(canvas, face)
    noise = (rng.random((size, size, 3), np.float32) + rng.random((size, size, 3), np.float32)
             - np.float32(1.0)) * noise_scale
    gain = light * np.float32(1.0 + flicker[i])
    versions = [(frames, float(intensity[i]))] + ([(neutral, 0.0)] if with_neutral else [])
    for out, level in versions:
      image = head.copy()
      canvas = _Canvas(image, pose, canvas.uv)
      _draw_features(canvas, face, _features(face, apex_e * level))
      _draw_fringe(canvas, face, fringe)
      covered = occluder and _draw_occluder(image, occluder, *occ_jitter[i])
      out[i] = np.rint(np.clip(image * gain + noise, 0.0, 255.0)).astype(np.uint8)
    margin_px = 1.5 / pose.radius
    for cu, cv, hu, hv in boxes:
      g = canvas.grid(cu, cv, hu + margin_px, hv + margin_px)
      if g:
        sl, u, v = g
        masks[i][sl] |= (np.abs(u - cu) <= hu + margin_px) & (np.abs(v - cv) <= hv + margin_px)
    if covered:
      sl, alpha = covered
      masks[i][sl] &= alpha < 1.0
  clip = {"frames": frames, "intensity": intensity, "region_mask": masks, "label": int(label),
          "window": window, "apex": apex}
  if with_neutral:
    clip["neutral_frames"] = neutral
  return clip


def generate_clip(seed: int, split: str, index: int, label: int, size: int,
                  min_frames: int, max_frames: int, *, with_neutral: bool = False) -> dict[str, Any]:
  """Clip `index` of `split` as the synthemo builder stores it: F uniform in min..max frames.

  Returns render_clip's dict (frames [F, S, S, 3] uint8, ...; `neutral_frames` too when
  with_neutral) plus `num_frames` and `source`.
  """
  if not 1 <= min_frames <= max_frames:
    raise ValueError(f"need 1 <= min_frames <= max_frames, got min_frames={min_frames}, max_frames={max_frames}")
  rng = np.random.default_rng(clip_seed(seed, split, index))
  num_frames = int(rng.integers(min_frames, max_frames + 1))
  clip = render_clip(rng, num_frames, size, label, with_neutral=with_neutral)
  clip["num_frames"] = num_frames
  clip["source"] = f"synthemo:seed={seed}:split={split}:index={index}"
  return clip


def encode_png(mask: np.ndarray) -> bytes:
  """PNG bytes (8-bit grey, values 0/1, fixed zlib level) of a mask [H, W] bool or uint8."""
  from PIL import Image

  buffer = io.BytesIO()
  Image.fromarray(mask.astype(np.uint8), mode="L").save(buffer, format="PNG", compress_level=6, optimize=False)
  return buffer.getvalue()


def encode_clip(job: ClipJob) -> tuple[str, dict[str, Any]]:
  """Renders and encodes one clip into the synthemo builder's (key, example) pair.

  Frames become JPEG bytes (fixed quality) and masks PNG bytes, so TFDS never needs
  TensorFlow to encode them; see the builder for the fields.
  """
  clip = generate_clip(job.seed, job.split, job.index, job.label, job.size, job.min_frames, job.max_frames)
  key = f"{job.split}-{job.index:06d}"
  example = {
      "frames": [encode_jpeg(frame, job.jpeg_quality) for frame in clip["frames"]],
      "label": job.label,
      "clip_id": key,
      "source": clip["source"],
      "num_frames": np.int32(clip["num_frames"]),
      "face_found": np.ones(clip["num_frames"], np.bool_),
      "intensity": clip["intensity"],
      "region_mask": [encode_png(mask) for mask in clip["region_mask"]],
      "apex_frame": np.int32(clip["apex"]),
      "window": np.asarray(clip["window"], np.int32),
  }
  return key, example
