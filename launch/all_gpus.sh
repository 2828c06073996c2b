#!/usr/bin/env bash
# Train on all GPUs of one host: the step is data parallel over every visible device (the
# global batch, config.batch_size, is split evenly, so make it a multiple of the GPU count).
# Use this for full paper runs on a multi-GPU workstation or cloud VM.
#
#   launch/all_gpus.sh configs/table1_sa2_reg1.py:gpu runs/sa2 --config.init.weights=~/weights/vgg_face
set -euo pipefail
config=${1:?usage: launch/all_gpus.sh CONFIG WORKDIR [--config.FIELD=VALUE ...]}
workdir=${2:?usage: launch/all_gpus.sh CONFIG WORKDIR [--config.FIELD=VALUE ...]}
shift 2
# Let XLA overlap the gradient all-reduce with the backward pass; keep memory pre-allocation
# (JAX's default) so the loader's processes stay off the GPUs.
export XLA_FLAGS="${XLA_FLAGS:-} --xla_gpu_enable_latency_hiding_scheduler=true"
nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader || true
exec videmo train --config="$config" --workdir="$workdir" "$@"
