"""Table 1 row 5 and Table 2 row 4 (the paper's model): VGG16 + TP + SA: 2 attention heads, penalty 1.

Run (after `videmo prepare --dataset afew ...` and `videmo convert-weights --format vggface-pth ...`):

    videmo train --config=configs/table1_sa2_reg1.py:gpu --workdir=runs/table1_sa2_reg1 \
        --config.init.weights=~/weights/vgg_face

The paper reports 49.0% AFEW validation accuracy for its model, TP + SA with 2 heads and penalty 1
(Tables 1 and 2); videmo has not measured it yet. AFEW is licensed: the user prepares it
(`videmo prepare --dataset afew --manual_dir ...`) and converts the VGG-Face weights
(`videmo convert-weights`). Compare a run's validation WAR with 49.0% knowing that the paper gives
no batch size, momentum or restart period: videmo/train/base_config.py chooses them.

On SynthEmo (the argument `synthemo`: this row with the narrow trunk on synthemo/tables,
videmo/train/synthemo_recipe.py), measured: validation WAR 90.6% ± 2.7
(mean ± std over seeds 0, 1, 2, 3, 4, 5, 6, 7, 8, 9: 94.0%, 86.7%, 92.4%, 86.2%, 91.9%, 90.0%, 90.2%, 90.7%, 94.0%, 89.5%; docs/synthemo_tables.md, against the paper's
AFEW number above). One seed, stage 1 included, about 4 minutes on 2 CPU cores:

    videmo train --config=configs/table1_sa2_reg1.py:synthemo --workdir=runs/table1_sa2_reg1_synthemo \
        --config.seed=0 --config.pretrain.seed=0
"""

from videmo.train import base_config


def get_config(hardware: str = "cpu"):
  config = base_config.get_config(hardware)
  config.model.num_heads = 2
  config.penalty_coef = 1.0
  return config
