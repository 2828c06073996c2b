"""Table 1 row 1 and Table 2 row 3: VGG16 + TP: no spatial attention (the descriptors are averaged), temporal softmax pooling.

Run (after `videmo prepare --dataset afew ...` and `videmo convert-weights --format vggface-pth ...`):

    videmo train --config=configs/table1_tp.py:gpu --workdir=runs/table1_tp \
        --config.init.weights=~/weights/vgg_face

Expected: AFEW validation accuracy (WAR) about 46.4%, as the paper reports.
"""

from videmo.train import base_config


def get_config(hardware: str = "cpu"):
  config = base_config.get_config(hardware)
  config.model.spatial = "average"
  config.penalty_coef = 0.0
  return config
