"""FLOP counts of one training step: analytic (the model's matrix work) and XLA's own.

Analytic count (multiply-adds × 2), per frame of H×W pixels, for the layers that carry the
work (elementwise ops, pooling and the optimiser are left out, < 1% at any size here):

  trunk   Σ over conv1_1..conv5_3 of 2 · 9 · C_in · C_out · H_l · W_l   (H_l = H / 2^block)
          (full-width VGG16 at 224×224: 15.35 G multiply-adds = 30.7 GFLOP per frame)
  head    attention: W1 2·L·D·U, W2 2·L·U·N, A·R 2·N·L·D, penalty 2·N·N·L; SHIFT: 2·L·D·N + 2·N·L·D;
          classifier 2·K·E; LSTM: 8·(K + H)·H + 2·H·E

A training step costs the forward pass, the backward pass with respect to the activations
(as much again) and with respect to the weights (as much again): 3 × forward, less the
gradient with respect to conv1_1's input, which nothing needs (the frames are not trained).
This "model FLOPs" count is what MFU is measured with.

XLA's count (`compiled.cost_analysis()`) differs in two ways: it counts only the taps of a
3×3 'SAME' convolution that fall inside the image ((3H−2)(3W−2) instead of 9HW per channel
pair: 3% fewer at 224×224, 6% at 112, 10% at 64, where the hardware multiplies by the zero
padding anyway), and it adds elementwise work (7/3 FLOP per conv output for bias, ReLU and
pooling), the optimiser and any recomputation (remat). `taps="in_bounds"` gives the first,
so the two counts can be checked against each other (tests/test_bench.py).
"""

from __future__ import annotations

from typing import Any, Mapping

from videmo.models.vgg import VGG16_BLOCKS, VGG16_STRIDE


def conv_layers(height: int, width: int, width_divisor: int = 1) -> list[tuple[str, int, int, int, int]]:
  """(name, H_l, W_l, C_in, C_out) of VGG16's 13 convolutions for an H×W input."""
  if height % VGG16_STRIDE or width % VGG16_STRIDE:
    raise ValueError(f"frame size must be a multiple of {VGG16_STRIDE}, got {height}x{width}")
  layers, c_in = [], 3
  for b, block in enumerate(VGG16_BLOCKS):
    h, w = height >> b, width >> b
    for i, channels in enumerate(block):
      c_out = channels // width_divisor
      layers.append((f"conv{b + 1}_{i + 1}", h, w, c_in, c_out))
      c_in = c_out
  return layers


TAPS = ("all", "in_bounds")


def conv_flops(height: int, width: int, c_in: int, c_out: int, taps: str = "all") -> int:
  """FLOPs of one 3×3 'SAME' convolution over an H×W map: all 9 taps, or only those inside the map."""
  if taps not in TAPS:
    raise ValueError(f"taps must be one of {TAPS}, got {taps!r}")
  positions = 9 * height * width if taps == "all" else (3 * height - 2) * (3 * width - 2)
  return 2 * positions * c_in * c_out


def trunk_forward_flops(height: int, width: int, width_divisor: int = 1, taps: str = "all") -> int:
  """FLOPs of the 13 convolutions of one frame's forward pass."""
  return sum(conv_flops(h, w, c_in, c_out, taps) for _, h, w, c_in, c_out in conv_layers(height, width, width_divisor))


def head_forward_flops(model: Mapping[str, Any], height: int, width: int) -> int:
  """FLOPs of one frame's spatial aggregation and class scores (the LSTM's too)."""
  positions = (height // VGG16_STRIDE) * (width // VGG16_STRIDE)
  dim = VGG16_BLOCKS[-1][-1] // model["trunk_width_divisor"]
  heads, classes = model["num_heads"], model["num_classes"]
  if model["spatial"] == "attention":
    hidden = model["attention_hidden"]
    flops = 2 * positions * (dim * hidden + hidden * heads + heads * dim + heads * heads)
    features = heads * dim
  elif model["spatial"] == "shift":
    flops, features = 4 * positions * dim * heads, heads * dim
  else:
    flops, features = positions * dim, dim
  if model["temporal"] == "lstm":
    hidden = model["lstm_hidden"]
    return flops + 8 * (features + hidden) * hidden + 2 * hidden * classes
  return flops + 2 * features * classes


def train_step_flops(model: Mapping[str, Any], clips: int, frames: int, height: int, width: int,
                     taps: str = "all") -> dict[str, int]:
  """Model FLOPs of one step over clips × frames frames of H×W: forward, train (≈ 3× forward), trunk_forward."""
  trunk = trunk_forward_flops(height, width, model["trunk_width_divisor"], taps)
  head = head_forward_flops(model, height, width)
  _, h, w, c_in, c_out = conv_layers(height, width, model["trunk_width_divisor"])[0]
  first_input_grad = conv_flops(h, w, c_in, c_out, taps)
  n = clips * frames
  return dict(forward=n * (trunk + head), train=n * (3 * (trunk + head) - first_input_grad),
              trunk_forward=n * trunk)


def xla_flops(compiled: Any) -> float | None:
  """FLOPs of a compiled computation by XLA's cost analysis (None when the backend gives none)."""
  try:
    analysis = compiled.cost_analysis()
  except Exception:  # some backends do not implement it
    return None
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0] if analysis else None
  if not analysis or "flops" not in analysis:
    return None
  return float(analysis["flops"])
