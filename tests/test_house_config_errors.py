"""A config field that does not exist, in an override or in the config file, is one clean line."""

from __future__ import annotations

import pytest

from tiny import REPO
from videmo.train.cli import parse_command_line

SYNTHEMO = f"--config={REPO / 'configs' / 'synthemo.py'}"


@pytest.mark.parametrize("override, message", [
    ("--config.model.nmu_heads=2", "videmo train: the config has no field 'model.nmu_heads' "
                                   "(did you mean 'model.num_heads'?)"),
    ("--config.modl.num_heads=2", "videmo train: the config has no field 'modl' (did you mean 'model'?)"),
    ("--config.pretrain.model.nmu_heads=2", "videmo train: the config has no field 'pretrain.model.nmu_heads' "
                                            "(did you mean 'pretrain.model.num_heads'?)"),
    ("--config.bogus=3", "videmo train: the config has no field 'bogus'"),
])
def test_an_override_of_a_missing_field_is_one_clean_line(override, message):
  with pytest.raises(SystemExit) as raised:
    parse_command_line("videmo train", [SYNTHEMO, override], ("workdir",))
  assert str(raised.value) == message


_BASE = "from videmo.train import base_config\n\ndef get_config(hardware='cpu'):\n  config = base_config.get_config(hardware)\n"


@pytest.mark.parametrize("body, message", [
    ("  heads = config.model.nmu_heads\n", "line 5: the config has no field 'nmu_heads' (did you mean 'num_heads'?)"),
    ("  heads = config.model['nmu_heads']\n", "line 5: the config has no field 'nmu_heads' (did you mean 'num_heads'?)"),
    ("  config.lock()\n  config.model.nmu_heads = 2\n",
     "line 6: the config has no field 'nmu_heads' (did you mean 'num_heads'?)"),
    ("  heads = {}['oops']\n", "line 5: KeyError: oops"),
])
def test_a_missing_field_in_the_config_file_names_the_file_and_line(tmp_path, body, message):
  path = tmp_path / "wrong.py"
  path.write_text(_BASE + body + "  return config\n")
  with pytest.raises(SystemExit) as raised:
    parse_command_line("videmo eval", [f"--config={path}"], ())
  text = str(raised.value)
  assert text.startswith("videmo eval: ") and str(path) in text and text.endswith(message), text
  assert "\n" not in text and "\\" not in text
