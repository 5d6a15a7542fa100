"""Features: jitted features.extract vs the numpy/librosa reference, in hours of 8-channel
audio per second, with what bounds the ratio on this device: the FFT of the framed signal
alone (bound_speedup = reference time / that FFT time: no STFT-based implementation with
this FFT can beat it).

python -m benchmarks.bench_features
"""

import jax
import librosa
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
    rows.append(dict(kind=kind, frames=features.num_frames(audio.shape[-1], cfg.hop),
                     jax_ms=1e3 * t_jax, reference_ms=1e3 * t_ref,
                     jax_hours_per_s=hours / t_jax, reference_hours_per_s=hours / t_ref,
                     speedup=t_ref / t_jax))
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
  print(f"-> {common.record('features', dict(batch=8, seconds=8.0, channels=8, rows=rows, fft_floor_ms=1e3 * t_fft, reference_stft_ms=1e3 * t_ref_stft))}")


if __name__ == "__main__":
  main()
