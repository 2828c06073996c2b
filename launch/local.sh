#!/usr/bin/env bash
# Train on this machine: one CPU, or one GPU (choose it with CUDA_VISIBLE_DEVICES=N).
# Use this for the SynthEmo demo, debugging, and single-GPU runs of the paper configs.
#
#   launch/local.sh configs/synthemo.py runs/synthemo
#   CUDA_VISIBLE_DEVICES=0 launch/local.sh configs/table1_sa2_reg1.py:gpu runs/sa2 --config.init.weights=~/weights/vgg_face
set -euo pipefail
config=${1:?usage: launch/local.sh CONFIG WORKDIR [--config.FIELD=VALUE ...]}
workdir=${2:?usage: launch/local.sh CONFIG WORKDIR [--config.FIELD=VALUE ...]}
shift 2
# On CPU, `videmo train` sets XLA's fastest measured flag itself unless XLA_FLAGS is set
# (docs/benchmarks.md).
exec videmo train --config="$config" --workdir="$workdir" "$@"
