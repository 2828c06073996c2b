"""Videos made from a still photograph that moves, scales and turns: test and benchmark input (tests/ and benchmarks/).

Real face videos cannot ship with the code, but preparation must be tested and timed on real
faces: `photo_clip` pastes a photograph (e.g. `skimage.data.astronaut()`, 512x512, one face
about 87 px wide) onto a textured background, moving its face along a smooth path, zooming
and rotating it a little from frame to frame, like a head in a film shot. Pass a face-free
photograph for a clip without faces.
"""

from __future__ import annotations

import dataclasses

import numpy as np

# Centre of the face in skimage.data.astronaut() (x, y), from dlib's detection box.
ASTRONAUT_FACE_CENTRE = (222.5, 126.5)
# The astronaut's head and shoulders (rows, columns), a person to paste into a scene.
ASTRONAUT_PERSON = (slice(40, 220), slice(130, 310))
PERSON_FACE_CENTRE = (ASTRONAUT_FACE_CENTRE[0] - 130, ASTRONAUT_FACE_CENTRE[1] - 40)


@dataclasses.dataclass(frozen=True)
class PhotoMotion:
  """How the photograph moves over a clip (all changes are smooth sinusoids).

  scale: (min, max) zoom of the photograph; the astronaut's face is ~87 px at zoom 1.
  rotation: largest in-plane rotation in degrees (either way).
  travel: fraction of the frame the face centre travels over, horizontally and vertically.
  cycles: number of back-and-forth periods over the clip.
  """

  scale: tuple[float, float] = (1.2, 2.0)
  rotation: float = 8.0
  travel: float = 0.4
  cycles: float = 1.0


def background(height: int, width: int, seed: int = 0) -> np.ndarray:
  """A smooth, textured RGB background [H, W, 3] uint8 (a blurred noise field plus a gradient)."""
  from PIL import Image, ImageFilter

  rng = np.random.default_rng(seed)
  noise = rng.integers(0, 256, (height // 32 + 2, width // 32 + 2, 3), dtype=np.uint8)
  image = Image.fromarray(noise).resize((width, height), Image.BICUBIC).filter(ImageFilter.GaussianBlur(8))
  ramp = np.linspace(0.6, 1.0, width)[None, :, None]
  return (np.asarray(image, np.float64) * ramp).astype(np.uint8)


def photo_clip(photo: np.ndarray, num_frames: int, height: int = 576, width: int = 720,
               motion: PhotoMotion = PhotoMotion(), anchor: tuple[float, float] = ASTRONAUT_FACE_CENTRE,
               seed: int = 0, path: np.ndarray | None = None) -> np.ndarray:
  """Frames [T, H, W, 3] uint8 of `photo` [h, w, 3] uint8 moving over a background.

  The photo's point `anchor` (x, y) (the face centre for the astronaut) follows a smooth
  path inside the frame, or `path` [T, 2] (x, y per frame, in pixels; it may leave the
  frame); `seed` picks the path's phase and the background.
  """
  from PIL import Image

  rng = np.random.default_rng(seed)
  phase = rng.uniform(0, 2 * np.pi, size=4)
  base = Image.fromarray(background(height, width, seed))
  rgba = Image.fromarray(photo).convert("RGBA")
  frames = []
  for t in range(num_frames):
    u = 2 * np.pi * motion.cycles * t / max(num_frames - 1, 1)
    zoom = motion.scale[0] + (motion.scale[1] - motion.scale[0]) * 0.5 * (1 + np.sin(u + phase[0]))
    angle = np.radians(motion.rotation * np.sin(u + phase[1]))
    centre_x = width * (0.5 + 0.5 * motion.travel * np.sin(u + phase[2]))
    centre_y = height * (0.5 + 0.5 * motion.travel * np.sin(0.7 * u + phase[3]))
    if path is not None:
      centre_x, centre_y = float(path[t][0]), float(path[t][1])
    # Output pixel p maps to photo pixel anchor + R(-angle) (p - centre) / zoom (PIL wants the inverse).
    cos, sin = np.cos(angle) / zoom, np.sin(angle) / zoom
    a, b = cos, sin
    d, e = -sin, cos
    c = anchor[0] - a * centre_x - b * centre_y
    f = anchor[1] - d * centre_x - e * centre_y
    warped = rgba.transform((width, height), Image.AFFINE, (a, b, c, d, e, f), resample=Image.BILINEAR)
    frame = base.copy()
    frame.paste(warped, (0, 0), warped)
    frames.append(np.asarray(frame.convert("RGB")))
  return np.stack(frames)


def walk_path(num_frames: int, width: int, height: int, speed: float, away: int, margin: float) -> np.ndarray:
  """[T, 2] (x, y): a face walking from the frame's centre out past the right edge (to
  `margin` pixels beyond it) at `speed` pixels per frame, away for `away` frames, then in
  from as far beyond the left edge back to the centre, where it stays."""
  xs, x = [], width / 2
  while x < width + margin and len(xs) < num_frames:
    xs.append(x)
    x += speed
  xs += [width + margin] * away
  x = -margin
  while len(xs) < num_frames:
    xs.append(min(x, width / 2))
    x += speed
  return np.stack([np.array(xs[:num_frames]), np.full(num_frames, height / 2)], axis=1)


def shot(photo: np.ndarray, num_frames: int, height: int, width: int, x: float, seed: int,
         anchor: tuple[float, float] = ASTRONAUT_FACE_CENTRE, zoom: tuple[float, float] = (1.0, 1.3),
         y: float = 0.5, drift: float = 0.05) -> np.ndarray:
  """[T, H, W, 3] uint8: one film shot of `photo`, its point `anchor` (the face) at x, y
  (fractions of the frame) drifting by `drift` of the width, zooming and turning a little;
  `seed` picks the background. Concatenate shots to make cuts."""
  path = np.stack([np.linspace(x, x + drift, num_frames) * width, np.full(num_frames, y * height)], axis=1)
  motion = PhotoMotion(scale=zoom, rotation=8.0, cycles=0.5)
  return photo_clip(photo, num_frames, height, width, motion, anchor=anchor, seed=seed, path=path)
