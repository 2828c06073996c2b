"""Table 2 row 2: VGG16 + AVG: frame scores averaged before the softmax, no spatial attention.

Run (after `videmo prepare --dataset afew ...` and `videmo convert-weights --format vggface-pth ...`):

    videmo train --config=configs/table2_avg.py:gpu --workdir=runs/table2_avg \
        --config.init.weights=~/weights/vgg_face

Expected: AFEW validation accuracy (WAR) about 46.0%, as the paper reports.
"""

from videmo.train import base_config


def get_config(hardware: str = "cpu"):
  config = base_config.get_config(hardware)
  config.model.spatial = "average"
  config.model.temporal = "average"
  config.penalty_coef = 0.0
  return config
