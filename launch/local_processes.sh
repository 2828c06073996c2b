#!/usr/bin/env bash
# Train with N processes on this machine, each with its share of the CPU's cores as JAX devices,
# joined by jax.distributed (gloo collectives on CPU). For testing multi-process code on one
# machine, and for CPU servers with many cores.
#
#   launch/local_processes.sh 2 configs/synthemo.py runs/synthemo_2p
#   DEVICES_PER_PROCESS=4 launch/local_processes.sh 2 configs/synthemo.py runs/x --config.batch_size=16
#
# DEVICES_PER_PROCESS (default 1) CPU devices per process; PORT (default 12355) the coordinator's
# port on localhost. Process 0 prints the log, the progress and the result; the others write
# WORKDIR/process_<i>.log. If one process dies, the others stop within VIDEMO_HEARTBEAT_TIMEOUT
# seconds (default 60), and this script exits with the first failure's status.
set -euo pipefail
usage="usage: launch/local_processes.sh N CONFIG WORKDIR [--config.FIELD=VALUE ...]"
num=${1:?$usage}
config=${2:?$usage}
workdir=${3:?$usage}
shift 3
devices=${DEVICES_PER_PROCESS:-1}
mkdir -p "$workdir"
export VIDEMO_COORDINATOR_ADDRESS="localhost:${PORT:-12355}" VIDEMO_NUM_PROCESSES="$num"
export XLA_FLAGS="${XLA_FLAGS:---xla_cpu_experimental_ynn_fusion_type=-individual_convolution} --xla_force_host_platform_device_count=$devices"
export JAX_PLATFORMS=cpu
# Each process's OpenMP (oneDNN's convolutions) gets its share of the cores.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(( $(nproc) / num > 0 ? $(nproc) / num : 1 ))}
pids=()
declare -A index_of
for ((i = num - 1; i >= 0; i--)); do
  if [ "$i" -eq 0 ]; then
    VIDEMO_PROCESS_ID=0 videmo train --config="$config" --workdir="$workdir" "$@" &
  else
    VIDEMO_PROCESS_ID=$i videmo train --config="$config" --workdir="$workdir" "$@" \
        > "$workdir/process_$i.log" 2>&1 &
  fi
  pids+=($!)
  index_of[$!]=$i
done
# Report the processes in the order they end; the first failure is the cause, the others'
# failures (lost heartbeats, aborted collectives) follow from it.
status=0
for ((k = 0; k < num; k++)); do
  code=0
  wait -n -p ended "${pids[@]}" || code=$?
  remaining=()
  for pid in "${pids[@]}"; do [ "$pid" != "$ended" ] && remaining+=("$pid"); done
  pids=("${remaining[@]}")
  if [ "$code" -ne 0 ]; then
    why=$([ "$code" -gt 128 ] && echo " (signal $((code - 128)))" || true)
    if [ "$status" -eq 0 ]; then
      echo "local_processes.sh: process ${index_of[$ended]} exited with status $code$why;" \
           "the others stop within VIDEMO_HEARTBEAT_TIMEOUT=${VIDEMO_HEARTBEAT_TIMEOUT:-60} s" >&2
      status=$code
    else
      echo "local_processes.sh: process ${index_of[$ended]} exited with status $code$why after it" >&2
    fi
  fi
done
exit "$status"
