"""SynthEmo: seeded procedural face videos whose emotion, its timing and its place are known.

AFEW is licensed and the VGG-Face weights are a separate download, so videmo ships this
renderer to run end to end the minute it is installed, on data where the paper's two claims
hold by construction:

1. Space: the emotion is a small deformation of three face regions (mouth: corner curvature,
   opening, width; eyebrows: angle, height; eyes: opening), a few pixels at 64x64, while
   identity (face shape, size, skin, hair, features), position, background, lighting, head
   motion, sensor noise and an optional occluder vary a lot. Spatial attention should help.
2. Time: only an onset-apex-offset window covering a random 15-40% of the clip shows the
   emotion; every other frame is neutral (Neutral clips have no window). Temporal softmax
   pooling should beat averaging. Knobs (docs/synthemo.md) set the window's share and least
   length (one frame to the whole clip), the apex's intensity, and distractor frames outside
   the window (distractors.py); at their defaults they change no draw and no pixel.

Ground truth comes with every clip: the per-frame expression intensity (0..1, 1 at the apex)
and a per-frame mask of the expressive regions (boxes around mouth, eyes and brows that
follow the head and contain every shape those features can take in the clip, minus what the
occluder fully hides), and the same mask for the regions the clip's class moves only
(regions.py). Every random draw but the per-frame sensor noise is made before the first pixel
(`plan_clip`), so truth.py recomputes the ground truth of a stored clip without drawing it.
Rendering the same clip with the expression switched off (`with_neutral=True`) gives a
counterfactual with identical nuisances, so the pixels the emotion changes are exactly
`frames != neutral_frames`.

Portability: pixels are computed with numpy using only +, -, *, /, sqrt, min, max and
rounding (IEEE 754 makes these identical on every machine), small rotations use a
polynomial instead of libm's sin/cos, there are no reductions whose order could vary, and
random numbers come from PCG64 streams seeded by (seed, split, index) only. A clip's arrays
therefore depend on its seed alone, not on the machine or on which worker renders it.

    clip = render_clip(seed=0, num_frames=32, size=64, label=3)  # a Happy clip
    clip["frames"]       # [32, 64, 64, 3] uint8
    clip["intensity"]    # [32] float32
    clip["region_mask"]  # [32, 64, 64] bool

The synthemo TFDS builder (videmo/data/preparation/builders/synthemo) stores these clips; `encode_clip`
is the per-clip work it runs in its process pool.
"""

from __future__ import annotations

import dataclasses
import io
import math
from typing import Any, NamedTuple

import numpy as np

from videmo.data.synthemo import distractors as distractors_lib
from videmo.data.synthemo import drawing, regions
from videmo.data.synthemo.expressions import (  # noqa: F401  (re-exported: the renderer's vocabulary)
    EXPRESSION_SETS, EXPRESSIONS, PAIR_EXPRESSIONS, Expression, expression_set)
from videmo.data.schema import AFEW_EMOTIONS, JPEG_QUALITY, encode_jpeg

SPLITS: tuple[str, ...] = ("train", "validation", "test")
NEUTRAL: int = AFEW_EMOTIONS.index("Neutral")
MIN_SIZE = 32  # smallest frame side the face geometry is drawn at


DEFAULT_WINDOW_SHARE: tuple[float, float] = (0.15, 0.40)
DEFAULT_WINDOW_MIN_FRAMES = 3
Distractors = distractors_lib.Distractors
DISTRACTOR_KINDS = distractors_lib.KINDS


def check_window_share(share: tuple[float, float]) -> tuple[float, float]:
  """(low, high) with 0 < low <= high <= 1: the range of the expressive window's share of a clip."""
  low, high = (float(v) for v in share)
  if not 0.0 < low <= high <= 1.0:
    raise ValueError(f"window_share must be (low, high) with 0 < low <= high <= 1, got {tuple(share)}")
  return low, high


def check_window_min_frames(frames: int) -> int:
  """The least number of frames of an expressive window: an integer >= 1."""
  if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 1:
    raise ValueError(f"window_min_frames must be an integer >= 1, got {frames!r}")
  return int(frames)


def check_apex_intensity(apex: float) -> float:
  """The intensity of the window's apex plateau: 0 < apex <= 1 (1: the expression at full strength)."""
  if not 0.0 < float(apex) <= 1.0:
    raise ValueError(f"apex_intensity must be in (0, 1], got {apex}")
  return float(apex)


