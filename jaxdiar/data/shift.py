"""The shift suite (SPEC section 9): meetings that each break one habit of the training
simulator, scored after a choice is made and never used to make one.

  python -m jaxdiar.data.shift --speech DIR --set uneven --out DIR [--meetings 16] [--seed S]

Written to share as little as possible with `jaxdiar.data.simulate`:
- turn-taking: a talk-budget process. Each talker gets a share of the talk (Dirichlet alpha;
  low alpha: uneven), the next turn goes to a talker drawn by the talk it has left; turn
  lengths are log-normal; the floor-transfer offset is normal (negative: the next talker
  starts before the previous one stops, as measured in conversation corpora); listeners
  interject short acknowledgements at random; in long meetings talkers join late and leave
  early.
- speech: each talker reads its utterances as one stream, cut at the turn's length; the
  reference marks where the dry stream has energy (gaps over 0.3 s split a turn), not the
  reverberant signal.
- rooms: walls of unequal absorption around the Sabine value, seated or standing talkers
  (mouth 1.1-1.3 m / 1.5-1.8 m, the array at a table's height), high image orders or
  pyroomacoustics' hybrid ray tracing; talkers that move between turns.
- noise: spherically isotropic (diffuse) noise with the array's spatial coherence
  (sinc(2 f d / c) between microphones), amplitude-modulated point sources, babble of voices
  that are not in the meeting, sensor noise.
- voices and channels: speed and pitch changes per talker, band limits, per-microphone gain
  mismatch, recordings resampled to 44.1 / 48 kHz.

Each meeting is a function of (set, seed, index) alone: the same arguments write the same
bytes. `<uri>.wav`, `<uri>.rttm`, `<uri>.json` and `corpus.json` (the manifest) as
`jaxdiar.data.devmeetings` writes them, so the same benchmark code reads both.
"""

import hashlib
import json
import logging
import pathlib
import time
import zlib

import numpy as np
import pyroomacoustics as pra
import scipy.signal
import soxr

from jaxdiar.data import audio as audio_lib
from jaxdiar.data import corpus as corpus_lib
from jaxdiar.data import shift_scene as scene_lib
from jaxdiar.data.shift_scene import SAMPLE_RATE
from jaxdiar.data.shift_scene import conversation
from jaxdiar.data.shift_scene import diffuse_noise
from jaxdiar.data.shift_scene import voices
from jaxdiar.decoding import frames as frames_lib
from jaxdiar.io import atomic
from jaxdiar.io import rttm
from jaxdiar.training import pool as pool_lib

log = logging.getLogger(__name__)

# Bumped whenever the same set, seed and index give other meetings (the cache keys on it).
# 2: pyroomacoustics' generators seeded per meeting (the ray-traced `heavy` meetings were not
# reproducible; the image-source sets are unchanged).
VERSION = 2
SOUND_SPEED = scene_lib.SOUND_SPEED

# What a set draws from; each set below changes a few of these.
BASE = dict(
    seconds=(60.0, 120.0), speakers=(2, 4), alpha=3.0, minor_seconds=None,
    turn_median=2.5, offset_mean=-0.05, offset_std=0.65, interject_rate=0.06,
    late=False, standing=0.15, separation_deg=None, move=0.0, distance=(0.5, 3.0),
    rt60=(0.2, 0.7), max_order=30, ray_tracing=False, snr_db=(5.0, 25.0), babble=0.0,
    speed=None, pitch=None, band_limit=0.0, gain_db=0.0, rates=None, like=None)

