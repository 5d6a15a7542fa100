"""Frame decisions: thresholds, the talker count per frame, runs, shortest speech and
pause, turns, exclusive (one talker a frame) decisions."""

import numpy as np

from jaxdiar.io import rttm


def talker_count(count: np.ndarray, speech: np.ndarray, osd: np.ndarray, k: int,
                 o: dict) -> np.ndarray:
  """Talkers per frame from the averaged expected count, P(anyone) and the overlap head:
  the rounded count, at least one where anyone talks, at least two where the overlap head
  fires (osd_threshold < 1), at most the `k` speakers."""
  n = np.minimum(np.maximum(np.floor(count + 0.5).astype(int), speech > o["onset"]), k)
  if o["osd_threshold"] < 1.0:
    n = np.minimum(np.where((osd > o["osd_threshold"]) & (n >= 1), np.maximum(n, 2), n), k)
  return n


def binarize(prob: np.ndarray, onset: float, offset: float, min_speech: int,
             min_silence: int, open_end: bool = False) -> np.ndarray:
  """Hysteresis thresholds, then fill short gaps and drop short segments. [T] -> [T] bool.
  With `open_end` a segment running into the last frame is kept however short (a stream's
  newest frames: it may go on)."""
  active = np.zeros(len(prob), bool)
  on = False
  for t, p in enumerate(prob):
    on = p > onset if not on else p >= offset
    active[t] = on
  return fill_and_drop(active, min_speech, min_silence, open_end)


def min_durations(o: dict, fs: float) -> tuple[int, int]:
  """(min speech, min silence) of the decoding settings `o`, in frames of `fs` seconds."""
  return int(round(o["min_speech_seconds"] / fs)), int(round(o["min_silence_seconds"] / fs))


def binarize_each(score: np.ndarray, o: dict, fs: float, open_end: bool = False) -> np.ndarray:
  """[T, K] bool: `binarize` of each speaker's score [T, K] with the settings `o` (mean
  stitching's decision)."""
  active = np.zeros(score.shape, bool)
  for spk in range(score.shape[1]):
    active[:, spk] = binarize(score[:, spk], o["onset"], o["offset"], *min_durations(o, fs),
                              open_end=open_end)
  return active


def top_speakers(score: np.ndarray, n: np.ndarray) -> np.ndarray:
  """[T, K] bool: the n[t] highest-scoring speakers of each frame t (score [T, K])."""
  order = np.argsort(-score, axis=1)
  rank = np.empty_like(order)
  np.put_along_axis(rank, order, np.arange(score.shape[1])[None, :], axis=1)
  return rank < n[:, None]


def fill_and_drop(active: np.ndarray, min_speech: int, min_silence: int,
                   open_end: bool = False) -> np.ndarray:
  """Fill gaps shorter than min_silence, then drop segments shorter than min_speech (but with
  `open_end` not one that runs into the last frame)."""
  active = active.copy()
  segments = runs(active)
  for (s0, e0), (s1, _) in zip(segments, segments[1:]):
    if s1 - e0 < min_silence:
      active[e0:s1] = True
  for s, e in runs(active):
    if e - s < min_speech and not (open_end and e == len(active)):
      active[s:e] = False
  return active


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
  """(start, end) of each run of True in a [T] mask, end exclusive."""
  edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
  return list(zip(np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]))


def turns_of(active: np.ndarray, fs: float, uri: str, duration: float) -> list[rttm.Turn]:
  """The turns of a [T, K] decision (speaker k labelled `spk{k:02d}`), in time order."""
  turns = []
  for spk in range(active.shape[1]):
    for a, b in runs(active[:, spk]):
      turns.append(rttm.Turn(uri, a * fs, min(b * fs, duration), f"spk{spk:02d}"))
  return sorted(turns)


def exclusive_active(active: np.ndarray, score: np.ndarray) -> np.ndarray:
  """[T, K] with at most one speaker a frame: where several are marked, the one with the
  highest stitched score (the union of speech is unchanged)."""
  if not active.shape[1]:
    return active.copy()
  masked = np.where(active, score, -np.inf)
  out = np.zeros_like(active)
  talking = active.any(axis=1)
  out[np.flatnonzero(talking), np.argmax(masked[talking], axis=1)] = True
  return out
