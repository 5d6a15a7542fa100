#!/usr/bin/env bash
# One host, all its accelerators: JAX sees every local device; the batch is sharded over them.
#   bash launch/local_gpus.sh configs/default.py workdirs/run1 [--config.train.batch_size=64 ...]
set -euo pipefail
config=$1; workdir=$2; shift 2
exec python -m jaxdiar.train --config "$config" --workdir "$workdir" "$@"
