"""Two-stage training: pre-train a trunk in one run, fine-tune the paper's model from it in the next.

The paper fine-tunes a trunk pre-trained on face images (VGG-Face). Where no such weights exist
(the narrow trunk of the SynthEmo demo) or a user wants their own, a config chains the runs:

  config.pretrain = <a whole experiment config>   e.g. frame-level stills of the same faces
  config.export_trunk = True                       (set on the pretrain config automatically)

`videmo train --config=... --workdir=W` then

  1. unless W/pretrain/trunk is already complete, runs config.pretrain in W/pretrain (resuming
     it if it was killed; with config.data_dir unless it sets its own data_dir) and writes its
     trained trunk to W/pretrain/trunk in the format of `videmo convert-weights`
     (params.npz + metadata.json with the input convention); with config.pretrain_workdir=P,
     stage 1 runs in P instead, so that runs with the same stage 1 share it (`videmo sweep`);
  2. trains config itself in W with config.init.weights = W/pretrain/trunk, which loads the
     trunk strictly (`videmo.weights.converted.load_trunk_into`) and takes its input convention.

Killed in stage 1, the same command resumes stage 1; killed in stage 2, it resumes stage 2.
Any run with export_trunk=True leaves WORKDIR/trunk for `--config.init.weights` of another run.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Callable, Mapping

import jax
import ml_collections
import numpy as np
from jax.experimental import multihost_utils

from videmo.models.input_convention import InputConvention
from videmo.train import run_dir
from videmo.weights import converted

PRETRAIN_DIR = run_dir.PRETRAIN_DIR  # stage 1's work directory, inside stage 2's



def export_trunk(params: Mapping[str, Any], convention: InputConvention, config: ml_collections.ConfigDict,
                 workdir: str | os.PathLike, step: int) -> Path:
  """Write params['trunk'] (replicated) to WORKDIR/trunk as a converted-weight directory."""
  out = run_dir.trunk_dir(workdir)
  if jax.process_index() == 0:
    trunk = jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), params["trunk"])
    source = dict(format="videmo-run", file=str(run_dir.step_dir(workdir, step)), step=step,
                  dataset=config.dataset)
    converted.save_trained_trunk(out, trunk, convention, source, image_size=config.input.crop_size,
                                 overwrite=True)
  multihost_utils.sync_global_devices("videmo export_trunk")
  print(f"trained trunk written to {out} (start another run from it with --config.init.weights={out})")
  return out


def with_pretrained_trunk(config: ml_collections.ConfigDict, workdir: str | os.PathLike,
                          train: Callable[[ml_collections.ConfigDict, Path], Any]) -> ml_collections.ConfigDict:
  """Stage 1 of a two-stage config (see module doc); returns the config of stage 2.

  Args:
    config: a config whose `pretrain` is a whole experiment config.
    workdir: stage 2's work directory; stage 1 runs in config.pretrain_workdir, or in
      WORKDIR/pretrain when that is ''. Runs whose stage 1 is the same config (seed included)
      may share one pretrain_workdir: the first trains it, the others find its trunk.
    train: `train_and_evaluate(config, workdir)`, called for stage 1 unless its trunk exists.

  Returns:
    A copy of `config` with pretrain = None and init.weights = STAGE1_DIR/trunk.
  """
  shared = config.get("pretrain_workdir") or ""
  stage_dir = Path(shared).expanduser() if shared else Path(workdir) / PRETRAIN_DIR
  trunk_dir = run_dir.trunk_dir(stage_dir)
  if (trunk_dir / converted.METADATA_FILE).is_file():
    print(f"pre-trained trunk: {trunk_dir} (stage 1 is done; delete that folder to run it again)")
  else:
    stage = copy.deepcopy(config.pretrain)
    stage.export_trunk = True
    stage.data_dir = stage.data_dir or config.data_dir  # one --config.data_dir serves both stages
    print(f"stage 1 of 2: pre-training the trunk on {stage.dataset} in {stage_dir}")
    train(stage, stage_dir)
    print(f"stage 2 of 2: training on {config.dataset} in {workdir}, trunk from {trunk_dir}")
  config = copy.deepcopy(config)
  with config.unlocked():
    config.pretrain = None
    config.init.weights = str(trunk_dir)
  return config
