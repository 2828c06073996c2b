"""The one way tests shrink an experiment config: synthemo/tiny, a 1/16-width trunk, a few steps.

`shrink(config, data_dir, steps)` edits a loaded config in place (and returns it);
`flags(data_dir, steps)` gives the same values as `--config.*` command-line flags, for tests
that go through `videmo train` / `videmo eval` / a subprocess. `load(path_or_name, arg)` loads
a config file of configs/.

synthemo/tiny: 28 training and 14 validation clips of 4-10 frames at 32x32 (built by the
session fixture `synthemo_tiny` in conftest.py).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import ml_collections

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").glob("*.py"))

# Dotted config field -> value. Evaluation runs on every frame of the (at most 10-frame) clips.
FIELDS: dict[str, object] = {
    "dataset": "synthemo/tiny",
    "build_if_missing": False,
    "init.pretrained_required": False,
    "init.weights": "",
    "model.trunk_width_divisor": 16,
    "model.attention_hidden": 8,
    "model.lstm_hidden": 8,
    "input.crop_size": 32,
    "input.num_frames": 4,
    "input.workers": 0,
    "input.eval_num_frames": 0,
    "input.eval_buckets": (16,),
    "batch_size": 4,
    "eval_batch_size": 4,
    "eval_every_epochs": 0.0,
    "log_every_steps": 1,
    "checkpoint_every_steps": 1,
    "num_devices": 1,
    "progress_bar": False,
}


def load(path: str | os.PathLike, arg: str | None = None) -> ml_collections.ConfigDict:
  """configs/NAME.py (a path, or a name such as 'synthemo') -> its get_config(arg)."""
  path = Path(path)
  if not path.suffix:
    path = REPO / "configs" / f"{path}.py"
  spec = importlib.util.spec_from_file_location(f"config_{path.stem}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg) if arg else module.get_config()


def shrink(config: ml_collections.ConfigDict, data_dir: str | os.PathLike, steps: int = 2
           ) -> ml_collections.ConfigDict:
  """Any experiment config -> the tiny one: FIELDS, `steps` steps, no pre-training stage."""
  for dotted, value in FIELDS.items():
    *parents, name = dotted.split(".")
    node = config
    for parent in parents:
      node = node[parent]
    node[name] = value
  config.data_dir = os.fspath(data_dir)
  config.num_train_steps = steps
  config.pretrain = None
  return config


def flags(data_dir: str | os.PathLike | None = None, steps: int | None = None) -> list[str]:
  """FIELDS (and the data directory and step count, if given) as `--config.FIELD=VALUE` flags."""
  out = [f"--config.{dotted}={_flag_value(value)}" for dotted, value in FIELDS.items()]
  if data_dir is not None:
    out.append(f"--config.data_dir={os.fspath(data_dir)}")
  if steps is not None:
    out.append(f"--config.num_train_steps={steps}")
  return out


def _flag_value(value: object) -> str:
  if isinstance(value, tuple):
    return "(" + ",".join(str(v) for v in value) + ("," if len(value) == 1 else "") + ")"
  return str(value)


def random_params(model, num_frames: int = 4, size: int = 32, seed: int = 0, dtype=None):
  """Parameters for `model` drawn with numpy from its parameter shapes (nothing to compile):
  He-normal kernels (std sqrt(2 / fan-in)) and N(0, 0.01²) vectors; float32 unless `dtype`."""
  import jax
  import jax.numpy as jnp
  import numpy as np

  rng = np.random.default_rng(seed)
  frames = jax.ShapeDtypeStruct((1, num_frames, size, size, 3), jnp.float32)
  mask = jax.ShapeDtypeStruct((1, num_frames), jnp.bool_)
  shapes = jax.eval_shape(model.init, jax.random.key(0), frames, mask)["params"]

  def draw(leaf):
    if len(leaf.shape) > 1:
      value = np.sqrt(2.0 / np.prod(leaf.shape[:-1])) * rng.standard_normal(leaf.shape)
    else:
      value = 0.01 * rng.standard_normal(leaf.shape)
    return value.astype(dtype or leaf.dtype)

  return jax.tree.map(draw, shapes)


# A small model, optimiser and batches for tests of the train step itself.
STEP_MODEL = dict(trunk_width_divisor=16, attention_hidden=8, num_heads=2)
STEP_OPTIM = dict(groups=dict(trunk=dict(pattern="^trunk/", lr=1e-3), head=dict(pattern="^(?!trunk/)", lr=0.1)),
                  momentum=0.9, nesterov=False, weight_decay=5e-5, sgdr_cycle_epochs=1.0, sgdr_multiplier=1.0,
                  sgdr_min_ratio=0.0)


def step_batches(n: int = 3, b: int = 8, f: int = 4, size: int = 32) -> list[dict]:
  """`n` batches of `b` clips for STEP_MODEL whose devices differ in what they hold: short clips
  (masked frames) on some, a padding clip (valid = False) on one, so per-device and global
  normalisations differ."""
  import numpy as np

  rng = np.random.default_rng(0)
  batches = []
  for i in range(n):
    mask = np.ones((b, f), bool)
    mask[::3, 2:] = False
    valid = np.ones(b, bool)
    valid[(2 * i + 1) % b] = False
    batches.append(dict(frames=rng.integers(0, 256, (b, f, size, size, 3), dtype=np.uint8), mask=mask,
                        label=rng.integers(0, 7, b).astype(np.int32), valid=valid,
                        index=np.arange(b, dtype=np.int32)))
  return batches
