"""Every number that appears in more than one place is written from one file (docs/generate_numbers.py)."""

import importlib.util
import shutil

from tiny import REPO


def _generator():
  spec = importlib.util.spec_from_file_location("generate_numbers", REPO / "docs" / "generate_numbers.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_every_copy_of_a_number_is_current(capsys):
  assert _generator().main(["--check"]) == 0, capsys.readouterr().out


def test_a_changed_source_makes_its_copies_stale(tmp_path, capsys):
  generator = _generator()
  changed = tmp_path / "results.csv"
  shutil.copy(generator.TABLES_CSV, changed)
  text = changed.read_text()
  war = generator.tables()["TP"]["war"]  # TP's mean WAR, as written in the file
  line = next(line for line in text.splitlines() if line.startswith("TP,"))
  assert f",{war!r}," in line
  changed.write_text(text.replace(line, line.replace(f",{war!r},", f",{war + 0.01!r},", 1)))
  generator.TABLES_CSV = changed
  assert generator.main(["--check"]) == 1
  printed = capsys.readouterr().out
  assert "stale: README.md" in printed and "stale: configs/table1_tp.py" in printed
  assert "stale: docs/synthemo_tables.md" in printed
  assert "configs/table1_shift.py" not in printed
