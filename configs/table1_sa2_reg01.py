"""Table 1 row 4: VGG16 + TP + SA: 2 attention heads, penalty 0.1.

Run (after `videmo prepare --dataset afew ...` and `videmo convert-weights --format vggface-pth ...`):

    videmo train --config=configs/table1_sa2_reg01.py:gpu --workdir=runs/table1_sa2_reg01 \
        --config.init.weights=~/weights/vgg_face

Expected: AFEW validation accuracy (WAR) about 48.9%, as the paper reports.
"""

from videmo.train import base_config


def get_config(hardware: str = "cpu"):
  config = base_config.get_config(hardware)
  config.model.num_heads = 2
  config.penalty_coef = 0.1
  return config
