"""Table 1 row 3: VGG16 + TP + SA: 1 attention head, no diversity penalty.

Run (after `videmo prepare --dataset afew ...` and `videmo convert-weights --format vggface-pth ...`):

    videmo train --config=configs/table1_sa1_reg0.py:gpu --workdir=runs/table1_sa1_reg0 \
        --config.init.weights=~/weights/vgg_face

Expected: AFEW validation accuracy (WAR) about 47.6%, as the paper reports.
"""

from videmo.train import base_config


def get_config(hardware: str = "cpu"):
  config = base_config.get_config(hardware)
  config.model.num_heads = 1
  config.penalty_coef = 0.0
  return config
