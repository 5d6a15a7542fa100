"""Whole dev meetings for meeting-level evaluation (SPEC section 9).

Meetings are simulated from voices training never hears, with the spread SPEC section 9
asks for: 2-4 talkers 0.5-3 m from the array, 60-120 s, RT60 0.2-0.7 s, SNR 5-25 dB
(point-source + diffuse noise), ~15 % of the speech overlapped, back-channels. Each set is
cached under a key of everything that changes it and is complete when `corpus.json` exists.
"""

import hashlib
import json
import logging
import pathlib

import ml_collections
import numpy as np

from jaxdiar.data import audio as audio_lib
from jaxdiar.data import simulate as sim_lib
from jaxdiar.io import atomic
from jaxdiar.io import rttm

log = logging.getLogger(__name__)


def dev_sim_config() -> ml_collections.ConfigDict:
  """Simulator settings of the dev meetings (SPEC section 9)."""
  return ml_collections.ConfigDict(dict(
      room_min=[4.0, 4.0, 2.5], room_max=[9.0, 7.0, 3.5], rt60=[0.2, 0.7], max_image_order=20,
      speakers=[2, 4], overlap_target=0.15, overlap_range=[0.10, 0.20], pause_mean=0.4,
      backchannel_prob=0.15, snr_db=[5.0, 25.0], peak=[0.2, 0.9], distance=[0.5, 3.0]))


def make(speech_dir: str, out, *, num_meetings: int, seed: int, geometry,
         duration=(60.0, 120.0), sample_rate: int = 16000, progress: bool = True) -> list[dict]:
  """Simulate (once) `num_meetings` meetings into `out`; returns their manifest entries.

  Meeting i lasts a duration drawn from `duration` with the seed; `<uri>.wav`, `<uri>.rttm`,
  `<uri>.json` as the simulator writes them.
  """
  out = pathlib.Path(out).expanduser()
  manifest = out / "corpus.json"
  if manifest.exists():
    return json.loads(manifest.read_text())["meetings"]
  out.mkdir(parents=True, exist_ok=True)
  source = sim_lib.speech_source(speech_dir, fallback_prefix="dev")
  sim = dev_sim_config()
  meetings = []
  index = 0
  while len(meetings) < num_meetings:
    # Meetings whose overlap falls outside sim.overlap_range are drawn again (next index).
    seconds = float(np.random.default_rng([seed, index, 7]).uniform(*duration))
    audio, turns, scene = sim_lib.simulate_meeting(source, index, seed, sim, geometry, seconds,
                                                   sample_rate)
    index += 1
    lo, hi = sim.overlap_range
    if not lo <= scene["overlap_ratio"] <= hi:
      continue
    if progress:
      log.info("dev meeting %d/%d: %s, %.0f s, %d talkers, overlap %.2f", len(meetings) + 1,
               num_meetings, scene["uri"], seconds, len(scene["speakers"]),
               scene["overlap_ratio"])
    uri = scene["uri"]
    audio_lib.write_wav(out / f"{uri}.wav", audio, sample_rate)
    rttm.write_rttm(out / f"{uri}.rttm", turns)
    atomic.write_text(out / f"{uri}.json", json.dumps(scene, indent=1, ensure_ascii=False))
    meetings.append(dict(uri=uri, seconds=seconds, num_speakers=len(scene["speakers"]),
                         overlap_ratio=scene["overlap_ratio"], rt60=scene["rt60"],
                         snr_db=scene["snr_db"]))
  atomic.write_text(manifest, json.dumps(dict(seed=seed, speech=str(speech_dir),
                                              meetings=meetings), indent=1))
  return meetings


def cached(speech_dir: str, *, num_meetings: int, seed: int, geometry,
           cache_dir: str = "~/.cache/jaxdiar", progress: bool = True):
  """(folder, meetings) of the dev set for these settings, simulated on first use."""
  key = hashlib.sha1(json.dumps([str(speech_dir), num_meetings, seed, geometry,
                                 dev_sim_config().to_dict(), sim_lib.VERSION],
                                sort_keys=True).encode())
  folder = pathlib.Path(cache_dir).expanduser() / f"devmeetings-{key.hexdigest()[:10]}"
  return folder, make(speech_dir, folder, num_meetings=num_meetings, seed=seed,
                      geometry=geometry, progress=progress)
