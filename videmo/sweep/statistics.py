"""The statistics behind a sweep's verdicts: paired seeds, exact t, Holm, and the clips' own noise.

A comparison "A ≥ B" pairs the runs of rows A and B by seed; d_s = WAR_A(s) − WAR_B(s).

* `paired_t(d)`: the mean difference, its 95% interval from Student's t with n − 1 degrees of
  freedom (exact quantile, scipy), and the two-sided p-value of "mean difference = 0".
* `holm(p)`: Holm's step-down adjustment over the family of comparisons on one page; a verdict
  ("holds", "reversed") needs its adjusted p below 0.05, else "not resolved".
* `seeds_needed(d, alpha)`: for a comparison not resolved, the number of paired seeds at which
  the measured mean and spread would give 80% power at level alpha (two-sided t), the smallest
  n with (t_{1−α/2, n−1} + t_{0.8, n−1}) · sd / √n ≤ |mean|; None when the mean is 0. The
  sweep's table asks it at 0.05 divided by the number of comparisons on the page, so that the
  number holds under Holm's correction too.
* `clip_bootstrap(a, b, labels)`: the other source of noise, the finite validation set. The
  clips are resampled with replacement (the same draw for every seed and both rows, as they
  share the validation set) and the seed-mean difference recomputed; its 2.5 and 97.5
  percentiles are the interval a reader would see with another draw of equally many clips.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np
from scipy import stats

LEVEL = 0.95
POWER = 0.8


@dataclasses.dataclass(frozen=True)
class PairedT:
  """mean, low, high (the 95% interval), p (two-sided), n seeds; NaN where n < 2."""

  mean: float
  low: float
  high: float
  p: float
  n: int


def paired_t(differences: Sequence[float]) -> PairedT:
  d = np.asarray(differences, np.float64)
  n = len(d)
  if n < 2:
    return PairedT(float(d.mean()) if n else math.nan, math.nan, math.nan, math.nan, n)
  mean, sd = float(d.mean()), float(d.std(ddof=1))
  if sd == 0:
    p = 1.0 if mean == 0 else 0.0
    return PairedT(mean, mean, mean, p, n)
  half = float(stats.t.ppf(0.5 + LEVEL / 2, n - 1)) * sd / math.sqrt(n)
  p = float(2 * stats.t.sf(abs(mean) / (sd / math.sqrt(n)), n - 1))
  return PairedT(mean, mean - half, mean + half, p, n)


def holm(p_values: Sequence[float]) -> list[float]:
  """Holm-adjusted p-values (NaN stays NaN and does not count in the family)."""
  p = np.asarray(p_values, np.float64)
  out = np.full(p.shape, np.nan)
  known = np.flatnonzero(~np.isnan(p))
  order = known[np.argsort(p[known], kind="stable")]
  m, running = len(order), 0.0
  for rank, i in enumerate(order):
    running = max(running, min(1.0, (m - rank) * p[i]))
    out[i] = running
  return out.tolist()


def verdict(result: PairedT, adjusted_p: float, alpha: float = 1 - LEVEL) -> str:
  if result.n < 2:
    return "not resolved (fewer than 2 seeds)"
  if math.isnan(adjusted_p) or adjusted_p >= alpha:
    return "not resolved"
  return "holds" if result.mean > 0 else "reversed"


NEEDED_LIMIT = 10_000  # seeds_needed looks no further


def seeds_needed(differences: Sequence[float], alpha: float = 1 - LEVEL, power: float = POWER,
                 limit: int = NEEDED_LIMIT) -> int | None:
  d = np.asarray(differences, np.float64)
  if len(d) < 2 or d.mean() == 0:
    return None
  ratio = d.std(ddof=1) / abs(d.mean())
  for n in range(2, limit + 1):
    if (stats.t.ppf(1 - alpha / 2, n - 1) + stats.t.ppf(power, n - 1)) * ratio / math.sqrt(n) <= 1:
      return n
  return None


def clip_bootstrap(correct_a: np.ndarray, correct_b: np.ndarray, draws: int = 2000,
                   seed: int = 0) -> tuple[float, float]:
  """95% percentile interval of the seed-mean accuracy difference under resampled clips.

  correct_a, correct_b: [S, K] bool, whether row A's / B's run of seed s got clip k right
  (the same K clips in the same order for every run).
  """
  a, b = np.asarray(correct_a, np.float64), np.asarray(correct_b, np.float64)
  if a.shape != b.shape or a.ndim != 2 or a.shape[1] == 0:
    raise ValueError(f"clip_bootstrap takes two [seeds, clips] arrays of one shape, got {a.shape} and {b.shape}")
  per_clip = (a - b).mean(axis=0)  # [K]: the seed-mean difference on each clip
  rng = np.random.default_rng(seed)
  index = rng.integers(0, per_clip.size, (draws, per_clip.size))
  means = per_clip[index].mean(axis=1)
  low, high = np.percentile(means, [100 * (1 - LEVEL) / 2, 100 * (1 + LEVEL) / 2])
  return float(low), float(high)