SETS = {
    # Talk shares far from even: one talker speaks only 3-15 s of the meeting.
    "uneven": dict(alpha=0.5, minor_seconds=(3.0, 15.0)),
    "crowd": dict(speakers=(5, 6)),
    # Standing talkers (10-20 degrees above the array's plane) or two at 15 degrees apart.
    "close": dict(standing=0.5, separation_deg=15.0),
    "heavy": dict(rt60=(0.7, 1.1), snr_db=(0.0, 10.0), babble=0.5, max_order=45,
                  ray_tracing=True),
    "voices": dict(speed=(0.9, 1.12), pitch=(-2.5, 2.5), band_limit=0.5, gain_db=3.0),
    "moving": dict(move=1.0),
    # The uneven set's meetings at 44.1 / 48 kHz: the count must not change with the rate.
    "rates": dict(alpha=0.5, minor_seconds=(3.0, 15.0), rates=(44100, 48000), like="uneven"),
    "long": dict(seconds=(600.0, 1200.0), speakers=(3, 6), late=True),
    # The generator's base draws, for other arrays than the 8-mic circle (`--mics` sets).
    "plain": dict(),
}
# Sets of the suite's mean (8-channel); "long" joined in session 30 (2026-12-07), once the
# count's rules scaled with the recording's length (the seven-set mean is kept beside it).
SUITE = ("uneven", "crowd", "close", "heavy", "voices", "moving", "rates", "long")
# The fit meetings: each drawn with its own `randomised` settings, with seeds of their own;
# the long fit meetings likewise, 10-20 min with late joiners most of the time (what chooses
# the count's rules for long recordings; the suite's `long` set is read after).
FIT = "fit"
FIT_LONG = "fit-long"
FITS = (FIT, FIT_LONG)


def randomised(rng: np.random.Generator) -> dict:
  """Generator settings drawn over the suite's ranges (domain randomisation): what the fit
  meetings that choose settings and models are drawn from (the suite's own draws never)."""
  return dict(
      BASE, seconds=(60.0, 150.0), speakers=(2, int(rng.integers(2, 7))),
      alpha=float(np.exp(rng.uniform(np.log(0.4), np.log(4.0)))),
      minor_seconds=(3.0, 20.0) if rng.random() < 0.3 else None,
      standing=float(rng.uniform(0.0, 0.6)),
      separation_deg=20.0 if rng.random() < 0.3 else None,
      move=float(rng.uniform(0.0, 1.0)) if rng.random() < 0.3 else 0.0,
      rt60=(0.2, float(rng.uniform(0.5, 1.1))), max_order=int(rng.integers(20, 46)),
      snr_db=(float(rng.uniform(0.0, 10.0)), 25.0), babble=float(rng.uniform(0.0, 0.5)),
      speed=(0.92, 1.1) if rng.random() < 0.4 else None,
      pitch=(-2.0, 2.0) if rng.random() < 0.3 else None,
      band_limit=float(rng.random() < 0.3) * 0.5, gain_db=float(rng.uniform(0.0, 3.0)))


def fit_settings(set_name: str, seed: int, index: int) -> dict:
  """The generator settings of fit meeting `index` of `set_name` (FIT or FIT_LONG)."""
  rng = np.random.default_rng([seed, zlib.crc32(set_name.encode()), index, 1])
  s = randomised(rng)
  if set_name == FIT_LONG:
    s.update(seconds=(600.0, 1200.0), speakers=(3, max(3, s["speakers"][1])),
             late=bool(rng.random() < 0.7))
  return s


# ---------------------------------------------------------------------------- meeting

