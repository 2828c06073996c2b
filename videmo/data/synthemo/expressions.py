"""SynthEmo's expressions: what each class does to the face at its apex, in two sets.

`afew`: one distinct deformation of mouth, brows and eyes per AFEW class. `pairs`: every class
a conjunction of a mouth state and an upper-face state, so neither region alone tells the
class (docs/synthemo.md). render.py scales an expression by the clip's intensity curve.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Expression:
  """An expression's apex deformation, each in -1..1 (scaled to face units by the renderer).

  mouth_curve: + corners up (smile), - corners down.   mouth_open: lips apart (0..1).
  mouth_width: + wider, - pressed narrower.            brow_angle: + inner ends down (frown),
  - inner ends up (worry).   brow_height: + raised.    eye_open: + wide, - narrowed.
  """
  mouth_curve: float
  mouth_open: float
  mouth_width: float
  brow_angle: float
  brow_height: float
  eye_open: float

  def as_array(self) -> np.ndarray:
    """The six values as float64 [6], in field order."""
    return np.array(dataclasses.astuple(self), np.float64)


# One expression per AFEW class, in AFEW_EMOTIONS order (Angry, Disgust, Fear, Happy,
# Neutral, Sad, Surprise). Any two differ by >= 1 in Euclidean norm (tests check it).
EXPRESSIONS: tuple[Expression, ...] = (
    Expression(mouth_curve=-0.35, mouth_open=0.0, mouth_width=-0.6, brow_angle=1.0, brow_height=-0.7, eye_open=-0.3),
    Expression(mouth_curve=-0.7, mouth_open=0.35, mouth_width=-0.2, brow_angle=0.35, brow_height=-0.5, eye_open=-0.9),
    Expression(mouth_curve=-0.4, mouth_open=0.55, mouth_width=0.6, brow_angle=-0.8, brow_height=0.6, eye_open=0.8),
    Expression(mouth_curve=1.0, mouth_open=0.35, mouth_width=0.6, brow_angle=0.0, brow_height=0.15, eye_open=-0.5),
    Expression(mouth_curve=0.0, mouth_open=0.0, mouth_width=0.0, brow_angle=0.0, brow_height=0.0, eye_open=0.0),
    Expression(mouth_curve=-1.0, mouth_open=0.0, mouth_width=-0.1, brow_angle=-1.0, brow_height=-0.15, eye_open=-0.35),
    Expression(mouth_curve=0.0, mouth_open=1.0, mouth_width=-0.4, brow_angle=-0.1, brow_height=1.0, eye_open=1.0),
)


def _pair(mouth: tuple[float, float, float], upper: tuple[float, float, float]) -> Expression:
  return Expression(*mouth, *upper)


# The 'pairs' set: every class is a conjunction of a mouth state and an upper-face (brows and
# eyes) state, and every single state is shared by at least two classes, so neither region
# alone tells the class: the expression needs two regions at once. Mouth states: rest, M1 (a
# smile: corners up, a little open, wider), M2 (open, corners down, narrower); upper-face states:
# rest, U1 (frown: inner brow ends down, brows lowered, eyes narrowed), U2 (brows raised,
# eyes wide). The AFEW names are only the class indices' labels here:
#   Angry = rest + U1, Disgust = M2 + U1, Fear = M1 + U2, Happy = M1 + rest, Neutral = rest + rest,
#   Sad = M1 + U1, Surprise = M2 + U2.
_REST, _M1, _M2 = (0.0, 0.0, 0.0), (0.9, 0.15, 0.5), (-0.6, 0.85, -0.3)
_U1, _U2 = (1.0, -0.6, -0.6), (-0.6, 0.9, 0.8)
PAIR_EXPRESSIONS: tuple[Expression, ...] = (
    _pair(_REST, _U1), _pair(_M2, _U1), _pair(_M1, _U2), _pair(_M1, _REST),
    _pair(_REST, _REST), _pair(_M1, _U1), _pair(_M2, _U2),
)

# Expression sets by name (SynthEmoConfig.expression_set); each has one entry per AFEW class.
EXPRESSION_SETS: dict[str, tuple[Expression, ...]] = {"afew": EXPRESSIONS, "pairs": PAIR_EXPRESSIONS}


def expression_set(name: str) -> tuple[Expression, ...]:
  """The expressions of set `name` ('afew' or 'pairs'), in AFEW_EMOTIONS order."""
  if name not in EXPRESSION_SETS:
    raise ValueError(f"expression_set must be one of {sorted(EXPRESSION_SETS)}, got {name!r}")
  return EXPRESSION_SETS[name]
