"""Where a talker is: steered response power with phase transform (SRP-PHAT) over azimuths.

Used by `diarize` to give each local speaker of a window a direction (from the frames where it
talks alone), which enters the clustering beside its embedding: talkers of a meeting rarely
move. numpy only; the convention is the features' (`features.pair_delays`): a far-field
talker at azimuth theta reaches mic m earlier by (m . u_theta) / c.
"""

import itertools

import numpy as np
import scipy.fft


def azimuth_grid(num: int = 72) -> np.ndarray:
  """`num` azimuths (radians) evenly over the circle."""
  return np.arange(num) * (2 * np.pi / num)


def steering(mic_positions, n_fft: int, sample_rate: int, grid: np.ndarray,
             speed_of_sound: float = 343.0, freq_range=(300.0, 3500.0)):
  """(pairs [P, 2], bins [F'], phasors [P, F', G]) for the mic pairs of the array."""
  m = np.asarray(mic_positions, np.float64)
  pairs = np.array(list(itertools.combinations(range(len(m)), 2)))
  u = np.stack([np.cos(grid), np.sin(grid), np.zeros_like(grid)])           # [3, G]
  tau = (m[pairs[:, 0]] - m[pairs[:, 1]]) @ u / speed_of_sound              # [P, G]
  freqs = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
  bins = np.flatnonzero((freqs >= freq_range[0]) & (freqs <= freq_range[1]))
  phasors = np.exp(-2j * np.pi * freqs[bins][None, :, None] * tau[:, None, :])
  return pairs, bins, phasors.astype(np.complex64)


def frame_response(spec: np.ndarray, steer) -> np.ndarray:
  """[T, G] steered response of every frame of `spec` ([C, F, T] STFT): the PHAT-weighted
  cross-spectra of the mic pairs, steered to each azimuth, averaged over pairs and bins."""
  pairs, bins, phasors = steer
  x = spec[:, bins, :]
  x = x / (np.abs(x) + 1e-8)                                                # PHAT
  cross = x[pairs[:, 0]] * np.conj(x[pairs[:, 1]])                          # [P, F', T]
  p, f, t = cross.shape
  cross = cross.reshape(p * f, t)
  steer_matrix = phasors.reshape(p * f, -1)
  # The real part as two real BLAS products (no complex output to build): 32 ms for
  # 8 channels x 8 s, all 72 azimuths of every frame.
  response = (cross.real.T @ np.ascontiguousarray(steer_matrix.real)
              - cross.imag.T @ np.ascontiguousarray(steer_matrix.imag))
  return response / (p * f)


def srp_phat(spec: np.ndarray, weights: np.ndarray, steer,
             response: np.ndarray | None = None) -> np.ndarray:
  """Steered response of weighted frames.

  Args:
    spec: [C, F, T] STFT of one block.
    weights: [S, T] non-negative frame weights (e.g. where each local speaker talks alone).
    steer: `steering(...)` of the array.
    response: `frame_response(spec, steer)` if already computed (then `spec` is not read).
  Returns:
    [S, G] response per azimuth, divided by the weight mass (0 where a row's weights are 0).
  """
  if response is None:
    response = frame_response(spec, steer)
  mass = weights.sum(axis=1, keepdims=True)
  weighted = weights.astype(np.float32) @ response                          # [S, G]
  return np.where(mass > 0, weighted / np.maximum(mass, 1e-9), 0.0)


def stft(audio: np.ndarray, n_fft: int = 512, hop: int = 256) -> np.ndarray:
  """[C, N] -> [C, n_fft // 2 + 1, 1 + N // hop]: the features' STFT (centred, zero-padded,
  periodic Hann), in numpy."""
  t = 1 + audio.shape[1] // hop
  padded = np.pad(np.asarray(audio, np.float32), ((0, 0), (n_fft // 2, n_fft // 2 + hop)))
  # Strided frames (no gathered copy) and scipy's single-precision FFT on every core:
  # 45 -> 12 ms for 8 channels x 8 s on 2 cores.
  frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft, axis=1)[:, ::hop][:, :t]
  window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
  return scipy.fft.rfft(frames * window, axis=-1, workers=-1).transpose(0, 2, 1)
