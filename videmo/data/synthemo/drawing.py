"""SynthEmo's faces: a person's identity, head poses, and drawing a face, its features, the
background, lighting and occluders into a frame (pixels with portable arithmetic only; see
videmo/data/synthemo/render.py, which renders clips from these parts).

Face geometry is in face units (the face's half-width is 1), mapped to pixels by a pose.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import numpy as np

# ----------------------------------------------------------------------------- clip parameters


class Pose(NamedTuple):
  """Where the face is in one frame: centre (pixels), face half-width R (pixels), roll (cos, sin)."""
  cx: float
  cy: float
  radius: float
  cos: float
  sin: float


@dataclasses.dataclass(frozen=True)
class Identity:
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


def sample_identity(rng: np.random.Generator) -> Identity:
  tone = rng.uniform(0.0, 1.0)
  skin = _color(rng, [238 - 150 * tone, 200 - 140 * tone, 178 - 140 * tone], 14)
  hair = [(25, 20, 20), (90, 55, 30), (200, 165, 100), (150, 60, 30), (165, 165, 165)][int(rng.integers(5))]
  iris = [(90, 55, 30), (70, 110, 170), (80, 120, 70), (110, 110, 120)][int(rng.integers(4))]
  aspect = rng.uniform(1.18, 1.42)
  eye_y = rng.uniform(-0.24, -0.12)
  brow_gap = rng.uniform(0.23, 0.27)
  return Identity(
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


def features(face: Identity, e: np.ndarray) -> _Features:
  """Geometry of the features for expression vector e [6] (an Expression times intensity)."""
  curve, open_, width, angle, height, eye = (float(x) for x in e)
  return _Features(
      eye_open=max(0.2, 1.0 + 0.6 * eye),
      brow_inner=-0.16 * height + 0.13 * angle,
      brow_outer=-0.16 * height - 0.04 * angle,
      mouth_w=face.mouth_w * (1.0 + 0.3 * width),
      mouth_k=face.base_curve + 0.22 * curve,
      mouth_o=0.34 * max(0.0, open_))


# The region each of region_boxes' five boxes holds, in its order.
BOX_REGIONS: tuple[str, ...] = ("mouth", "eyes", "brows", "eyes", "brows")


def region_boxes(face: Identity, deformations: list[np.ndarray], margin: float,
                 raw: list[np.ndarray] = ()) -> list[tuple[float, float, float, float]]:
  """Boxes (centre u, centre v, half-width, half-height) containing every shape the mouth, eyes
  and brows take in this clip (any of the apex `deformations` [6] of the classes, scaled by the
  person's expressiveness, and any of the `raw` deformations [6] as they are, at any intensity),
  grown by `margin` face units. Their regions, in order: BOX_REGIONS."""
  shapes = [features(face, np.zeros(6))]
  shapes += [features(face, face.expressiveness * x) for x in deformations]
  shapes += [features(face, np.asarray(x, np.float64)) for x in raw]
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


def sample_poses(rng: np.random.Generator, num_frames: int, size: int) -> list[Pose]:
  radius = rng.uniform(0.24, 0.32) * size
  cx, cy = size * (0.5 + rng.uniform(-0.08, 0.08)), size * (0.5 + rng.uniform(-0.06, 0.06))
  roll = rng.uniform(-0.12, 0.12)
  move = rng.uniform(0.005, 0.035) * size
  dx, dy = _walk(rng, num_frames, move), _walk(rng, num_frames, move)
  droll, dscale = _walk(rng, num_frames, rng.uniform(0.0, 0.08)), _walk(rng, num_frames, rng.uniform(0.0, 0.03))
  poses = []
  for f in range(num_frames):
    cos, sin = _rotation(roll + droll[f])
    poses.append(Pose(cx + dx[f], cy + dy[f], radius * (1.0 + dscale[f]), cos, sin))
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


class Canvas:
  """One frame being drawn, with the face coordinates (u, v) of its pixel centres [S, S]."""

  def __init__(self, image: np.ndarray, pose: Pose, uv: tuple[np.ndarray, np.ndarray] | None = None):
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


def draw_head(canvas: Canvas, face: Identity) -> None:
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


def draw_features(canvas: Canvas, face: Identity, f: _Features) -> None:
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


def draw_fringe(canvas: Canvas, face: Identity, fringe: float) -> None:
  g = canvas.grid(0.0, -face.aspect, 1.05, 0.6 * face.aspect)
  if face.hair_style and g:
    sl, u, v = g
    d = np.maximum(_ellipse(u, v, 0.0, 0.0, 1.02, 1.02 * face.aspect), v - (fringe + 0.08 * u * u))
    _over(canvas.image[sl], _coverage(d, canvas.pose.radius), face.hair)


def background(rng: np.random.Generator, size: int) -> np.ndarray:
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


def lighting(rng: np.random.Generator, size: int) -> np.ndarray:
  """A multiplicative light map [S, S, 3]: brightness, colour tint and a linear gradient."""
  coord = (np.arange(size, dtype=np.float32) + np.float32(0.5)) / np.float32(size) - np.float32(0.5)
  gx, gy = rng.uniform(-1.0, 1.0, 2)
  norm = math.sqrt(gx * gx + gy * gy) or 1.0
  strength = rng.uniform(0.2, 0.9)
  gx, gy = strength * gx / norm, strength * gy / norm
  gradient = np.float32(1.0) + coord[None, :] * np.float32(gx) + coord[:, None] * np.float32(gy)
  tint = (rng.uniform(0.6, 1.25) * rng.uniform(0.88, 1.12, 3)).astype(np.float32)
  return np.clip(gradient, 0.35, 2.0)[..., None] * tint


class Occluder(NamedTuple):
  cx: float
  cy: float
  hw: float
  hh: float
  round: float
  color: np.ndarray
  stripes: float


def sample_occluder(rng: np.random.Generator, pose: Pose) -> Occluder | None:
  """With probability 0.3, a plain or striped rounded box (a hand, a microphone) over part of the face."""
  if rng.uniform() >= 0.3:
    return None
  return occluder_near(rng, pose)


def occluder_near(rng: np.random.Generator, pose: Pose) -> Occluder:
  """A plain or striped rounded box entering from a side or from below, over part of the face."""
  r = pose.radius
  side = int(rng.integers(3))
  if side < 2:  # from the left or right
    cx = pose.cx + (2 * side - 1) * r * rng.uniform(0.9, 1.4)
    cy = pose.cy + r * rng.uniform(-0.6, 1.2)
  else:  # from below
    cx, cy = pose.cx + r * rng.uniform(-0.6, 0.6), pose.cy + r * rng.uniform(1.2, 1.7)
  hw, hh = r * rng.uniform(0.35, 0.7), r * rng.uniform(0.3, 0.7)
  return Occluder(cx, cy, hw, hh, min(hw, hh) * rng.uniform(0.1, 0.9),
                   rng.uniform(0, 255, 3).astype(np.float32), rng.uniform(0.0, 0.4) * (rng.uniform() < 0.5))


def _occluder_cover(size: int, occ: Occluder, jx: float, jy: float) -> tuple | None:
  """(slices, coverage [h, w], v [h, w]) of the occluder moved by jx, jy pixels, or None."""
  cx, cy = occ.cx + jx, occ.cy + jy
  x0, x1 = max(0, math.floor(cx - occ.hw) - 1), min(size, math.ceil(cx + occ.hw) + 2)
  y0, y1 = max(0, math.floor(cy - occ.hh) - 1), min(size, math.ceil(cy + occ.hh) + 2)
  if x0 >= x1 or y0 >= y1:
    return None
  x = np.arange(x0, x1, dtype=np.float32) + np.float32(0.5 - cx)
  y = np.arange(y0, y1, dtype=np.float32) + np.float32(0.5 - cy)
  u, v = np.broadcast_to(x[None, :], (y1 - y0, x1 - x0)), np.broadcast_to(y[:, None], (y1 - y0, x1 - x0))
  alpha = np.clip(0.5 - _box(u, v, 0.0, 0.0, occ.hw, occ.hh, occ.round), 0.0, 1.0)
  return (slice(y0, y1), slice(x0, x1)), alpha, v


def occluder_cover(size: int, occ: Occluder, jx: float, jy: float) -> tuple | None:
  """(slices, coverage [h, w] in 0..1) of what the occluder, moved by jx, jy pixels, covers in
  an S x S frame (None: nothing): what draw_occluder returns, without drawing."""
  found = _occluder_cover(size, occ, jx, jy)
  return None if found is None else found[:2]


def draw_occluder(image: np.ndarray, occ: Occluder, jx: float, jy: float) -> tuple | None:
  """Draws the occluder (moved by jx, jy pixels); returns (slices, coverage) of what it covers."""
  found = _occluder_cover(image.shape[0], occ, jx, jy)
  if found is None:
    return None
  sl, alpha, v = found
  if occ.stripes:
    phase = v * np.float32(0.25)
    shade = np.float32(1.0) - np.float32(occ.stripes) * (np.abs(phase - np.floor(phase) - np.float32(0.5)))
    _over(image[sl], alpha, occ.color * shade[..., None])
  else:
    _over(image[sl], alpha, occ.color)
  return sl, alpha
