# Sourced by the scripts that run on a lent GPU machine (benchmarks/gpu.sh,
# launch/gpu_online.sh), from the repository root: installs the carried wheels of .whl/ (the
# image cannot fetch; see benchmarks/gpu_wheels.sh) and puts them and the repository on
# PYTHONPATH. Sets PY (the interpreter) and prints the GPU.
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" >/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/jaxdiar-site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/jaxdiar-site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv 2>/dev/null || true
