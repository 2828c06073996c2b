"""VGG16 convolutional trunk: frames [N, H, W, 3] -> conv5_3 feature map [N, H/16, W/16, D].

Thirteen 3x3 convolutions with ReLU in five blocks, 2x2 max-pooling after the first four
blocks, no pool5 and no fully connected layers (paper Sec. 3.1: the last convolutional map
is the set of L = H/16 * W/16 local descriptors). Layers are named exactly as in the public
VGG-Face and VGG16 releases (conv1_1 ... conv5_3), each with `kernel` [3, 3, C_in, C_out]
(HWIO) and `bias` [C_out], so converting those weights is a rename and a transpose.

The input is a float image already normalised the way the trunk's weights expect (for
VGG-Face: RGB in 0..255 minus the mean pixel); normalisation belongs to the input pipeline.

`conv_impl` picks the convolution: 'auto' (oneDNN's kernels on CPU when available, else
XLA's), 'xla' or 'onednn' (videmo/ops/conv.py); the parameters and values are the same.

`width_divisor` > 1 gives the narrow variant used by tests and the default demo: the same
structure with every layer's channel count divided (64 -> 8 at divisor 8), so D = 512 / divisor.
"""

from __future__ import annotations

from typing import Any

import chex
import flax.linen as nn
import jax.numpy as jnp

from videmo.ops import conv as conv_ops

# Output channels of each convolution, block by block (VGG16, configuration "D").
VGG16_BLOCKS: tuple[tuple[int, ...], ...] = (
    (64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
VGG16_LAYER_NAMES: tuple[str, ...] = tuple(
    f"conv{b + 1}_{i + 1}" for b, block in enumerate(VGG16_BLOCKS) for i in range(len(block)))
VGG16_STRIDE = 16  # total down-sampling of the four max-pools
VGG16_PARAM_COUNT = 14_714_688  # parameters of the 13 conv layers at full width
# He (Kaiming) normal initialisation, fan-out mode, as torchvision initialises VGG: without it a
# 13-layer ReLU stack without normalisation trained from scratch barely passes a gradient.
KERNEL_INIT = nn.initializers.variance_scaling(2.0, "fan_in", "normal")


def max_pool_2x2(x: jnp.ndarray) -> jnp.ndarray:
  """2x2 max-pooling with stride 2: x [N, H, W, C] (H, W even) -> [N, H/2, W/2, C].

  The values of `nn.max_pool(x, (2, 2), strides=(2, 2))`, written as a reshape and a max: its
  gradient is an elementwise mask that XLA:CPU fuses, where max_pool's select-and-scatter
  took 30% of the small trunk's backward pass. A tie within a window shares the gradient
  instead of giving it to the first maximum; after a ReLU the only ties are zeros, whose
  gradient the ReLU drops either way.
  """
  n, h, w, c = x.shape
  return jnp.max(x.reshape(n, h // 2, 2, w // 2, 2, c), axis=(2, 4))


def feature_dim(width_divisor: int = 1) -> int:
  """D, the channel count of conv5_3 for a given width divisor."""
  return VGG16_BLOCKS[-1][-1] // width_divisor


class VGG16(nn.Module):
  """VGG16 up to conv5_3 (ReLU applied, no pool5).

  Attributes:
    width_divisor: divide every layer's channels by this (1 = the real VGG16; must divide 64).
    dtype: computation dtype (e.g. jnp.bfloat16); parameters stay float32.
    conv_impl: 'auto', 'xla' or 'onednn' (videmo/ops/conv.py).

  To trade compute for memory, wrap the class in `nn.remat` (the model does so when asked);
  the parameter tree is unchanged.
  """

  width_divisor: int = 1
  dtype: Any = jnp.float32
  conv_impl: str = "auto"

  @nn.compact
  def __call__(self, images: jnp.ndarray) -> jnp.ndarray:
    """images [N, H, W, 3] (H, W multiples of 16) -> conv5_3 map [N, H/16, W/16, D]."""
    if self.width_divisor < 1 or 64 % self.width_divisor:
      raise ValueError(f"width_divisor must divide 64 (1, 2, 4, 8, ...), got {self.width_divisor}")
    chex.assert_rank(images, 4)
    n, h, w, c = images.shape
    if c != 3 or h % VGG16_STRIDE or w % VGG16_STRIDE:
      raise ValueError(f"images must be [N, H, W, 3] with H, W multiples of 16, got {images.shape}")
    conv = conv_ops.conv_general_dilated(self.conv_impl, self.dtype)
    x = images.astype(self.dtype)
    for b, block in enumerate(VGG16_BLOCKS):
      for i, channels in enumerate(block):
        x = nn.Conv(channels // self.width_divisor, (3, 3), padding="SAME", dtype=self.dtype,
                    kernel_init=KERNEL_INIT, conv_general_dilated=conv, name=f"conv{b + 1}_{i + 1}")(x)
        x = nn.relu(x)
      if b < len(VGG16_BLOCKS) - 1:
        x = max_pool_2x2(x)
    chex.assert_shape(x, (n, h // VGG16_STRIDE, w // VGG16_STRIDE, feature_dim(self.width_divisor)))
    return x

