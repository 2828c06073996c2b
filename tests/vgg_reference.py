"""An independent float64 numpy VGG16 (no JAX, no videmo code), in the releases' own layout.

Works on one image in CHW with kernels [C_out, C_in, 3, 3] (PyTorch / Caffe layout) and dense
fc weights [out, in] whose fc6 input is pool5 flattened in C, H, W order -- the published
networks' own conventions, so the converter's transposes are checked rather than repeated.
"""

from __future__ import annotations

import numpy as np

BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
NAMES = tuple(f"conv{b + 1}_{i + 1}" for b, block in enumerate(BLOCKS) for i in range(len(block)))


def conv3x3(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
  """x [C, H, W], w [O, C, 3, 3] (cross-correlation, zero padding 1), b [O] -> [O, H, W]."""
  c, h, wd = x.shape
  xp = np.pad(x, ((0, 0), (1, 1), (1, 1)))
  patches = np.stack([xp[:, i:i + h, j:j + wd] for i in range(3) for j in range(3)], axis=1)
  out = w.reshape(w.shape[0], c * 9) @ patches.reshape(c * 9, h * wd)
  return out.reshape(-1, h, wd) + b[:, None, None]


def max_pool2(x: np.ndarray) -> np.ndarray:
  c, h, w = x.shape
  return x.reshape(c, h // 2, 2, w // 2, 2).max(axis=(2, 4))


def conv5_3(x: np.ndarray, layers: dict[str, tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
  """Preprocessed image [3, H, W] -> conv5_3 after ReLU [512, H/16, W/16]; layers in OIHW."""
  x = np.asarray(x, np.float64)
  for b, block in enumerate(BLOCKS):
    for i in range(len(block)):
      w, bias = layers[f"conv{b + 1}_{i + 1}"]
      x = np.maximum(conv3x3(x, np.asarray(w, np.float64), np.asarray(bias, np.float64)), 0.0)
    if b < 4:
      x = max_pool2(x)
  return x


def head(conv5: np.ndarray, fc: dict[str, tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
  """conv5_3 [512, 2k, 2k] -> softmax probabilities; fc weights dense [out, in], fc6 input C,H,W."""
  h = max_pool2(conv5).reshape(-1)
  for name in ("fc6", "fc7", "fc8"):
    w, b = fc[name]
    h = np.asarray(w, np.float64) @ h + np.asarray(b, np.float64)
    if name != "fc8":
      h = np.maximum(h, 0.0)
  e = np.exp(h - h.max())
  return e / e.sum()
