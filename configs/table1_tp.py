"""Table 1 row 1 and Table 2 row 3: VGG16 + TP: no spatial attention (the descriptors are averaged), temporal softmax pooling.

Run (after `videmo prepare --dataset afew ...` and `videmo convert-weights --format vggface-pth ...`):

    videmo train --config=configs/table1_tp.py:gpu --workdir=runs/table1_tp \
        --config.init.weights=~/weights/vgg_face

The paper reports 46.4% AFEW validation accuracy for VGG16 + TP without spatial attention (Table 1
row 1, Table 2 row 3); videmo has not measured it yet. AFEW is licensed: the user prepares it
(`videmo prepare --dataset afew --manual_dir ...`) and converts the VGG-Face weights
(`videmo convert-weights`). Compare a run's validation WAR with 46.4% knowing that the paper gives
no batch size, momentum or restart period: videmo/train/base_config.py chooses them.
"""

from videmo.train import base_config


def get_config(hardware: str = "cpu"):
  config = base_config.get_config(hardware)
  config.model.spatial = "average"
  config.penalty_coef = 0.0
  return config
