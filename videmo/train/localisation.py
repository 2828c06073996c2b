"""Does the model look where the emotion is? Spatial attention and frame importance against SynthEmo's truth.

Spatial attention A [N, L] of a frame (N heads over the L = g x g cells of the trunk's last
feature map, g = crop / 16) is compared with the expression's mask on the same grid
(`grid_mask`: a cell is inside when any of its 16 x 16 pixels of the centre crop lies in a
region the clip's class moves, so no pixel the expression changes is outside the mask):

* relevance mass: the share of a map's mass inside the mask (`relevance_mass`);
* pointing game: whether the map's highest cell is inside the mask (`pointing_game`);
* chance for both: the mask's share of the grid (`mask_share`), what a uniform map scores and
  how often a cell drawn at random is inside;
* the mean map: one fixed map for every frame, the mean attention map of the evaluated split:
  what attention scores when it ignores the frame;
* head overlap: the mean over pairs of heads of the sum of elementwise minima of their maps
  (`head_overlap`; 1 for identical maps, 0 for disjoint ones) and of their cosine (`head_cosine`).

`SpatialTally` gathers these over a split's expressive frames (and its maps over every frame),
with each class's mean maps per head and mean mask over its expressive frames (`class_maps`:
where the heads look when that expression shows, docs/make_attention_maps_figure.py);
`summary_line` prints its record. The faithfulness of the frame importance p(f|S)
(`faithfulness`) re-pools the per-frame class scores without some frames: the trunk, attention
and classifier see one frame at a time, so for the frame-local poolings this is exactly the
model run on the remaining frames.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from videmo.data.loading import pipeline
from videmo.models.vgg import VGG16_STRIDE

DELETION_FRACTIONS: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
INSERTION_FRACTIONS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
ORDERS: tuple[str, ...] = ("importance", "random", "window")


# ----------------------------------------------------------------------------- pure measures


def grid_mask(pixel_mask: np.ndarray, crop: int, stride: int = VGG16_STRIDE) -> np.ndarray:
  """Pixel masks [K, S, S] bool -> [K, L] bool on the attention grid of a crop x crop centre crop
  (the crop evaluation takes, pipeline.center_crop), L = (crop / stride)², cells row-major as
  the model flattens them; a cell is True when any of its pixels is."""
  pixel_mask = np.asarray(pixel_mask, bool)
  if pixel_mask.ndim != 3 or pixel_mask.shape[1] != pixel_mask.shape[2]:
    raise ValueError(f"pixel_mask must be [K, S, S], got shape {pixel_mask.shape}")
  if crop % stride:
    raise ValueError(f"crop must be a multiple of the trunk's stride {stride}, got {crop}")
  cropped = pipeline.center_crop(pixel_mask[..., None], crop)[..., 0]
  g = crop // stride
  return cropped.reshape(len(cropped), g, stride, g, stride).any(axis=(2, 4)).reshape(len(cropped), g * g)


def relevance_mass(attention: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """The share of each map's mass inside the mask: attention [..., L] (>= 0), mask [..., L] bool
  (broadcast) -> [...] float64 in 0..1 (NaN for an all-zero map)."""
  attention = np.asarray(attention, np.float64)
  inside = np.sum(np.where(np.asarray(mask, bool), attention, 0.0), axis=-1)
  with np.errstate(invalid="ignore", divide="ignore"):
    return inside / np.sum(attention, axis=-1)


def pointing_game(attention: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """Whether each map's highest cell (the first among ties) is inside the mask: attention
  [..., L], mask [..., L] bool (broadcast) -> [...] bool."""
  attention = np.asarray(attention)
  mask = np.broadcast_to(np.asarray(mask, bool), attention.shape)
  return np.take_along_axis(mask, attention.argmax(-1)[..., None], axis=-1)[..., 0]


def mask_share(mask: np.ndarray) -> np.ndarray:
  """Chance level of both measures: the mask's share of the grid, mask [..., L] bool -> [...] float64."""
  return np.mean(np.asarray(mask, bool), axis=-1, dtype=np.float64)


