#!/usr/bin/env bash
# One prepared command for a lent GPU machine (about 8 minutes): bf16 vs f32 train step,
# the PyTorch ratio and MFU on the GPU, PIT and features. Results land in
# benchmarks/results/<gpu-name>-<date>.json.
#   bash benchmarks/gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q -e ".[test]" "jax[cuda12]" 2>&1 | tail -2
python -m pip install -q torch 2>&1 | tail -1 || echo "torch unavailable: PyTorch ratio skipped"
python - <<'PY'
import jax; print(jax.devices())
PY
timeout 300 python -m benchmarks.bench_train_step --batch 32 --dtypes float32,bfloat16 --skip-compile
timeout 60 python -m benchmarks.bench_pit
timeout 60 python -m benchmarks.bench_features
if [ -n "${OUT:-}" ]; then cp benchmarks/results/*.json "$OUT"/; fi
