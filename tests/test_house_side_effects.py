"""Library code leaves the process as it found it: the sweep's figure sets no matplotlib backend,
and a loader with worker processes does not mark absl's flags parsed."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from videmo.sweep import collect


def _summary(row: str, group: str, wars: list[float]) -> dict:
  return dict(row=row, group=group, war=float(np.mean(wars)), war_std=float(np.std(wars, ddof=1)),
              war_n=len(wars))


def test_the_sweep_figure_sets_no_matplotlib_backend(tmp_path, monkeypatch):
  import matplotlib

  def refuse(*args, **kwargs):
    raise AssertionError(f"matplotlib.use{args} called by library code")

  monkeypatch.setattr(matplotlib, "use", refuse)
  backend = dict.__getitem__(matplotlib.rcParams, "backend")
  figures = sys.modules["matplotlib.pyplot"].get_fignums() if "matplotlib.pyplot" in sys.modules else []
  summaries = [_summary("TP", "Table 1", [0.80, 0.84]), _summary("AVG", "Table 2", [0.70, 0.72])]
  records = [dict(row=s["row"], seed=i, war=w) for s, ws in zip(summaries, ([0.80, 0.84], [0.70, 0.72]))
             for i, w in enumerate(ws)]
  collect.plot(summaries, records, tmp_path / "results.png", chance=1 / 7)
  assert dict.__getitem__(matplotlib.rcParams, "backend") == backend  # still unset (or the user's)
  if "matplotlib.pyplot" in sys.modules:
    assert sys.modules["matplotlib.pyplot"].get_fignums() == figures  # no figure left open in pyplot
  image = Image.open(tmp_path / "results.png")
  assert image.size[0] > 300 and image.size[1] > 100
  assert np.asarray(image.convert("L")).std() > 10  # something is drawn


_LOADER_SCRIPT = textwrap.dedent("""
    import numpy as np
    from absl import flags
    from videmo.data.loading import pipeline

    if __name__ == "__main__":
      source = [dict(frames=np.full((4, 32, 32, 3), i, np.uint8), face_found=np.ones(4, bool), label=i % 7)
                for i in range(8)]
      batches = pipeline.train_batches(source, batch_size=2, num_frames=2, crop_size=32, seed=0, workers=1)
      batch = next(batches)
      batches.close()
      print("RESULT", batch["frames"].shape[0], flags.FLAGS.is_parsed())
""")


@pytest.mark.slow
def test_a_loader_with_workers_runs_from_a_plain_script_and_leaves_absl_unparsed(tmp_path):
  script = tmp_path / "plain_script.py"
  script.write_text(_LOADER_SCRIPT)
  result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
  lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT")]
  assert lines, result.stderr[-2000:]
  _, batch, parsed = lines[0].split()
  assert batch == "2"         # the worker process started and made a batch
  assert parsed == "False"    # absl's flags are still unparsed: an absl app parses its own later
