"""The whole network: frames -> VGG16 trunk -> spatial aggregation -> frame scores -> temporal pooling.

Shapes (B clips, F frames, H×W faces, L = H/16·W/16 positions, D trunk channels,
N heads, E classes):

  frames [B, F, H, W, 3] --trunk (one [B·F, H, W, 3] batch)--> R [B, F, L, D]
  R --spatial--> V [B, F, K] (K = N·D for attention/SHIFT, D for average), A [B, F, N, L]
  V --classifier (Dense E)--> O [B, F, E] --temporal pooling--> log p(c|S) [B, E], p(f|S) [B, F]
  (the LSTM baseline runs over V instead and produces O from its states)

`build_model(config)` makes the network from a model config (see `MODEL_DEFAULTS`), checking
every field; its `__call__(frames, mask)` returns a dict:

  log_probs        [B, E]        log p(c|S)
  frame_importance [B, F]        p(f|S) or the pooling's analogue; 0 on masked frames
  frame_scores     [B, F, E]     per-frame class scores o_fc; 0 on masked frames
  attention        [B, F, N, L]  spatial attention maps (only for 'attention' and 'shift'); 0 on masked frames
  penalty          []            ‖A·Aᵀ − I‖²_F averaged over real frames (0 without attention)

Parameters: `trunk/conv1_1 ... conv5_3`, `spatial/...`, `classifier/...`, `temporal/...` (LSTM).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import chex
import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from videmo.models import spatial as spatial_lib
from videmo.models import temporal as temporal_lib
from videmo.models.precision import DTYPES, at_least_float32, check_dtype
from videmo.models.vgg import VGG16, VGG16_STRIDE
from videmo.ops import conv as conv_ops

SPATIALS: tuple[str, ...] = ("attention", "shift", "average")

class VideoEmotionNet(nn.Module):
  """VGG16 trunk + spatial aggregation + per-frame classifier + temporal pooling. See module doc.

  Its fields are the model config's (`MODEL_DEFAULTS`, derived from them); the defaults are the
  paper's VGG16 + TP + SA(2).
  """

  num_classes: int = 7            # E
  trunk_width_divisor: int = 1    # 1 = VGG16; 8 = the narrow trunk of tests and the demo
  spatial: str = "attention"      # one of SPATIALS
  num_heads: int = 2              # N
  attention_hidden: int = 64      # U
  temporal: str = "softmax"       # one of temporal.POOLINGS
  temperature: float = 1.0        # τ of softmax pooling
  lstm_hidden: int = 512          # LSTM state size (temporal='lstm')
  dtype: Any = jnp.float32        # computation dtype (precision.DTYPES); parameters stay float32
  remat: bool = False             # recompute the trunk in the backward pass (saves memory)
  dropout_rate: float = 0.0       # dropout on the frame features V in training (the paper uses none)
  conv_impl: str = "auto"         # the trunk's convolutions: 'auto', 'xla' or 'onednn' (videmo/ops/conv.py)

  @nn.compact
  def __call__(self, frames: jnp.ndarray, mask: jnp.ndarray | None = None,
               deterministic: bool = True) -> dict[str, jnp.ndarray]:
    """frames [B, F, H, W, 3] (normalised), mask [B, F] bool (None = all real) -> outputs dict.

    `deterministic=False` applies dropout (needs a 'dropout' rng) when dropout_rate > 0.
    """
    if frames.ndim != 5 or frames.shape[-1] != 3:
      raise ValueError(f"frames must be [B, F, H, W, 3], got shape {frames.shape}")
    b, f, h, w, _ = frames.shape
    if mask is None:
      mask = jnp.ones((b, f), bool)
    if mask.shape != (b, f):
      raise ValueError(f"mask must be [B, F] = {(b, f)} (bool, True = real frame), got shape {tuple(mask.shape)}")
    mask = mask.astype(bool)

    trunk_cls = nn.remat(VGG16) if self.remat else VGG16
    local = trunk_cls(width_divisor=self.trunk_width_divisor, dtype=self.dtype, conv_impl=self.conv_impl,
                      name="trunk")(
        frames.reshape(b * f, h, w, 3))
    grid = (h // VGG16_STRIDE, w // VGG16_STRIDE)
    local = local.reshape(b, f, grid[0] * grid[1], local.shape[-1])  # R [B, F, L, D]

    features, attention = self._spatial()(local)  # V [B, F, K], A [B, F, N, L] or None
    outputs: dict[str, jnp.ndarray] = {}
    if attention is not None:
      attention = jnp.where(mask[:, :, None, None], attention, 0.0)
      penalty = spatial_lib.attention_penalty(attention)  # [B, F]
      outputs["attention"] = attention
      outputs["penalty"] = jnp.sum(jnp.where(mask, penalty, 0.0)) / jnp.maximum(jnp.sum(mask), 1)
    else:
      outputs["penalty"] = jnp.zeros((), jnp.float32)

    if self.dropout_rate > 0:
      features = nn.Dropout(self.dropout_rate, deterministic=deterministic)(features)
    if self.temporal == "lstm":
      outputs.update(temporal_lib.LSTMPooling(
          self.num_classes, self.lstm_hidden, dtype=self.dtype, name="temporal")(features, mask))
      return outputs

    scores = nn.Dense(self.num_classes, dtype=self.dtype, name="classifier")(features)
    scores = at_least_float32(scores)
    scores = jnp.where(mask[..., None], scores, 0.0)
    log_probs, importance = temporal_lib.pool_frame_scores(self.temporal, scores, mask, self.temperature)
    chex.assert_shape(log_probs, (b, self.num_classes))
    outputs.update(log_probs=log_probs, frame_importance=importance, frame_scores=scores)
    return outputs

  def _spatial(self) -> nn.Module:
    if self.spatial == "attention":
      return spatial_lib.MultiHeadAttention(self.num_heads, self.attention_hidden, dtype=self.dtype,
                                            name="spatial")
    if self.spatial == "shift":
      return spatial_lib.AttentionClusters(self.num_heads, dtype=self.dtype, name="spatial")
    if self.spatial == "average":
      return spatial_lib.SpatialAverage(name="spatial")
    raise ValueError(f"spatial must be one of {SPATIALS}, got {self.spatial!r}")


def _config_defaults() -> dict[str, Any]:
  """VideoEmotionNet's fields and defaults as a model config (dtype by name, e.g. 'float32')."""
  names = {value: name for name, value in DTYPES.items()}
  defaults = {f.name: f.default for f in dataclasses.fields(VideoEmotionNet) if f.name not in ("parent", "name")}
  defaults["dtype"] = names[defaults["dtype"]]
  return defaults


