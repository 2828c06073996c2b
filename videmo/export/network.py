"""A work directory's network as one pure function of (frames, mask), ready to be traced for export.

    frames [1, T, C, C, 3] uint8   RGB face crops, as `Predictor.faces(...).crops[None]` gives them
    mask   [1, T] bool             True = a real frame (False: padding, which changes no output)
      -> log_probs        [1, E]        log p(c|S)
         frame_importance [1, T]        p(f|S) (or the pooling's analogue; 0 on masked frames)
         attention        [1, T, N, L]  each head's map over the L = (C/16)^2 positions (only for
                                        spatial='attention' or 'shift')
         frame_scores     [1, T, E]     per-frame class scores o_fc (0 on masked frames)

The pixels are normalised inside with the run's input convention, so the exported file takes
face crops directly. The model is rebuilt from the run's config with XLA's convolutions
(`conv_impl='xla'`, standard ops for any exporter; the oneDNN path is a CPU kernel outside
XLA) in float32 whatever dtype it trained in (the parameters are float32 either way), and
without remat (training only). T is a symbolic dimension (`jax.export.symbolic_shape`).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax
import jax.numpy as jnp

from videmo.models import video
from videmo.models.input_convention import InputConvention
from videmo.models.vgg import VGG16_STRIDE

OUTPUTS: tuple[str, ...] = ("log_probs", "frame_importance", "attention", "frame_scores")
INPUTS: tuple[str, ...] = ("frames", "mask")
FRAMES_SYMBOL = "T"


@dataclasses.dataclass(frozen=True)
class ExportableRun:
  """A restored network and what a user of its export needs to know (see the module docstring).

  model: the network (XLA convolutions, float32). params: its parameters. convention: the
  input normalisation applied inside. class_names: [E]. crop_size: C. face_size: the side S
  of the stored faces that crops are cut from (centre crop C of S). checkpoint, step: the step
  folder restored and its training step.
  """

  model: video.VideoEmotionNet
  params: Any
  convention: InputConvention
  class_names: tuple[str, ...]
  crop_size: int
  face_size: int
  checkpoint: str
  step: int

  @property
  def has_attention(self) -> bool:
    return self.model.spatial in ("attention", "shift")

  @property
  def output_names(self) -> tuple[str, ...]:
    """OUTPUTS without 'attention' for a model that has none."""
    return tuple(name for name in OUTPUTS if name != "attention" or self.has_attention)

  @property
  def grid(self) -> tuple[int, int]:
    """(gh, gw): the attention grid, L = gh * gw."""
    return self.crop_size // VGG16_STRIDE, self.crop_size // VGG16_STRIDE

  def forward(self, frames: jnp.ndarray, mask: jnp.ndarray) -> dict[str, jnp.ndarray]:
    """frames [1, T, C, C, 3] uint8, mask [1, T] bool -> {name: array} in `output_names` order."""
    outputs = self.model.apply({"params": self.params}, self.convention.normalize(frames, jnp.float32), mask)
    return {name: outputs[name] for name in self.output_names}

  def input_specs(self) -> tuple[jax.ShapeDtypeStruct, jax.ShapeDtypeStruct]:
    """(frames, mask) with the frame count the symbolic dimension T (>= 1)."""
    (frames,) = jax.export.symbolic_shape(FRAMES_SYMBOL)
    c = self.crop_size
    return (jax.ShapeDtypeStruct((1, frames, c, c, 3), jnp.uint8),
            jax.ShapeDtypeStruct((1, frames), jnp.bool_))

  def output_shapes(self) -> dict[str, str]:
    """Each output's shape as text, e.g. {'log_probs': '[1, 7]', 'frame_importance': '[1, T]', ...}."""
    e, t = len(self.class_names), FRAMES_SYMBOL
    shapes = dict(log_probs=f"[1, {e}]", frame_importance=f"[1, {t}]",
                  attention=f"[1, {t}, {self.model.num_heads}, {self.grid[0] * self.grid[1]}]",
                  frame_scores=f"[1, {t}, {e}]")
    return {name: shapes[name] for name in self.output_names}


def load(checkpoint: str | os.PathLike) -> ExportableRun:
  """The network of a work directory (latest step), its checkpoints folder or a step folder.

  Errors (FileNotFoundError, ValueError) are one line naming what is missing or wrong.
  """
  from videmo.train.trained_run import TrainedRun

  run = TrainedRun.open(checkpoint)
  model = run.model(conv_impl="xla", dtype="float32", remat=False)
  params, step = run.restore(model)
  return ExportableRun(model, params, run.convention, run.class_names, run.crop_size,
                       run.dataset.clip_options.face.face_size, os.fspath(run.step_dir(step)), step)
