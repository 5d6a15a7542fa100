"""The device side of `jaxdiar.online`: every pool meeting on the accelerator in a
fixed-capacity ring (`DevicePool`), random windows drawn from it inside the jitted step with
their augmentation (`window_batch`), and how many meetings fit (`check_capacity`)."""

import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np


def device_memory_bytes(device=None) -> int | None:
  """What the device can hold: an accelerator's allocator limit, the host's RAM for the CPU."""
  device = device or jax.devices()[0]
  stats = device.memory_stats() if device.platform != "cpu" else None
  if stats and stats.get("bytes_limit"):
    return int(stats["bytes_limit"])
  try:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
  except (ValueError, OSError, AttributeError):
    return None


def check_capacity(capacity: int, num_channels: int, num_samples: int,
                   limit: int | None = None, share: float | None = None) -> None:
  """Refuse a pool ring (int16 audio of `capacity` meetings) over `share` of the device's
  memory (half of the host's RAM on the CPU, 80 % of an accelerator's allocator limit), before
  it is allocated: the ring is held whole from the start."""
  need = capacity * num_channels * num_samples * 2
  if share is None:
    share = 0.5 if jax.devices()[0].platform == "cpu" else 0.8
  limit = device_memory_bytes() if limit is None else limit
  if limit and need > share * limit:
    fits = max(1, int(share * limit) // (num_channels * num_samples * 2))
    raise SystemExit(f"jaxdiar.online: a pool ring of {capacity} meetings needs "
                     f"{need / 2**30:.1f} GiB, over {share:.0%} of the device's "
                     f"{limit / 2**30:.1f} GiB: pass --capacity {fits} or less (it need not "
                     f"exceed the meetings of the pool; the oldest are replaced as new ones "
                     f"arrive)")


class DevicePool:
  """Meetings of a pool folder held on the device in a ring of `capacity` slots."""

  def __init__(self, folder, capacity: int, num_channels: int, num_samples: int,
               num_frames: int, num_speakers: int, speaker_ids: dict[str, int],
               geometry=None):
    """`geometry`: the microphones' positions [num_channels, 3] of meetings whose file has
    none (`mics` holds each meeting's, [capacity, num_channels, 3])."""
    self.folder = pathlib.Path(folder)
    self.geometry = (np.zeros((num_channels, 3), np.float32) if geometry is None
                     else np.asarray(geometry, np.float32))
    self.mics = jnp.zeros((capacity, num_channels, 3), jnp.float32)
    self.capacity, self.filled, self.next_slot = capacity, 0, 0
    self.speaker_ids = speaker_ids
    self.seen: set[str] = set()
    self.audio = jnp.zeros((capacity, num_channels, num_samples), jnp.int16)
    self.activity = jnp.zeros((capacity, num_frames, num_speakers), jnp.uint8)
    self.ids = jnp.full((capacity, num_speakers), -1, jnp.int32)
    self.loaded = 0
    self._put = jax.jit(lambda buf, i, x: buf.at[i].set(x), donate_argnums=0)

  def refresh(self, limit: int = 64) -> int:
    """Load up to `limit` new meetings; returns how many were loaded."""
    new = sorted(p for p in self.folder.glob("meeting*.npz") if p.name not in self.seen)
    count = 0
    for path in new[:limit]:
      self.seen.add(path.name)
      with np.load(path) as z:
        audio, activity, names = z["audio"], z["activity"], list(z["speakers"])
        mics = z["mics"] if "mics" in z.files else self.geometry
      c, n = self.audio.shape[1:]
      t, s = self.activity.shape[1:]
      if audio.shape[1] < n or len(names) > s:
        continue
      act = np.zeros((t, s), np.uint8)
      act[:, :len(names)] = activity[:t]
      ids = np.full(s, -1, np.int32)
      ids[:len(names)] = [self.speaker_ids.get(str(x), -1) for x in names]
      i = self.next_slot
      self.audio = self._put(self.audio, i, jnp.asarray(audio[:c, :n]))
      self.activity = self._put(self.activity, i, jnp.asarray(act))
      self.ids = self._put(self.ids, i, jnp.asarray(ids))
      self.mics = self._put(self.mics, i, jnp.asarray(mics[:c], jnp.float32))
      self.next_slot = (i + 1) % self.capacity
      self.filled = min(self.filled + 1, self.capacity)
      self.loaded += 1
      count += 1
    return count


def window_batch(pool_audio, pool_activity, pool_ids, index, frame_start, rng, *,
                 window_samples: int, hop: int, model_channels: int, gain_db: float,
                 noise_snr_db: float, rotate: bool, silence_db: float = 0.0,
                 pause_prob: float = 0.0, sample_rate: int = 16000, pool_mics=None,
                 subset_mono_prob: float | None = None, band_prob: float = 0.0) -> dict:
  """Training batch from the device pool: windows at (index[b], frame_start[b] * hop).

  `subset_mono_prob` (a model whose features take the geometry, `pool_mics` [P, C, 3] each
  meeting's microphones): each window keeps a random subset of its array's microphones in
  random order, one only with this probability, else 2 to all equally likely, the rest
  zeroed and masked; the batch then carries their positions, turned by a random angle about
  the vertical (`mics` [B, C, 3], `mic_mask` [B, C]).
  `pause_prob`: the share of windows in which a stretch of 1 s up to the whole window is
  replaced by coloured noise 10-50 dB under the window's level, its labels cleared (simulated
  meetings have no pause longer than a few seconds; real ones do).
  `band_prob`: the share of windows heard through a band-pass (`band_limit`: edges U(0, 400) Hz
  and U(3.4 kHz, the Nyquist frequency), all channels alike), after the gain and noise: a
  narrow front end, or a file resampled from another rate (no energy in its top 0.3 kHz)."""
  num_frames = 1 + window_samples // hop
  num_channels = pool_audio.shape[1]

  def one(i, f):
    audio = jax.lax.dynamic_slice(pool_audio[i], (0, f * hop), (num_channels, window_samples))
    act = jax.lax.dynamic_slice(pool_activity[i], (f, 0),
                                (num_frames, pool_activity.shape[-1]))
    return audio, act

  audio, activity = jax.vmap(one)(index, frame_start)
  audio = audio.astype(jnp.float32) / 32768.0
  b = audio.shape[0]
  k_rot, k_gain, k_snr, k_noise, k_quiet, k_pause = jax.random.split(rng, 6)
  k_band = jax.random.fold_in(rng, 7)      # (the six above kept: same batches as before)
  shift = jax.random.randint(k_rot, (b,), 0, num_channels)
  extra = {}
  if subset_mono_prob is not None:
    audio, extra = _mic_subsets(audio, pool_mics[index], k_rot, subset_mono_prob)
  elif model_channels == 1:                      # one random channel of the array
    audio = jnp.take_along_axis(audio, shift[:, None, None], axis=1)
  elif rotate:                                 # cyclic rotation of a uniform circular array
    order = (jnp.arange(num_channels)[None, :] + shift[:, None]) % num_channels
    audio = jnp.take_along_axis(audio, order[:, :, None], axis=1)
  if pause_prob:
    audio, activity = _splice_pauses(audio, activity, k_pause, pause_prob, hop, sample_rate)
  if silence_db:              # pauses quieter than the meeting's noise floor, by U(0, x) dB
    speech = jnp.any(activity > 0, axis=-1).astype(jnp.float32)            # [B, T]
    kernel = jnp.ones(9) / 4.5          # a 4-frame ramp outside each turn; speech untouched
    speech = jax.vmap(lambda a: jnp.convolve(a, kernel, mode="same"))(speech)
    speech = jnp.minimum(jnp.repeat(speech, hop, axis=1)[:, :window_samples], 1.0)
    depth = jax.random.uniform(k_quiet, (b, 1), maxval=silence_db)
    scale = 10.0 ** (-depth * (1.0 - speech) / 20.0)
    audio = audio * scale[:, None, :]
  if gain_db:
    gain = jax.random.uniform(k_gain, (b, 1, 1), minval=-gain_db, maxval=gain_db)
    audio = audio * 10.0 ** (gain / 20.0)
  if noise_snr_db:
    snr = jax.random.uniform(k_snr, (b, 1, 1), minval=noise_snr_db, maxval=noise_snr_db + 20)
    power = jnp.mean(audio ** 2, axis=(1, 2), keepdims=True) / 10.0 ** (snr / 10.0)
    audio = audio + jnp.sqrt(power) * jax.random.normal(k_noise, audio.shape)
  if band_prob:
    audio = band_limit(audio, k_band, band_prob, sample_rate)
  present = jnp.any(activity > 0, axis=1)                                  # [B, S]
  ids = jnp.where(present, pool_ids[index], -1)
  overlap = (jnp.sum(activity, axis=-1) >= 2).astype(jnp.uint8)
  return dict(audio=jnp.clip(audio, -1.0, 1.0), activity=activity, overlap=overlap,
              speaker_ids=ids, **extra)


def _mic_subsets(audio, mics, rng, mono_prob: float):
  """`window_batch`'s microphone subsets: audio [B, C, N] and mics [B, C, 3] -> the audio of a
  random subset in random order (zeros past it) and dict(mics, mic_mask)."""
  b, c = audio.shape[:2]
  k_order, k_mono, k_count, k_turn = jax.random.split(rng, 4)
  order = jnp.argsort(jax.random.uniform(k_order, (b, c)), axis=1)
  count = jnp.where(jax.random.uniform(k_mono, (b,)) < mono_prob, 1,
                    jax.random.randint(k_count, (b,), 2, c + 1))
  mask = (jnp.arange(c)[None, :] < count[:, None]).astype(jnp.float32)          # [B, C]
  audio = jnp.take_along_axis(audio, order[:, :, None], axis=1) * mask[:, :, None]
  mics = jnp.take_along_axis(mics, order[:, :, None], axis=1)
  turn = jax.random.uniform(k_turn, (b,), maxval=2 * jnp.pi)
  cos, sin = jnp.cos(turn)[:, None], jnp.sin(turn)[:, None]
  x, y = mics[..., 0], mics[..., 1]
  mics = jnp.stack([cos * x - sin * y, sin * x + cos * y, mics[..., 2]], axis=-1) * mask[..., None]
  return audio, dict(mics=mics, mic_mask=mask)


def band_limit(audio, rng, prob: float, sample_rate: int, width: float = 150.0):
  """A `prob` share of the windows (audio [B, C, N]) band-passed between a low edge U(0, 400)
  Hz and a high edge U(3400, sample_rate / 2) Hz, raised-cosine transitions `width` Hz wide
  (zero-phase, in the frequency domain); the other windows unchanged."""
  b, _, n = audio.shape
  k_on, k_low, k_high = jax.random.split(rng, 3)
  on = jax.random.uniform(k_on, (b, 1, 1)) < prob
  low = jax.random.uniform(k_low, (b, 1, 1), maxval=400.0)
  high = jax.random.uniform(k_high, (b, 1, 1), minval=3400.0, maxval=sample_rate / 2)
  f = jnp.fft.rfftfreq(n, 1.0 / sample_rate)[None, None, :]
  edge = lambda x: 0.5 - 0.5 * jnp.cos(jnp.pi * jnp.clip(x, 0.0, 1.0))   # 0 -> 1 over [0, 1]
  gain = edge((f - low) / width + 0.5) * edge((high - f) / width + 0.5)
  limited = jnp.fft.irfft(jnp.fft.rfft(audio, axis=-1) * gain, n=n, axis=-1)
  return jnp.where(on, limited, audio)


def _splice_pauses(audio, activity, rng, prob: float, hop: int, sample_rate: int):
  """Replace [a, a + L) of a `prob` share of the windows by coloured noise (AR(1) spectrum,
  coefficient U(0, 0.98), independent per channel) 10-50 dB under the window's power, and
  clear the labels of the frames centred there."""
  b, c, n = audio.shape
  k_on, k_len, k_start, k_coef, k_level, k_noise = jax.random.split(rng, 6)
  on = jax.random.uniform(k_on, (b,)) < prob
  length = jnp.minimum(jax.random.uniform(k_len, (b,), minval=sample_rate, maxval=1.2 * n), n)
  start = jax.random.uniform(k_start, (b,)) * (n - length)
  end = jnp.where(on, start + length, start)                     # empty when not chosen
  t = jnp.arange(n)[None, :]
  inside = (t >= start[:, None]) & (t < end[:, None])            # [B, N]
  centre = jnp.arange(activity.shape[1])[None, :] * hop
  frames = (centre >= start[:, None]) & (centre < end[:, None])  # [B, T]
  coef = jax.random.uniform(k_coef, (b, 1, 1), maxval=0.98)
  w = jnp.linspace(0.0, jnp.pi, n // 2 + 1)[None, None, :]
  shape = 1.0 / jnp.abs(1.0 - coef * jnp.exp(-1j * w))
  noise = jnp.fft.irfft(jnp.fft.rfft(jax.random.normal(k_noise, (b, c, n))) * shape, n=n)
  noise /= jnp.sqrt(jnp.mean(noise ** 2, axis=(1, 2), keepdims=True)) + 1e-9
  level = jax.random.uniform(k_level, (b, 1, 1), minval=10.0, maxval=50.0)
  power = jnp.mean(audio ** 2, axis=(1, 2), keepdims=True) + 1e-10
  noise *= jnp.sqrt(power / 10.0 ** (level / 10.0))
  audio = jnp.where(inside[:, None, :], noise, audio)
  activity = jnp.where(frames[:, :, None], jnp.zeros_like(activity), activity)
  return audio, activity
