"""Table 1 row 2: VGG16 + TP + SHIFT: attention clusters with shifting (Long et al. 2018), 2 units, no penalty.

Run (after `videmo prepare --dataset afew ...` and `videmo convert-weights --format vggface-pth ...`):

    videmo train --config=configs/table1_shift.py:gpu --workdir=runs/table1_shift \
        --config.init.weights=~/weights/vgg_face

Expected: AFEW validation accuracy (WAR) about 45.0%, as the paper reports.
"""

from videmo.train import base_config


def get_config(hardware: str = "cpu"):
  config = base_config.get_config(hardware)
  config.model.spatial = "shift"
  config.model.num_heads = 2
  config.penalty_coef = 0.0
  return config
