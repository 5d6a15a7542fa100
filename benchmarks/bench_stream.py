"""Streaming: latency of one exported causal step per block (default causal model: TCN
only, and the same with windowed causal attention over the last 4 s, 250 frames).

python -m benchmarks.bench_stream
"""

import tempfile

import jax
import numpy as np

from benchmarks import common
from configs import causal
from jaxdiar.core import features as features_lib
from jaxdiar.core import model as model_lib
from jaxdiar.models import export
from jaxdiar.models import runtime


def main():
  rows = []
  for window in (0, 250):        # no attention; windowed causal attention over 4 s
    config = causal.get_config()
    config.model.use_attention = window > 0
    config.model.attention_window = window
    model = model_lib.from_config(config.model)
    variables = model_lib.init_variables(model, jax.random.key(0),
                                         features_lib.feature_dim(config.features))
    path = tempfile.mkdtemp() + "/causal.jaxdiar"
    for frames in (4, 8, 16):   # the step is exported for one block size: export each
      config.inference.stream_block_frames = frames
      export.export(config, variables, path, platforms=("cpu",))
      m = runtime.load(path)
      state = m.stream_init(1)
      block = (0.1 * np.random.default_rng(0).standard_normal((1, 8, m.stream_block_samples))
               ).astype(np.float32)
      holder = {"state": state}

      def step():
        out, holder["state"] = m.stream_step(block, holder["state"])
        jax.block_until_ready(out)

      t = common.timeit(step, warmup=3, repeat=50)
      block_ms = 1e3 * m.stream_block_samples / m.sample_rate
      rows.append(dict(attention_window=window, block_ms=block_ms, step_ms=1e3 * t,
                       rtf=1e3 * t / block_ms, algorithmic_latency_ms=block_ms + 1e3 * (
                           m.meta["n_fft"] // 2) / m.sample_rate))
  print(common.table(rows))
  model = "configs/causal.py (random init); attention_window 250: with windowed causal attention"
  print(f"-> {common.record('stream', dict(model=model, rows=rows))}")


if __name__ == "__main__":
  main()