def _pairs(attention: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  attention = np.asarray(attention, np.float64)
  if attention.ndim < 2 or attention.shape[-2] < 2:
    raise ValueError(f"head overlap needs maps [..., N, L] with N >= 2 heads, got shape {attention.shape}")
  i, j = np.triu_indices(attention.shape[-2], k=1)
  return attention[..., i, :], attention[..., j, :]


def head_overlap(attention: np.ndarray) -> np.ndarray:
  """Mean over pairs of heads of the sum over cells of the smaller of their values: attention
  [..., N, L] (N >= 2, each map summing to 1) -> [...] in 0..1 (1: identical, 0: disjoint)."""
  a, b = _pairs(attention)
  return np.mean(np.sum(np.minimum(a, b), axis=-1), axis=-1)


def head_cosine(attention: np.ndarray) -> np.ndarray:
  """Mean over pairs of heads of the cosine of their maps: attention [..., N, L] (N >= 2) -> [...]."""
  a, b = _pairs(attention)
  norms = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.mean(np.sum(a * b, axis=-1) / norms, axis=-1)


# ----------------------------------------------------------------------------- a split's tally


class SpatialTally:
  """Localisation over a split, clip by clip (`add`), summarised as metrics.json's `localisation`.

  Expressive frames (inside the clip's window, the expression's mask not empty on the grid) give
  the relevance mass and pointing game of each head and of the heads' mean map, and the chance
  level; every real frame gives the split's mean map (the model-free baseline) and the head overlap.
  """

  def __init__(self, num_heads: int, num_cells: int):
    self.num_heads, self.num_cells = num_heads, num_cells
    self.frames = self.clips = self.hidden = self.all_frames = 0
    self.mass = np.zeros(num_heads + 1)      # per head, then the heads' mean map
    self.points = np.zeros(num_heads + 1)
    self.chance = 0.0
    self.mask_sum = np.zeros(num_cells)      # Σ over expressive frames of the mask
    self.map_sum = np.zeros((num_heads, num_cells))  # Σ over every real frame of the maps
    self.overlap = self.cosine = 0.0
    # per class label: [Σ maps [N, L], Σ masks [L], frames] over its expressive frames
    self.by_class: dict[int, list] = {}

  def add(self, attention: np.ndarray, masks: np.ndarray | None, expressive: np.ndarray | None,
          label: int | None = None) -> None:
    """One clip: attention [K, N, L] on its K real frames, masks [K, L] bool (the expression's mask
    on each; None for a clip without expression), expressive [K] bool (frames inside its window)
    and its class `label` (for the per-class maps; None: not counted there)."""
    attention = np.asarray(attention, np.float64)
    if attention.ndim != 3 or attention.shape[1:] != (self.num_heads, self.num_cells):
      raise ValueError(f"attention must be [K, {self.num_heads}, {self.num_cells}], got shape {attention.shape}")
    self.all_frames += len(attention)
    self.map_sum += attention.sum(0)
    if self.num_heads > 1 and len(attention):
      self.overlap += float(head_overlap(attention).sum())
      self.cosine += float(np.nansum(head_cosine(attention)))
    if masks is None or expressive is None or not np.any(expressive):
      return
    masks, expressive = np.asarray(masks, bool), np.asarray(expressive, bool)
    visible = expressive & masks.any(-1)
    self.hidden += int(np.sum(expressive & ~visible))
    if not visible.any():
      return
    maps = np.concatenate([attention[visible], attention[visible].mean(1, keepdims=True)], axis=1)  # [K', N+1, L]
    mask = masks[visible][:, None, :]
    self.mass += relevance_mass(maps, mask).sum(0)
    self.points += pointing_game(maps, mask).sum(0)
    self.chance += float(mask_share(masks[visible]).sum())
    self.mask_sum += masks[visible].sum(0)
    self.frames += int(visible.sum())
    self.clips += 1
    if label is not None:
      sums = self.by_class.setdefault(int(label), [np.zeros((self.num_heads, self.num_cells)),
                                                   np.zeros(self.num_cells), 0])
      sums[0] += attention[visible].sum(0)
      sums[1] += masks[visible].sum(0)
      sums[2] += int(visible.sum())

  def summary(self) -> dict | None:
    """metrics.json's `localisation` entry (module doc); None when no expressive frame was seen."""
    if not self.frames or not self.all_frames:
      return None
    mean_maps = self.map_sum / self.all_frames                                    # [N, L]
    mean_maps = np.concatenate([mean_maps, mean_maps.mean(0, keepdims=True)])     # + the heads' mean
    # the maps' float32 softmax sums to 1 within a rounding: divide by the sum, cap the quotient's rounding
    base_mass = np.minimum(mean_maps @ self.mask_sum / (mean_maps.sum(-1) * self.frames), 1.0)
    base_points = self.mask_sum[mean_maps.argmax(-1)] / self.frames
    scores = lambda mass, points, k: dict(relevance_mass=float(mass[k]), pointing_game=float(points[k]))
    mass, points = self.mass / self.frames, self.points / self.frames
    g = int(round(np.sqrt(self.num_cells)))
    overlap = None
    if self.num_heads > 1:
      overlap = dict(min_sum=self.overlap / self.all_frames, cosine=self.cosine / self.all_frames,
                     frames=self.all_frames)
    return dict(
        frames=self.frames, clips=self.clips, frames_hidden=self.hidden, grid=[g, g],
        heads=[scores(mass, points, k) for k in range(self.num_heads)],
        overall=scores(mass, points, self.num_heads),
        chance=dict(relevance_mass=self.chance / self.frames, pointing_game=self.chance / self.frames),
        mean_map=dict(heads=[scores(base_mass, base_points, k) for k in range(self.num_heads)],
                      overall=scores(base_mass, base_points, self.num_heads), frames=self.all_frames,
                      of="the mean attention map of the evaluated split (every real frame), the same map for "
                         "every frame"),
        head_overlap=overlap,
        class_maps=[dict(label=label, frames=n, heads=(maps / n).round(5).tolist(), mask=(mask / n).round(5).tolist())
                    for label, (maps, mask, n) in sorted(self.by_class.items())])


def summary_line(record: dict) -> str:
  """'localisation: relevance mass 0.61 (heads 0.58 0.64; mean map 0.55; chance 0.42) | pointing
  game ... | head overlap 0.31 (cosine 0.45) | 812 expressive frames of 180 clips'."""
  def part(name: str) -> str:
    heads = " ".join(f"{h[name]:.2f}" for h in record["heads"])
    return (f"{name.replace('_', ' ')} {record['overall'][name]:.2f} (heads {heads}; mean map "
            f"{record['mean_map']['overall'][name]:.2f}; chance {record['chance'][name]:.2f})")

  parts = [part("relevance_mass"), part("pointing_game")]
  if record.get("head_overlap"):
    overlap = record["head_overlap"]
    parts.append(f"head overlap {overlap['min_sum']:.2f} (cosine {overlap['cosine']:.2f})")
  g = record["grid"]
  parts.append(f"{record['frames']} expressive frames of {record['clips']} clips, {g[0]}x{g[1]} grid")
  return "localisation: " + " | ".join(parts)


# ----------------------------------------------------------------------------- frame importance


def frame_order(importance: np.ndarray, expressive: np.ndarray, intensity: np.ndarray,
                rng: np.random.Generator) -> dict[str, np.ndarray]:
  """Three orders of one clip's K frames, most important first, as {order: [K] int positions}:
  'importance', by p(f|S) `importance` [K] (ties: earlier first); 'random'; and 'window', the
  frames inside the true window (`expressive` [K] bool) first, by true `intensity` [K]
  descending, then the others in the random order."""
  importance, expressive = np.asarray(importance, np.float64), np.asarray(expressive, bool)
  random = rng.permutation(len(importance))
  inside = np.flatnonzero(expressive)
  first = inside[np.argsort(-np.asarray(intensity, np.float64)[inside], kind="stable")]
  return dict(importance=np.argsort(-importance, kind="stable"), random=random,
              window=np.concatenate([first, random[~expressive[random]]]).astype(np.int64))


def faithfulness(scores: Sequence[np.ndarray], labels: np.ndarray, orders: Sequence[dict[str, np.ndarray]],
                 pool, skip: Sequence[str] = ()) -> dict:
  """Deletion and insertion curves of the frame importance over C clips.

  scores: per clip, frame class scores [K_c, E]; labels [C]; orders: per clip, frame_order's
  dict; pool(scores [C, K, E], mask [C, K] bool) -> log p(c|S) [C, E] (the model's frame-local
  pooling). Deletion: accuracy with the first floor(q·K) frames of an order removed, for q in
  DELETION_FRACTIONS (one frame always stays); insertion: with only the first max(1, ceil(q·K))
  kept, for q in INSERTION_FRACTIONS. Per order (minus `skip`): both curves and their means (the
  area under each: a faithful importance has a low deletion area and a high insertion area).
  """
  if not len(scores):
    return {}
  length = max(len(s) for s in scores)
  padded = np.zeros((len(scores), length, scores[0].shape[-1]), np.float32)
  for c, s in enumerate(scores):
    padded[c, :len(s)] = s
  labels = np.asarray(labels)

  def accuracy(ranked: Sequence[np.ndarray], kept) -> float:
    mask = np.zeros((len(scores), length), bool)
    for c, order in enumerate(ranked):
      mask[c, order[kept(len(order))]] = True
    return float(np.mean(np.asarray(pool(padded, mask)).argmax(-1) == labels))

  curves = {}
  for name in ORDERS:
    if name in skip:
      continue
    ranked = [o[name] for o in orders]
    # 1e-9: q * k can miss a whole number by a rounding (0.3 * 10 is 3.0000000000000004)
    deletion = [accuracy(ranked, lambda k, q=q: slice(int(np.floor(q * k + 1e-9)), k))
                for q in DELETION_FRACTIONS]
    insertion = [accuracy(ranked, lambda k, q=q: slice(0, max(1, int(np.ceil(q * k - 1e-9)))))
                 for q in INSERTION_FRACTIONS]
    curves[name] = dict(deletion=deletion, insertion=insertion, deletion_area=float(np.mean(deletion)),
                        insertion_area=float(np.mean(insertion)))
  return dict(clips=len(scores), deletion_fractions=list(DELETION_FRACTIONS),
              insertion_fractions=list(INSERTION_FRACTIONS), **curves)