# Every field a model config may set, with its default.
MODEL_DEFAULTS: dict[str, Any] = _config_defaults()


def check_model_config(config: Mapping[str, Any]) -> dict[str, Any]:
  """Model config -> complete, validated field dict; errors name the field and the allowed values."""
  fields = dict(config.to_dict() if isinstance(config, ml_collections.ConfigDict) else config)
  unknown = sorted(set(fields) - set(MODEL_DEFAULTS))
  if unknown:
    raise ValueError(f"model config: unknown field(s) {unknown}; allowed: {sorted(MODEL_DEFAULTS)}")
  fields = {**MODEL_DEFAULTS, **fields}

  def allowed(name, options):
    if fields[name] not in options:
      raise ValueError(f"model.{name} must be one of {tuple(options)}, got {fields[name]!r}")

  def at_least(name, low):
    if not isinstance(fields[name], int) or fields[name] < low:
      raise ValueError(f"model.{name} must be an integer >= {low}, got {fields[name]!r}")

  allowed("spatial", SPATIALS)
  allowed("temporal", temporal_lib.POOLINGS)
  allowed("conv_impl", conv_ops.CONV_IMPLS)
  check_dtype(fields["dtype"])
  allowed("trunk_width_divisor", (1, 2, 4, 8, 16, 32, 64))
  for name, low in (("num_classes", 2), ("num_heads", 1), ("attention_hidden", 1), ("lstm_hidden", 1)):
    at_least(name, low)
  if not 0 <= fields["dropout_rate"] < 1:
    raise ValueError(f"model.dropout_rate must be in [0, 1), got {fields['dropout_rate']!r}")
  if not fields["temperature"] > 0:
    raise ValueError(f"model.temperature must be > 0, got {fields['temperature']!r}")
  return fields


def build_model(config: Mapping[str, Any]) -> VideoEmotionNet:
  """The network for a model config (a ConfigDict or dict of `MODEL_DEFAULTS` fields, or a
  full experiment config with a `model` field)."""
  if "model" in config and not isinstance(config["model"], str):
    config = config["model"]
  fields = check_model_config(config)
  fields["dtype"] = DTYPES[fields["dtype"]]
  return VideoEmotionNet(**fields)
