"""Features: jitted features.extract vs the numpy/librosa reference, in hours of 8-channel
audio per second.

python -m benchmarks.bench_features
"""

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common
from configs import default
from jaxdiar import features
from tests.test_features import reference_features


def main():
  cfg = default.get_config().features
  rows = []
  for kind in ("compact", "full", "lps"):
    cfg.kind = kind
    b, seconds = 8, 8.0
    audio = (0.1 * np.random.default_rng(0).standard_normal((b, 8, int(seconds * 16000)))
             ).astype(np.float32)
    fn = jax.jit(lambda a: features.extract(a, cfg))
    dev = jnp.asarray(audio)
    t_jax = common.timeit(lambda: fn(dev).block_until_ready(), repeat=10)
    t_ref = common.timeit(lambda: [reference_features(x, cfg) for x in audio], warmup=0,
                          repeat=2)
    hours = b * seconds / 3600
    rows.append(dict(kind=kind, jax_ms=1e3 * t_jax, reference_ms=1e3 * t_ref,
                     jax_hours_per_s=hours / t_jax, reference_hours_per_s=hours / t_ref,
                     speedup=t_ref / t_jax))
  print(common.table(rows))
  print(f"-> {common.record('features', dict(batch=8, seconds=8.0, channels=8, rows=rows))}")


if __name__ == "__main__":
  main()
