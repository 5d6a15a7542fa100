#!/usr/bin/env bash
# TPU VM pod: the same command on every worker; jax.distributed.initialize() is automatic.
#   bash launch/tpu_pod.sh my-tpu us-central2-b configs/default.py gs://bucket/workdirs/run1
set -euo pipefail
tpu=$1; zone=$2; config=$3; workdir=$4; shift 4
gcloud compute tpus tpu-vm ssh "$tpu" --zone "$zone" --worker=all --command \
  "cd jaxdiar && python -m jaxdiar.train --config $config --workdir $workdir $*"
