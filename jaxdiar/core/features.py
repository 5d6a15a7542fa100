"""Multi-channel spatial features, as pure JAX functions of raw waveforms.

All functions are jit/vmap/grad compatible and use no host callbacks, so the features are
computed inside the jitted train step from raw audio (SPEC section 3).

Shapes: audio [B, C, N] float32 at 16 kHz  ->  features [B, D, T], T = 1 + N // hop.
"""

from collections.abc import Callable, Sequence
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxdiar.core import spatial

_LPS_FLOOR = 1e-10
# Below this magnitude a bin has no usable phase; its unit phasor is taken as 1 (angle 0),
# as numpy's angle(0) does, and the gradient there is zero instead of NaN.
_PHASE_FLOOR = 1e-12


def num_frames(num_samples: int, hop: int) -> int:
  """Frames of a centred STFT: T = 1 + N // hop."""
  return 1 + num_samples // hop


def feature_dim(cfg) -> int:
  """D for a features config."""
  return kind(cfg.kind).dim(cfg, cfg.n_fft // 2 + 1)


def srp_azimuths(cfg) -> np.ndarray:
  """The fixed azimuth grid (radians) of the `srp` features: cfg.srp_azimuths evenly."""
  return spatial.azimuth_grid(cfg.get("srp_azimuths", 36))


def periodic_hann(n: int) -> np.ndarray:
  """scipy.signal.get_window('hann', n, fftbins=True), what librosa uses."""
  return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)


