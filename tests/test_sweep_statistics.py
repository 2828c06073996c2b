"""The sweep's statistics against scipy and hand computations, on fixed numbers (n = 3 and df > 10)."""

import json
import math

import numpy as np
import pytest
from scipy import stats

from videmo.sweep import statistics


@pytest.mark.parametrize("diffs", [
    [0.11, 0.11, 0.12],                                            # n = 3, df = 2
    [0.02, -0.01, 0.03, 0.015, 0.0, 0.025, 0.01, -0.005, 0.02, 0.03, 0.012, 0.018],  # n = 12, df = 11
])
def test_paired_t_is_scipy_s_exact_t(diffs):
  result = statistics.paired_t(diffs)
  low, high = stats.t.interval(0.95, len(diffs) - 1, loc=np.mean(diffs), scale=stats.sem(diffs))
  assert result.n == len(diffs)
  assert result.low == pytest.approx(low, rel=1e-12) and result.high == pytest.approx(high, rel=1e-12)
  assert result.p == pytest.approx(stats.ttest_1samp(diffs, 0.0).pvalue, rel=1e-9)
  if len(diffs) == 12:  # df = 11: the exact quantile 2.201, not the normal 1.96
    half = (high - low) / 2
    assert half / stats.sem(diffs) == pytest.approx(2.2010, abs=1e-4)


def test_holm_adjusts_step_down_and_keeps_order():
  # sorted: 0.01*4 = 0.04; 0.03*3 = 0.09; 0.04*2 = 0.08 -> 0.09 (monotone); 0.5*1 = 0.5
  assert statistics.holm([0.04, 0.01, 0.5, 0.03]) == pytest.approx([0.09, 0.04, 0.5, 0.09])
  adjusted = statistics.holm([0.2, float("nan"), 0.01])  # NaN is not in the family: m = 2
  assert adjusted[0] == pytest.approx(0.2) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.02)


def test_verdicts_and_seeds_needed():
  clear = statistics.paired_t([0.1, 0.12, 0.11, 0.09])
  assert statistics.verdict(clear, 0.001) == "holds"
  assert statistics.verdict(statistics.paired_t([-0.1, -0.12, -0.11]), 0.01) == "reversed"
  assert statistics.verdict(clear, 0.06) == "not resolved"
  assert statistics.verdict(statistics.paired_t([0.1]), 0.0) == "not resolved (fewer than 2 seeds)"
  # mean 0.013, sd 0.02: n with (t_.975 + t_.8) * sd / sqrt(n) <= mean, checked against scipy
  diffs = [0.013 + 0.02 * z for z in (-1.2, 0.1, 1.1, -0.3, 0.3, 0.0)]
  d = np.asarray(diffs)
  n = statistics.seeds_needed(diffs)
  bound = lambda k: (stats.t.ppf(0.975, k - 1) + stats.t.ppf(0.8, k - 1)) * d.std(ddof=1) / math.sqrt(k)
  assert bound(n) <= abs(d.mean()) < bound(n - 1)
  assert statistics.seeds_needed([0.1, -0.1]) is None


def test_clip_bootstrap_resamples_the_clips():
  rng = np.random.default_rng(0)
  same = rng.random((3, 400)) < 0.7
  assert statistics.clip_bootstrap(same, same) == (0.0, 0.0)
  assert statistics.clip_bootstrap(np.ones((2, 50), bool), np.zeros((2, 50), bool)) == (1.0, 1.0)
  a, b = rng.random((5, 420)) < 0.8, rng.random((5, 420)) < 0.75
  low, high = statistics.clip_bootstrap(a, b, draws=4000)
  per_clip = (a.astype(float) - b).mean(0)
  half = 1.96 * per_clip.std(ddof=1) / math.sqrt(per_clip.size)  # the normal approximation
  assert low < per_clip.mean() < high
  assert (high - low) / 2 == pytest.approx(half, rel=0.1)
  with pytest.raises(ValueError, match="one shape"):
    statistics.clip_bootstrap(a, b[:, :10])


def test_the_table_says_where_attention_looks_for_the_rows_that_measured_it():
  from videmo.sweep import collect

  located = dict(overall=dict(relevance_mass=0.6, pointing_game=0.5),
                 mean_map=dict(overall=dict(relevance_mass=0.3, pointing_game=0.25)),
                 chance=dict(relevance_mass=0.2, pointing_game=0.2), head_overlap=dict(min_sum=0.1, cosine=0.05))
  runs = [collect._localisation(located), collect._localisation({})]
  assert runs[0]["relevance_mass"] == 0.6 and runs[0]["head_overlap"] == 0.1
  assert all(v is None for v in runs[1].values())
  summaries = []
  for name, run in (("SA2", runs[0]), ("TP", runs[1])):
    summary = dict(row=name)
    for key in collect.LOCALISATION_KEYS:
      summary[key], _, summary[f"{key}_n"] = collect._mean_std([run[key]])
    summaries.append(summary)
  lines = collect.localisation_lines(summaries)
  assert lines[-1] == "| SA2 | 0.60 | 0.30 | 0.50 | 0.25 | 0.20 | 0.10 |"
  assert not any(line.startswith("| TP ") for line in lines)  # no attention, no line
  assert collect.localisation_lines(summaries[1:]) == []


def test_a_run_evaluated_again_later_gives_its_localisation_and_faithfulness_to_the_table(tmp_path):
  from videmo.sweep import collect

  located = dict(overall=dict(relevance_mass=0.6, pointing_game=0.5))
  curves = dict(random=dict(deletion_area=0.6, insertion_area=0.5))
  final = dict(split="validation", step=366)
  for key in ("localisation", "frame_importance_faithfulness"):
    assert collect._evaluated(tmp_path, final, key) == {}
  (tmp_path / "eval_validation_300.json").write_text(json.dumps(dict(localisation=dict(other=1))))  # another step
  assert collect._evaluated(tmp_path, final, "localisation") == {}
  (tmp_path / "eval_validation_366.json").write_text(
      json.dumps(dict(localisation=located, frame_importance_faithfulness=curves)))
  assert collect._evaluated(tmp_path, final, "localisation") == located
  assert collect._evaluated(tmp_path, final, "frame_importance_faithfulness") == curves
  assert collect._evaluated(tmp_path, dict(final, localisation=dict(mine=1)), "localisation") == dict(mine=1)  # its own first


def test_the_faithfulness_areas_of_a_run_are_read_per_order():
  from videmo.sweep import collect

  record = {"importance": {"deletion_area": 0.1, "insertion_area": 0.9},
            "random": {"deletion_area": 0.6, "insertion_area": 0.5}}  # no "window": not measured
  assert collect._faithfulness(record) == dict(
      deletion_importance=0.1, insertion_importance=0.9, deletion_random=0.6, insertion_random=0.5,
      deletion_window=None, insertion_window=None)
  assert set(collect._faithfulness(None).values()) == {None}  # the LSTM's record is null
  summaries = [dict(row="TP", **{f"{k}_n": 1 for k in collect.FAITHFULNESS_KEYS},
                    **dict(zip(collect.FAITHFULNESS_KEYS, (0.1, 0.9, 0.6, 0.5, 0.2, 0.95))))]
  assert collect.faithfulness_lines(summaries)[-1] == "| TP | 0.10 | 0.60 | 0.20 | 0.90 | 0.50 | 0.95 |"