class ClipJob(NamedTuple):
  """Everything that determines one stored clip (picklable: the builder's pool maps over these).

  The fields after window_share are the signal's knobs (docs/synthemo.md); at their defaults a
  clip is rendered exactly as before they existed."""
  seed: int
  split: str
  index: int
  label: int
  size: int
  min_frames: int
  max_frames: int
  jpeg_quality: int = JPEG_QUALITY
  expression_set: str = "afew"
  window_share: tuple[float, float] = DEFAULT_WINDOW_SHARE
  window_min_frames: int = DEFAULT_WINDOW_MIN_FRAMES
  apex_intensity: float = 1.0
  distractor_rate: float = 0.0
  distractor_kinds: tuple[str, ...] = DISTRACTOR_KINDS
  distractor_strength: float = 0.5

  def signal(self) -> dict[str, Any]:
    """The keyword arguments of render_clip / generate_clip that this job sets."""
    return dict(expressions=self.expression_set, window_share=self.window_share,
                window_min_frames=self.window_min_frames, apex_intensity=self.apex_intensity,
                distractors=Distractors(self.distractor_rate, tuple(self.distractor_kinds), self.distractor_strength))


# ----------------------------------------------------------------------------- seeding


def _split_code(split: str) -> int:
  if split not in SPLITS:
    raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
  return SPLITS.index(split)


def clip_seed(seed: int, split: str, index: int) -> np.random.SeedSequence:
  """The seed of clip `index` of `split`: a function of (seed, split, index) only."""
  if seed < 0 or index < 0:
    raise ValueError(f"seed and index must be >= 0, got seed={seed}, index={index}")
  return np.random.SeedSequence(entropy=seed, spawn_key=(_split_code(split), 1, index))


def split_labels(seed: int, split: str, num_clips: int, num_classes: int = len(AFEW_EMOTIONS)) -> np.ndarray:
  """Labels of a split's clips [num_clips] int64: balanced (counts differ by <= 1), shuffled by seed."""
  if num_clips < 0:
    raise ValueError(f"num_clips must be >= 0, got {num_clips}")
  rng = np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(_split_code(split), 0)))
  return rng.permutation(np.arange(num_clips, dtype=np.int64) % num_classes)


def _as_rng(seed: int | np.random.SeedSequence | np.random.Generator) -> np.random.Generator:
  if isinstance(seed, np.random.Generator):
    return seed
  return np.random.default_rng(seed)


# ----------------------------------------------------------------------------- time


def intensity_curve(rng: np.random.Generator, num_frames: int, label: int,
                    window_share: tuple[float, float] = DEFAULT_WINDOW_SHARE,
                    window_min_frames: int = DEFAULT_WINDOW_MIN_FRAMES,
                    apex_intensity: float = 1.0) -> tuple[np.ndarray, tuple[int, int], int]:
  """Onset-apex-offset expression intensity of one clip.

  Returns (intensity [F] float32 in 0..apex_intensity, window (start, stop) with intensity > 0
  exactly on frames start..stop-1, apex frame index). The window covers round(u * F) frames, u
  uniform in window_share (default 0.15..0.40), at least window_min_frames (default 3) and at
  most F, at a uniform position; the apex plateau (intensity apex_intensity, default 1) takes
  20-50% of it, the rest splits between a smooth onset and offset. The same draws are made
  whatever the knobs. Neutral: all zeros, window (0, 0), apex -1.
  """
  intensity = np.zeros(num_frames, np.float32)
  if label == NEUTRAL:
    return intensity, (0, 0), -1
  low, high = check_window_share(window_share)
  least = check_window_min_frames(window_min_frames)
  apex_intensity = check_apex_intensity(apex_intensity)
  length = min(num_frames, max(least, int(round(rng.uniform(low, high) * num_frames))))
  start = int(rng.integers(0, num_frames - length + 1))
  plateau = max(1, int(round(rng.uniform(0.2, 0.5) * length)))
  ramps = length - plateau
  onset = int(round(rng.uniform(0.35, 0.65) * ramps))
  offset = ramps - onset
  values = [_smoothstep((i + 1) / (onset + 1)) for i in range(onset)]
  values += [1.0] * plateau
  values += [_smoothstep((offset - i) / (offset + 1)) for i in range(offset)]
  intensity[start:start + length] = values
  if apex_intensity != 1.0:
    intensity *= np.float32(apex_intensity)
  return intensity, (start, start + length), start + onset + plateau // 2


def _smoothstep(t: float) -> float:
  return t * t * (3.0 - 2.0 * t)


# ----------------------------------------------------------------------------- clips


