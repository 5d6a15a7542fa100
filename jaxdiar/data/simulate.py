"""Meeting simulator: 8-microphone recordings of 1-4 talkers in shoebox rooms.

Each meeting is deterministic from (seed, index): the same seed writes the same bytes,
whatever the number of worker processes. Per meeting it writes `<id>.wav` (C channels,
16-bit PCM), `<id>.rttm` (turns tight to the speech) and `<id>.json` (the scene). The corpus
is complete when `corpus.json` exists; every file is written to a temporary name first.
"""

from collections.abc import Sequence
import concurrent.futures
import dataclasses
import functools
import json
import logging
import math
import multiprocessing
import os
import pathlib
import threading
import time

import librosa
import numpy as np
import pyroomacoustics as pra
import scipy.signal
import tqdm

from jaxdiar.data import audio as audio_lib
from jaxdiar.io import atomic
from jaxdiar.io import rttm

log = logging.getLogger(__name__)

FALLBACK_WARNING = (
    "jaxdiar.simulate: no --speech folder given; using the built-in procedural speech-like "
    "source (harmonic, formant-filtered babble). Results on it say little about real speech.")
# Bumped when the same settings and seed give other meetings (cached dev sets key on it).
# 2 (2026-12-01): a talker never overlaps their own previous utterance (before, a talker kept
# for the next turn could be placed over their own speech: 2-4 % of the dev reference talk).
VERSION = 2

_PRA_DELAY = pra.constants.get("frac_delay_length") // 2   # pyroomacoustics' filter delay.


@dataclasses.dataclass(frozen=True)
class SpeechSource:
  """Single-speaker utterances: speaker -> list of files, or the procedural fallback."""
  utterances: dict[str, tuple[str, ...]]
  procedural: bool = False

  @property
  def speakers(self) -> list[str]:
    return sorted(self.utterances)


def speech_source(folders: str | Sequence[str] | None, num_fallback_speakers: int = 16,
                  fallback_prefix: str = "synth") -> SpeechSource:
  """Speech from folders laid out <speaker>/.../<utterance>.(wav|flac), or the fallback.

  `folders` may be a comma-separated string. Raises AudioError when a folder holds no audio.
  """
  if isinstance(folders, str):
    folders = [f for f in folders.split(",") if f.strip()]
  if not folders:
    return SpeechSource({f"{fallback_prefix}{i:03d}": (f"{fallback_prefix}{i:03d}",)
                         for i in range(num_fallback_speakers)}, procedural=True)
  utterances: dict[str, list[str]] = {}
  for folder in folders:
    folder = pathlib.Path(folder).expanduser()
    if not folder.is_dir():
      raise audio_lib.AudioError(f"{folder}: speech folder does not exist")
    for spk_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
      files = sorted(str(f) for f in spk_dir.rglob("*")
                     if f.suffix.lower() in audio_lib.AUDIO_EXTENSIONS)
      if files:
        utterances.setdefault(spk_dir.name, []).extend(files)
  if not utterances:
    raise audio_lib.AudioError(
        f"{', '.join(map(str, folders))}: no speech found; expected <speaker>/<utterance>"
        f"{'|'.join(audio_lib.AUDIO_EXTENSIONS)} (speaker = first folder level)")
  return SpeechSource({k: tuple(v) for k, v in utterances.items()})


def split_speakers(source: SpeechSource, dev_fraction: float, seed: int):
  """Disjoint (train, dev) sources: dev voices are never heard in training."""
  speakers = np.random.default_rng(seed).permutation(source.speakers)
  num_dev = max(1, int(round(dev_fraction * len(speakers))))
  if num_dev >= len(speakers):
    raise ValueError(f"need at least 2 speakers to hold out dev voices, got {len(speakers)}")
  pick = lambda names: SpeechSource({n: source.utterances[n] for n in sorted(names)},
                                    source.procedural)
  return pick(speakers[num_dev:]), pick(speakers[:num_dev])


# ----------------------------------------------------------------------------- speech


@functools.lru_cache(maxsize=256)
def _load_utterance(path: str, sample_rate: int) -> np.ndarray:
  audio = audio_lib.read(path, sample_rate)
  return audio.mean(axis=0)


