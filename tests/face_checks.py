"""Test helpers for the face pipeline: real-photo clips and checks of aligned crops."""

from __future__ import annotations

import numpy as np
import skimage.data

import photo_video
from videmo.data.preparation import face_tracker, faces


def astronaut_clip(num_frames: int, height: int = 288, width: int = 360, zoom=(1.0, 1.3), seed: int = 0,
                   cycles: float = 0.5) -> np.ndarray:
  """[T, H, W, 3] uint8: the astronaut photograph moving, zooming and turning a little."""
  motion = photo_video.PhotoMotion(scale=zoom, rotation=8.0, travel=0.3, cycles=cycles)
  return photo_video.photo_clip(skimage.data.astronaut(), num_frames, height, width, motion, seed=seed)


def face_free_clip(num_frames: int, height: int = 288, width: int = 360, seed: int = 0) -> np.ndarray:
  """[T, H, W, 3] uint8: a photograph without a face (skimage's coffee cup) moving about."""
  coffee = skimage.data.coffee()
  motion = photo_video.PhotoMotion(scale=(0.8, 1.1), rotation=5.0, travel=0.3, cycles=0.5)
  return photo_video.photo_clip(coffee, num_frames, height, width, motion, anchor=(300, 200), seed=seed)


def eye_error(models: faces.FaceModels, crop: np.ndarray, padding: float = 0.25) -> float:
  """Largest distance (pixels) of the eye centres found in an aligned crop [S, S, 3] from
  where `get_face_chip` puts them; inf when no face is found in the crop."""
  size = crop.shape[0]
  boxes = faces.detect_faces(models, faces.to_gray(crop), 1.0)
  pick = faces.choose_face(boxes, None)
  if pick is None:
    return float("inf")
  _, points = faces.predict_landmarks(models, crop, boxes[pick])
  canonical = faces.canonical_landmarks(size, padding)
  eyes = lambda p: np.stack([p[0:2].mean(0), p[2:4].mean(0)])
  return float(np.linalg.norm(eyes(points) - eyes(canonical), axis=1).max())


# The astronaut's head and shoulders, square (her face is about 48% of its side).
_PERSON = (slice(40, 220), slice(130, 310))


def person(size: int, mirrored: bool = False) -> np.ndarray:
  """[size, size, 3] uint8: the astronaut's head and shoulders; mirrored, a second person."""
  from PIL import Image

  photo = skimage.data.astronaut()[_PERSON]
  photo = photo[:, ::-1] if mirrored else photo
  return np.asarray(Image.fromarray(np.ascontiguousarray(photo)).resize((size, size), Image.BILINEAR))


def people_clip(main_visible, other_visible, height: int = 300, width: int = 480, main_size: int = 210,
                other_size: int = 170, seed: int = 0) -> np.ndarray:
  """[T, H, W, 3] uint8: two people on a textured background, each shown in the frames where
  its flag is True. The main one (larger, faces ~100 px) stands in the middle and sways a
  little; the other (mirrored, smaller, faces ~85 px) stands at the left edge."""
  from PIL import Image

  base = photo_video.background(height, width, seed)
  main, other = Image.fromarray(person(main_size)), Image.fromarray(person(other_size, mirrored=True))
  frames = []
  for t, (show_main, show_other) in enumerate(zip(main_visible, other_visible)):
    canvas = Image.fromarray(base.copy())
    if show_other:
      canvas.paste(other, (4, height - other_size - 10 - t % 3))
    if show_main:
      canvas.paste(main, ((width - main_size) // 2 + int(6 * np.sin(t / 3)), (height - main_size) // 2))
    frames.append(np.asarray(canvas))
  return np.stack(frames)


def which_person(models: faces.FaceModels, crops, options: faces.FaceOptions = faces.FaceOptions()) -> list[str]:
  """For each aligned crop [S, S, 3] (or None): 'main', 'other' (people_clip's) or '-' (None),
  by the nearer of the two people's own aligned crops."""
  references = {}
  for name, visible in (("main", (True, False)), ("other", (False, True))):
    frame = people_clip([visible[0]], [visible[1]])
    (aligned,) = face_tracker.align_video(frame, models, options)
    references[name] = aligned.face.astype(np.float64)
  names = []
  for crop in crops:
    if crop is None:
      names.append("-")
      continue
    errors = {name: np.abs(crop.astype(np.float64) - ref).mean() for name, ref in references.items()}
    names.append(min(errors, key=errors.get))
  return names
