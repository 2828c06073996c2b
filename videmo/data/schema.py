"""The one clip schema every dataset builder writes, and the emotion names of AFEW.

A clip is a sequence of aligned face frames with one emotion label. Every builder
(synthemo, afew, video_folder) writes this schema, so the input pipeline reads every
dataset the same way; a builder may add fields of its own (SynthEmo adds ground truth).

Fields (F = number of frames in the clip, S = face size, 256 for real data):
  frames      Sequence(Image[S, S, 3], jpeg)  aligned faces, in temporal order      [F, S, S, 3] uint8
  label       ClassLabel                       the clip's emotion                    scalar int
  clip_id     Text                             unique id within the dataset
  source      Text                             the file or folder it came from
  num_frames  int32                            F
  face_found  Sequence(bool)                   per frame: did a face detector find one [F]
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import tensorflow_datasets as tfds

# AFEW's seven emotions, in the order of its class indices (alphabetical, as EmotiW uses).
AFEW_EMOTIONS: tuple[str, ...] = ("Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise")

FACE_SIZE = 256  # aligned face side in pixels (paper, Sec. 4.1)
JPEG_QUALITY = 95


def clip_features(
    class_names: Sequence[str] = AFEW_EMOTIONS,
    face_size: int = FACE_SIZE,
    extra: Mapping[str, tfds.features.FeatureConnector] | None = None,
) -> tfds.features.FeaturesDict:
  """The shared clip FeaturesDict; `extra` adds builder-specific fields (names must be new)."""
  if face_size < 16:
    raise ValueError(f"face_size must be >= 16 pixels, got {face_size}")
  if len(class_names) < 2 or len(set(class_names)) != len(class_names):
    raise ValueError(f"class_names must be >= 2 distinct names, got {list(class_names)}")
  fields = {
      "frames": tfds.features.Sequence(
          tfds.features.Image(shape=(face_size, face_size, 3), encoding_format="jpeg")),
      "label": tfds.features.ClassLabel(names=list(class_names)),
      "clip_id": tfds.features.Text(),
      "source": tfds.features.Text(),
      "num_frames": tfds.features.Scalar(dtype=np.int32),
      "face_found": tfds.features.Sequence(tfds.features.Scalar(dtype=np.bool_)),
  }
  for name in extra or {}:
    if name in fields:
      raise ValueError(f"extra field {name!r} clashes with a shared clip field; shared: {sorted(fields)}")
  fields.update(extra or {})
  return tfds.features.FeaturesDict(fields)


def encode_jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
  """JPEG bytes of one uint8 RGB image [H, W, 3] (Pillow; TFDS would need TensorFlow for arrays)."""
  import io

  from PIL import Image

  if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
    raise ValueError(f"image must be uint8 [H, W, 3], got {image.dtype} {image.shape}")
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
  return buffer.getvalue()
