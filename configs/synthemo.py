"""SynthEmo demo: the paper's recipe (pre-trained trunk, then SA(2) + TP) with a narrow VGG16 trunk.

    videmo train --config=configs/synthemo.py --workdir=runs/synthemo

The paper fine-tunes VGG16 pre-trained on face images (VGG-Face). No pre-trained weights exist
for the narrow trunk (1/8 of VGG16's width), so the run has two stages (the recipe of
videmo/train/synthemo_recipe.py, shared with the tables' SynthEmo analogues), both datasets
built first in ~/tensorflow_datasets if absent (about 30 s):

1. runs/synthemo/pretrain: the same network learns expressions from labelled face stills,
   synthemo/stills (2,000 apex frames of other people than the videos'; the analogue of a
   static expression dataset), 26 epochs of 64 stills, one cosine cycle from 0.05; its trunk
   is written to runs/synthemo/pretrain/trunk.
2. runs/synthemo: the paper's model on the videos of synthemo/small from that trunk, with the
   paper's two parameter groups (trunk 0.005 instead of 1e-5, since this trunk saw far less data
   than VGG-Face; everything else 0.1 as in the paper), 16 random frames per clip, 6 epochs of
   8 clips, then evaluation on every frame of the 210 validation clips.

Killed at any point, the same command resumes the stage it was in.

Measured on 2 CPU cores of an AMD EPYC with AVX-512: 2.8 minutes in all with an empty HOME
(datasets built and the oneDNN library compiled first), 2.4-2.9 minutes with the datasets built
(docs/benchmarks.md: 2.31x faster than before the convolutions ran through oneDNN; an
AVX2-only EPYC took about 16 minutes with XLA's convolutions and has not been measured
since); stills accuracy 81.4% / 93.9% after stage 1 and validation WAR 77.1% / 91.9% (UAR
the same; chance 14.3%) after stage 2, for seeds 0 / 1. On SynthEmo clips rendered as .mp4,
the frame of highest p(f|S) lies inside the true expressive window on 29 of 30
(docs/synthemo.md).

Without stage 1 (delete the `config.pretrain` line in a copy of this file), the narrow trunk
trained on the videos alone stays at chance for hundreds of steps: clip labels alone are too
weak a signal to start it (docs/synthemo.md lists what was tried).
"""

from videmo.train import base_config, synthemo_recipe


def get_config(hardware: str = "cpu"):
  config = synthemo_recipe.video_stage(base_config.get_config(hardware), base_config.get_config(hardware),
                                       dataset="synthemo/small", epochs=6.0, eval_every_epochs=3.0)  # 366 steps
  config.model.num_heads = 2
  config.penalty_coef = 0.1
  return config
