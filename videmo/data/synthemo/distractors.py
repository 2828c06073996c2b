"""SynthEmo's distractor frames: outside the expressive window, frames that show something else.

A clip's expression lives in its window; everywhere else the face is at rest. Real faces are
not: they blink, talk, show a passing other expression, and get hidden for a moment. A
distractor frame is a frame outside the window (any frame of a Neutral clip) that shows one of:

  expression   another expressive class (never the clip's, never Neutral) at `strength`
  blink        the eyes nearly shut (aperture x 0.2, the least the renderer draws)
  talk         the mouth open by a random amount, corners and width at rest
  occlusion    an extra occluder over part of the face for that frame only

Each frame outside the window is one with probability `rate`, of a kind drawn uniformly from
`kinds`. Their random draws come from a stream of their own (the clip's seed sequence with one
more spawn key), and every per-frame draw is made for every frame, so a clip with distractors
is its twin without them except on its distractor frames, and a higher rate keeps the
distractor frames of a lower one (with the same kinds).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple, Sequence

import numpy as np

from videmo.data.synthemo import drawing

KINDS: tuple[str, ...] = ("expression", "blink", "talk", "occlusion")  # codes 1..4 (0: not a distractor)
BLINK = np.array([0.0, 0.0, 0.0, 0.0, 0.0, -4.0 / 3.0])  # eye aperture 1 + 0.6 * (-4/3) = 0.2
TALK_OPEN = (0.15, 0.5)  # a talking mouth's opening (the mouth_open deformation, not scaled)
_STREAM_KEY = 2  # the spawn key appended to the clip's seed sequence for the distractors' draws


@dataclasses.dataclass(frozen=True)
class Distractors:
  """How a clip's frames outside its window are disturbed (module doc): rate in 0..1, kinds a
  non-empty subset of KINDS, strength in (0, 1] (the intensity of another expression)."""

  rate: float = 0.0
  kinds: tuple[str, ...] = KINDS
  strength: float = 0.5

  def __post_init__(self):
    if not 0.0 <= self.rate <= 1.0:
      raise ValueError(f"distractor_rate must be in 0..1, got {self.rate}")
    kinds = tuple(self.kinds)
    if not kinds or len(set(kinds)) != len(kinds) or not set(kinds) <= set(KINDS):
      raise ValueError(f"distractor_kinds must be distinct names among {KINDS}, got {self.kinds!r}")
    if not 0.0 < self.strength <= 1.0:
      raise ValueError(f"distractor_strength must be in (0, 1], got {self.strength}")

  @property
  def active(self) -> bool:
    return self.rate > 0.0

  def raw_shapes(self) -> list[np.ndarray]:
    """The unscaled deformations [6] these distractors can draw (the region boxes must hold
    them): the blink, and a talking mouth at its widest opening."""
    shapes = []
    if self.active and "blink" in self.kinds:
      shapes.append(BLINK)
    if self.active and "talk" in self.kinds:
      shapes.append(np.array([0.0, TALK_OPEN[1], 0.0, 0.0, 0.0, 0.0]))
    return shapes


class DistractorFrames(NamedTuple):
  """A clip's distractors: kind [F] int8 (0 none, else 1 + KINDS.index), deformation [F, 6]
  float64 added to the frame's expression vector, and the extra occluders by frame."""

  kind: np.ndarray
  deformation: np.ndarray
  occluders: dict[int, drawing.Occluder]


def absent(num_frames: int) -> DistractorFrames:
  """No distractor on any of F frames."""
  return DistractorFrames(np.zeros(num_frames, np.int8), np.zeros((num_frames, 6)), {})


def stream(rng: np.random.Generator) -> np.random.Generator:
  """The distractors' own generator: the clip generator's seed sequence with one more spawn key
  (a pure function of the clip's seed; it draws nothing from `rng`)."""
  seq = rng.bit_generator.seed_seq
  return np.random.default_rng(np.random.SeedSequence(entropy=seq.entropy,
                                                      spawn_key=tuple(seq.spawn_key) + (_STREAM_KEY,)))


def plan(rng: np.random.Generator, options: Distractors, window: tuple[int, int], label: int, neutral: int,
         table: Sequence[np.ndarray], expressiveness: float, poses: Sequence[drawing.Pose]) -> DistractorFrames:
  """The distractor frames of one clip (module doc), drawn from `rng` (`stream(clip_rng)`).

  table: the expression set's apex deformations [6] by class; expressiveness: the person's
  scale of them; poses: the clip's F poses (an extra occluder is placed by its frame's pose).
  """
  num_frames = len(poses)
  outside = np.ones(num_frames, bool)
  outside[window[0]:window[1]] = False
  draw = rng.random(num_frames)
  which = rng.integers(len(options.kinds), size=num_frames)
  other = rng.random(num_frames)
  opening = rng.uniform(TALK_OPEN[0], TALK_OPEN[1], num_frames)
  others = [c for c in range(len(table)) if c not in (label, neutral)]
  frames = absent(num_frames)
  for f in np.flatnonzero(outside & (draw < options.rate)):
    kind = options.kinds[which[f]]
    frames.kind[f] = KINDS.index(kind) + 1
    if kind == "expression":
      frames.deformation[f] = expressiveness * options.strength * np.asarray(table[others[int(other[f] * len(others))]])
    elif kind == "blink":
      frames.deformation[f] = BLINK
    elif kind == "talk":
      frames.deformation[f, 1] = opening[f]
    else:
      frames.occluders[int(f)] = drawing.occluder_near(rng, poses[f])
  return frames