def _procedural_utterance(speaker: str, rng: np.random.Generator, sample_rate: int):
  """A speech-like utterance: voiced syllables with a speaker-specific pitch and vocal-tract
  length, formant filtering, unvoiced bursts and word pauses."""
  voice = np.random.default_rng([ord(c) for c in speaker])   # stable across processes
  f0_base = voice.uniform(90, 140) if voice.random() < 0.5 else voice.uniform(170, 250)
  tract = voice.uniform(0.85, 1.2)                  # formant scaling
  vowels = np.array([[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240],
                     [530, 1840, 2480], [640, 1190, 2390]]) * tract
  pieces = []
  for _ in range(rng.integers(4, 14)):              # words
    for _ in range(rng.integers(1, 4)):             # syllables
      dur = rng.uniform(0.08, 0.25)
      n = int(dur * sample_rate)
      t = np.arange(n) / sample_rate
      f0 = f0_base * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(1, 4) * t + rng.uniform(0, 6)))
      phase = 2 * np.pi * np.cumsum(f0) / sample_rate
      excitation = sum(np.sin(k * phase) / k for k in range(1, 30))
      y = excitation
      for formant in vowels[rng.integers(len(vowels))]:
        b, a = scipy.signal.iirpeak(min(formant, sample_rate / 2 - 100), 8, fs=sample_rate)
        y = scipy.signal.lfilter(b, a, y)
      y = y * np.hanning(n)
      if rng.random() < 0.3:                        # fricative onset
        burst = rng.standard_normal(int(0.05 * sample_rate)) * 0.1
        y = np.concatenate([scipy.signal.lfilter(*scipy.signal.butter(2, 3000, "high",
                                                                    fs=sample_rate), burst), y])
      pieces.append(y)
    pieces.append(np.zeros(int(rng.uniform(0.03, 0.2) * sample_rate)))
  y = np.concatenate(pieces)
  return (y / (np.abs(y).max() + 1e-9) * 0.5).astype(np.float32)


def _speech_segments(x: np.ndarray, sample_rate: int, top_db: float = 35.0,
                     min_gap: float = 0.25):
  """(start, end) sample intervals of speech: librosa.effects.split, short gaps merged."""
  intervals = librosa.effects.split(x, top_db=top_db, frame_length=512, hop_length=128)
  merged: list[list[int]] = []
  for s, e in intervals:
    if merged and s - merged[-1][1] < min_gap * sample_rate:
      merged[-1][1] = e
    else:
      merged.append([int(s), int(e)])
  return [(s, e) for s, e in merged if e - s >= 0.05 * sample_rate]


# ---------------------------------------------------------------------------- meeting


