#!/usr/bin/env bash
# Every GPU figure of docs/benchmarks.md (its section "GPU"), measured in one go on one GPU:
#
#   benchmarks/gpu_run.sh OUT [BUDGET_S] [PYTHON]
#
# Runs, in this order, each part under its own time limit so that the whole ends within
# BUDGET_S seconds (default 560) and every part that finished is kept:
#   1. `videmo bench --config configs/table1_sa2_reg1.py:gpu --size 224` (bfloat16, full VGG16,
#      batch 16 x 16 frames), interleaved with PyTorch (bf16 autocast, channels_last, eager), with
#      the breakdown and a profile of 3 steps; MFU against the measured bf16 matmul rate;
#   2. the same with --remat (no PyTorch);
#   3. a short real training run at full size: SynthEmo (`synthemo`, 256x256 faces, built here
#      in the background from the start) with 224 crops, the paper's optimiser, 200 steps;
#   4. the input pipeline alone on that dataset, beside the step's rate (8, then 14 workers);
#   5. PyTorch with torch.compile, interleaved with JAX;
#   6. batch 64 (XLA autotunes the new shape's convolutions: about a minute or more);
#   7. XLA's autotuning off (--xla_gpu_autotune_level=0), then the largest batch that fits
#      (--find-max-batch), with what time is left.
# The compiled programs are shared through a persistent XLA cache, so a later part that runs
# an earlier part's step compiles nothing. OUT gets two files: log.txt (each part's exit status
# and seconds) and results.tar.gz (parts/: each part's output PART.txt and figures PART.json,
# the environment, the training run's folder and the profile's trace), rewritten after each part.
set -u
out=${1:?usage: benchmarks/gpu_run.sh OUT [BUDGET_S] [PYTHON]}
budget=${2:-560}
python=${3:-python3}
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${VIDEMO_GPU_WORK:-/tmp/videmo-gpu}
mkdir -p "$out" "$work/parts"
parts="$work/parts"
log="$out/log.txt"
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export JAX_COMPILATION_CACHE_DIR="$work/jax-cache"
export TFDS_DATA_DIR="$work/tfds"
videmo=("$python" -m videmo.main)
config=${VIDEMO_GPU_CONFIG:-configs/table1_sa2_reg1.py:gpu}
dataset=${VIDEMO_GPU_DATASET:-synthemo}
# Extra arguments for every bench (after --size 224) and every train, e.g. tiny sizes to try
# the script on a CPU first: VIDEMO_GPU_CONFIG=configs/table1_sa2_reg1.py:cpu
# VIDEMO_GPU_DATASET=synthemo/tiny VIDEMO_BENCH_EXTRA="--size 32 --frames 4 --batch-size 2 ..."
read -r -a bench_extra <<<"${VIDEMO_BENCH_EXTRA:-}"
read -r -a train_extra <<<"${VIDEMO_TRAIN_EXTRA:-}"
size=(--size 224 "${bench_extra[@]}")
synthemo=("--config.dataset=$dataset" "--config.data_dir=$work/tfds")

note() { echo "[$(date -u +%H:%M:%S) +${SECONDS}s] $*" | tee -a "$log"; }

pack() {  # everything so far but checkpoints into one archive (a killed run leaves the last one)
  local archive="$out/results.tar.gz.partial"
  tar -czf "$archive" --exclude=checkpoints -C "$work" parts 2>/dev/null
  if (($(stat -c %s "$archive") > 15000000)); then  # too large to fetch: leave out the trace
    tar -czf "$archive" --exclude=checkpoints --exclude='*.xplane.pb' -C "$work" parts 2>/dev/null
  fi
  mv "$archive" "$out/results.tar.gz"
}

# part NAME LIMIT_S COMMAND...: run under min(LIMIT_S, what is left of the budget); skip if < 20 s.
part() {
  local name=$1 limit=$2 left
  shift 2
  left=$((budget - SECONDS - 5))
  ((limit > left)) && limit=$left
  if ((limit < 20)); then
    note "$name: skipped ($left s of the budget left)"
    return 1
  fi
  local start=$SECONDS
  note "$name: start (limit ${limit} s)"
  (cd "$repo" && timeout -k 5 "$limit" "$@") >"$parts/$name.txt" 2>&1
  local rc=$?
  note "$name: exit $rc after $((SECONDS - start)) s"
  pack
  return $rc
}

