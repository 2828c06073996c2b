"""SynthEmo demo: the paper's recipe (pre-trained trunk, then SA(2) + TP) with a narrow VGG16 trunk.

    videmo train --config=configs/synthemo.py --workdir=runs/synthemo

The paper fine-tunes VGG16 pre-trained on face images (VGG-Face). No pre-trained weights exist
for the narrow trunk (1/8 of VGG16's width), so the run has two stages, both built first in
~/tensorflow_datasets if absent (about 30 s):

1. runs/synthemo/pretrain: the same network learns expressions from labelled face stills,
   synthemo/stills (2,000 apex frames of other people than the videos'; the analogue of a
   static expression dataset), 26 epochs of 64 stills, one cosine cycle from 0.05; its trunk
   is written to runs/synthemo/pretrain/trunk.
2. runs/synthemo: the paper's model on the videos of synthemo/small from that trunk, with the
   paper's two parameter groups (trunk 0.005 instead of 1e-5, since this trunk saw far less data
   than VGG-Face; everything else 0.1 as in the paper), 16 random frames per clip, 6 epochs of
   8 clips, then evaluation on every frame of the 210 validation clips.

Killed at any point, the same command resumes the stage it was in.

Measured on 2 CPU cores, from an empty data directory: 3.6 minutes in all on an AMD EPYC
with AVX-512 (convolutions through oneDNN; an AVX2-only EPYC took about 16 minutes with XLA's
and has not been measured since); stills accuracy 81.4% / 93.9% after stage 1 and validation
WAR 77.1% / 91.9% (UAR the same; chance 14.3%) after stage 2, for seeds 0 / 1. On SynthEmo
clips rendered as .mp4, the frame of highest p(f|S) lies inside the true expressive window
on 29 of 30 (docs/synthemo.md).

Without stage 1 (delete the `config.pretrain` line in a copy of this file), the narrow trunk
trained on the videos alone stays at chance for hundreds of steps: clip labels alone are too
weak a signal to start it (docs/synthemo.md lists what was tried).
"""

from videmo.train import base_config


def _stills_config(hardware: str):
  """Stage 1: the same network as a frame classifier on labelled stills (one-frame clips)."""
  config = _narrow_model(base_config.get_config(hardware))
  config.dataset = "synthemo/stills"
  config.input.num_frames = 1
  config.input.eval_buckets = (1,)
  config.optim.groups = dict(all=dict(pattern=".", lr=0.05, frozen=False))
  _schedule(config, batch_size=64, epochs=26.0, eval_every_epochs=13.0)  # 806 steps
  config.eval_batch_size = 64
  config.log_every_steps = 50
  config.checkpoint_every_steps = 200
  return config


def _narrow_model(config):
  """What both stages share: the narrow trunk at 64x64, the head, clipped SGD, in-process loading."""
  config.build_if_missing = True
  config.init.pretrained_required = False
  config.model.trunk_width_divisor = 8
  config.model.attention_hidden = 32
  config.model.num_heads = 2
  config.penalty_coef = 0.1
  config.input.crop_size = 64            # whole 64x64 faces (random mirror only)
  config.input.workers = 0
  # Without normalisation layers, a 13-layer ReLU stack trained from scratch needs its
  # gradient clipped to train at a useful rate with plain SGD.
  config.optim.clip_grad_norm = 0.5
  return config


def _schedule(config, batch_size: int, epochs: float, eval_every_epochs: float):
  """`epochs` of `batch_size` clips, one cosine cycle (SGDR without a restart)."""
  config.batch_size = batch_size
  config.num_epochs = epochs
  config.optim.sgdr_cycle_epochs = epochs
  config.optim.sgdr_multiplier = 1.0
  config.eval_every_epochs = eval_every_epochs


def get_config(hardware: str = "cpu"):
  config = _narrow_model(base_config.get_config(hardware))
  config.dataset = "synthemo/small"
  config.pretrain = _stills_config(hardware)
  config.optim.groups.trunk.lr = 0.005
  config.optim.groups.head.lr = 0.1
  _schedule(config, batch_size=8, epochs=6.0, eval_every_epochs=3.0)      # 366 steps
  config.eval_batch_size = 16
  config.log_every_steps = 20
  config.checkpoint_every_steps = 100
  return config
