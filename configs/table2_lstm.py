"""Table 2 row 1: VGG16 + LSTM (Fan et al. 2016): an LSTM over the frame features, no spatial attention.

Run (after `videmo prepare --dataset afew ...` and `videmo convert-weights --format vggface-pth ...`):

    videmo train --config=configs/table2_lstm.py:gpu --workdir=runs/table2_lstm \
        --config.init.weights=~/weights/vgg_face

Expected: AFEW validation accuracy (WAR) about 46.2%, as the paper reports.
"""

from videmo.train import base_config


def get_config(hardware: str = "cpu"):
  config = base_config.get_config(hardware)
  config.model.spatial = "average"
  config.model.temporal = "lstm"
  config.penalty_coef = 0.0
  return config