class ClipPlan(NamedTuple):
  """Everything a clip is drawn from, all drawn before its first pixel (the per-frame sensor
  noise comes later, frame by frame): the person, F poses, the static background [S, S, 3] and
  light [S, S, 3], the clip's occluder (or None) and its per-frame jitter [F, 2] (pixels), the
  intensity curve [F], window and apex, the noise level, the flicker [F], the five region boxes
  (drawing.region_boxes), the fringe's lower edge, the apex deformation [6] (scaled by the
  person's expressiveness), the regions it moves (regions.expression_regions) and the
  distractor frames (distractors.DistractorFrames)."""

  face: drawing.Identity
  poses: list[drawing.Pose]
  background: np.ndarray
  light: np.ndarray
  occluder: drawing.Occluder | None
  occ_jitter: np.ndarray
  intensity: np.ndarray
  window: tuple[int, int]
  apex: int
  noise_sigma: float
  flicker: np.ndarray
  boxes: list[tuple[float, float, float, float]]
  fringe: float
  apex_e: np.ndarray
  regions: tuple[str, ...]
  distractors: distractors_lib.DistractorFrames

  def canvas(self, frame: int, image: np.ndarray | None = None) -> drawing.Canvas:
    """The canvas of `frame` (its pose's face coordinates), over `image` [S, S, 3] (default: an empty one)."""
    size = self.background.shape[0]
    return drawing.Canvas(np.empty((size, size, 3), np.float32) if image is None else image, self.poses[frame])

  def covers(self, frame: int) -> list[tuple]:
    """(slices, coverage) of the occluders drawn in `frame`: the clip's, then a distractor's."""
    size = self.background.shape[0]
    found = []
    if self.occluder:
      found.append(drawing.occluder_cover(size, self.occluder, *self.occ_jitter[frame]))
    if frame in self.distractors.occluders:
      found.append(drawing.occluder_cover(size, self.distractors.occluders[frame], 0.0, 0.0))
    return [c for c in found if c]

  def region_mask(self, frame: int, which: tuple[str, ...] = regions.REGIONS,
                  canvas: drawing.Canvas | None = None) -> np.ndarray:
    """[S, S] bool: the boxes of the regions `which` in `frame`, minus what its occluders fully hide."""
    return regions.frame_mask(canvas or self.canvas(frame), regions.boxes_of(self.boxes, which), self.covers(frame))


def _check_clip(num_frames: int, size: int, label: int) -> None:
  if num_frames < 1:
    raise ValueError(f"num_frames must be >= 1, got {num_frames}")
  if size < MIN_SIZE:
    raise ValueError(f"size must be >= {MIN_SIZE} pixels, got {size}")
  if not 0 <= label < len(AFEW_EMOTIONS):
    raise ValueError(f"label must be in 0..{len(AFEW_EMOTIONS) - 1} ({', '.join(AFEW_EMOTIONS)}), got {label}")


def plan_clip(
    seed: int | np.random.SeedSequence | np.random.Generator,
    num_frames: int,
    size: int,
    label: int,
    *,
    expressions: str = "afew",
    window_share: tuple[float, float] = DEFAULT_WINDOW_SHARE,
    window_min_frames: int = DEFAULT_WINDOW_MIN_FRAMES,
    apex_intensity: float = 1.0,
    distractors: Distractors | None = None,
) -> ClipPlan:
  """The ClipPlan of a clip: render_clip's draws up to its first pixel (its arguments). The
  ground truth (window, intensity, region masks) follows from it without drawing a pixel."""
  _check_clip(num_frames, size, label)
  table = expression_set(expressions)
  window_share = check_window_share(window_share)
  distractors = distractors or Distractors()
  rng = _as_rng(seed)
  face = drawing.sample_identity(rng)
  poses = drawing.sample_poses(rng, num_frames, size)
  background = drawing.background(rng, size)
  light = drawing.lighting(rng, size)
  occluder = drawing.sample_occluder(rng, poses[0])
  intensity, window, apex = intensity_curve(rng, num_frames, label, window_share, window_min_frames, apex_intensity)
  noise_sigma = rng.uniform(1.0, 7.0)
  flicker = rng.uniform(-0.03, 0.03, num_frames)
  occ_jitter = rng.uniform(-0.01, 0.01, (num_frames, 2)) * size
  deformations = [x.as_array() for x in table]
  if distractors.active:
    frames = distractors_lib.plan(distractors_lib.stream(rng), distractors, window, label, NEUTRAL, deformations,
                                  face.expressiveness, poses)
  else:
    frames = distractors_lib.absent(num_frames)
  boxes = drawing.region_boxes(face, deformations, margin=0.02, raw=distractors.raw_shapes())
  fringe = min(face.fringe, min(cv - hv for cu, cv, hu, hv in boxes) - 0.1)
  apex_e = face.expressiveness * table[label].as_array()
  return ClipPlan(face, poses, background, light, occluder, occ_jitter, intensity, window, apex, noise_sigma,
                  flicker, boxes, fringe, apex_e, regions.expression_regions(face, apex_e), frames)


