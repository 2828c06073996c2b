"""Table 2 row 1: VGG16 + LSTM (Fan et al. 2016): an LSTM over spatially averaged conv5_3 features.

No spatial attention: each frame's 14x14 conv5_3 descriptors are averaged into one 512-d vector,
a 512-unit LSTM runs over these vectors in frame order, and the clip is classified from its state
after the last real frame. This is videmo's version of the baseline; the paper gives no detail
of the LSTM it reports.

Run (after `videmo prepare --dataset afew ...` and `videmo convert-weights --format vggface-pth ...`):

    videmo train --config=configs/table2_lstm.py:gpu --workdir=runs/table2_lstm \
        --config.init.weights=~/weights/vgg_face

The paper reports 46.2% AFEW validation accuracy for VGG16 + LSTM, citing Fan et al. [9]; videmo
has not measured it yet. AFEW is licensed: the user prepares it
(`videmo prepare --dataset afew --manual_dir ...`) and converts the VGG-Face weights
(`videmo convert-weights`). Compare a run's validation WAR with 46.2% knowing that the paper gives
no batch size, momentum or restart period: videmo/train/base_config.py chooses them.

On SynthEmo (the argument `synthemo`: this row with the narrow trunk on synthemo/tables,
videmo/train/synthemo_recipe.py), measured: validation WAR 83.3% ± 7.7
(mean ± std over seeds 0, 1, 2, 3, 4, 5, 6, 7, 8, 9: 85.2%, 81.7%, 84.3%, 80.5%, 88.8%, 76.7%, 90.0%, 65.7%, 90.5%, 89.3%; docs/synthemo_tables.md, against the paper's
AFEW number above). One seed, stage 1 included, about 4 minutes on 2 CPU cores:

    videmo train --config=configs/table2_lstm.py:synthemo --workdir=runs/table2_lstm_synthemo \
        --config.seed=0 --config.pretrain.seed=0
"""

from videmo.train import base_config


def get_config(hardware: str = "cpu"):
  config = base_config.get_config(hardware)
  config.model.spatial = "average"
  config.model.temporal = "lstm"
  config.penalty_coef = 0.0
  return config
