#!/usr/bin/env bash
# One prepared command for a lent GPU machine (about 8 minutes): bf16 vs f32 train step, the
# PyTorch ratio (on the GPU) and MFU against the measured bf16 / f32 matmul peaks, PIT and
# features. Results land in benchmarks/results/<gpu-name>-<date>.json and, on the device
# tool, in $OUT.
#
# The GPU image has jax (CUDA), flax, optax, torch and scipy but cannot fetch packages:
# first run `bash benchmarks/gpu_wheels.sh` here, then on the device (carry=[".whl"]):
#   bash benchmarks/gpu.sh
# Extra arguments go to bench_train_step (a CPU dry run: bash benchmarks/gpu.sh --batch 2
# --seconds 2 --rounds 1).
set -uo pipefail
cd "$(dirname "$0")/.."
source launch/device_env.sh
$PY - <<'PY' || exit 1
import importlib, jax
print("devices:", jax.devices(), "jax", jax.__version__)
missing = [m for m in ("ml_collections", "flax", "optax", "scipy", "librosa", "torch")
           if importlib.util.find_spec(m) is None]
print("missing:", missing or "none")
if "ml_collections" in missing or "flax" in missing or "optax" in missing:
  raise SystemExit("run benchmarks/gpu_wheels.sh here and carry .whl")
PY
status=0
timeout 330 $PY -m benchmarks.bench_train_step --batch 32 --dtypes float32,bfloat16 \
  --skip-compile --rounds 3 "$@" || status=1
timeout 60 $PY -m benchmarks.bench_pit || status=1
if $PY -c "import librosa" 2>/dev/null; then
  timeout 90 $PY -m benchmarks.bench_features || status=1
else
  echo "librosa missing: features benchmark skipped"
fi
if [ -n "${OUT:-}" ]; then cp benchmarks/results/*.json "$OUT"/ 2>/dev/null; fi
exit $status
