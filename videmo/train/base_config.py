"""The paper's training setup (Sec. 4.2), shared by every experiment config.

Not run directly: each row of the paper's tables is a file in configs/ that starts from
`get_config(arg)` here and changes only what its row changes. The argument after the
colon picks a hardware variant, or the row's SynthEmo analogue:

    videmo train --config=configs/table1_sa2_reg1.py:gpu --workdir=runs/sa2_reg1 \
        --config.init.weights=~/weights/vgg_face

  cpu  float32, 2 loader workers (default)
  gpu  bfloat16 compute with float32 parameters, 8 loader workers
  tpu  bfloat16 compute, batch 64 (a pod slice: the batch is split over all its chips)
  synthemo  the row on synthemo/tables with the narrow trunk, pre-trained on stills first
            (videmo/train/synthemo_recipe.py; results in docs/synthemo_tables.md)

Paper (Sec. 4.2): 16 random frames per clip, mirroring and random crops, SGD with momentum
and warm restarts, weight decay 5e-5, 30 epochs, learning rate 1e-5 for the VGG16 trunk and
0.1 for the rest, VGG16 pre-trained on VGG-Face (convert it with `videmo convert-weights`).
The paper gives no batch size, momentum or restart period; the values below are ours.
"""

import ml_collections

from videmo.models.video import MODEL_DEFAULTS
from videmo.train import synthemo_recipe

HARDWARE = ("cpu", "gpu", "tpu")
ARGUMENTS = HARDWARE + ("synthemo",)


def get_config(arg: str = "cpu") -> ml_collections.ConfigDict:
  """The base config for the hardware `arg`, or with arg='synthemo' its SynthEmo analogue (on CPU)."""
  arg = arg or "cpu"
  if arg not in ARGUMENTS:
    raise ValueError(f"config argument must be one of {ARGUMENTS}, got {arg!r}")
  if arg == "synthemo":
    return synthemo_recipe.table_analogue(_base("cpu"), stills_base=_base("cpu"))
  return _base(arg)


def _base(hardware: str) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()

  config.dataset = "afew"            # a TFDS name, NAME[/CONFIG]; built by `videmo prepare`
  config.data_dir = ""               # '' = ~/tensorflow_datasets
  config.train_split = "train"         # a built split, or several joined by '+' ('fold_1+fold_2': k-fold)
  config.eval_split = "validation"
  config.build_if_missing = False    # build the dataset first if it is absent (SynthEmo only)

  config.model = ml_collections.ConfigDict(dict(MODEL_DEFAULTS))
  config.model.num_classes = ml_collections.FieldReference(None, field_type=int)  # None = the dataset's
  config.penalty_coef = 1.0          # weight of the attention diversity penalty (Table 1 "Reg.")

  config.input = ml_collections.ConfigDict(dict(
      num_frames=16,                 # frames sampled per training clip (paper: 16)
      crop_size=224,                 # random crop of the 256x256 faces (centre crop in evaluation)
      mirror=True,                   # random horizontal mirror, one per clip
      vertical_flip=False,           # random upside-down flip (the paper's "flipping" could mean this)
      workers=2,                     # loader processes (0 = in the training process)
      decoded_store_mb=4096,         # MiB a split's decoded frames may take on disk beside its shards, mapped and shared by every run and process (0 = off; larger splits use the in-memory cache)
      decoded_cache_mb=2048,         # MiB of decoded records kept in memory, main process and loader workers together, so later epochs decode nothing (0 = off)
      eval_num_frames=0,             # 0 = every frame of the clip; else that many evenly spaced
      eval_buckets=(16, 32, 64, 128, 256),  # padded clip lengths in evaluation (longer clips: multiples of the largest)
  ))

  config.pretrain = None              # a whole config run first in WORKDIR/pretrain; its trunk initialises this run
  config.pretrain_workdir = ""       # where config.pretrain runs ('' = WORKDIR/pretrain); runs may share one
  config.export_trunk = False        # write the trained trunk to WORKDIR/trunk (for another run's init.weights)

  config.init = ml_collections.ConfigDict(dict(
      weights="",                    # a folder written by `videmo convert-weights` ('' = random init)
      from_run="",                   # or a trained run (WORKDIR or WORKDIR/checkpoints/STEP) to fine-tune: its
                                     # trunk, attention and classifier, class by class by name (train/from_run.py)
      pretrained_required=True,      # the paper fine-tunes VGG-Face: refuse to start without weights
      allow_missing=(),              # trunk parameter names the weights may lack (regex on e.g. 'conv5_3/kernel')
      allow_unexpected=(),           # names in the weights the model may ignore (regex on e.g. 'fc6/kernel')
  ))

  config.optim = ml_collections.ConfigDict(dict(
      groups=dict(
          trunk=dict(pattern="^trunk/", lr=1e-5, frozen=False),
          head=dict(pattern="^(?!trunk/)", lr=0.1, frozen=False),
      ),
      momentum=0.9,
      nesterov=False,
      weight_decay=5e-5,
      sgdr_cycle_epochs=10.0,        # first warm-restart cycle; cycles of 10 then 20 epochs = 30
      sgdr_multiplier=2.0,
      sgdr_min_ratio=0.0,
      clip_grad_norm=0.0,            # > 0: clip the gradient's global norm (the paper does not)
  ))

  config.batch_size = 16             # global: split over all devices and hosts
  config.eval_batch_size = 8
  config.num_epochs = 30.0
  config.num_train_steps = -1        # > 0 overrides num_epochs
  config.eval_every_epochs = 5.0     # 0 = only at the end
  config.log_every_steps = 10
  config.checkpoint_every_steps = 200
  config.keep_checkpoints = 3
  config.no_face_policy = "wrong"    # headline metrics: listed clips without a usable face count as wrong
                                     # ('prior': the training split's most frequent class; 'exclude': left out;
                                     # all three are reported)
  config.num_devices = 0             # 0 = all devices
  config.seed = 0
  config.progress_bar = True

  if hardware == "gpu":
    config.model.dtype = "bfloat16"
    config.input.workers = 8
  elif hardware == "tpu":
    config.model.dtype = "bfloat16"
    config.input.workers = 8
    config.batch_size = 64
    config.eval_batch_size = 64
  return config