def render_clip(
    seed: int | np.random.SeedSequence | np.random.Generator,
    num_frames: int,
    size: int,
    label: int,
    *,
    with_neutral: bool = False,
    expressions: str = "afew",
    window_share: tuple[float, float] = DEFAULT_WINDOW_SHARE,
    window_min_frames: int = DEFAULT_WINDOW_MIN_FRAMES,
    apex_intensity: float = 1.0,
    distractors: Distractors | None = None,
) -> dict[str, Any]:
  """Renders one SynthEmo clip; the same seed (and arguments) gives the same arrays everywhere.

  Args:
    seed: an int, a SeedSequence or a Generator (which is advanced).
    num_frames: F >= 1.   size: S, the frame side in pixels (>= 32).
    label: class index into AFEW_EMOTIONS (4 = Neutral: no expression window).
    with_neutral: also return `neutral_frames`, the same clip with the expression switched
      off (identical pose, lighting, noise, occluder and distractors in every frame).
    expressions: the expression set, 'afew' (EXPRESSIONS) or 'pairs' (PAIR_EXPRESSIONS).
    window_share: (low, high), the range of the expressive window's share of the frames.
    window_min_frames: the least frames of a window (>= 1).
    apex_intensity: the apex plateau's intensity, in (0, 1].
    distractors: frames outside the window that show something else (distractors.py; None: none).
    At their defaults the last three leave every array as it was before they existed.

  Returns a dict:
    frames          [F, S, S, 3] uint8
    intensity       [F] float32 in 0..apex_intensity (0 outside the window)
    region_mask     [F, S, S] bool: mouth, eye and brow regions, minus what occluders hide
    expression_mask [F, S, S] bool: the same for the regions the clip's class moves only
    expression_regions  tuple of region names (regions.REGIONS) the class moves; () for Neutral
    distractor      [F] int8: 0, or 1 + the index in distractors.KINDS of the frame's distractor
    label           int
    window          (start, stop): frames with intensity > 0; (0, 0) for Neutral
    apex            int: a frame of maximal intensity (-1 for Neutral)
    neutral_frames  [F, S, S, 3] uint8, only when with_neutral
  """
  rng = _as_rng(seed)
  plan = plan_clip(rng, num_frames, size, label, expressions=expressions, window_share=window_share,
                   window_min_frames=window_min_frames, apex_intensity=apex_intensity, distractors=distractors)
  face, extra = plan.face, plan.distractors
  frames = np.empty((num_frames, size, size, 3), np.uint8)
  neutral = np.empty_like(frames) if with_neutral else None
  masks = np.zeros((num_frames, size, size), bool)
  expression_masks = np.zeros((num_frames, size, size), bool)
  noise_scale = np.float32(plan.noise_sigma * math.sqrt(6.0))
  for i, pose in enumerate(plan.poses):
    head = plan.background.copy()
    canvas = drawing.Canvas(head, pose)
    drawing.draw_head(canvas, face)
    noise = (rng.random((size, size, 3), np.float32) + rng.random((size, size, 3), np.float32)
             - np.float32(1.0)) * noise_scale
    gain = plan.light * np.float32(1.0 + plan.flicker[i])
    versions = [(frames, float(plan.intensity[i]))] + ([(neutral, 0.0)] if with_neutral else [])
    for out, level in versions:
      image = head.copy()
      canvas = drawing.Canvas(image, pose, canvas.uv)
      e = plan.apex_e * level
      if extra.kind[i]:
        e = e + extra.deformation[i]
      drawing.draw_features(canvas, face, drawing.features(face, e))
      drawing.draw_fringe(canvas, face, plan.fringe)
      if plan.occluder:
        drawing.draw_occluder(image, plan.occluder, *plan.occ_jitter[i])
      if i in extra.occluders:
        drawing.draw_occluder(image, extra.occluders[i], 0.0, 0.0)
      out[i] = np.rint(np.clip(image * gain + noise, 0.0, 255.0)).astype(np.uint8)
    masks[i] = plan.region_mask(i, canvas=canvas)
    expression_masks[i] = plan.region_mask(i, plan.regions, canvas=canvas)
  clip = {"frames": frames, "intensity": plan.intensity, "region_mask": masks, "expression_mask": expression_masks,
          "expression_regions": plan.regions, "distractor": extra.kind.copy(), "label": int(label),
          "window": plan.window, "apex": plan.apex}
  if with_neutral:
    clip["neutral_frames"] = neutral
  return clip


