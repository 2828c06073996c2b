"""docs/make_when_figures.py: the phase diagram's paired differences and zero crossings, on hand-made runs."""

import csv
import importlib.util
import math

import pytest

from tiny import REPO


def _script():
  spec = importlib.util.spec_from_file_location("make_when_figures", REPO / "docs" / "make_when_figures.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _write_runs(path, wars: dict[str, list[float]]) -> None:
  with open(path, "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["row", "seed", "fold", "war", "uar"])
    for row, values in wars.items():
      for seed, war in enumerate(values):
        writer.writerow([row, seed, "", war, war])


def test_differences_are_paired_by_seed_and_the_crossing_is_where_the_mean_reaches_zero(tmp_path):
  script = _script()
  runs = tmp_path / "runs.csv"
  # TP - AVG: +10 points at a 50% window for every seed, -10 at 100%: a crossing at sqrt(0.5) on a log axis
  _write_runs(runs, {"w50% d0 TP": [0.6, 0.7, 0.8], "w50% d0 AVG": [0.5, 0.6, 0.7], "w50% d0 MAX": [0.6, 0.5, 0.9],
                     "w100% d0 TP": [0.5, 0.6, 0.7], "w100% d0 AVG": [0.6, 0.7, 0.8],
                     "w100% d0 MAX": [0.5, 0.6, 0.7], "w50% d0 LSTM": [0.3, 0.3, 0.3],
                     "a row of another plan": [0.1, 0.1, 0.1]})
  assert script.main([f"--runs={runs}", f"--out={tmp_path / 'out'}"]) == 0
  assert (tmp_path / "out" / "grid_accuracy.png").stat().st_size > 0
  assert (tmp_path / "out" / "grid_differences.png").stat().st_size > 0
  lines = list(csv.DictReader(open(tmp_path / "out" / "grid_differences.csv")))
  cell = {(l["window_share"], l["comparison"]): l for l in lines if l["seeds"]}
  tp_avg = cell[("0.5", "TP - AVG")]
  assert int(tp_avg["seeds"]) == 3 and float(tp_avg["mean"]) == pytest.approx(10)
  assert float(tp_avg["low"]) == pytest.approx(10) == pytest.approx(float(tp_avg["high"]))  # no spread
  tp_max = cell[("0.5", "TP - MAX")]  # 0, +20, -10: mean 10/3, a t interval around it
  assert float(tp_max["mean"]) == pytest.approx(10 / 3, rel=1e-3)
  assert float(tp_max["low"]) < 0 < float(tp_max["high"])
  assert float(cell[("1.0", "TP - MAX")]["mean"]) == pytest.approx(0, abs=1e-9)
  crossings = {l["comparison"]: l for l in lines if not l["seeds"]}
  assert crossings["TP - AVG"]["window_share"] == "crosses zero at"
  assert float(crossings["TP - AVG"]["mean"]) == pytest.approx(math.sqrt(0.5), rel=1e-3)
  assert crossings["TP - MAX"]["window_share"] == "crosses zero at"
  assert float(crossings["TP - MAX"]["mean"]) == pytest.approx(1.0)  # the mean reaches 0 at 100%


def test_the_crossing_of_a_difference_that_stays_positive_is_none():
  crossing = _script().crossing
  assert crossing([(0.05, 30.0), (0.1, 20.0), (1.0, 1.0)]) is None
  assert crossing([(0.05, 30.0), (0.1, -10.0)]) == pytest.approx(math.exp(math.log(0.05) + 0.75 * math.log(2)))


def test_a_csv_without_grid_rows_is_a_one_line_error(tmp_path):
  runs = tmp_path / "runs.csv"
  _write_runs(runs, {"TP": [0.5]})
  with pytest.raises(SystemExit, match="no finished run of the when-grid"):
    _script().main([f"--runs={runs}", f"--out={tmp_path}"])
