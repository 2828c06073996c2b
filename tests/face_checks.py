"""Test helpers for the face pipeline: real-photo clips and checks of aligned crops."""

from __future__ import annotations

import numpy as np
import skimage.data

import photo_video
from videmo.data.preparation import faces


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
