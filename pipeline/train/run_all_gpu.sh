#!/usr/bin/env bash
# Train every enhancement model at once on one GPU box, with the PyTorch backend.
#
# The models are small, so one process per model shares the GPU well: SRCNN
# x2/x3/x4, the fast model x2/x3/x4 and the deblurring generator train in
# parallel, each for BUDGET seconds.  Results (weights, metrics JSON, logs,
# checkpoints) are re-packed into $OUT/results.tar.gz every minute, so a run
# cut short still returns its latest checkpoints.
#
#   KERAS_BACKEND=torch BUDGET=330 DATA=.traindata OUT=/tmp/out bash pipeline/train/run_all_gpu.sh
set -u
OUT=${OUT:-/tmp/train_out}
BUDGET=${BUDGET:-330}
DATA=${DATA:-.traindata}
RES=${RES:-/tmp/train_results}
mkdir -p "$OUT" "$RES/logs"
export KERAS_BACKEND=${KERAS_BACKEND:-torch} PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
(nvidia-smi --query-gpu=name,memory.total --format=csv 2>&1 || echo "no nvidia-smi") | tee "$RES/logs/device.txt"
python3 -c "import keras, numpy; print('keras', keras.__version__, 'backend', keras.backend.backend(), 'numpy', numpy.__version__)" | tee -a "$RES/logs/device.txt"
LIMIT=$((BUDGET + 180))
common=(--seconds "$BUDGET" --data "$DATA" --out "$RES" --work "$RES/work" --checkpoint-every 45)
for s in 3 2 4; do
  timeout "$LIMIT" python3 -m pipeline.train srcnn --scale "$s" --batch 128 --threads 2 "${common[@]}" >"$RES/logs/srcnn_x$s.log" 2>&1 &
done
for s in 4 3 2; do
  timeout "$LIMIT" python3 -m pipeline.train fsrcnn --scale "$s" --batch 128 --threads 2 "${common[@]}" >"$RES/logs/fsrcnn_x$s.log" 2>&1 &
done
timeout "$LIMIT" python3 -m pipeline.train deblur --batch 32 --threads 6 "${common[@]}" >"$RES/logs/deblur.log" 2>&1 &

pack() { tar czf "$OUT/results.tar.gz.tmp" -C "$RES" . && mv "$OUT/results.tar.gz.tmp" "$OUT/results.tar.gz"; }
start=$(date +%s)
while [ -n "$(jobs -rp)" ]; do
  sleep 30
  echo "--- $(( $(date +%s) - start )) s"
  for f in "$RES"/logs/*.log; do echo "$(basename "$f"): $(tail -n 1 "$f" | cut -c1-150)"; done
  pack
done
wait
pack
echo "--- done after $(( $(date +%s) - start )) s"
grep -h -E "dB|held-out|Error|error" "$RES"/logs/*.log
ls -la "$RES"
