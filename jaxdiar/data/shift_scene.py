"""The parts of a shift-suite meeting (`jaxdiar.data.shift`): the talkers' voices (read as
streams, perturbed, where they have energy), the turn-taking (a talk-budget process), the room
(pyroomacoustics, image sources or hybrid ray tracing) and the noises (diffuse with the
array's coherence, amplitude-modulated point sources)."""

import pathlib

import numpy as np
import pyroomacoustics as pra
import scipy.signal
import soundfile as sf
import soxr

from jaxdiar.decoding import frames as frames_lib

SAMPLE_RATE = 16000
SOUND_SPEED = 343.0


def voices(folder) -> dict[str, list[pathlib.Path]]:
  """speaker -> utterance files of a folder laid out <speaker>/.../<file>.(flac|wav)."""
  folder = pathlib.Path(folder)
  out = {}
  for d in sorted(p for p in folder.iterdir() if p.is_dir()):
    files = sorted(f for f in d.rglob("*") if f.suffix.lower() in (".flac", ".wav"))
    if files:
      out[d.name] = files
  if len(out) < 2:
    raise ValueError(f"{folder}: needs speech of at least 2 talkers (<speaker>/<file>.flac)")
  return out


def talker_stream(files, rng, seconds: float) -> np.ndarray:
  """About `seconds` of one talker's utterances, in a drawn order, joined by short gaps."""
  parts, total = [], 0
  order = rng.permutation(len(files))
  i = 0
  while total < seconds * SAMPLE_RATE:
    x, rate = sf.read(files[order[i % len(order)]], dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    if rate != SAMPLE_RATE:
      x = soxr.resample(x, rate, SAMPLE_RATE)
    x = x / (np.sqrt(np.mean(x ** 2)) + 1e-9)
    parts += [x, np.zeros(int(rng.uniform(0.1, 0.4) * SAMPLE_RATE), np.float32)]
    total += len(x)
    i += 1
  return np.concatenate(parts)


def perturb(x: np.ndarray, rng, speed, pitch) -> np.ndarray:
  """Speed (resampling: tempo and formants move together) and pitch (a phase-vocoder shift,
  formants kept) changes of one talker's stream."""
  if speed:
    x = soxr.resample(x, SAMPLE_RATE, SAMPLE_RATE / rng.uniform(*speed)).astype(np.float32)
  if pitch:
    import librosa     # only this set needs it
    x = librosa.effects.pitch_shift(x, sr=SAMPLE_RATE, n_steps=float(rng.uniform(*pitch)))
  return x


def active(x: np.ndarray, floor_db: float = -35.0, bridge: float = 0.3,
            shortest: float = 0.1) -> np.ndarray:
  """[len(x) // 160] bool: 10 ms frames of the dry track within `floor_db` of its loudest
  frames (of those it holds any material in); gaps under `bridge` s filled, bursts under
  `shortest` s dropped."""
  frames = len(x) // 160
  e = 10 * np.log10(np.mean(x[:frames * 160].reshape(frames, 160) ** 2, axis=1) + 1e-10)
  placed = e > -90.0                        # frames the track holds speech material in
  if not placed.any():
    return np.zeros(frames, bool)
  on = placed & (e > np.percentile(e[placed], 95) + floor_db)
  return frames_lib.fill_and_drop(on, min_speech=int(round(shortest * 100)),
                                   min_silence=int(round(bridge * 100)))


# ------------------------------------------------------------------------ conversation

def conversation(rng, num_speakers: int, seconds: float, s: dict) -> list[tuple[int, float, float]]:
  """(talker, start, length) of every turn: the talk-budget process of the module docstring."""
  shares = rng.dirichlet(np.full(num_speakers, s["alpha"]))
  budget = np.maximum(shares * seconds * 0.85, 4.0)      # talk each one has, seconds
  if s["minor_seconds"]:
    budget[np.argmin(shares)] = rng.uniform(*s["minor_seconds"])
  present = np.tile([0.0, seconds], (num_speakers, 1))
  if s["late"]:                                          # some join late, some leave early
    for k in rng.permutation(num_speakers)[:max(1, num_speakers // 2)]:
      if rng.random() < 0.5:
        present[k, 0] = rng.uniform(0.2, 0.5) * seconds
      else:
        present[k, 1] = rng.uniform(0.5, 0.8) * seconds
  turns, t, current = [], float(rng.uniform(0.2, 1.5)), -1
  while t < seconds - 1.0:
    here = (present[:, 0] <= t) & (present[:, 1] > t + 1.0)
    left = np.where(here, np.maximum(budget, 0.0), 0.0)
    if current >= 0 and rng.random() < 0.85 and left.sum() - left[current] > 0:
      left[current] = 0.0                                # the floor usually changes hands
    if left.sum() <= 0:
      left = np.where(here, shares, 0.0)
      if left.sum() <= 0:
        t += 1.0
        continue
    k = int(rng.choice(num_speakers, p=left / left.sum()))
    length = float(np.clip(rng.lognormal(np.log(s["turn_median"]), 0.75), 0.5, 20.0))
    length = min(length, max(budget[k], 0.8), present[k, 1] - t, seconds - t)
    if length < 0.3:
      t += 0.5
      continue
    turns.append((k, t, length))
    budget[k] -= length
    # Interjections: a listener says something short inside the turn.
    for j in range(num_speakers):
      if j != k and here[j] and budget[j] > 0 and rng.random() < s["interject_rate"] * length:
        at = t + rng.uniform(0.1, 0.8) * length
        short = float(rng.uniform(0.3, 1.0))
        turns.append((j, at, short))
        budget[j] -= short
    if k == current:
      gap = float(rng.exponential(0.5))
    else:
      gap = float(rng.normal(s["offset_mean"], s["offset_std"]))
      gap = max(gap, -0.7 * length)
    current = k
    t = max(t + length + gap, t + 0.3)
  return sorted(turns, key=lambda x: x[1])


# ------------------------------------------------------------------------------- room

def room(rng, s: dict, geometry: np.ndarray, num_speakers: int, num_noises: int):
  """(room, mic positions [M, 3], talker positions [K, P, 3] (P places each), noise
  positions, rt60, dims)."""
  dims = np.array([rng.uniform(3.5, 10.0), rng.uniform(3.0, 8.0), rng.uniform(2.4, 4.0)])
  rt60 = float(rng.uniform(*s["rt60"]))
  absorption, order = pra.inverse_sabine(rt60, dims)
  walls = ["east", "west", "north", "south", "floor", "ceiling"]
  materials = {w: pra.Material(float(np.clip(absorption * rng.uniform(0.6, 1.4), 0.02, 0.95)))
               for w in walls}
  order = int(min(order, s["max_order"]))
  if s["ray_tracing"]:
    room = pra.ShoeBox(dims, fs=SAMPLE_RATE, materials=materials, max_order=3,
                       ray_tracing=True, air_absorption=True)
    room.set_ray_tracing(receiver_radius=0.5, n_rays=4000, energy_thres=1e-5)
  else:
    room = pra.ShoeBox(dims, fs=SAMPLE_RATE, materials=materials, max_order=order,
                       air_absorption=True)
  centre = np.array([rng.uniform(1.2, dims[0] - 1.2), rng.uniform(1.2, dims[1] - 1.2),
                     rng.uniform(0.72, 0.8)])
  turn = rng.uniform(0, 2 * np.pi)
  rot = np.array([[np.cos(turn), -np.sin(turn), 0], [np.sin(turn), np.cos(turn), 0], [0, 0, 1]])
  mics = centre + geometry @ rot.T
  room.add_microphone_array(mics.T)

  def place(azimuth, distance, height):
    p = centre + np.array([distance * np.cos(azimuth), distance * np.sin(azimuth), 0.0])
    p[:2] = np.clip(p[:2], 0.35, dims[:2] - 0.35)
    p[2] = min(height, dims[2] - 0.3)
    return p

  places = 2 if s["move"] else 1
  azimuths = rng.uniform(0, 2 * np.pi, num_speakers)
  if s["separation_deg"] and num_speakers > 1:       # two talkers close in direction
    azimuths[1] = azimuths[0] + np.deg2rad(s["separation_deg"]) * rng.choice([-1, 1])
  talkers = []
  for k in range(num_speakers):
    standing = rng.random() < s["standing"]
    distance = rng.uniform(*s["distance"])
    height = rng.uniform(1.5, 1.8) if standing else rng.uniform(1.1, 1.3)
    spots = [place(azimuths[k], distance, height)]
    for _ in range(places - 1):                       # a second place, up to `move` m away
      step = rng.uniform(0.3, 1.0) * s["move"]
      a = rng.uniform(0, 2 * np.pi)
      spots.append(np.concatenate([np.clip(spots[0][:2] + step * np.array([np.cos(a), np.sin(a)]),
                                           0.35, dims[:2] - 0.35), spots[0][2:]]))
    talkers.append(spots)
  noises = [place(rng.uniform(0, 2 * np.pi), rng.uniform(2.0, 5.0), rng.uniform(0.3, 2.2))
            for _ in range(num_noises)]
  for p in [q for spots in talkers for q in spots] + noises:
    room.add_source(p)
  room.compute_rir()
  return room, mics, np.array(talkers), np.array(noises), rt60, dims


def through(room, source: int, dry: np.ndarray) -> np.ndarray:
  """[M, len(dry)] the dry signal played from source `source` of the room."""
  rirs = [room.rir[m][source] for m in range(len(room.rir))]
  h = np.zeros((len(rirs), max(len(r) for r in rirs)))
  for m, r in enumerate(rirs):
    h[m, :len(r)] = r
  delay = pra.constants.get("frac_delay_length") // 2
  return scipy.signal.fftconvolve(dry[None], h, axes=-1)[:, delay:delay + len(dry)]


def diffuse_noise(rng, mics: np.ndarray, n: int, colour: float) -> np.ndarray:
  """[M, n] spherically isotropic noise: each frequency's channels mixed so that their
  coherence is sinc(2 f d / c) (d the microphones' distances); spectrum 1 / f^colour."""
  n_fft = 512
  d = np.linalg.norm(mics[:, None] - mics[None, :], axis=-1)
  freqs = np.fft.rfftfreq(n_fft, 1 / SAMPLE_RATE)
  _, _, spec = scipy.signal.stft(rng.standard_normal((len(mics), n)), nperseg=n_fft)
  for i, f in enumerate(freqs):
    gamma = np.sinc(2 * f * d / SOUND_SPEED)
    w, v = np.linalg.eigh(gamma)
    spec[:, i] = (v * np.sqrt(np.maximum(w, 0))) @ v.T @ spec[:, i]
    spec[:, i] *= 1.0 / max(f, 50.0) ** (colour / 2)
  return scipy.signal.istft(spec, nperseg=n_fft)[1][:, :n]


def modulated(rng, n: int) -> np.ndarray:
  """A point noise whose level moves: brown-ish noise under a slow sine or an on/off gate."""
  x = scipy.signal.lfilter([1.0], [1.0, -rng.uniform(0.5, 0.98)], rng.standard_normal(n))
  t = np.arange(n) / SAMPLE_RATE
  if rng.random() < 0.5:
    env = 0.55 + 0.45 * np.sin(2 * np.pi * rng.uniform(0.05, 1.5) * t + rng.uniform(0, 6.3))
  else:
    flips = np.cumsum(rng.exponential(rng.uniform(1.0, 6.0), size=int(n / SAMPLE_RATE) + 2))
    env = np.convolve(0.1 + 0.9 * (np.searchsorted(flips, t) % 2), np.ones(800) / 800, "same")
  return x * env
