"""SynthEmo's face regions in a frame: which regions an expression moves, and their pixel masks.

The renderer keeps five boxes per clip (drawing.region_boxes: the mouth, then each side's eye
and brow), each holding every shape its feature takes in the clip. A frame's mask is the union
of boxes, grown by 1.5 pixels and mapped through the frame's pose, minus the pixels an occluder
fully hides. `region_mask` of the renderer uses all five boxes; the expression mask only the
boxes of the regions the clip's class moves (`expression_regions`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from videmo.data.synthemo import drawing

REGIONS: tuple[str, ...] = ("mouth", "eyes", "brows")


def expression_regions(face: drawing.Identity, deformation: np.ndarray) -> tuple[str, ...]:
  """The regions (in REGIONS order) whose drawn geometry the deformation [6] changes for this
  person (an apex, already scaled by the person's expressiveness): compared with the neutral face,
  'mouth' when its width, corner lift or opening differ, 'eyes' when the aperture does, 'brows'
  when either end's height does. () for Neutral."""
  neutral, moved = drawing.features(face, np.zeros(6)), drawing.features(face, np.asarray(deformation, np.float64))
  changed = {
      "mouth": (neutral.mouth_w, neutral.mouth_k, neutral.mouth_o) != (moved.mouth_w, moved.mouth_k, moved.mouth_o),
      "eyes": neutral.eye_open != moved.eye_open,
      "brows": (neutral.brow_inner, neutral.brow_outer) != (moved.brow_inner, moved.brow_outer),
  }
  return tuple(region for region in REGIONS if changed[region])


def boxes_of(boxes: Sequence[tuple[float, float, float, float]], regions: Sequence[str]) -> list:
  """The boxes (of drawing.region_boxes, in its order) whose region is one of `regions`."""
  unknown = sorted(set(regions) - set(REGIONS))
  if unknown:
    raise ValueError(f"regions must be among {REGIONS}, got {unknown}")
  return [box for box, region in zip(boxes, drawing.BOX_REGIONS) if region in regions]


def frame_mask(canvas: drawing.Canvas, boxes: Sequence[tuple[float, float, float, float]],
               covers: Sequence[tuple]) -> np.ndarray:
  """[S, S] bool: the boxes (face units) in the canvas's frame, each grown by 1.5 pixels, minus
  the pixels that `covers` ((slices, coverage [h, w]) of occluders) fully hide."""
  size = canvas.size
  mask = np.zeros((size, size), bool)
  margin_px = 1.5 / canvas.pose.radius
  for cu, cv, hu, hv in boxes:
    g = canvas.grid(cu, cv, hu + margin_px, hv + margin_px)
    if g:
      sl, u, v = g
      mask[sl] |= (np.abs(u - cu) <= hu + margin_px) & (np.abs(v - cv) <= hv + margin_px)
  for sl, alpha in covers:
    mask[sl] &= alpha < 1.0
  return mask
