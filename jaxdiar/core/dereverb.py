"""Dereverberation by weighted prediction error (WPE; Nakatani et al. 2010, Yoshioka and
Nakatani 2012), the front end of the CHiME meeting baselines, through `nara_wpe` (Drude et al.
2018, MIT; https://github.com/fgnt/nara_wpe): each channel's late reverberation is predicted
from the delayed past of all the channels and subtracted, in the STFT domain.

jaxdiar uses it before the pretrained speech detector (`inference.speech_dereverb`): the
references mark where the dry speech is, a reverberant room stretches every turn by its tail,
and the detector hears the tail as speech.
"""

import numpy as np

N_FFT, HOP = 512, 128                # 32 / 8 ms at 16 kHz (nara_wpe's own example: 512 / 128)
TAPS, DELAY, ITERATIONS = 10, 3, 3   # nara_wpe's defaults


def channel_subset(channels: int, k: int, first: int = 0) -> list[int]:
  """`k` channels spread evenly over `channels` (all of them if fewer), `first` first."""
  k = min(k, channels)
  return [(first + int(round(i * channels / k))) % channels for i in range(k)]


def wpe_stft(y: np.ndarray, taps: int = TAPS, delay: int = DELAY, iterations: int = 3,
             bins_at_once: int = 32) -> np.ndarray:
  """WPE of one STFT, [F, C, T] complex -> [F, C, T] complex64: nara_wpe's `wpe_v7` (its
  oracle in the tests) in single precision, `bins_at_once` frequencies at a time (the stacked
  delayed frames of all of them at once cost F x taps x C x T: 170 MB at 4 channels, 33 s).
  The weights (the power of the current estimate, all channels averaged) are updated
  `iterations` times; the prediction filter is solved per frequency."""
  y = np.asarray(y, np.complex64)
  num_bins, channels, frames = y.shape
  power = np.mean(np.abs(y) ** 2, axis=1)                                # [F, T]
  eps = np.float32(1e-10) * power.max()        # nara_wpe's floor, over all bins (0: silence)
  out = np.empty_like(y)
  for lo in range(0, num_bins, bins_at_once):
    yb = y[lo:lo + bins_at_once]
    stacked = np.zeros((yb.shape[0], taps * channels, frames), np.complex64)
    for k in range(taps):                        # row k C + c: channel c, delay + k frames ago
      lag = delay + k
      if lag < frames:
        stacked[:, k * channels:(k + 1) * channels, lag:] = yb[:, :, :frames - lag]
    stacked_h = np.conj(stacked).transpose(0, 2, 1)
    x = yb
    for it in range(iterations):
      pw = power[lo:lo + bins_at_once] if it == 0 else np.mean(np.abs(x) ** 2, axis=1)
      inverse = (1.0 / np.maximum(pw, eps) if eps > 0 else np.ones_like(pw)).astype(np.float32)
      weighted = stacked * inverse[:, None, :]
      r = weighted @ stacked_h                                           # [f, KC, KC]
      p = weighted @ np.conj(yb).transpose(0, 2, 1)                      # [f, KC, C]
      g = _solve(r.astype(np.complex128), p.astype(np.complex128)).astype(np.complex64)
      x = yb - np.conj(g).transpose(0, 2, 1) @ stacked
    out[lo:lo + bins_at_once] = x
  return out


def _solve(r: np.ndarray, p: np.ndarray) -> np.ndarray:
  """R^-1 P per frequency (in double precision: R is small, and ill-conditioned in single
  precision on some bins); a singular R (a silent bin) by least squares, as nara_wpe does."""
  try:
    return np.linalg.solve(r, p)
  except np.linalg.LinAlgError:
    return np.stack([np.linalg.lstsq(a, b, rcond=None)[0] for a, b in zip(r, p)])


def wpe(audio: np.ndarray, *, iterations: int | None = None) -> np.ndarray:
  """[C, N] float audio -> [C, N] with its late reverberation removed (the statistics from
  this piece alone: call it on pieces of some seconds or more)."""
  from nara_wpe import utils as wpe_utils          # imported here: only this stage needs it
  audio = np.asarray(audio, np.float32)
  if audio.ndim != 2:
    raise ValueError(f"wpe takes [channels, samples] audio, got shape {audio.shape}")
  n = audio.shape[1]
  if n < N_FFT:
    return audio
  y = wpe_utils.stft(audio, size=N_FFT, shift=HOP)                  # [C, T, F]
  x = wpe_stft(y.transpose(2, 0, 1), taps=TAPS, delay=DELAY,
               iterations=ITERATIONS if iterations is None else iterations)
  out = wpe_utils.istft(x.transpose(1, 2, 0), size=N_FFT, shift=HOP)
  return out[:, :n].astype(np.float32)