def meeting(speech: dict, set_name: str, seed: int, index: int, geometry,
            settings: dict | None = None) -> tuple[np.ndarray, int, list, dict]:
  """One meeting of `set_name` (or `settings` given): (audio [M, N] int16, its sample rate,
  reference turns, scene dict). A function of (set, seed, index) alone."""
  if settings is None:
    settings = fit_settings(set_name, seed, index) if set_name in FITS else SETS[set_name]
  s = dict(BASE, **settings)
  # A set `like` another draws the same meetings (then e.g. resamples them).
  set_id = zlib.crc32((s["like"] or set_name).encode())
  rng = np.random.default_rng([seed, set_id, index])
  uri = f"{set_name}{index:03d}"
  seconds = float(rng.uniform(*s["seconds"]))
  n = int(seconds * SAMPLE_RATE)
  names = sorted(speech)
  lo, hi = s["speakers"]
  k_count = int(rng.integers(lo, min(hi, len(names)) + 1))
  chosen = [names[i] for i in rng.choice(len(names), k_count, replace=False)]
  others = [x for x in names if x not in chosen]
  turns = conversation(rng, k_count, seconds, s)
  geometry = np.asarray(geometry, float)

  # Dry tracks, one per talker and place; the reference from each turn's dry energy.
  places = 2 if s["move"] else 1
  need = np.zeros(k_count)
  for k, _, length in turns:
    need[k] += length
  streams = []
  for k in range(k_count):
    x = scene_lib.talker_stream(speech[chosen[k]], rng, need[k] + 2.0)
    if s["speed"] or s["pitch"]:
      x = scene_lib.perturb(x, rng, s["speed"], s["pitch"])
    streams.append(x * 10 ** (rng.uniform(-4, 4) / 20))
  tracks = np.zeros((k_count, places, n), np.float32)
  cursor = np.zeros(k_count, int)
  reference, spot = [], np.zeros(k_count, int)
  for k, start, length in turns:
    a, m = int(start * SAMPLE_RATE), int(length * SAMPLE_RATE)
    m = min(m, n - a, len(streams[k]) - cursor[k])
    if m <= 0:
      continue
    piece = streams[k][cursor[k]:cursor[k] + m]
    cursor[k] += m
    if s["move"] and rng.random() < 0.3:              # goes to its other place for this turn
      spot[k] = 1 - spot[k]
    ramp = np.minimum(1.0, np.minimum(np.arange(m), np.arange(m)[::-1]) / 80.0)
    tracks[k, spot[k], a:a + m] += piece * ramp
  for k in range(k_count):
    for b, e in frames_lib.runs(scene_lib.active(tracks[k].sum(axis=0))):
      reference.append(rttm.Turn(uri, b / 100, min(e / 100, seconds), chosen[k]))

  babble = bool(rng.random() < s["babble"]) and len(others) >= 2
  num_noises = 1 + (min(4, len(others)) if babble else 0)
  # pyroomacoustics' ray tracing draws from its own generators (numpy's and libroom's C++
  # one), unseeded unless told: seeded here from the meeting's own words (VERSION 2).
  pra.random.seed(numpy=[seed, set_id, index, 3])
  room, mics, talkers, noises, rt60, dims = scene_lib.room(rng, s, geometry, k_count, num_noises)
  wet = np.zeros((len(mics), n))
  for k in range(k_count):
    for p in range(places):
      if np.any(tracks[k, p]):
        wet += scene_lib.through(room, k * places + p, tracks[k, p])
  power = np.mean(wet[0] ** 2) + 1e-12
  snr = float(rng.uniform(*s["snr_db"]))
  parts = [diffuse_noise(rng, mics, n, colour=rng.uniform(0.5, 2.0)),
           scene_lib.through(room, k_count * places, scene_lib.modulated(rng, n))]
  if babble:                                  # voices not in the meeting, far from the array
    for j, name in enumerate(rng.choice(others, num_noises - 1, replace=False)):
      parts.append(scene_lib.through(room, k_count * places + 1 + j, scene_lib.talker_stream(speech[name], rng, seconds)[:n]))
  mix_w = rng.dirichlet(np.ones(len(parts)) * 2)
  noise = sum(w * p / (np.sqrt(np.mean(p[0] ** 2)) + 1e-12) for w, p in zip(mix_w, parts))
  noise *= np.sqrt(power / 10 ** (snr / 10) / (np.mean(noise[0] ** 2) + 1e-12))
  mix = wet + noise + 10 ** (rng.uniform(-70, -55) / 20) * rng.standard_normal(wet.shape)
  band = None
  if rng.random() < s["band_limit"]:          # a narrower channel, as a cheap front end
    band = (float(rng.uniform(100, 400)), float(rng.uniform(3400, 7000)))
    sos = scipy.signal.butter(4, band, btype="bandpass", fs=SAMPLE_RATE, output="sos")
    mix = scipy.signal.sosfilt(sos, mix, axis=-1)
  gains = rng.uniform(-s["gain_db"], s["gain_db"], len(mics)) if s["gain_db"] else np.zeros(len(mics))
  mix *= 10 ** (gains[:, None] / 20)
  mix *= rng.uniform(0.1, 0.8) / (np.abs(mix).max() + 1e-9)
  rate = SAMPLE_RATE
  if s["rates"]:
    rate = int(s["rates"][index % len(s["rates"])])
    mix = soxr.resample(mix.T, SAMPLE_RATE, rate).T
  overlap = _overlap(reference, seconds)
  scene = dict(uri=uri, set=set_name, seed=seed, index=index, version=VERSION, seconds=seconds,
               sample_rate=rate, speakers=chosen, room=dims.tolist(), rt60=rt60,
               snr_db=snr, babble=babble, band=band, gains_db=gains.tolist(),
               positions=talkers.tolist(), mics=mics.tolist(), noise_positions=noises.tolist(),
               talk_seconds={chosen[k]: round(float(sum(t.duration for t in reference
                                                        if t.speaker == chosen[k])), 2)
                             for k in range(k_count)},
               overlap_ratio=overlap, settings=dict(s))
  return audio_lib.to_int16(mix.astype(np.float32)), rate, sorted(reference), scene


