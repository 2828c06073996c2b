"""`videmo sweep`: a plan of 2 configs x 2 seeds on synthemo/tiny runs, shares its stage 1, resumes, and tabulates."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

import tiny
from videmo.main import main
from videmo.sweep import collect, plan as plan_lib

# The tests share one sweep (a module fixture): keep them on one xdist worker.
pytestmark = [pytest.mark.xdist_group("sweep"), pytest.mark.slow]

_PLAN = """
SEEDS = (0, 1)
_TINY = {overrides!r}

def get_rows():
  return [dict(name="TP", config="{repo}/configs/table1_tp.py:synthemo", overrides=_TINY, group="Table 1", paper=46.4),
          dict(name="AVG", config="{repo}/configs/table2_avg.py:synthemo", overrides=_TINY, group="Table 2", paper=46.0)]

COMPARISONS = (("TP", "AVG"),)
"""


def _tiny_overrides(data_dir) -> dict:
  """Both stages of a SynthEmo table config shrunk to synthemo/tiny: 2 steps each."""
  overrides = dict(tiny.FIELDS, data_dir=str(data_dir), num_train_steps=2)
  overrides.pop("init.weights")  # stage 2 starts from stage 1's trunk
  overrides.pop("init.pretrained_required")
  for field in ("dataset", "build_if_missing", "model.trunk_width_divisor", "model.attention_hidden",
                "input.crop_size", "input.workers", "batch_size", "eval_batch_size", "eval_every_epochs",
                "log_every_steps", "checkpoint_every_steps", "num_devices", "progress_bar"):
    overrides[f"pretrain.{field}"] = tiny.FIELDS[field]
  overrides["pretrain.num_train_steps"] = 2
  overrides["pretrain.data_dir"] = str(data_dir)
  return overrides


def _runs(plan_file, workdir) -> list[plan_lib.Run]:
  plan = plan_lib.load_plan_file(plan_file)
  return plan_lib.plan_runs(plan.rows, plan.seeds, workdir)


# Session scope: xdist may run another module's test between two of these on the same worker,
# which would tear a module fixture down and run the whole sweep again.
@pytest.fixture(scope="session")
def swept(synthemo_tiny, tmp_path_factory):
  root = tmp_path_factory.mktemp("sweep")
  plan = root / "plan.py"
  plan.write_text(_PLAN.format(overrides=_tiny_overrides(synthemo_tiny), repo=tiny.REPO))
  workdir = root / "work"
  code = main(["sweep", "run", f"--plan={plan}", f"--workdir={workdir}", "--parallel=2"])
  return plan, workdir, code


def test_sweep_runs_every_row_and_seed_and_shares_stage1(swept):
  plan, workdir, code = swept
  assert code == 0
  runs = _runs(plan, workdir)
  assert len(runs) == 4 and all(run.finished() for run in runs)
  # one stage 1 per seed, shared by both rows: each seed's trunk was trained once
  assert sorted(p.name.split("-seed-")[1] for p in (workdir / "pretrain").iterdir()) == ["0", "1"]
  for run in runs:
    config = json.loads((run.workdir / "config.json").read_text())
    assert config["seed"] == run.seed
    assert config["init"]["weights"].startswith(run.pretrain_dir)
    record = json.loads((run.workdir / plan_lib.RUN_RECORD).read_text())
    assert record["exit_code"] == 0 and record["seconds"] > 0


def test_sweep_table_and_figure(swept):
  plan, workdir, _ = swept
  with open(workdir / "runs.csv") as f:
    runs = list(csv.DictReader(f))
  assert sorted((r["row"], r["seed"]) for r in runs) == [("AVG", "0"), ("AVG", "1"), ("TP", "0"), ("TP", "1")]
  with open(workdir / "results.csv") as f:
    results = {r["row"]: r for r in csv.DictReader(f)}
  assert list(results) == ["TP", "AVG"]
  for name in ("TP", "AVG"):
    wars = [float(r["war"]) for r in runs if r["row"] == name]
    assert float(results[name]["war"]) == pytest.approx(np.mean(wars))
    assert float(results[name]["war_std"]) == pytest.approx(np.std(wars, ddof=1))
    assert results[name]["war_n"] == "2"
    recalls = [float(results[name][f"recall_{c}"]) for c in ("Angry", "Neutral", "Surprise")]
    assert all(0.0 <= v <= 1.0 for v in recalls)
    # synthemo/tiny records its expressive windows: the top-frame measure is there
    assert 0.0 <= float(results[name]["frame_by_evidence"]) <= 1.0
  assert results["TP"]["frame_by_importance"] != "nan" and results["AVG"]["frame_by_importance"] == "nan"
  assert float(results["AVG"]["effective_share"]) == pytest.approx(1.0)  # AVG's p(f|S) is uniform
  assert 0 < float(results["TP"]["effective_share"]) <= 1.0
  # deletion and insertion areas: by p(f|S) for TP only (AVG's is uniform), at random and by window for both
  for name in ("TP", "AVG"):
    for key in ("deletion_random", "insertion_random", "deletion_window", "insertion_window"):
      assert 0.0 <= float(results[name][key]) <= 1.0 and results[name][f"{key}_n"] == "2", (name, key)
  assert 0.0 <= float(results["TP"]["deletion_importance"]) <= 1.0 and results["AVG"]["deletion_importance"] == "nan"
  text = (workdir / "results.md").read_text()
  assert "| Table 1 | TP | 46.4 |" in text and "TP ≥ AVG" in text and "Per-class recall" in text
  faithfulness = text[text.index("Frame importance, faithfulness"):].splitlines()
  assert faithfulness[4].startswith("| TP | ") and faithfulness[5].startswith("| AVG | – | ")
  # the comparison carries the clips' bootstrap interval beside the seeds' (per-clip records exist)
  line = next(line for line in text.splitlines() if line.startswith("| TP ≥ AVG"))
  assert line.count("…") == 2 and "Holm p" in text
  image = Image.open(workdir / "results.png")
  assert image.size[0] > 300 and image.size[1] > 100
  assert np.asarray(image.convert("L")).std() > 10  # something is drawn


def test_finished_runs_are_skipped(swept, capsys):
  plan, workdir, _ = swept
  assert main(["sweep", "run", f"--plan={plan}", f"--workdir={workdir}"]) == 0
  out = capsys.readouterr().out
  assert "4 finished already, 0 to run" in out
  assert "| TP ≥ AVG | 2 |" in out and "Holm p" in out  # the table prints its comparisons


def test_records_read_back_make_the_same_table_without_the_runs_folders(swept, tmp_path, capsys):
  """A sweep's records.jsonl holds every run whole: read back (`--records`) into an empty work
  directory they give the same tables, and `run` trains nothing they hold."""
  plan, workdir, _ = swept
  records, _ = collect.aggregate(plan_lib.load_plan_file(plan), _runs(plan, workdir))
  back = collect.load_records(workdir / collect.RECORDS_FILE)
  assert len(back) == len(records) == 4
  for a, b in zip(records, back):
    assert a.keys() == b.keys()
    np.testing.assert_array_equal(a["correct"], b["correct"])
    assert {k: v for k, v in a.items() if k != "correct"} == {k: v for k, v in b.items() if k != "correct"}
  elsewhere = tmp_path / "elsewhere"
  args = [f"--plan={plan}", f"--workdir={elsewhere}", f"--records={workdir / collect.RECORDS_FILE}"]
  assert main(["sweep", "run", *args]) == 0
  assert "0 to run" in capsys.readouterr().out and not (elsewhere / "runs").exists()
  for name in ("runs.csv", "results.csv", "results.md", collect.RECORDS_FILE):
    assert (elsewhere / name).read_text() == (workdir / name).read_text(), name

  # runs.csv (no per-clip records) for seed 0, records.jsonl for seed 1: the clips' interval
  # covers the seed that has them, and says so
  only_seed_1 = tmp_path / "seed1.jsonl"
  only_seed_1.write_text("".join(line + "\n" for line in (workdir / collect.RECORDS_FILE).read_text().splitlines()
                                 if '"seed": 1' in line))
  mixed = tmp_path / "mixed"
  assert main(["sweep", "table", f"--plan={plan}", f"--workdir={mixed}", f"--records={workdir / 'runs.csv'}",
               f"--records={only_seed_1}"]) == 0
  line = next(line for line in (mixed / "results.md").read_text().splitlines() if line.startswith("| TP ≥ AVG"))
  assert "(1 of 2 seeds)" in line and line.count("…") == 2
  assert (mixed / "runs.csv").read_text() == (workdir / "runs.csv").read_text()
  capsys.readouterr()
  bad = tmp_path / "bad.jsonl"
  bad.write_text('{"row": "TP"}\n')
  assert main(["sweep", "table", f"--plan={plan}", f"--workdir={mixed}", f"--records={bad}"]) == 2
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and "bad.jsonl, line 1: not a run record" in err
  assert main(["sweep", "table", f"--plan={plan}", f"--workdir={mixed}", f"--records={tmp_path / 'none.jsonl'}"]) == 2
  assert "no such file" in capsys.readouterr().err


def test_killed_run_resumes_from_its_checkpoint(swept, tmp_path, capsys):
  """A run whose metrics.json is missing (killed before its end) runs again and resumes."""
  plan, workdir, _ = swept
  run = _runs(plan, workdir)[0]
  (run.workdir / "metrics.json").unlink()
  assert main(["sweep", "run", f"--plan={plan}", f"--workdir={workdir}", "--index=0"]) == 0
  assert run.finished()
  assert "resumed from" in (run.workdir / "train.log").read_text()


def test_slurm_scripts(swept):
  plan, workdir, _ = swept
  assert main(["sweep", "slurm", f"--plan={plan}", f"--workdir={workdir}", "--sbatch=#SBATCH --time=1:00:00"]) == 0
  first = (workdir / "slurm" / "first.sbatch").read_text()
  rest = (workdir / "slurm" / "rest.sbatch").read_text()
  assert "#SBATCH --array=0-1" in first and "RUNS=(0 2)" in first  # one stage-1 run per seed
  assert "RUNS=(1 3)" in rest and "#SBATCH --time=1:00:00" in rest
  assert "--dependency=afterok" in (workdir / "slurm" / "submit.sh").read_text()


def test_comparison_verdicts_follow_the_holm_adjusted_p():
  records = [dict(row=r, seed=s, war=w, correct=None) for r, s, w in
             [("A", 0, 0.80), ("A", 1, 0.82), ("A", 2, 0.81), ("B", 0, 0.70), ("B", 1, 0.71), ("B", 2, 0.69),
              ("C", 0, 0.90), ("C", 1, 0.60), ("C", 2, 0.75)]]
  plan = plan_lib.Plan(rows=(), seeds=(0, 1, 2), comparisons=(("A", "B"), ("B", "A"), ("A", "C")))
  found = collect.comparisons(plan, records)
  assert [c["verdict"] for c in found] == ["holds", "reversed", "not resolved"]
  assert found[0]["t"].mean == pytest.approx(0.11)
  assert found[0]["holm_p"] == pytest.approx(min(1.0, 3 * found[0]["t"].p))  # the smallest of 3 p-values
  assert found[2]["clips"] is None and found[2]["needed"] > 3
  lines = collect.comparison_table(found)
  assert "Holm p" in lines[0] and "| A ≥ C | 3 | 2 of 3 |" in lines[4] and lines[4].rstrip(" |").endswith(str(found[2]["needed"]))
  # an effect too small for its spread says how far beyond the search it lies, not nothing
  tiny_effect = [dict(row=r, seed=s, war=w, correct=None) for r, s, w in
                 [("D", 0, 0.80), ("D", 1, 0.60), ("D", 2, 0.70), ("E", 0, 0.70), ("E", 1, 0.70), ("E", 2, 0.6999)]]
  unresolved = collect.comparisons(plan_lib.Plan(rows=(), seeds=(0, 1, 2), comparisons=(("D", "E"),)), tiny_effect)
  assert unresolved[0]["verdict"] == "not resolved" and unresolved[0]["needed"] is None
  assert collect.comparison_table(unresolved)[2].endswith("| not resolved | > 10000 |")


def test_grid_plan_and_bad_input(tmp_path, capsys):
  rows = plan_lib.grid_rows(["configs/table1_tp.py:synthemo"], ["model.temperature=0.3,3", "seed=1"])
  assert [r.name for r in rows] == ["table1_tp-synthemo.temperature=0.3.seed=1",
                                    "table1_tp-synthemo.temperature=3.seed=1"]
  assert rows[0].overrides == (("model.temperature", 0.3), ("seed", 1))
  assert plan_lib.parse_seeds("0-2") == (0, 1, 2)
  bad = tmp_path / "bad.py"
  bad.write_text("def get_rows():\n  return [dict(name='x', config='configs/table1_tp.py', overrides={'model.nope': 1})]\n")
  assert main(["sweep", "list", f"--plan={bad}", f"--workdir={tmp_path}"]) == 2
  assert "no field 'model.nope'" in capsys.readouterr().err
  assert main(["sweep", "list", f"--plan={tmp_path / 'missing.py'}", f"--workdir={tmp_path}"]) == 2
  assert "does not exist" in capsys.readouterr().err


def test_the_sweep_tests_share_one_worker(request):
  """The session fixture above runs once only if xdist's loadgroup keeps this module on one
  worker; pytest 9 ignores the node-id suffix pytest-xdist 3.8 groups by (hence pytest<9)."""
  if hasattr(request.config, "workerinput") and request.config.getvalue("loadgroup"):
    assert request.node.nodeid.endswith("@sweep"), request.node.nodeid