def simulate_meeting(source: SpeechSource, index: int, seed: int, sim, geometry,
                     duration: float, sample_rate: int):
  """One meeting. Returns (audio [C, N] int16, turns, scene dict)."""
  rng = np.random.default_rng([seed, index])
  uri = f"meeting{index:05d}"
  n = int(round(duration * sample_rate))
  lo, hi = sim.speakers
  num_spk = int(rng.integers(lo, min(hi, len(source.speakers)) + 1))
  speakers = list(rng.choice(source.speakers, size=num_spk, replace=False))

  # -- conversation timeline on dry per-speaker tracks
  tracks = np.zeros((num_spk, n), np.float32)
  levels = rng.uniform(-3, 3, size=num_spk)         # dB per talker
  turns: list[rttm.Turn] = []
  utterances_used: list[dict] = []

  def utterance(k: int):
    name = speakers[k]
    if source.procedural:
      x = _procedural_utterance(name, rng, sample_rate)
      label = f"procedural:{name}"
    else:
      label = source.utterances[name][rng.integers(len(source.utterances[name]))]
      x = _load_utterance(label, sample_rate)
    segs = _speech_segments(x, sample_rate)
    if not segs:
      return None
    x = x[segs[0][0]:segs[-1][1]]                   # trim the edges' silence
    segs = [(s - segs[0][0], e - segs[0][0]) for s, e in segs]
    rms = np.sqrt(np.mean(x ** 2)) + 1e-9
    return x * (0.05 * 10 ** (levels[k] / 20) / rms), segs, label

  own_end = np.zeros(num_spk, np.int64)     # nobody talks over themselves

  def place(k: int, x, segs, label, start: int) -> tuple[int, int]:
    """Talker k's utterance from `start`, or from where k last stopped if that is later;
    returns (start, end) in samples, end 0 when it does not fit."""
    start = max(0, start, int(own_end[k]))
    end = min(n, start + len(x))
    if end <= start:
      return start, 0
    tracks[k, start:end] += x[:end - start]
    for s, e in segs:
      s, e = start + s, min(start + e, end)
      if e > s:
        turns.append(rttm.Turn(uri, s / sample_rate, e / sample_rate, speakers[k]))
    utterances_used.append(dict(speaker=speakers[k], source=label, start=start / sample_rate,
                                end=end / sample_rate))
    own_end[k] = end
    return start, end

  t = int(rng.uniform(0.1, 1.0) * sample_rate)
  last_start, last_end, current = 0, 0, int(rng.integers(num_spk))
  speech_total, overlap_total = 1e-9, 0.0
  while t < n:
    if num_spk > 1 and rng.random() < 0.85:
      current = int((current + rng.integers(1, num_spk)) % num_spk)
    u = utterance(current)
    if u is None:
      continue
    x, segs, label = u
    # Chase the target overlap ratio: overlap the previous turn while below it.
    overlapping = (num_spk > 1 and last_end > 0 and overlap_total / speech_total
                   < 1.3 * sim.overlap_target and rng.random() < 0.8)
    if overlapping:
      back = rng.uniform(0.5, min(3.0, 0.8 * (last_end - last_start) / sample_rate + 0.5))
      start = max(last_start, last_end - int(back * sample_rate))
    else:
      start = last_end + int(min(rng.exponential(sim.pause_mean), 2.5) * sample_rate)
    start, end = place(current, x, segs, label, start)
    if end == 0:
      break
    if num_spk > 1 and rng.random() < sim.backchannel_prob:
      other = int((current + rng.integers(1, num_spk)) % num_spk)
      b = utterance(other)
      if b is not None:
        bx, bsegs, blabel = b
        blen = int(rng.uniform(0.3, 0.9) * sample_rate)
        bsegs = [(s, min(e, blen)) for s, e in bsegs if s < blen]
        place(other, bx[:blen], bsegs, blabel,
              start + int(rng.uniform(0.2, 0.8) * max(end - start - blen, 1)))
    overlap_total, speech_total = _overlap_stats(turns, sample_rate, n)
    last_start, last_end = start, max(end, last_end)
    t = last_end

  # -- room acoustics
  room_dims = rng.uniform(sim.room_min, sim.room_max)
  rt60 = rng.uniform(*sim.rt60)
  absorption, max_order = pra.inverse_sabine(rt60, room_dims)
  room = pra.ShoeBox(room_dims, fs=sample_rate, materials=pra.Material(absorption),
                     max_order=int(min(max_order, sim.max_image_order)))
  center = np.array([rng.uniform(1.0, room_dims[0] - 1.0), rng.uniform(1.0, room_dims[1] - 1.0),
                     rng.uniform(0.7, 1.2)])
  rotation = rng.uniform(0, 2 * np.pi)
  rot = np.array([[math.cos(rotation), -math.sin(rotation), 0],
                  [math.sin(rotation), math.cos(rotation), 0], [0, 0, 1]])
  mics = center + np.asarray(geometry) @ rot.T                       # [C, 3]
  room.add_microphone_array(mics.T)
  positions = []
  distance = sim.get("distance", None)   # optional [min, max] talker-to-array metres
  for k in range(num_spk + 1):                                       # talkers + a noise source
    for _ in range(100):
      if distance and k < num_spk:       # at a drawn distance, pulled inside the walls
        d, azimuth = rng.uniform(*distance), rng.uniform(0, 2 * np.pi)
        p = np.array([center[0] + d * math.cos(azimuth), center[1] + d * math.sin(azimuth),
                      rng.uniform(1.1, 1.8)])
        p[:2] = np.clip(p[:2], 0.4, room_dims[:2] - 0.4)
        break
      p = np.array([rng.uniform(0.4, room_dims[0] - 0.4), rng.uniform(0.4, room_dims[1] - 0.4),
                    rng.uniform(1.1, 1.8)])
      if np.linalg.norm(p[:2] - center[:2]) > 0.5:
        break
    positions.append(p)
    room.add_source(p)
  room.compute_rir()
  num_mics = len(mics)

  def reverberate(k: int, dry: np.ndarray) -> np.ndarray:
    rirs = room.rir  # [mic][source]
    length = max(len(rirs[m][k]) for m in range(num_mics))
    h = np.zeros((num_mics, length))
    for m in range(num_mics):
      h[m, :len(rirs[m][k])] = rirs[m][k]
    wet = scipy.signal.fftconvolve(dry[None], h, axes=-1)
    return wet[:, _PRA_DELAY:_PRA_DELAY + n]

  speech = sum(reverberate(k, tracks[k]) for k in range(num_spk))
  # -- noise: a point source (coloured) through the room, plus diffuse-like sensor noise
  snr = rng.uniform(*sim.snr_db)
  speech_power = np.mean(speech ** 2) + 1e-12
  point = scipy.signal.lfilter([1.0], [1.0, -0.95], rng.standard_normal(n))
  point = reverberate(num_spk, point)
  diffuse = scipy.signal.lfilter([1.0], [1.0, -0.7], rng.standard_normal((num_mics, n)), axis=-1)
  noise_power = speech_power / 10 ** (snr / 10)
  noise = (point * np.sqrt(0.5 * noise_power / (np.mean(point ** 2) + 1e-12))
           + diffuse * np.sqrt(0.5 * noise_power / (np.mean(diffuse ** 2) + 1e-12)))
  mix = speech + noise
  peak = rng.uniform(*sim.peak)
  mix = mix * (peak / (np.abs(mix).max() + 1e-9))

  overlap_ratio = overlap_total / speech_total if turns else 0.0
  scene = dict(uri=uri, seed=seed, index=index, sample_rate=sample_rate, duration=duration,
               room=room_dims.tolist(), rt60=float(rt60), max_order=int(room.max_order),
               array_center=center.tolist(), array_rotation_deg=float(np.rad2deg(rotation)),
               speakers=[dict(name=s, position=positions[k].tolist(), level_db=float(levels[k]))
                         for k, s in enumerate(speakers)],
               noise_position=positions[-1].tolist(), snr_db=float(snr), peak=float(peak),
               overlap_ratio=float(overlap_ratio), procedural_speech=source.procedural,
               utterances=utterances_used)
  return audio_lib.to_int16(mix.astype(np.float32)), turns, scene