def _overlap(turns, seconds: float) -> float:
  """Share of the speech with two or more talkers, on a 10 ms grid."""
  count = np.zeros(int(seconds * 100) + 1, int)
  for t in turns:
    count[int(t.onset * 100):int(t.offset * 100)] += 1
  return float(np.sum(count >= 2) / max(np.sum(count >= 1), 1))


def make(speech_dir, set_name: str, out, *, num_meetings: int = 16, seed: int,
         geometry, progress: bool = True) -> list[dict]:
  """Simulate (once) the meetings of one set into `out`; returns their manifest entries."""
  out = pathlib.Path(out).expanduser()
  manifest = out / "corpus.json"
  if manifest.exists():
    return json.loads(manifest.read_text())["meetings"]
  out.mkdir(parents=True, exist_ok=True)
  speech = voices(speech_dir)
  rows = []
  for i in range(num_meetings):
    uri = f"{set_name}{i:03d}"
    if (out / f"{uri}.json").exists():                # resumed: a killed run keeps its work
      scene = json.loads((out / f"{uri}.json").read_text())
    else:
      audio, rate, turns, scene = meeting(speech, set_name, seed, i, geometry)
      audio_lib.write_wav(out / f"{uri}.wav", audio, rate)
      rttm.write_rttm(out / f"{uri}.rttm", turns)
      atomic.write_text(out / f"{uri}.json", json.dumps(scene, indent=1))
    if progress:
      log.info("shift/%s %d/%d: %.0f s, %d talkers, overlap %.2f, least talk %.1f s", set_name,
               i + 1, num_meetings, scene["seconds"], len(scene["speakers"]),
               scene["overlap_ratio"], min(scene["talk_seconds"].values()))
    rows.append(dict(uri=uri, seconds=scene["seconds"], num_speakers=len(scene["speakers"]),
                     overlap_ratio=scene["overlap_ratio"], rt60=scene["rt60"],
                     snr_db=scene["snr_db"], sample_rate=scene["sample_rate"]))
  atomic.write_text(manifest, json.dumps(dict(set=set_name, seed=seed, speech=str(speech_dir),
                                              version=VERSION, meetings=rows), indent=1))
  return rows


