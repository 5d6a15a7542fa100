"""The pool folder of `jaxdiar.online`: meetings simulated into it by worker processes, or
annotated real recordings imported beside them; each meeting one .npz (`save_meeting`),
written under a temporary name then renamed (`DevicePool.refresh` reads finished ones only)."""

import concurrent.futures
import logging
import multiprocessing
import os
import pathlib
import time

import numpy as np

from jaxdiar.data import audio as audio_lib
from jaxdiar.data import corpus as corpus_lib
from jaxdiar.data import simulate as sim_lib
from jaxdiar.io import atomic

log = logging.getLogger(__name__)


def save_meeting(path, audio: np.ndarray, activity: np.ndarray, speakers, mics=None) -> None:
  """One pool meeting (what `DevicePool.refresh` reads): int16 audio [C, N], frame activity
  [T, K], the K talkers' names and, where known, the microphones' positions [C, 3] (metres),
  written under a temporary name then renamed."""
  extra = {} if mics is None else dict(mics=np.asarray(mics, np.float32))
  with atomic.atomic_path(path) as tmp, open(tmp, "wb") as f:
    np.savez(f, audio=audio, activity=activity, speakers=np.array(speakers), **extra)


def _simulate_worker(args) -> int:
  (speech, out, seed, worker, workers, sim, geometry, duration, sample_rate, hop,
   deadline) = args
  source = sim_lib.speech_source(speech)
  out = pathlib.Path(out)
  made = 0
  index = worker
  while made == 0 or time.time() < deadline:          # at least one meeting per worker
    audio, turns, scene = sim_lib.simulate_meeting(source, index, seed, sim, geometry,
                                                   duration, sample_rate)
    names = [s["name"] for s in scene["speakers"]]
    activity = corpus_lib.frame_activity(turns, names, 1 + audio.shape[1] // hop, hop,
                                         sample_rate)
    save_meeting(out / f"meeting{index:06d}.npz", audio, activity, names)
    made += 1
    index += workers
  return made


def simulate_pool(speech: str, out, *, workers: int, seconds: float, seed: int, sim,
                  geometry, duration: float, sample_rate: int = 16000, hop: int = 256) -> int:
  """Simulate meetings into `out` with `workers` processes until `seconds` have passed (at
  least one meeting each); returns how many were made."""
  out = pathlib.Path(out)
  out.mkdir(parents=True, exist_ok=True)
  deadline = time.time() + seconds
  jobs = [(speech, str(out), seed, w, workers, sim, geometry, duration, sample_rate, hop,
           deadline) for w in range(workers)]
  ctx = multiprocessing.get_context("spawn")
  with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx,
                                              initializer=sim_lib.exit_with_parent,
                                              initargs=(os.getpid(),)) as pool:
    return sum(pool.map(_simulate_worker, jobs))


def import_corpus(corpus, out, *, channels: int, meeting_seconds: float, max_speakers: int,
                  uris=None, copies: int = 1, sample_rate: int = 16000, hop: int = 256) -> int:
  """Annotated recordings (a `jaxdiar.data.corpus` folder: RTTM, audio, optional UEM) as pool
  meetings, so that real meetings train beside (or instead of) simulated ones.

  Each recording is cut into pieces of `meeting_seconds` inside its UEM (the whole file without
  one); a region shorter than that is repeated end to end until it is long enough (a real
  excerpt of 30 s still fills a 60 s pool slot). One-channel audio is copied to every one of the
  pool's `channels` (a one-channel model draws one of them); other channel counts must match.
  A piece with more talkers than `max_speakers` is skipped. Each piece is written `copies`
  times (weight against the simulated meetings). Returns how many files were written."""
  out = pathlib.Path(out)
  out.mkdir(parents=True, exist_ok=True)
  length = int(round(meeting_seconds * sample_rate))
  written = skipped = 0
  for meeting in corpus_lib.read_corpus(corpus, uris):
    audio = audio_lib.read(meeting.audio_path, sample_rate)
    if audio.shape[0] == 1:
      audio = np.repeat(audio, channels, axis=0)
    elif audio.shape[0] != channels:
      raise ValueError(f"{meeting.audio_path}: {audio.shape[0]} channels, the pool has "
                       f"{channels} (one-channel recordings are copied to all)")
    regions = meeting.uem or ((0.0, audio.shape[1] / sample_rate),)
    for r, (begin, end) in enumerate(regions):
      a = int(round(begin * sample_rate))
      b = min(int(round(end * sample_rate)), audio.shape[1])
      if b - a < hop:
        continue
      starts = list(range(a, b - length + 1, length)) or [a]
      for k, s in enumerate(starts):
        piece = audio[:, s:min(s + length, b)]
        frames = 1 + piece.shape[1] // hop
        activity = corpus_lib.frame_activity(meeting.turns, meeting.speakers, frames, hop,
                                             sample_rate, start_sample=s)
        present = activity.any(axis=0)                 # the talkers heard in this piece
        names, activity = np.array(meeting.speakers)[present], activity[:, present]
        if len(names) > max_speakers:
          skipped += 1
          continue
        repeats = -(-length // piece.shape[1])       # tile a short region to the slot length
        if repeats > 1:                              # frame t of the tiled piece sits at
          source = np.arange(1 + length // hop) * hop % piece.shape[1] // hop   # t * hop
          activity = activity[np.minimum(source, frames - 1)]
          piece = np.tile(piece, (1, repeats))[:, :length]
        for c in range(copies):
          save_meeting(out / f"meeting-{meeting.uri}-{r:02d}{k:03d}-{c:02d}.npz",
                       audio_lib.to_int16(piece), activity, names)
          written += 1
  if skipped:
    log.warning(f"jaxdiar.online import: skipped {skipped} pieces with more than "
                f"{max_speakers} talkers")
  return written
