#!/usr/bin/env bash
# Train on a Cloud TPU pod slice (several hosts): the same command runs on every worker,
# `jax.distributed.initialize()` joins them (VIDEMO_DISTRIBUTED=1), each host feeds its share
# of the global batch, and process 0 writes metrics. The work directory and the data must be
# reachable from every host under the same path (e.g. a gs:// bucket or a shared disk).
# Use this for pod-scale sweeps over the paper's configs.
#
#   launch/tpu_pod.sh my-tpu us-central2-b configs/table1_sa2_reg1.py:tpu gs://bucket/runs/sa2 \
#       --config.data_dir=gs://bucket/tfds --config.init.weights=gs://bucket/weights/vgg_face
set -euo pipefail
tpu=${1:?usage: launch/tpu_pod.sh TPU_NAME ZONE CONFIG WORKDIR [--config.FIELD=VALUE ...]}
zone=${2:?usage: launch/tpu_pod.sh TPU_NAME ZONE CONFIG WORKDIR [...]}
config=${3:?usage: launch/tpu_pod.sh TPU_NAME ZONE CONFIG WORKDIR [...]}
workdir=${4:?usage: launch/tpu_pod.sh TPU_NAME ZONE CONFIG WORKDIR [...]}
shift 4
# Copy this checkout to every worker (run from the repository root), then install and train.
gcloud compute tpus tpu-vm scp --recurse --zone="$zone" --worker=all . "$tpu":videmo
gcloud compute tpus tpu-vm ssh "$tpu" --zone="$zone" --worker=all --command="
  set -e
  cd videmo && pip install -q -e . 'jax[tpu]'
  VIDEMO_DISTRIBUTED=1 videmo train --config=$config --workdir=$workdir $*
"