def _overlap_stats(turns, sample_rate, n, hop: int = 160):
  """(seconds with >= 2 talkers, seconds with >= 1 talker) on a 10 ms grid."""
  count = np.zeros(n // hop + 1, np.int32)
  for t in turns:
    count[int(t.onset * sample_rate) // hop:int(t.offset * sample_rate) // hop] += 1
  return float(np.sum(count >= 2)) * hop / sample_rate, float(np.sum(count >= 1)) * hop / sample_rate


def overlap_ratio(turns, duration: float, sample_rate: int = 16000) -> float:
  """Fraction of speech time with at least two talkers."""
  overlap, speech = _overlap_stats(turns, sample_rate, int(duration * sample_rate))
  return overlap / speech if speech else 0.0


# ----------------------------------------------------------------------------- corpus


def exit_with_parent(parent: int, every: float = 1.0):
  """In a worker process: end it (`os._exit`) once `parent` is no longer its parent (killed),
  checked every `every` seconds by a daemon thread. A process pool's idle worker otherwise
  waits for its next task for good when the parent is killed (`kill -9`, a session's end)."""

  def watch():
    while os.getppid() == parent:
      time.sleep(every)
    os._exit(0)

  threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def _simulate_and_write(args):
  """Simulate and write one meeting; a meeting a killed run finished (its scene JSON, written
  last, exists with the same seed, index and length) is not simulated again."""
  source, index, seed, sim, geometry, duration, sample_rate, out = args
  done = pathlib.Path(out) / f"meeting{index:05d}.json"
  if done.exists():
    try:
      scene = json.loads(done.read_text(encoding="utf-8"))
      if (scene["seed"], scene["index"], scene["duration"]) == (seed, index, duration):
        return scene["uri"], scene["overlap_ratio"], len(scene["speakers"])
    except (json.JSONDecodeError, KeyError):
      pass
  audio, turns, scene = simulate_meeting(source, index, seed, sim, geometry, duration,
                                         sample_rate)
  uri = scene["uri"]
  out = pathlib.Path(out)
  audio_lib.write_wav(out / f"{uri}.wav", audio, sample_rate)
  rttm.write_rttm(out / f"{uri}.rttm", turns)
  atomic.write_text(out / f"{uri}.json", json.dumps(scene, indent=1, ensure_ascii=False))
  return uri, scene["overlap_ratio"], len(scene["speakers"])


def simulate_corpus(source: SpeechSource, out, num_meetings: int, seed: int, sim, geometry,
                    duration: float, sample_rate: int = 16000, max_workers: int = 1,
                    progress: bool = True) -> dict:
  """Simulate `num_meetings` meetings into `out`; returns and writes the manifest."""
  out = pathlib.Path(out)
  out.mkdir(parents=True, exist_ok=True)
  if source.procedural:
    log.warning(FALLBACK_WARNING)
  jobs = [(source, i, seed, sim, geometry, duration, sample_rate, str(out))
          for i in range(num_meetings)]
  results = []
  bar = tqdm.tqdm(total=num_meetings, desc=f"simulating {out.name}", unit="meeting",
                  disable=not progress)
  if max_workers > 1:
    ctx = multiprocessing.get_context("spawn")   # safe beside JAX's threads
    with concurrent.futures.ProcessPoolExecutor(max_workers, mp_context=ctx,
                                                initializer=exit_with_parent,
                                                initargs=(os.getpid(),)) as pool:
      for r in pool.map(_simulate_and_write, jobs):
        results.append(r)
        bar.update()
  else:
    for job in jobs:
      results.append(_simulate_and_write(job))
      bar.update()
  bar.close()
  manifest = dict(num_meetings=num_meetings, seed=seed, sample_rate=sample_rate,
                  duration=duration, num_channels=len(geometry),
                  speakers=sorted({s for s in source.speakers}),
                  procedural_speech=source.procedural,
                  meetings=[dict(uri=u, overlap_ratio=o, num_speakers=k) for u, o, k in results])
  atomic.write_text(out / "corpus.json", json.dumps(manifest, indent=1, ensure_ascii=False))
  return manifest
