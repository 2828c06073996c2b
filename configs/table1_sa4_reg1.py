"""Table 1 row 7: VGG16 + TP + SA: 4 attention heads, penalty 1.

Run (after `videmo prepare --dataset afew ...` and `videmo convert-weights --format vggface-pth ...`):

    videmo train --config=configs/table1_sa4_reg1.py:gpu --workdir=runs/table1_sa4_reg1 \
        --config.init.weights=~/weights/vgg_face

Expected: AFEW validation accuracy (WAR) about 48.6%, as the paper reports.
"""

from videmo.train import base_config


def get_config(hardware: str = "cpu"):
  config = base_config.get_config(hardware)
  config.model.num_heads = 4
  config.penalty_coef = 1.0
  return config
