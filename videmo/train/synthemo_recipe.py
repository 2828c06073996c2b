"""The SynthEmo recipe: the paper's training with a trunk 1/8 of VGG16's width, pre-trained on stills.

The paper fine-tunes VGG16 pre-trained on face images (VGG-Face). No pre-trained weights exist
for the narrow trunk, so a SynthEmo run has two stages (videmo/train/stages.py):

1. the same network learns expressions from labelled face stills, synthemo/stills (2,000 apex
   frames of other people than the videos', with the 'afew' expression set: the analogue of a
   static expression dataset), 26 epochs of 64 stills, one cosine cycle from 0.05 (806 steps);
   its trunk initialises stage 2. Stage 1 is the same for every row of the tables, so runs of
   one seed can share it (`config.pretrain_workdir`, which `videmo sweep` sets); for the tables
   its head is global average pooling and a linear classifier, which favours no row;
2. the model on the videos, with the paper's two parameter groups (trunk 0.005 instead of 1e-5,
   since this trunk saw far less data than VGG-Face; everything else 0.1 as in the paper),
   16 random frames per clip at 64x64, clipped SGD.

`table_analogue` gives stage 2 on synthemo/tables (docs/synthemo.md: short expressive windows,
classes that need two face regions), with stage 1 on synthemo/stills_pairs (stills of the same
'pairs' classes, as synthemo/stills is for synthemo/small); a config of the paper's tables picks it with the argument
`synthemo` (`configs/table1_tp.py:synthemo`) and then sets only what its row changes.
configs/synthemo.py, the main job, uses the same recipe on synthemo/small.
"""

from __future__ import annotations

import ml_collections

TABLES_DATASET = "synthemo/tables"
TABLES_STILLS = "synthemo/stills_pairs"
TABLES_EPOCHS = 6.0  # 366 steps of 8 clips


def narrow_model(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """What both stages share: the narrow trunk at 64x64, clipped SGD, in-process loading."""
  config.build_if_missing = True
  config.init.pretrained_required = False
  config.model.trunk_width_divisor = 8
  config.model.attention_hidden = 32
  config.input.crop_size = 64            # whole 64x64 faces (random mirror only)
  config.input.workers = 0
  # Without normalisation layers, a 13-layer ReLU stack trained from scratch needs its
  # gradient clipped to train at a useful rate with plain SGD.
  config.optim.clip_grad_norm = 0.5
  return config


def schedule(config: ml_collections.ConfigDict, batch_size: int, epochs: float,
             eval_every_epochs: float) -> ml_collections.ConfigDict:
  """`epochs` of `batch_size` clips, one cosine cycle (SGDR without a restart)."""
  config.batch_size = batch_size
  config.num_epochs = epochs
  config.optim.sgdr_cycle_epochs = epochs
  config.optim.sgdr_multiplier = 1.0
  config.eval_every_epochs = eval_every_epochs
  return config


def stills_config(base: ml_collections.ConfigDict, dataset: str = "synthemo/stills") -> ml_collections.ConfigDict:
  """Stage 1 from a base config: the network as a frame classifier on labelled stills (one-frame clips)."""
  config = narrow_model(base)
  config.dataset = dataset
  config.model.num_heads = 2
  config.penalty_coef = 0.1
  config.input.num_frames = 1
  config.input.eval_buckets = (1,)
  config.optim.groups = dict(all=dict(pattern=".", lr=0.05, frozen=False))
  schedule(config, batch_size=64, epochs=26.0, eval_every_epochs=13.0)  # 806 steps
  config.eval_batch_size = 64
  config.log_every_steps = 50
  config.checkpoint_every_steps = 200
  return config


def video_stage(config: ml_collections.ConfigDict, stills_base: ml_collections.ConfigDict,
                dataset: str, epochs: float, eval_every_epochs: float,
                stills: str = "synthemo/stills") -> ml_collections.ConfigDict:
  """Stage 2 on `dataset` from a base config (a second base config becomes stage 1, on `stills`)."""
  config = narrow_model(config)
  config.dataset = dataset
  config.pretrain = stills_config(stills_base, stills)
  config.optim.groups.trunk.lr = 0.005
  config.optim.groups.head.lr = 0.1
  schedule(config, batch_size=8, epochs=epochs, eval_every_epochs=eval_every_epochs)
  config.eval_batch_size = 16
  config.log_every_steps = 20
  config.checkpoint_every_steps = 100
  return config


def table_analogue(config: ml_collections.ConfigDict,
                   stills_base: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A row of the paper's tables on synthemo/tables: the recipe, evaluated once at the end.

  Stage 1 favours no row: its head is global average pooling and a linear classifier (no
  attention, no penalty), so that every row starts from a trunk that never worked with any of
  the rows' heads. (Stage 1 with the 2-head attention module and penalty 0.1, `stills_config`'s
  head, helps the attention rows: docs/synthemo_tables.md measures by how much.)
  """
  config = video_stage(config, stills_base, TABLES_DATASET, TABLES_EPOCHS, eval_every_epochs=0.0,
                       stills=TABLES_STILLS)
  config.pretrain.model.spatial = "average"
  config.pretrain.penalty_coef = 0.0
  return config