cd "$repo" || exit 1
note "start: budget ${budget} s, python $python"
{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv || true
  nproc
  "$python" - <<'EOF'
import importlib.metadata as m, platform
print("python", platform.python_version())
for p in ("jax", "jaxlib", "jax-cuda13-plugin", "jax-cuda12-plugin", "flax", "optax", "orbax-checkpoint",
          "chex", "ml-collections", "grain", "tensorflow-datasets", "torch", "numpy"):
  try:
    print(p, m.version(p))
  except m.PackageNotFoundError:
    pass
import jax
print(jax.devices())
EOF
} >"$parts/environment.txt" 2>&1
note "environment: $(tr '\n' ' ' <"$parts/environment.txt" | cut -c1-300)"

# The dataset of parts 3-4, built while the GPU parts run (most of the host's cores).
workers=$(($(nproc) > 6 ? $(nproc) - 4 : 2))
(cd "$repo" && "${videmo[@]}" prepare --dataset "$dataset" --data_dir "$work/tfds" --workers "$workers") \
  >"$parts/prepare.txt" 2>&1 &
prepare_pid=$!
prepare_start=$SECONDS

part bench_main 200 "${videmo[@]}" bench --config "$config" "${size[@]}" --repeats 20 --breakdown --no-pipeline \
  --profile "$work/parts/profile" --json "$parts/bench_main.json"
part bench_remat 90 "${videmo[@]}" bench --config "$config" "${size[@]}" --repeats 10 --remat --no-torch --no-pipeline \
  --json "$parts/bench_remat.json"

# Wait for the dataset (its time counts against the budget), then train on it.
left=$((budget - SECONDS - 120))
while kill -0 "$prepare_pid" 2>/dev/null && ((left > 0)); do
  sleep 2
  left=$((budget - SECONDS - 120))
done
if kill -0 "$prepare_pid" 2>/dev/null; then
  note "prepare: still running after $((SECONDS - prepare_start)) s; the parts on the dataset are skipped"
  kill "$prepare_pid"
else
  wait "$prepare_pid"
  note "prepare: exit $? after about $((SECONDS - prepare_start)) s"
  part train 150 "${videmo[@]}" train --config="$config" --workdir="$work/parts/train" "${synthemo[@]}" \
    --config.init.pretrained_required=False --config.num_train_steps=200 --config.eval_every_epochs=0 \
    --config.input.eval_num_frames=16 --config.checkpoint_every_steps=300 --config.progress_bar=False \
    "${train_extra[@]}"
  part pipeline 60 "${videmo[@]}" bench --config "$config" "${size[@]}" "${synthemo[@]}" --repeats 5 --no-torch \
    --peak-tflops none --pipeline-batches 40 --json "$parts/pipeline.json"
  part pipeline_14 50 "${videmo[@]}" bench --config "$config" "${size[@]}" "${synthemo[@]}" --repeats 3 --no-torch \
    --peak-tflops none --pipeline-batches 40 --config.input.workers=14 --json "$parts/pipeline_14.json"
fi

part bench_torch_compile 100 "${videmo[@]}" bench --config "$config" "${size[@]}" --repeats 20 --torch-compile \
  --no-pipeline --peak-tflops none --json "$parts/bench_torch_compile.json"
part bench_batch64 150 "${videmo[@]}" bench --config "$config" "${size[@]}" --batch-size 64 --repeats 10 --no-torch \
  --no-pipeline --peak-tflops none --json "$parts/bench_batch64.json"
part bench_autotune0 70 "${videmo[@]}" bench --config "$config" "${size[@]}" --repeats 10 --no-torch --no-pipeline \
  --peak-tflops none --xla-flags=--xla_gpu_autotune_level=0 --json "$parts/bench_autotune0.json"
part max_batch 400 "${videmo[@]}" bench --config "$config" "${size[@]}" --repeats 2 --no-torch --no-pipeline \
  --peak-tflops none --find-max-batch --max-batch 512 --json "$parts/max_batch.json"
note "done"
pack
