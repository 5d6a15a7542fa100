"""Where a talker is: steered response power with phase transform (SRP-PHAT) over azimuths.

Used by `diarize` to give each local speaker of a window a direction (from the frames where it
talks alone), which enters the clustering beside its embedding: talkers of a meeting rarely
move. numpy only; the convention is the features' (`features.pair_delays`): a far-field
talker at azimuth theta reaches mic m earlier by (m . u_theta) / c.
"""

import itertools
from typing import NamedTuple

import numpy as np
import scipy.fft


def azimuth_grid(num: int = 72) -> np.ndarray:
  """`num` azimuths (radians) evenly over the circle."""
  return np.arange(num) * (2 * np.pi / num)


# The band whose bins the steered responses average (Hz).
BAND = (300.0, 3500.0)


def band_bins(n_fft: int, sample_rate: int, band=BAND) -> tuple[np.ndarray, np.ndarray]:
  """(frequencies of every STFT bin [n_fft // 2 + 1], the indices of those inside `band`)."""
  freqs = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
  return freqs, np.flatnonzero((freqs >= band[0]) & (freqs <= band[1]))


class Steering(NamedTuple):
  pairs: np.ndarray      # [P, 2] mic pairs (i < j, itertools.combinations order)
  bins: np.ndarray       # [F'] STFT bins used
  phasors: np.ndarray    # [P, F', G] complex64 steering phasors
  real: np.ndarray       # [P F' 2, G] float32: rows (Re, -Im) of each phasor, interleaved


def steering(mic_positions, n_fft: int, sample_rate: int, grid: np.ndarray,
             speed_of_sound: float = 343.0, freq_range=BAND) -> Steering:
  """The steering of the mic pairs of the array toward each azimuth of `grid`."""
  m = np.asarray(mic_positions, np.float64)
  pairs = np.array(list(itertools.combinations(range(len(m)), 2)))
  u = np.stack([np.cos(grid), np.sin(grid), np.zeros_like(grid)])           # [3, G]
  tau = (m[pairs[:, 0]] - m[pairs[:, 1]]) @ u / speed_of_sound              # [P, G]
  freqs, bins = band_bins(n_fft, sample_rate, freq_range)
  phasors = np.exp(-2j * np.pi * freqs[bins][None, :, None] * tau[:, None, :])
  real = np.stack([phasors.real, -phasors.imag], axis=2).reshape(-1, len(grid))
  return Steering(pairs, bins, phasors.astype(np.complex64), real.astype(np.float32))


def frame_response(spec: np.ndarray, steer) -> np.ndarray:
  """[T, G] steered response of every frame of `spec` ([C, F, T] STFT): the PHAT-weighted
  cross-spectra of the mic pairs, steered to each azimuth, averaged over pairs and bins."""
  x = np.ascontiguousarray(spec[:, steer.bins, :].transpose(2, 0, 1))     # [T, C, F']
  x /= np.abs(x) + 1e-8                                                     # PHAT
  t, c, f = x.shape
  # Cross-spectra of the pairs (i < j) as c - 1 products of contiguous slices into one
  # [T, P, F'] array (a gather of pair indices was 3x slower), then its real part steered
  # as one real BLAS product on the interleaved (re, im) floats: 18 ms for 8 channels x 8 s,
  # all 72 azimuths of every frame.
  cross = np.empty((t, len(steer.pairs), f), np.complex64)
  conj = np.conj(x)
  k = 0
  for i in range(c - 1):
    np.multiply(x[:, i:i + 1], conj[:, i + 1:], out=cross[:, k:k + c - 1 - i])
    k += c - 1 - i
  return cross.reshape(t, -1).view(np.float32) @ steer.real / (len(steer.pairs) * f)


def srp_phat(spec: np.ndarray, weights: np.ndarray, steer) -> np.ndarray:
  """Steered response of weighted frames.

  Args:
    spec: [C, F, T] STFT of one block.
    weights: [S, T] non-negative frame weights (e.g. where each local speaker talks alone).
    steer: `steering(...)` of the array.
  Returns:
    [S, G] response per azimuth, divided by the weight mass (0 where a row's weights are 0).
  """
  return weighted_response(weights, frame_response(spec, steer))


def weighted_response(weights: np.ndarray, response: np.ndarray) -> np.ndarray:
  """`srp_phat` from the frames' responses ([T, G], `frame_response`) already computed."""
  mass = weights.sum(axis=1, keepdims=True)
  weighted = weights.astype(np.float32) @ response                          # [S, G]
  return np.where(mass > 0, weighted / np.maximum(mass, 1e-9), 0.0)


def stft(audio: np.ndarray, n_fft: int = 512, hop: int = 256) -> np.ndarray:
  """[C, N] -> [C, n_fft // 2 + 1, 1 + N // hop]: the features' STFT (centred, zero-padded,
  periodic Hann), in numpy."""
  t = 1 + audio.shape[1] // hop
  padded = np.pad(np.asarray(audio, np.float32), ((0, 0), (n_fft // 2, n_fft // 2 + hop)))
  return frames_stft(padded, t, n_fft, hop)


def frame_levels(spec: np.ndarray, sample_rate: int, n_fft: int) -> np.ndarray:
  """[T, 2] float32: each frame's log energy (dB) of one channel's STFT `spec` [F, T], over the
  whole band and over BAND (where the responses, and speech, carry their energy)."""
  power = np.abs(spec) ** 2
  _, bins = band_bins(n_fft, sample_rate)
  return (10.0 * np.log10(np.stack([power.sum(axis=0), power[bins].sum(axis=0)], axis=1)
                          + 1e-10)).astype(np.float32)


def frames_stft(padded: np.ndarray, t: int, n_fft: int, hop: int) -> np.ndarray:
  """[C, F, t] rfft of the periodic-Hann frames padded[:, k*hop : k*hop + n_fft], k < t.
  (A live stream's block: `padded` = the last n_fft - hop samples before it + the block.)"""
  # Strided frames (no gathered copy) and scipy's single-precision FFT on every core:
  # 45 -> 12 ms for 8 channels x 8 s on 2 cores.
  frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft, axis=1)[:, ::hop][:, :t]
  window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
  return scipy.fft.rfft(frames * window, axis=-1, workers=-1).transpose(0, 2, 1)
