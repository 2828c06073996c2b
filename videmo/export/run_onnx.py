"""An exported ONNX model (`videmo export --format onnx`) on face crops, in onnxruntime: no JAX, no videmo.

    python -m videmo.export.run_onnx synthemo.onnx crops.npy        # crops [T, C, C, 3] uint8
    python -m videmo.export.run_onnx synthemo.onnx faces/           # a folder of aligned face images

Prints the predicted class, its probability, the top 3 and the most important frame. A
folder's images (sorted by name) must already be aligned faces: each one's central square is
resized to the model's face size S and centre-cropped to C, the crop `videmo predict
--aligned` makes (without the JPEG round trip of stored faces). For raw videos, videmo finds
the faces: `Predictor(RUN).faces("clip.mp4").crops`.

It needs numpy, Pillow and onnxruntime only, so it can be copied out of videmo as it is.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def crop_face(image: np.ndarray, face_size: int, crop_size: int) -> np.ndarray:
  """An aligned face [H, W, 3] uint8 -> its central square resized to S x S, centre crop [C, C, 3]."""
  from PIL import Image

  h, w, _ = image.shape
  side = min(h, w)
  top, left = (h - side) // 2, (w - side) // 2
  square = np.ascontiguousarray(image[top:top + side, left:left + side])
  if side != face_size:
    square = np.asarray(Image.fromarray(square).resize((face_size, face_size), Image.BILINEAR))
  offset = (face_size - crop_size) // 2
  return square[offset:offset + crop_size, offset:offset + crop_size]


def load_crops(path: Path, face_size: int, crop_size: int) -> np.ndarray:
  """Crops [T, C, C, 3] uint8 from a .npy file of crops or a folder of aligned face images."""
  from PIL import Image

  if not path.exists():
    raise ValueError(f"{path} does not exist")
  if path.suffix == ".npy":
    crops = np.load(path)
  elif path.is_dir():
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
      raise ValueError(f"{path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    crops = np.stack([crop_face(np.asarray(Image.open(p).convert("RGB")), face_size, crop_size) for p in files])
  else:
    raise ValueError(f"{path} is neither a .npy file of crops nor a folder of face images")
  if crops.dtype != np.uint8 or crops.ndim != 4 or crops.shape[1:] != (crop_size, crop_size, 3) or not len(crops):
    raise ValueError(f"crops must be uint8 [T >= 1, {crop_size}, {crop_size}, 3], got {crops.dtype} {crops.shape}")
  return crops


def run(session: Any, crops: np.ndarray) -> dict[str, np.ndarray]:
  """The model on one clip of crops [T, C, C, 3] uint8 (every frame real) -> {output name: array [1, ...]}."""
  mask = np.ones((1, len(crops)), bool)
  names = [output.name for output in session.get_outputs()]
  return dict(zip(names, session.run(None, {"frames": crops[None], "mask": mask})))


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m videmo.export.run_onnx", description=__doc__.split("\n\n")[0])
  parser.add_argument("model", help="a file written by `videmo export --format onnx`")
  parser.add_argument("faces", help="crops [T, C, C, 3] uint8 (.npy) or a folder of aligned face images")
  args = parser.parse_args(argv)

  import onnxruntime

  session = onnxruntime.InferenceSession(args.model, providers=["CPUExecutionProvider"])
  meta = session.get_modelmeta().custom_metadata_map
  classes = json.loads(meta["classes"])
  try:
    crops = load_crops(Path(args.faces), int(meta["face_size"]), int(meta["crop_size"]))
  except (OSError, ValueError) as err:
    print(f"run_onnx: {err}", file=sys.stderr)
    return 1
  outputs = run(session, crops)
  probabilities = np.exp(outputs["log_probs"][0])
  top = np.argsort(-probabilities)[:3]
  best = int(np.argmax(outputs["frame_importance"][0]))
  print(f"{args.faces}: {classes[top[0]]} {probabilities[top[0]]:.1%} (top-3: "
        f"{', '.join(f'{classes[i]} {probabilities[i]:.1%}' for i in top)}); {len(crops)} frames, "
        f"most important frame {best} (p(f|S) = {outputs['frame_importance'][0, best]:.3f})")
  return 0


if __name__ == "__main__":
  sys.exit(main())
