#!/usr/bin/env bash
# One prepared command for a lent GPU machine: simulate meetings on its CPU cores while the
# GPU trains several recipes on them at once (jaxdiar.online), for a fixed wall-clock budget.
# Here first: `bash benchmarks/gpu_wheels.sh` and copy the training speech into .speech/
# (both ignored by git); then the device run with carry=[".whl", ".speech"]:
#   bash launch/gpu_online.sh SECONDS NAME=CONFIG[:OVERRIDES] ...
# e.g. bash launch/gpu_online.sh 420 compact=configs/array8.py full=configs/array8.py:--config.features.kind=full mono=configs/mono.py
# Each run's variables land in ${OUT:-runs}/NAME-variables-*.npz, its config.json,
# metrics.jsonl, summary.json and log in ${OUT:-runs}/runs.tgz (few, flat files: what the
# device tool can return). Put NAME-variables-*.npz as variables-*.npz beside the run's
# config.json and export it: python -m jaxdiar.export --variables DIR --out M.jaxdiar
# SIM_OVERRIDES (e.g. "--config.data.sim.pause_mean=0.8") change the simulator's settings;
# SHIFT_WRITERS=N adds N writers of the shift generator's randomised training meetings
# (`python -m jaxdiar.data.shift pool`, the 8-mic circle, seed SHIFT_SEED) to the same pool,
# taken from the simulator's share of the cores.
# The tree that travels to a lent machine is limited (64 MiB): with the bundled models (30 MB)
# and .speech (47 MB) it is over; move the models the run does not use out of the tree first.
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_BUDGET=$1; shift
OUTDIR=${OUT:-runs}
SPEECH=${SPEECH:-.speech/libri-train-clean-100}
SHIFT_WRITERS=${SHIFT_WRITERS:-0}
WORKERS=${WORKERS:-$(( $(nproc) - 2 * $# - SHIFT_WRITERS ))}
source launch/device_env.sh
$PY -c "import jax, flax, optax; print(jax.devices(), jax.__version__, flax.__version__, optax.__version__)" || exit 1
POOL=/tmp/jaxdiar-pool
rm -rf "$POOL" /tmp/jaxdiar-runs; mkdir -p "$POOL" /tmp/jaxdiar-runs "$OUTDIR"
first_config=${1#*=}; first_config=${first_config%%:*}
$PY -m jaxdiar.online simulate --config "$first_config" --speech "$SPEECH" --out "$POOL" \
  --workers "$WORKERS" --seconds $(( SECONDS_BUDGET + 30 )) ${SIM_OVERRIDES:-} \
  > /tmp/jaxdiar-runs/simulate.log 2>&1 &
SIM=$!
writers=()
for (( i = 0; i < SHIFT_WRITERS; i++ )); do
  $PY -m jaxdiar.data.shift pool --speech "$SPEECH" --out "$POOL" --arrays array8 \
    --seed "${SHIFT_SEED:-7000}" --start $i --step "$SHIFT_WRITERS" \
    --seconds $(( SECONDS_BUDGET + 30 )) > /tmp/jaxdiar-runs/shift-$i.log 2>&1 &
  writers+=($!)
done
# Each process takes its share of GPU memory (the pool ring lives there).
export XLA_PYTHON_CLIENT_MEM_FRACTION=$(python3 -c "print(round(0.9 / $#, 2))")
pids=()
for spec in "$@"; do
  name=${spec%%=*}; rest=${spec#*=}; config=${rest%%:*}
  overrides=""; [[ $rest == *:* ]] && overrides=${rest#*:}
  timeout $(( SECONDS_BUDGET + 120 )) $PY -m jaxdiar.online train --config "$config" \
    --pool "$POOL" --out /tmp/jaxdiar-runs/$name --speech "$SPEECH" --seconds "$SECONDS_BUDGET" \
    --capacity ${CAPACITY:-1024} $overrides > /tmp/jaxdiar-runs/$name.log 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
kill $SIM "${writers[@]}" 2>/dev/null; pkill -f "jaxdiar.online simulate" 2>/dev/null
echo "pool: $(ls $POOL | wc -l) meetings ($(ls $POOL | grep -c shift) of the shift generator)"
for spec in "$@"; do
  name=${spec%%=*}
  for f in /tmp/jaxdiar-runs/$name/variables-*.npz; do cp "$f" "$OUTDIR/$name-$(basename $f)"; done
  tail -n 3 /tmp/jaxdiar-runs/$name.log
done
tar -C /tmp/jaxdiar-runs -czf "$OUTDIR/runs.tgz" --exclude='variables-*' --exclude='state-*' .
ls -la "$OUTDIR"
exit $status
