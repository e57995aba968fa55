#!/usr/bin/env bash
# One session on a lent GPU machine where TensorFlow is not installed (JAX
# and PyTorch are), from a copy of the working tree:
#
#   .whl/        keras, tensorflow-datasets, array_record and their small
#                dependencies, for the machine's Python (see docs/performance.md)
#   DATA_DIR     an array_record build of the demo at 128 px:
#                python -m pipeline.build --image_size 128 --file_format array_record --data_dir DATA_DIR
#
#   bash benchmarks/gpu_session.sh DATA_DIR OUT
#   ROWS="--models cells --sizes 128 --batches 32 --steps 2" bash benchmarks/gpu_session.sh ...   # a CPU try
#   KERAS_BACKEND=torch ROWS=none bash benchmarks/gpu_session.sh DATA_DIR OUT   # step 1 on PyTorch
#
# 1. `python -m trainer.fit` of the demo on the GPU (KERAS_BACKEND, jax unless set), its
#    input from the array_record shards through tfds.data_source;
# 2. the rate of that input (benchmarks/gpu.py --dataset);
# 3. the training-step row earlier sessions did not reach: `paper` at 512 px,
#    mixed bfloat16, the largest batch that fits.
# Everything lands in OUT: fit.log, fit_metrics.json, fit_config.json,
# performance_gpu_session.json, nvidia_smi.csv.
set -o pipefail
data_dir=${1:?DATA_DIR}
out=${2:?OUT}
mkdir -p "$out"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} KERAS_BACKEND=${KERAS_BACKEND:-jax} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$out/nvidia_smi.csv" 2>&1
python3 -c "import tensorflow" 2>/dev/null && echo "note: TensorFlow is installed here"

started=$(date +%s)
python3 -m trainer.fit --dataset a2i_speakers/demo_128 --data_dir "$data_dir" \
  --output /tmp/a2i_run_$KERAS_BACKEND 2>&1 | tee "$out/fit.log"
echo "fit: exit $? after $(( $(date +%s) - started )) s" | tee -a "$out/fit.log"
cp /tmp/a2i_run_$KERAS_BACKEND/metrics.json "$out/fit_metrics.json"
cp /tmp/a2i_run_$KERAS_BACKEND/config.json "$out/fit_config.json"
[ "$ROWS" = none ] && exit 0

rows=${ROWS:-"--models paper --sizes 512 --precisions mixed_bfloat16 --batches largest --max_batch 1024 --steps 20"}
python3 benchmarks/gpu.py --dataset a2i_speakers/demo_128 --data_dir "$data_dir" $rows \
  --out "$out/performance_gpu_session.json" 2>&1
