"""SRP-PHAT directions (jaxdiar.core.spatial) against pyroomacoustics.doa and librosa."""

import librosa
import numpy as np
import pyroomacoustics as pra
import pytest

from configs import default
from jaxdiar.core import spatial

SR = 16000


def far_field(azimuth_deg: float, seconds: float = 1.0, seed: int = 0) -> np.ndarray:
  """White noise from a far-field source at an azimuth, exact fractional delays (FFT)."""
  mics = np.asarray(default.circular_array())
  n = int(seconds * SR)
  x = np.random.default_rng(seed).standard_normal(n)
  u = np.array([np.cos(np.deg2rad(azimuth_deg)), np.sin(np.deg2rad(azimuth_deg)), 0.0])
  advance = mics @ u / 343.0                                    # seconds earlier at mic m
  f = np.fft.rfftfreq(n, 1 / SR)
  spec = np.fft.rfft(x)[None, :] * np.exp(2j * np.pi * f[None, :] * advance[:, None])
  return np.fft.irfft(spec, n).astype(np.float32)


def test_stft_equals_librosa():
  audio = np.random.default_rng(1).standard_normal((2, 5000)).astype(np.float32)
  ours = spatial.stft(audio)
  ref = np.stack([librosa.stft(a, n_fft=512, hop_length=256, window="hann", center=True,
                               pad_mode="constant") for a in audio])
  np.testing.assert_allclose(ours, ref, atol=2e-3)


@pytest.mark.parametrize("azimuth", [0.0, 37.0, 135.0, 250.0])
def test_peak_matches_source_and_pyroomacoustics(azimuth):
  audio = far_field(azimuth)
  spec = spatial.stft(audio)
  grid = spatial.azimuth_grid(360)
  steer = spatial.steering(default.circular_array(), 512, SR, grid)
  response = spatial.srp_phat(spec, np.ones((1, spec.shape[-1])), steer)[0]
  ours = np.rad2deg(grid[np.argmax(response)])
  doa = pra.doa.algorithms["SRP"](np.asarray(default.circular_array())[:, :2].T, SR, 512,
                                  num_src=1, azimuth=grid)
  doa.locate_sources(spec, freq_range=[300.0, 3500.0])
  theirs = np.rad2deg(doa.azimuth_recon[0])
  wrap = lambda a: abs((a + 180) % 360 - 180)
  assert wrap(ours - azimuth) <= 2.0
  assert wrap(ours - theirs) <= 2.0


def test_weights_select_the_talker():
  """Two sources in turn: frame weights on either half point to either source."""
  a, b = far_field(60.0, seed=2), far_field(200.0, seed=3)
  audio = np.concatenate([a, b], axis=1)
  spec = spatial.stft(audio)
  t = spec.shape[-1]
  weights = np.zeros((3, t))
  weights[0, :t // 2 - 2] = 1
  weights[1, t // 2 + 2:] = 1                                   # row 2: no frames at all
  grid = spatial.azimuth_grid(72)
  response = spatial.srp_phat(spec, weights, spatial.steering(default.circular_array(), 512,
                                                              SR, grid))
  assert np.rad2deg(grid[np.argmax(response[0])]) == pytest.approx(60.0, abs=5)
  assert np.rad2deg(grid[np.argmax(response[1])]) == pytest.approx(200.0, abs=5)
  np.testing.assert_array_equal(response[2], 0.0)


def test_frame_response_equals_its_definition():
  """Per frame: the mean over pairs and bins of Re(PHAT cross-spectrum x steering phasor),
  written as one einsum in float64; and srp_phat is its weighted mean."""
  rng = np.random.default_rng(3)
  spec = (rng.standard_normal((8, 257, 30)) + 1j * rng.standard_normal((8, 257, 30)))
  steer = spatial.steering(default.circular_array(), 512, SR, spatial.azimuth_grid(24))
  pairs, bins, phasors = steer.pairs, steer.bins, steer.phasors
  x = spec[:, bins] / np.abs(spec[:, bins])
  ref = np.einsum("pft,pfg->tg", x[pairs[:, 0]] * np.conj(x[pairs[:, 1]]),
                  phasors.astype(np.complex128)).real / (len(pairs) * len(bins))
  ours = spatial.frame_response(spec.astype(np.complex64), steer)
  np.testing.assert_allclose(ours, ref, atol=1e-5)
  weights = rng.random((3, 30))
  np.testing.assert_allclose(spatial.srp_phat(spec.astype(np.complex64), weights, steer),
                             weights @ ref / weights.sum(axis=1, keepdims=True), atol=1e-5)
