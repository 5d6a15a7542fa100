"""PIT: vectorised pit_bce vs a loop over permutations vs scipy's Hungarian on host.

python -m benchmarks.bench_pit    (B x T = 8 x 500 frames, S = 2, 4, 6, 8)
"""

import itertools
import tracemalloc

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

from benchmarks import common
from jaxdiar.core import losses


def loop_pit(logits, targets):
  """The seed's PIT: BCE of every permutation in a Python loop (numpy, per example).

  (Unrolling this loop under jit does not finish compiling at S = 8: 40,320 copies.)"""
  x, y = np.asarray(logits, np.float64), np.asarray(targets, np.float64)
  softplus = np.logaddexp(0, x)
  best = np.full(len(x), np.inf)
  for p in itertools.permutations(range(x.shape[-1])):
    best = np.minimum(best, np.mean(softplus - x * y[:, :, list(p)], axis=(1, 2)))
  return best


def hungarian_pit(logits, targets):
  """Cost matrix in numpy, then scipy.optimize.linear_sum_assignment per example, on host."""
  x, y = np.asarray(logits, np.float64), np.asarray(targets, np.float64)
  sp = np.logaddexp(0, x).mean(axis=1)
  cost = sp[:, :, None] - np.einsum("bti,btj->bij", x, y) / x.shape[1]
  out = np.empty(len(cost))
  for b, c in enumerate(cost):
    rows, cols = scipy.optimize.linear_sum_assignment(c)
    out[b] = c[rows, cols].mean()
  return out


def main():
  b, t = 8, 500
  rows = []
  for s in (2, 4, 6, 8):
    rng = np.random.default_rng(s)
    logits = jnp.asarray(rng.standard_normal((b, t, s)), jnp.float32)
    targets = jnp.asarray(rng.random((b, t, s)) < 0.3, jnp.float32)
    vec = jax.jit(lambda x, y: losses.pit_bce(x, y)[0])
    t_vec = common.timeit(lambda: vec(logits, targets).block_until_ready(), repeat=20)
    t_loop = common.timeit(lambda: loop_pit(logits, targets), warmup=0, repeat=3 if s < 8 else 1)
    t_hung = common.timeit(lambda: hungarian_pit(logits, targets), repeat=5)
    with jax.default_matmul_precision("highest"):   # a GPU's TF32 einsum misses 1e-5
      exact = np.asarray(losses.pit_bce(logits, targets)[0])
    np.testing.assert_allclose(exact, loop_pit(logits, targets), rtol=1e-5)
    np.testing.assert_allclose(exact, hungarian_pit(logits, targets), rtol=1e-4)
    peaks = {}
    for name, fn in (("loop", loop_pit), ("hungarian", hungarian_pit)):
      tracemalloc.start()
      fn(logits, targets)
      peaks[name] = tracemalloc.get_traced_memory()[1] / 2**20
      tracemalloc.stop()
    vec_mem = vec.lower(logits, targets).compile().memory_analysis()
    rows.append(dict(S=s, vectorised_ms=1e3 * t_vec, loop_ms=1e3 * t_loop,
                     hungarian_ms=1e3 * t_hung, speedup_vs_loop=t_loop / t_vec,
                     speedup_vs_hungarian=t_hung / t_vec,
                     vectorised_temp_mib=vec_mem.temp_size_in_bytes / 2**20,
                     loop_host_peak_mib=peaks["loop"], hungarian_host_peak_mib=peaks["hungarian"]))
  print(common.table(rows))
  path = common.record("pit", dict(batch=b, frames=t, rows=rows))
  print(f"-> {path}")


if __name__ == "__main__":
  main()
