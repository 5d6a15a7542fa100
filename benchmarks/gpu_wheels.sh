#!/usr/bin/env bash
# Run HERE (a machine with pip access), before a GPU run: downloads into .whl/ the pure-Python
# and manylinux wheels that the GPU machine's image lacks (it has jax, flax, optax, torch,
# scipy, but no ml_collections, librosa or pyroomacoustics, and it cannot fetch anything). Versions are the
# ones installed here. The GPU run carries .whl (run's carry=[".whl"]); gpu.sh installs it.
#   bash benchmarks/gpu_wheels.sh
set -euo pipefail
cd "$(dirname "$0")/.."
pkgs=(ml_collections librosa soundfile soxr audioread pooch decorator platformdirs cffi pycparser
      pyroomacoustics)
specs=()
for p in "${pkgs[@]}"; do
  v=$(python -m pip show "$p" 2>/dev/null | sed -n 's/^Version: //p')
  specs+=("$p${v:+==$v}")
done
rm -rf .whl
python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl "${specs[@]}"
ls .whl