def stft(audio: jax.Array, n_fft: int = 512, hop: int = 256) -> jax.Array:
  """Centred, zero-padded STFT with a periodic Hann window.

  Equal to librosa.stft(x, n_fft=n_fft, hop_length=hop, window="hann", center=True,
  pad_mode="constant"), transposed to time-major.

  Args:
    audio: [..., N] real waveform.
  Returns:
    [..., T, n_fft // 2 + 1] complex64, T = 1 + N // hop.
  """
  if 2 * hop > n_fft:
    raise ValueError(f"hop ({hop}) must be at most n_fft // 2 ({n_fft // 2}).")
  n = audio.shape[-1]
  t = num_frames(n, hop)
  # Right padding so that the last frame, at (t - 1) * hop, ends inside the signal.
  pad = [(0, 0)] * (audio.ndim - 1) + [(n_fft // 2, n_fft // 2 - n % hop)]
  return _frames_rfft(jnp.pad(audio, pad), t, n_fft, hop)


def _frames_rfft(padded: jax.Array, t: int, n_fft: int, hop: int) -> jax.Array:
  """rfft of the t windowed frames padded[k*hop : k*hop + n_fft], k < t."""
  # One gather with a constant [t, n_fft] index: XLA CPU writes the frames in one pass (the
  # frames must be materialised for the FFT custom call). Measured against concatenating
  # shifted [t, hop] views of a reshape: 76 vs 136 ms for the STFT of 8 x 8 x 8 s.
  index = jnp.arange(t)[:, None] * hop + jnp.arange(n_fft)[None, :]  # t may be symbolic.
  return jnp.fft.rfft(padded[..., index] * periodic_hann(n_fft), axis=-1)


def stream_stft(block: jax.Array, state: jax.Array, n_fft: int = 512, hop: int = 256):
  """Streaming STFT: the frames completed by the next block of samples.

  block: [..., m * hop] new samples; state: [..., n_fft - hop] the previous samples (zeros at
  the start, which is the centred STFT's left padding). Returns ([..., m, F], new state);
  over a stream the frames equal `stft` of the whole signal, frame by frame (the final
  frame of `stft` comes after a flush of n_fft // 2 zeros).
  """
  if n_fft % hop or block.shape[-1] % hop:
    raise ValueError(f"block length {block.shape[-1]} and n_fft {n_fft} must be multiples of "
                     f"hop {hop}")
  buffer = jnp.concatenate([state, block], axis=-1)
  frames = _frames_rfft(buffer, block.shape[-1] // hop, n_fft, hop)
  return frames, buffer[..., buffer.shape[-1] - (n_fft - hop):]


def log_power_spectrum(spec: jax.Array) -> jax.Array:
  """10 log10(|X|^2 + 1e-10), [..., T, F] complex -> real."""
  power = jnp.real(spec) ** 2 + jnp.imag(spec) ** 2
  return 10.0 * jnp.log10(power + _LPS_FLOOR)


def unit_phasor(spec: jax.Array) -> jax.Array:
  """exp(i angle(X)) with angle(0) = 0, differentiable everywhere."""
  power = jnp.real(spec) ** 2 + jnp.imag(spec) ** 2
  usable = power > _PHASE_FLOOR ** 2
  safe_power = jnp.where(usable, power, 1.0)  # double-where: no NaN gradient at 0.
  return jnp.where(usable, spec * jax.lax.rsqrt(safe_power), jnp.ones_like(spec))


def is_uniform_circular(mic_positions, tol: float = 1e-6) -> bool:
  """True if the mics are equally spaced on a circle in channel order (rotation = roll)."""
  m = np.asarray(mic_positions, np.float64)
  if len(m) < 3 or np.ptp(m[:, 2]) > tol:
    return False
  centred = m[:, :2] - m[:, :2].mean(axis=0)
  radius = np.linalg.norm(centred, axis=1)
  angles = np.unwrap(np.arctan2(centred[:, 1], centred[:, 0]))
  steps = np.diff(angles)
  return bool(np.ptp(radius) < tol and np.ptp(np.abs(steps)) < 1e-6
              and abs(abs(steps[0]) * len(m) - 2 * np.pi) < 1e-6)


def pair_delays(mic_positions: Sequence[Sequence[float]], mic_pairs: Sequence[Sequence[int]],
                look_directions_deg: Sequence[float], speed_of_sound: float) -> np.ndarray:
  """tau_p(theta) = ((m_i - m_j) . u_theta) / c in seconds, [num_dirs, num_pairs].

  u_theta is the unit vector at azimuth theta in the array (x, y) plane. A far-field source
  at theta makes angle(X_i) - angle(X_j) = 2 pi f tau_p(theta).
  """
  mics = np.asarray(mic_positions, np.float64)
  pairs = np.asarray(mic_pairs, np.int64)
  theta = np.deg2rad(np.asarray(look_directions_deg, np.float64))
  u = np.stack([np.cos(theta), np.sin(theta), np.zeros_like(theta)], axis=-1)
  baselines = mics[pairs[:, 0]] - mics[pairs[:, 1]]   # [P, 3]
  return (u @ baselines.T) / speed_of_sound           # [Q, P]


def ipd_phasors(spec: jax.Array, mic_pairs: Sequence[Sequence[int]]) -> jax.Array:
  """exp(i IPD_p) = u_i conj(u_j) for each pair, [B, C, T, F] -> [B, P, T, F] complex."""
  # Static per-channel slices, not phasor[:, i] with an index array: XLA lowers that to a
  # gather whose transposed [P, B, T, F] result every consumer then re-reads.
  return jnp.stack([unit_phasor(spec[:, i]) * jnp.conj(unit_phasor(spec[:, j]))
                    for i, j in mic_pairs], axis=1)


def angle_features(ipd: jax.Array, delays: np.ndarray, n_fft: int,
                   sample_rate: int) -> jax.Array:
  """AF_theta(f, t) = mean_p cos(IPD_p - 2 pi f tau_p(theta)), [B, P, T, F] -> [B, Q, T, F].

  cos(a - b) = cos a cos b + sin a sin b: a multiply-add against constant steering phases,
  no angle(). Written as a sum over the few pairs, which XLA fuses into one elementwise
  pass (19x faster on CPU than the same contraction as an einsum batched over f).
  """
  freqs = np.arange(n_fft // 2 + 1) * sample_rate / n_fft           # [F]
  steer = 2 * np.pi * delays[:, :, None] * freqs[None, None, :]      # [Q, P, F]
  cos_s = np.cos(steer).astype(np.float32)[None, :, :, None, :]      # [1, Q, P, 1, F]
  sin_s = np.sin(steer).astype(np.float32)[None, :, :, None, :]
  re, im = jnp.real(ipd)[:, None], jnp.imag(ipd)[:, None]            # [B, 1, P, T, F]
  num_pairs = delays.shape[1]
  return sum(re[:, :, p] * cos_s[:, :, p] + im[:, :, p] * sin_s[:, :, p]
             for p in range(num_pairs)) / num_pairs


def extract(audio: jax.Array, cfg, mics=None, mic_mask=None) -> jax.Array:
  """Features of a batch of multi-channel waveforms.

  Args:
    audio: [B, C, N] float32 in [-1, 1] at cfg.sample_rate.
    cfg: the `features` config (n_fft, hop, kind, mic_positions, mic_pairs,
      look_directions_deg, speed_of_sound, sample_rate; srp_azimuths, srp_band).
    mics: for the `srp` kind, the microphones' positions [B, C, 3] (metres; default the
      config's array for every row); mic_mask: [B, C], 1 where a channel holds a microphone
      (default all): channels past a recording's own are zero-padded and masked.
  Returns:
    [B, D, T] float32, D = feature_dim(cfg), T = 1 + N // hop:
      compact: [LPS, mean_p cos IPD_p, max_theta AF_theta]        (3 x 257)
      full:    [LPS, cos IPD_p for each pair, AF_theta for each theta]
      lps:     [LPS]                                               (257)
      srp:     [LPS of channel 0, SRP-PHAT over srp_azimuths]      (257 + 36): the shape
               does not depend on the array (any geometry of up to C microphones)
  """
  _check(audio, cfg)
  spec = stft(audio.astype(jnp.float32), cfg.n_fft, cfg.hop)
  if kind(cfg.kind).takes_positions:
    return srp_features(spec, cfg, *_positions(audio, cfg, mics, mic_mask))
  return from_spectrum(spec, cfg)


def _positions(audio, cfg, mics, mic_mask):
  b, c = audio.shape[:2]
  if mics is None:
    mics = jnp.broadcast_to(jnp.asarray(cfg.mic_positions, jnp.float32)[:c], (b, c, 3))
  if mic_mask is None:
    mic_mask = jnp.ones((b, c), jnp.float32)
  return jnp.asarray(mics, jnp.float32), jnp.asarray(mic_mask, jnp.float32)


def srp_map(spec: jax.Array, mics: jax.Array, mic_mask: jax.Array, grid: np.ndarray,
            n_fft: int, sample_rate: int, speed_of_sound: float,
            band=spatial.BAND) -> jax.Array:
  """SRP-PHAT of every frame over the azimuths `grid`, for per-example geometries.

  spec [B, C, T, F]; mics [B, C, 3]; mic_mask [B, C]. The PHAT cross-spectra of the
  microphone pairs (i < j, both in the mask) steered to each azimuth, averaged over the
  pairs and the bins of `band`: `jaxdiar.core.spatial.frame_response` with the geometry an
  input ([B, T, G]; zero where fewer than two microphones).
  """
  c = spec.shape[1]
  freqs, bins = spatial.band_bins(n_fft, sample_rate, band)
  pairs = [(i, j) for i in range(c) for j in range(i + 1, c)]
  if not pairs:
    return jnp.zeros(spec.shape[:1] + spec.shape[2:3] + (len(grid),), jnp.float32)
  ipd = ipd_phasors(spec[..., bins], pairs)                           # [B, P, T, F']
  first, second = np.array(pairs).T
  weight = mic_mask[:, first] * mic_mask[:, second]                   # [B, P]
  weight = weight / jnp.maximum(jnp.sum(weight, axis=1, keepdims=True), 1.0) / len(bins)
  u = np.stack([np.cos(grid), np.sin(grid), np.zeros_like(grid)]).astype(np.float32)
  tau = jnp.einsum("bpx,xg->bpg", mics[:, first] - mics[:, second], u) / speed_of_sound
  phase = 2 * np.pi * tau[:, :, None, :] * freqs[bins].astype(np.float32)[None, None, :, None]
  # Re(X_i X_j* e^{-i phase}) = re cos(phase) + im sin(phase), summed over pairs and bins.
  w = weight[:, :, None, None]
  return (jnp.einsum("bptf,bpfg->btg", jnp.real(ipd), jnp.cos(phase) * w)
          + jnp.einsum("bptf,bpfg->btg", jnp.imag(ipd), jnp.sin(phase) * w))


def srp_features(spec: jax.Array, cfg, mics: jax.Array, mic_mask: jax.Array) -> jax.Array:
  """The `srp` kind's [B, D, T] of a multi-channel STFT [B, C, T, F] and its geometry."""
  lps = log_power_spectrum(spec[:, 0])                                 # [B, T, F]
  srp = srp_map(spec, mics, mic_mask, srp_azimuths(cfg), cfg.n_fft, cfg.sample_rate,
                cfg.speed_of_sound, tuple(cfg.get("srp_band", spatial.BAND)))
  return jnp.swapaxes(jnp.concatenate([lps, srp], axis=-1), 1, 2)


def extract_stream(block: jax.Array, state: jax.Array, cfg):
  """Streaming `extract`: block [B, C, m * hop], state [B, C, n_fft - hop] (zeros at the
  start) -> ([B, D, m], new state), frame-by-frame equal to `extract` on the whole signal."""
  _check(block, cfg)
  if kind(cfg.kind).takes_positions:
    raise ValueError(f"features.kind={cfg.kind!r} has no streaming form")
  spec, state = stream_stft(block.astype(jnp.float32), state, cfg.n_fft, cfg.hop)
  return from_spectrum(spec, cfg), state


def _check(audio, cfg):
  if audio.ndim != 3:
    raise ValueError(f"audio must be [B, C, N], got shape {audio.shape}")
  num_channels = audio.shape[1]
  if kind(cfg.kind).needs_array and num_channels != len(cfg.mic_positions):
    raise ValueError(
        f"features.kind={cfg.kind!r} needs the {len(cfg.mic_positions)} channels of the "
        f"configured array, got {num_channels}; use kind='lps' for other channel counts.")


def from_spectrum(spec: jax.Array, cfg) -> jax.Array:
  """Features [B, D, T] of a multi-channel STFT [B, C, T, F] (see `extract`)."""
  # Reductions over the channel, pair and direction axes are written as sums of slices:
  # XLA CPU fuses those into one elementwise pass, while a reduce over a major axis ran 6x
  # slower (31 vs 5 ms for the LPS mean of 8 x 8 x 8 s).
  spec_kind = kind(cfg.kind)
  lps = _mean(log_power_spectrum(spec))                                  # [B, T, F]
  ipd = af = None
  if spec_kind.needs_array:
    ipd = ipd_phasors(spec, cfg.mic_pairs)                               # [B, P, T, F]
    delays = pair_delays(cfg.mic_positions, cfg.mic_pairs, cfg.look_directions_deg,
                         cfg.speed_of_sound)
    af = angle_features(ipd, delays, cfg.n_fft, cfg.sample_rate)         # [B, Q, T, F]
  parts = spec_kind.parts(lps, ipd, af)
  # [B, T, F] pieces -> [B, T, D] -> [B, D, T]: one transpose at the end (concatenating
  # transposed pieces ran 1.6x slower), which cancels against the model's own swap back to
  # [B, T, D] when both are in one jit (the train step, the exported forward). The barrier
  # keeps XLA from fusing the transpose into the elementwise work, whose strided reads
  # then cost more than the copy (lps: 125 -> 98 ms, full: 142 -> 131 ms for 8 x 8 x 8 s).
  features = jax.lax.optimization_barrier(jnp.concatenate(parts, axis=-1))
  return jnp.swapaxes(features, 1, 2)


def _mean(x: jax.Array) -> jax.Array:
  """Mean over axis 1 as a sum of slices (see from_spectrum)."""
  return functools.reduce(jnp.add, jnp.unstack(x, axis=1)) / x.shape[1]


@dataclasses.dataclass(frozen=True)
class FeatureKind:
  """One feature set (`features.kind`): whether it needs the configured array, its size
  D from (config, frequency bins), and its [B, T, F] pieces from the mean log power
  spectrum, the IPD phasors [B, P, T, F] and the angle features [B, Q, T, F]."""
  needs_array: bool
  dim: Callable[..., int]
  parts: Callable[..., list] | None
  takes_positions: bool = False   # the geometry is an input (any array): `srp_features`


# The one table of feature kinds: every place that depends on the kind reads it here.
FEATURE_KINDS = {
    "compact": FeatureKind(
        True, lambda cfg, bins: 3 * bins,
        lambda lps, ipd, af: [lps, _mean(jnp.real(ipd)),
                              functools.reduce(jnp.maximum, jnp.unstack(af, axis=1))]),
    "full": FeatureKind(
        True, lambda cfg, bins: bins * (1 + len(cfg.mic_pairs) + len(cfg.look_directions_deg)),
        lambda lps, ipd, af: [lps, *jnp.unstack(jnp.real(ipd), axis=1),
                              *jnp.unstack(af, axis=1)]),
    "lps": FeatureKind(False, lambda cfg, bins: bins, lambda lps, ipd, af: [lps]),
    "srp": FeatureKind(False, lambda cfg, bins: bins + len(srp_azimuths(cfg)), None,
                       takes_positions=True),
}


def kind(name: str) -> FeatureKind:
  """The FeatureKind of `features.kind`; ValueError naming the choices otherwise."""
  if name not in FEATURE_KINDS:
    raise ValueError(f"features.kind must be one of {tuple(FEATURE_KINDS)}, got {name!r}")
  return FEATURE_KINDS[name]
