#!/usr/bin/env bash
# One device run for the deblurring generator: PyTorch twin, pairs made on the GPU.
#
# Trains for BUDGET seconds from the shipped weights (continued training), then
# evaluates on the benchmark's held-out pairs and times the generator on the GPU.
# Everything lands directly in $OUT (the .keras.npz is rewritten atomically at
# every checkpoint, so a run cut short still returns usable weights):
#   deblurgan_v2_fpn_mobilenet.keras.npz  weights in Keras layout + a reference pair
#   deblurgan_v2_fpn_mobilenet.gpu.json   settings, steps, losses, held-out scores, timings
#   deblur.log, device.txt
# Made on this side first:  python -m pipeline.train deblur-data --out .traindata/deblur \
#                               --init-from weights/deblurgan_v2_fpn_mobilenet.weights.h5
# Afterwards, here:          python -m pipeline.train deblur-import $OUT/deblurgan_v2_fpn_mobilenet.keras.npz \
#                               --gpu-json $OUT/deblurgan_v2_fpn_mobilenet.gpu.json
#
#   BUDGET=400 OUT=/tmp/out bash pipeline/train/run_deblur_gpu.sh
set -u -o pipefail
OUT=${OUT:-/tmp/deblur_out}
BUDGET=${BUDGET:-400}
DATA=${DATA:-.traindata/deblur}
BATCH=${BATCH:-64}
LR=${LR:-5e-4}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
PY=${PYTHON:-python3}
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || echo "no nvidia-smi"
  "$PY" -c "import torch, numpy, cv2; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'numpy', numpy.__version__, 'cv2', cv2.__version__)"
} 2>&1 | tee "$OUT/device.txt"
init=()
[ -f "$DATA/init.keras.npz" ] && init=(--init "$DATA/init.keras.npz")
timeout $((BUDGET + 120)) "$PY" -m pipeline.train deblur-gpu --seconds "$BUDGET" --batch "$BATCH" --lr "$LR" \
  --data "$DATA" "${init[@]}" --eval "$DATA/eval.npz" --out "$OUT" --work /tmp/deblur_work \
  --checkpoint-every 60 --log-every 15 2>&1 | tee "$OUT/deblur.log"
echo "exit $?"
ls -la "$OUT"
