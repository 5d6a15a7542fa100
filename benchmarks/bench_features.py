"""Features: jitted features.extract vs the numpy/librosa reference, in hours of 8-channel
audio per second, with what bounds the ratio on this device: the FFT of the framed signal
alone (bound_speedup = reference time / that FFT time: no STFT-based implementation with
this FFT can beat it).

python -m benchmarks.bench_features
"""

import argparse
import functools

import jax
import librosa
import jax.numpy as jnp
import numpy as np

from benchmarks import common
from configs import default
from jaxdiar.core import features
from tests.test_features import reference_features


def main(argv=None):
  p = argparse.ArgumentParser()
  p.add_argument("--rounds", type=int, default=3,
                 help="interleaved rounds (JAX and reference timed in each); the speedup is "
                      "the median of the per-round ratios")
  args = p.parse_args(argv)
  b, seconds = 8, 8.0
  audio = (0.1 * np.random.default_rng(0).standard_normal((b, 8, int(seconds * 16000)))
           ).astype(np.float32)
  dev = jnp.asarray(audio)
  kinds = ("compact", "full", "lps")
  cfgs, fns = {}, {}
  for kind in kinds:
    cfgs[kind] = default.get_config().features
    cfgs[kind].kind = kind
    fns[kind] = jax.jit(functools.partial(features.extract, cfg=cfgs[kind]))
    fns[kind](dev).block_until_ready()
    reference_features(audio[0], cfgs[kind])   # librosa's first call loads and compiles
  t_jax = {k: [] for k in kinds}
  t_ref = {k: [] for k in kinds}
  for _ in range(args.rounds):
    for kind in kinds:
      t_jax[kind].append(common.timeit(lambda: fns[kind](dev).block_until_ready(), warmup=0,
                                       repeat=5))
      t_ref[kind].append(common.timeit(lambda: [reference_features(x, cfgs[kind]) for x in audio],
                                       warmup=0, repeat=1))
  rows = []
  hours = b * seconds / 3600
  for kind in kinds:
    tj, tr = float(np.median(t_jax[kind])), float(np.median(t_ref[kind]))
    rows.append(dict(kind=kind, frames=features.num_frames(audio.shape[-1], cfgs[kind].hop),
                     jax_ms=1e3 * tj, reference_ms=1e3 * tr,
                     jax_hours_per_s=hours / tj, reference_hours_per_s=hours / tr,
                     speedup=float(np.median([r / j for j, r in zip(t_jax[kind], t_ref[kind])]))))
  cfg = cfgs["lps"]
  # What bounds the ratio: the FFT of the already-framed, windowed signal (the work every
  # STFT must do, here with XLA's FFT), and the reference's own STFTs (librosa, float64).
  frames = jnp.asarray(np.random.default_rng(1).random((b, 8, rows[0]["frames"], cfg.n_fft)),
                       jnp.float32)
  rfft = jax.jit(lambda f: jnp.fft.rfft(f, axis=-1))
  t_fft = common.timeit(lambda: rfft(frames).block_until_ready(), repeat=10)
  t_ref_stft = common.timeit(lambda: [librosa.stft(ch.astype(np.float64), n_fft=cfg.n_fft,
                                                   hop_length=cfg.hop, center=True,
                                                   pad_mode="constant")
                                      for x in audio for ch in x], warmup=0, repeat=2)
  for r in rows:
    r["bound_speedup"] = r["reference_ms"] / (1e3 * t_fft)
  print(common.table(rows))
  print(f"XLA rfft of the frames alone: {1e3 * t_fft:.1f} ms; the reference's librosa STFTs "
        f"alone: {1e3 * t_ref_stft:.1f} ms")
  result = dict(batch=b, seconds=seconds, channels=8, rounds=args.rounds, rows=rows,
                fft_floor_ms=1e3 * t_fft, reference_stft_ms=1e3 * t_ref_stft)
  print(f"-> {common.record('features', result)}")


if __name__ == "__main__":
  main()