def cached(speech_dir, set_name: str, *, num_meetings: int = 16, seed: int, geometry,
           cache_dir: str = "~/.cache/jaxdiar", progress: bool = True):
  """(folder, meetings) of one set, simulated on first use."""
  key = hashlib.sha1(json.dumps([str(speech_dir), set_name, SETS.get(set_name), num_meetings,
                                 seed, np.asarray(geometry).tolist(), VERSION],
                                sort_keys=True).encode()).hexdigest()[:10]
  folder = pathlib.Path(cache_dir).expanduser() / f"shift-{set_name}-{key}"
  return folder, make(speech_dir, set_name, folder, num_meetings=num_meetings, seed=seed,
                      geometry=geometry, progress=progress)


def random_array(rng: np.random.Generator, num_mics: int = 8) -> np.ndarray:
  """[num_mics, 3] positions (metres, in the array's plane) of a random small array: a circle
  of radius 3-10 cm (with a centre microphone or not), a line (1.5-4 cm spacing), two rows
  (2-5 cm), or points scattered in a disc of radius 3-10 cm at least 1 cm apart."""
  shape = rng.integers(4)
  if shape == 0:
    centre = bool(rng.integers(2))
    ring = num_mics - centre
    angles = rng.uniform(0, 2 * np.pi) + np.arange(ring) * 2 * np.pi / ring
    xy = rng.uniform(0.03, 0.10) * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    xy = np.concatenate([np.zeros((1, 2)), xy]) if centre else xy
  elif shape == 1:
    xy = np.stack([np.arange(num_mics) * rng.uniform(0.015, 0.04), np.zeros(num_mics)], axis=1)
  elif shape == 2:
    cols = -(-num_mics // 2)
    d = rng.uniform(0.02, 0.05)
    xy = np.array([[i % cols * d, i // cols * d] for i in range(num_mics)], float)
  else:
    radius, xy = rng.uniform(0.03, 0.10), np.zeros((0, 2))
    while len(xy) < num_mics:
      p = rng.uniform(-radius, radius, 2)
      if np.hypot(*p) <= radius and all(np.hypot(*(p - q)) >= 0.01 for q in xy):
        xy = np.concatenate([xy, p[None]])
  xy = xy - xy.mean(axis=0)
  return np.concatenate([xy, np.zeros((num_mics, 1))], axis=1)


def pool(speech_dir, out, *, seconds: float, seed: int, geometry, meeting_seconds: float = 60.0,
         max_speakers: int = 4, hop: int = 256, start: int = 0, step: int = 1,
         random_arrays: bool = False) -> int:
  """Training meetings for `jaxdiar.online train`'s pool (`meeting-shift-*.npz`: audio,
  frame activity, talker names, the microphones' positions), each drawn with its own
  `randomised` settings (at most `max_speakers` talkers, `meeting_seconds` long), until
  `seconds` have passed; with `random_arrays`, each with its own `random_array` of as many
  microphones as `geometry` has. Indices start, start + step, ... (one writer per index
  class); returns how many were written."""
  speech = voices(speech_dir)
  out = pathlib.Path(out)
  out.mkdir(parents=True, exist_ok=True)
  deadline = time.time() + seconds
  made, index = 0, start
  while made == 0 or time.time() < deadline:
    path = out / f"meeting-shift-{seed}-{index:06d}.npz"
    if not path.exists():
      settings = randomised(np.random.default_rng([seed, index, 2]))
      settings.update(seconds=(meeting_seconds, meeting_seconds),
                      speakers=(settings["speakers"][0], min(settings["speakers"][1], max_speakers)))
      mics = (random_array(np.random.default_rng([seed, index, 3]), len(geometry))
              if random_arrays else np.asarray(geometry, float))
      audio, rate, turns, scene = meeting(speech, "pool", seed, index, mics, settings)
      frames = 1 + audio.shape[1] // hop
      activity = corpus_lib.frame_activity(turns, scene["speakers"], frames, hop, rate)
      pool_lib.save_meeting(path, audio, activity, scene["speakers"], mics)
      made += 1
    index += step
  return made


if __name__ == "__main__":
  import sys

  from jaxdiar.cli import shift as command    # the command imports this module
  sys.exit(command.main())
