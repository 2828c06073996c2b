"""What a trunk's input must look like: channel order, scale, mean and std, in one value.

Pre-trained weights only work with the normalisation they were trained with: VGG-Face wants
RGB pixels in 0..255 minus a mean pixel, torchvision's ImageNet VGG16 wants RGB in 0..1 minus
the ImageNet mean divided by its std. A converted weight directory stores its convention next
to the parameters (see `videmo.weights.converted`), and everything that feeds images to the
trunk (the input pipeline, `videmo predict`) takes the convention from there instead of
hard-coding one, so weights cannot be paired with the wrong normalisation.

Images enter as RGB (uint8, or float in 0..255), [..., H, W, 3]; the trunk receives

    x = (image[..., order] * scale - mean) / std          (float32, [..., H, W, 3])

with `order` the identity for RGB trunks and a channel flip for BGR ones. Every trunk written
by `videmo convert-weights` takes RGB (BGR-trained first layers are converted), so BGR only
appears when describing a source file.

This module is import-light (numpy only) so input pipelines can use it without pulling in JAX.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import numpy as np

CHANNEL_ORDERS = ("RGB", "BGR")


@dataclasses.dataclass(frozen=True)
class InputConvention:
  """x = (image_in_channel_order * scale - mean) / std, per channel.

  Attributes:
    channel_order: "RGB" or "BGR": the order of the trunk's three input channels.
    scale: multiplies the 0..255 pixel values first (1.0 keeps 0..255, 1/255 gives 0..1).
    mean: three per-channel means, in the trunk's channel order and in scaled units.
    std: three per-channel standard deviations (> 0), same order and units.
  """

  channel_order: str = "RGB"
  scale: float = 1.0
  mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
  std: tuple[float, float, float] = (1.0, 1.0, 1.0)

  def __post_init__(self):
    if self.channel_order not in CHANNEL_ORDERS:
      raise ValueError(f"InputConvention.channel_order must be one of {CHANNEL_ORDERS}, "
                       f"got {self.channel_order!r}")
    for field in ("mean", "std"):
      values = tuple(float(v) for v in np.asarray(getattr(self, field), np.float64).reshape(-1))
      if len(values) != 3 or not all(np.isfinite(values)):
        raise ValueError(f"InputConvention.{field} must be 3 finite numbers (one per channel), "
                         f"got {getattr(self, field)!r}")
      object.__setattr__(self, field, values)
    if min(self.std) <= 0:
      raise ValueError(f"InputConvention.std must be positive, got {self.std}")
    scale = float(self.scale)
    if not np.isfinite(scale) or scale <= 0:
      raise ValueError(f"InputConvention.scale must be a positive number, got {self.scale!r}")
    object.__setattr__(self, "scale", scale)

  def normalize(self, images: Any, dtype: Any = np.float32) -> Any:
    """RGB images [..., H, W, 3] (uint8 or float in 0..255) -> trunk input [..., H, W, 3].

    Works on numpy arrays (returns numpy) and on jax arrays, also under `jit` (returns jax):
    only indexing, `astype` and arithmetic are used.
    """
    if images.shape[-1] != 3:
      raise ValueError(f"images must be RGB [..., H, W, 3], got shape {tuple(images.shape)}")
    x = images[..., ::-1] if self.channel_order == "BGR" else images
    x = x.astype(dtype) * np.asarray(self.scale, dtype)
    return (x - np.asarray(self.mean, dtype)) / np.asarray(self.std, dtype)

  def denormalize(self, x: Any, dtype: Any = np.float32) -> Any:
    """Inverse of `normalize`: trunk input [..., H, W, 3] -> RGB float in 0..255 (unclipped)."""
    if x.shape[-1] != 3:
      raise ValueError(f"x must be [..., H, W, 3], got shape {tuple(x.shape)}")
    pixels = (x.astype(dtype) * np.asarray(self.std, dtype) + np.asarray(self.mean, dtype))
    pixels = pixels / np.asarray(self.scale, dtype)
    return pixels[..., ::-1] if self.channel_order == "BGR" else pixels

  def as_rgb(self) -> "InputConvention":
    """The same normalisation for a trunk whose first layer takes RGB (mean/std reordered)."""
    if self.channel_order == "RGB":
      return self
    return InputConvention("RGB", self.scale, self.mean[::-1], self.std[::-1])

  def to_dict(self) -> dict[str, Any]:
    return {"channel_order": self.channel_order, "scale": self.scale,
            "mean": list(self.mean), "std": list(self.std)}

  @classmethod
  def from_dict(cls, d: Mapping[str, Any]) -> "InputConvention":
    keys = {"channel_order", "scale", "mean", "std"}
    if set(d) != keys:
      raise ValueError(
          f"an input convention needs exactly the keys {sorted(keys)}, got {sorted(d)}")
    return cls(d["channel_order"], d["scale"], tuple(d["mean"]), tuple(d["std"]))

  def describe(self) -> str:
    """One line, e.g. 'RGB, x = (pixel * 1 - [129.186, 104.762, 93.594]) / [1, 1, 1]'."""
    fmt = lambda values: "[" + ", ".join(f"{v:.6g}" for v in values) + "]"  # noqa: E731
    return (f"{self.channel_order}, x = (pixel * {self.scale:.6g} - {fmt(self.mean)}) / "
            f"{fmt(self.std)}  (pixel in 0..255)")


# VGG-Face (Parkhi et al. 2015) as published in the PyTorch port vgg_face_dag.pth and the
# MatConvNet vgg-face.mat: RGB in 0..255 minus the mean face pixel (the Caffe release's BGR
# mean 93.5940, 104.7624, 129.1863 reversed, at float32 precision).
VGGFACE_CONVENTION = InputConvention(
    "RGB", 1.0, (129.186279296875, 104.76238250732422, 93.59396362304688), (1.0, 1.0, 1.0))

# torchvision's ImageNet models (vgg16-397923af.pth): RGB in 0..1, ImageNet mean and std.
IMAGENET_CONVENTION = InputConvention(
    "RGB", 1.0 / 255.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