def generate_clip(seed: int, split: str, index: int, label: int, size: int,
                  min_frames: int, max_frames: int, *, with_neutral: bool = False, **signal: Any) -> dict[str, Any]:
  """Clip `index` of `split` as the synthemo builder stores it: F uniform in min..max frames;
  `signal`: render_clip's expressions, window_share, window_min_frames, apex_intensity, distractors.

  Returns render_clip's dict (frames [F, S, S, 3] uint8, ...; `neutral_frames` too when
  with_neutral) plus `num_frames` and `source`.
  """
  rng, num_frames = _clip_rng(seed, split, index, min_frames, max_frames)
  clip = render_clip(rng, num_frames, size, label, with_neutral=with_neutral, **signal)
  clip["num_frames"] = num_frames
  clip["source"] = clip_source(seed, split, index)
  return clip


def _clip_rng(seed: int, split: str, index: int, min_frames: int, max_frames: int) -> tuple[np.random.Generator, int]:
  """The generator of clip `index` of `split`, after it drew the clip's frame count, and that count."""
  if not 1 <= min_frames <= max_frames:
    raise ValueError(f"need 1 <= min_frames <= max_frames, got min_frames={min_frames}, max_frames={max_frames}")
  rng = np.random.default_rng(clip_seed(seed, split, index))
  return rng, int(rng.integers(min_frames, max_frames + 1))


def clip_source(seed: int, split: str, index: int) -> str:
  """The stored `source` of a clip: 'synthemo:seed=0:split=train:index=12'."""
  return f"synthemo:seed={seed}:split={split}:index={index}"


def plan_job(job: ClipJob) -> tuple[int, ClipPlan]:
  """(F, the ClipPlan) of the clip `job` describes, as render_job renders it, without a pixel."""
  rng, num_frames = _clip_rng(job.seed, job.split, job.index, job.min_frames, job.max_frames)
  return num_frames, plan_clip(rng, num_frames, job.size, job.label, **job.signal())


def encode_png(mask: np.ndarray) -> bytes:
  """PNG bytes (8-bit grey, values 0/1, fixed zlib level) of a mask [H, W] bool or uint8."""
  from PIL import Image

  buffer = io.BytesIO()
  Image.fromarray(mask.astype(np.uint8), mode="L").save(buffer, format="PNG", compress_level=6, optimize=False)
  return buffer.getvalue()


def render_job(job: ClipJob) -> dict[str, Any]:
  """The arrays of the clip `job` describes, before encoding: generate_clip's dict (frames
  [F, S, S, 3] uint8, intensity [F] float32, region_mask [F, S, S] bool, label, window, apex,
  num_frames, source, ...). tests/test_synthemo_fingerprint.py pins these for every builder config."""
  return generate_clip(job.seed, job.split, job.index, job.label, job.size, job.min_frames, job.max_frames,
                       **job.signal())


def clip_key(job: ClipJob) -> str:
  """The stored clip's key and clip_id, e.g. 'train-000012'."""
  return f"{job.split}-{job.index:06d}"


def encode_clip(job: ClipJob) -> tuple[str, dict[str, Any]]:
  """Renders and encodes one clip into the synthemo builder's (key, example) pair.

  Frames become JPEG bytes (fixed quality) and masks PNG bytes, so TFDS never needs
  TensorFlow to encode them; see the builder for the fields.
  """
  clip = render_job(job)
  key = clip_key(job)
  example = {
      "frames": [encode_jpeg(frame, job.jpeg_quality) for frame in clip["frames"]],
      "label": job.label,
      "clip_id": key,
      "source": clip["source"],
      "num_frames": np.int32(clip["num_frames"]),
      "face_found": np.ones(clip["num_frames"], np.bool_),
      "intensity": clip["intensity"],
      "region_mask": [encode_png(mask) for mask in clip["region_mask"]],
      "apex_frame": np.int32(clip["apex"]),
      "window": np.asarray(clip["window"], np.int32),
  }
  return key, example
