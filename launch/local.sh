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
# On CPU, XLA's own convolutions train faster than the default YNNPACK path (same loss to 1e-7;
# docs/benchmarks.md: 8% on configs/synthemo.py, 31% at full width). The flag is CPU-only.
export XLA_FLAGS="${XLA_FLAGS:-} --xla_cpu_experimental_ynn_fusion_type=-individual_convolution"
exec videmo train --config="$config" --workdir="$workdir" "$@"
