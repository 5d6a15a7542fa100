"""python -m jaxdiar.diarize INPUT... [--model model.jaxdiar] --out OUT.rttm

Long-recording diarization with an exported model: audio read in blocks (memory does not
grow with the length), sliding windows, per-window VAD/OSD and local-speaker embeddings,
clustering across windows into global speakers, stitching, post-processing, RTTM out.
INPUT is a (multi-channel) audio file or an AMI-style folder of per-channel files. Uses
only `jaxdiar.runtime` (no flax, no model code).
"""

import dataclasses
import logging
import pathlib
import sys
import time

import numpy as np
import scipy.cluster.hierarchy
import scipy.ndimage
import scipy.optimize
import scipy.spatial.distance
import tqdm

from jaxdiar import resegment as resegment_lib
from jaxdiar import rttm
from jaxdiar import runtime
from jaxdiar import settings as settings_lib
from jaxdiar import spatial as spatial_lib
from jaxdiar.data import audio as audio_lib


log = logging.getLogger(__name__)

# The most speakers an estimated count gives unless max_speakers says otherwise (a warning
# says when it is reached): every decoding stage stays bounded on long recordings.
MAX_SPEAKERS = 20


class InputError(ValueError):
  """A recording the pipeline cannot diarize (message says why)."""


class Stages:
  """Seconds spent in each named stage of `infer` and `decode` (what benchmarks report):
  `lap(name)` adds the time since the previous lap, `add(name, seconds)` a part timed apart."""

  def __init__(self):
    self.seconds: dict[str, float] = {}
    self._last = time.perf_counter()

  def lap(self, name: str) -> None:
    now = time.perf_counter()
    self.add(name, now - self._last)
    self._last = now

  def add(self, name: str, seconds: float) -> None:
    self.seconds[name] = self.seconds.get(name, 0.0) + seconds


_UNTIMED = Stages()           # what an untimed run laps into (never read)


@dataclasses.dataclass
class Result:
  turns: list[rttm.Turn]
  speech: np.ndarray        # [T, K] stitched speaker probabilities (frame rate = sr / hop)
  overlap: np.ndarray       # [T] stitched overlap probability
  frame_seconds: float
  centroids: np.ndarray | None = None   # [K, E] unit mean embedding of each global speaker
  active: np.ndarray | None = None      # [T, K] the decision the turns are read from
  voice: np.ndarray | None = None       # [K, 256] unit mean d-vector of each (where computed)


def _window_starts(num_samples: int, window: int, step: int, hop: int = 1) -> list[int]:
  """Window starts every `step` samples, the last window reaching the end (its start rounded
  up to whole `hop`s, so that every window's frames are frames of the recording)."""
  if num_samples <= window:
    return [0]
  starts = list(range(0, num_samples - window + 1, step))
  if starts[-1] + window < num_samples:
    starts.append(-(-(num_samples - window) // hop) * hop)
  return starts


def read_block(path, rate: int, target_rate: int, start: int, length: int) -> np.ndarray:
  """[C, length] at target_rate from sample `start` (target-rate samples), zero-padded."""
  if rate == target_rate:
    block = audio_lib.read(path, target_rate, start, start + length)
  else:
    s = int(start * rate / target_rate)
    block = audio_lib.read(path, target_rate, s, s + int(np.ceil(length * rate / target_rate)))
  if block.shape[1] < length:
    block = np.pad(block, ((0, 0), (0, length - block.shape[1])))
  return block[:, :length]


def cluster(embeddings: np.ndarray, window_index: np.ndarray, *, num_speakers=None,
            min_speakers=1, max_speakers=None, threshold: float = 0.6,
            max_embeddings: int = 2000, directions: np.ndarray | None = None,
            spatial_weight: float = 0.0, anchors: np.ndarray | None = None,
            refine: int = 0, min_cluster_size: int = 0, heard: np.ndarray | None = None,
            found_seconds: float | None = None, found_total: float = 2.0) -> np.ndarray:
  """Agglomerative (average-link, cosine) clustering of local-speaker embeddings.

  Two local speakers of one window are different people: their distance is set to the
  maximum so they merge last. With `directions` ([n, G] SRP-PHAT responses over azimuths)
  the distance is (1 - spatial_weight) * embedding distance + spatial_weight * direction
  distance, both cosine. Returns a cluster label per embedding (0..K-1).

  Only the `anchors` (a boolean mask, e.g. the local speakers heard long enough for a
  reliable embedding; default all) are clustered; every other embedding joins the nearest
  cluster centroid, the local speakers of one window going to distinct clusters (Hungarian
  assignment per window). `refine` rounds then reassign every embedding to the centroids of
  the previous round in the same way. Unless the count is given, a cluster of fewer than
  `min_cluster_size` anchors is dissolved (its members join the others in the same way): a
  few local speakers with odd embeddings (overlap, noise) do not become a speaker.

  Short talkers: a talker who speaks a few seconds in the whole meeting has no anchor. With
  `found_seconds` (and `heard`, each local speaker's seconds heard), the local speakers
  that are not anchors, heard at least `found_seconds`, farther than `threshold` from every
  cluster, are clustered among themselves (the same linkage and cut); each such group heard
  `found_total` seconds in all becomes a speaker of its own (unless the count is given).

  Average linkage needs the n x n distances; beyond `max_embeddings` anchors (about 2 h of
  audio at the default window step) an evenly spread subset of them is clustered and the
  rest assigned: memory stays bounded (32 MB of distances at 2000), whatever the length.
  """
  n = len(embeddings)
  if n <= 1:
    return np.zeros(n, int)
  x = embeddings / (np.linalg.norm(embeddings, axis=1, keepdims=True) + 1e-9)
  x = joint_vectors(x, directions, spatial_weight)
  picked = np.flatnonzero(anchors) if anchors is not None and np.sum(anchors) > 1 else np.arange(n)
  if len(picked) > max_embeddings:
    picked = picked[np.unique(np.linspace(0, len(picked) - 1, max_embeddings).round().astype(int))]
  labels = np.full(n, -1)
  labels[picked] = _average_link(x[picked], window_index[picked], num_speakers=num_speakers,
                                 min_speakers=min_speakers, max_speakers=max_speakers,
                                 threshold=threshold)
  if min_cluster_size > 1 and not num_speakers:
    ids, sizes = np.unique(labels[picked], return_counts=True)
    keep = max(min_speakers or 1, int(np.sum(sizes >= min_cluster_size)))
    kept = ids[np.argsort(-sizes, kind="stable")[:keep]]
    labels[picked[~np.isin(labels[picked], kept)]] = -1
  if found_seconds is not None and heard is not None and not num_speakers:
    labels = _found(x, window_index, labels, heard, threshold=threshold,
                    min_seconds=found_seconds, min_total=found_total,
                    room=(max_speakers or n) - len(np.unique(labels[labels >= 0])))
  labels = _assign(x, window_index, labels, labels)
  for _ in range(refine):
    labels = _assign(x, window_index, np.full(n, -1), labels)
  return np.unique(labels, return_inverse=True)[1]


def _found(x, window_index, labels, heard, *, threshold, min_seconds, min_total,
           room) -> np.ndarray:
  """`cluster`'s short talkers: unlabelled local speakers heard `min_seconds`, farther than
  `threshold` (cosine) from every cluster centroid, grouped by the same average linkage; a
  group heard `min_total` seconds founds a cluster (the longest-heard first, `room` at most)."""
  ids = np.unique(labels[labels >= 0])
  if room <= 0 or not len(ids):
    return labels
  centroids = np.stack([x[labels == k].mean(axis=0) for k in ids])
  centroids /= np.linalg.norm(centroids, axis=1, keepdims=True) + 1e-9
  far = np.flatnonzero((labels < 0) & (heard >= min_seconds))
  far = far[1.0 - np.max(x[far] @ centroids.T, axis=1) > threshold] if len(far) else far
  if not len(far):
    return labels
  groups = _average_link(x[far], window_index[far], num_speakers=None, min_speakers=1,
                         max_speakers=None, threshold=threshold)
  totals = np.bincount(groups, weights=heard[far])
  labels = labels.copy()
  for rank, g in enumerate(np.argsort(-totals, kind="stable")):
    if rank >= room or totals[g] < min_total:
      break
    labels[far[groups == g]] = ids.max() + 1 + rank
  return labels


def _unit_responses(response: np.ndarray) -> np.ndarray:
  """Mean-removed unit rows (the direction's shape, whatever its level)."""
  r = response - response.mean(axis=-1, keepdims=True)
  return r / (np.linalg.norm(r, axis=-1, keepdims=True) + 1e-9)


def joint_vectors(x: np.ndarray, directions: np.ndarray | None,
                  spatial_weight: float) -> np.ndarray:
  """Unit embeddings `x` joined with SRP-PHAT `directions` ([n, G]) so that one cosine
  distance is (1 - a) * embedding distance + a * direction distance: the unit vectors
  [sqrt(1 - a) x, sqrt(a) d], d the mean-removed response. `x` as is without directions."""
  if directions is None or spatial_weight <= 0:
    return x
  return _weighted_join(x, _unit_responses(directions), spatial_weight)


def _weighted_join(x: np.ndarray, y: np.ndarray, a: float) -> np.ndarray:
  """[sqrt(1 - a) x, sqrt(a) y] of unit vectors (last axis): one cosine between two such
  vectors is (1 - a) * that of the x parts + a * that of the y parts."""
  return np.concatenate([np.sqrt(1 - a) * x, np.sqrt(a) * y], axis=-1)


def alone_weights(vad: np.ndarray) -> np.ndarray:
  """[T, S] how much each local speaker talks alone at each frame (vad [T, S]): its
  probability times the others' silence."""
  p = vad.astype(np.result_type(vad.dtype, np.float32))          # float16 -> 32, 64 kept
  return p * np.prod(1.0 - p[:, None, :] * (1.0 - np.eye(p.shape[1], dtype=p.dtype))[None], axis=2)


def local_directions(vad: np.ndarray, response: np.ndarray) -> np.ndarray:
  """[S, G] SRP-PHAT response of each local speaker of one window (vad [Tw, S]; response
  [Tw, G], the window's `spatial.frame_response`), from the frames where it talks alone."""
  return spatial_lib.weighted_response(alone_weights(vad).T, response)


def talker_count(count: np.ndarray, speech: np.ndarray, osd: np.ndarray, k: int,
                 o: dict) -> np.ndarray:
  """Talkers per frame from the averaged expected count, P(anyone) and the overlap head:
  the rounded count, at least one where anyone talks, at least two where the overlap head
  fires (osd_threshold < 1), at most the `k` speakers."""
  n = np.minimum(np.maximum(np.floor(count + 0.5).astype(int), speech > o["onset"]), k)
  if o["osd_threshold"] < 1.0:
    n = np.minimum(np.where((osd > o["osd_threshold"]) & (n >= 1), np.maximum(n, 2), n), k)
  return n


def heard_frames(inference: "Inference", onset: float) -> np.ndarray:
  """[W, S] frames each local speaker of each window is above `onset` (inside the
  recording)."""
  total, tw = inference.total_frames, inference.vad.shape[1]
  inside = np.arange(tw)[None, :] < (total - inference.window_frames)[:, None]    # [W, Tw]
  return np.sum((inference.vad.astype(np.float32) > onset) & inside[:, :, None], axis=1)


def _assign(x, window_index, labels, reference) -> np.ndarray:
  """Unlabelled (-1) embeddings join the centroids of `reference`'s clusters: nearest, distinct
  within a window and from the window's already labelled ones (Hungarian per window)."""
  labels = labels.copy()
  ids = np.unique(reference[reference >= 0])
  centroids = np.stack([x[reference == k].mean(axis=0) for k in ids])
  centroids /= np.linalg.norm(centroids, axis=1, keepdims=True) + 1e-9
  by_window = np.argsort(window_index, kind="stable")
  for group in np.split(by_window, np.flatnonzero(np.diff(window_index[by_window])) + 1):
    rest = group[labels[group] < 0]
    if not len(rest):
      continue
    cost = 1.0 - x[rest] @ centroids.T                      # [locals of one window, K]
    taken = labels[group][labels[group] >= 0]               # clusters already in this window
    cost[:, np.searchsorted(ids, taken)] += 4.0
    if len(rest) <= len(centroids):
      rows, cols = scipy.optimize.linear_sum_assignment(cost)
      labels[rest[rows]] = ids[cols]
    else:                                                   # more locals than clusters
      labels[rest] = ids[np.argmin(cost, axis=1)]
  return labels


def _average_link(x, window_index, *, num_speakers, min_speakers, max_speakers,
                  threshold) -> np.ndarray:
  """`cluster` of unit embeddings by average linkage over all n x n distances."""
  n = len(x)
  if n <= 1:
    return np.zeros(n, int)
  dist = np.clip(1.0 - x @ x.T, 0.0, 2.0)
  dist[window_index[:, None] == window_index[None, :]] = 2.0
  np.fill_diagonal(dist, 0.0)
  tree = scipy.cluster.hierarchy.linkage(scipy.spatial.distance.squareform(dist, checks=False),
                                         method="average")
  del dist
  if num_speakers:
    k = min(num_speakers, n)
  else:
    k = len(np.unique(scipy.cluster.hierarchy.fcluster(tree, threshold, "distance")))
    k = max(min_speakers or 1, min(k, max_speakers or n))
    k = min(k, n)
  # cut_tree gives exactly k clusters; fcluster's maxclust gives fewer when merges tie (the
  # cannot-link pairs all merge at the same maximal height).
  return scipy.cluster.hierarchy.cut_tree(tree, n_clusters=k)[:, 0]


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


def gate_speech(active: np.ndarray, score: np.ndarray, speech: np.ndarray, fs: float, *,
                gate: float | None, fill: float | None, pad: float = 0.0) -> np.ndarray:
  """The pretrained speech detector's say over the decision (`jaxdiar.vad`; `speech`: its
  probability every 32 ms): frames where it is under `gate` (its highest within `pad` seconds
  either side) have no speaker; frames where it is at least `fill` and no speaker is marked
  get the one with the highest stitched score. None: that half off."""
  from jaxdiar import vad as vad_lib
  chunk = ((np.arange(len(active)) + 0.5) * fs / vad_lib.FRAME_SECONDS).astype(int)
  p = speech.astype(np.float32)[np.minimum(chunk, len(speech) - 1)]
  radius = int(round(pad / fs))
  if radius:
    p = scipy.ndimage.maximum_filter1d(p, size=2 * radius + 1, mode="nearest")
  active = active.copy()
  if gate is not None:
    active[p < gate] = False
  if fill is not None:
    empty = (p >= fill) & ~active.any(axis=1)
    active[empty, np.argmax(score[empty], axis=1)] = True
  return active


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
  """(start, end) of each run of True in a [T] mask, end exclusive."""
  edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
  return list(zip(np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]))


def split_by_direction(active: np.ndarray, score: np.ndarray, response: np.ndarray,
                       parents: list, *, max_cos: float, min_frames: int,
                       max_new: int, smooth_frames: int = 45):
  """Split a global speaker whose speech comes from two places: two talkers the clustering
  took for one (voices alike) but who sit apart. The frames where a speaker alone is marked
  are put in two groups by their responses' shapes (smoothed over `smooth_frames`; spherical
  2-means); if the groups' mean directions have cosine < `max_cos` and each holds at least
  `min_frames` frames, every frame of that speaker (decision and score) goes to the nearer
  group, the second as a new speaker (at most `max_new` of them). Returns (active, score,
  parents) with the new columns appended (a new speaker's parents are its source's)."""
  t, k = active.shape
  shape = _unit_responses(scipy.ndimage.uniform_filter1d(
      np.asarray(response[:t], np.float32), smooth_frames, axis=0, mode="nearest"))
  alone = resegment_lib.alone(active)
  columns, scores, parents = list(active.T), list(score.T), list(parents)
  for spk in range(k):
    x = shape[alone[:, spk]]
    if len(columns) - k >= max_new or len(x) < 2 * min_frames:
      continue
    centres = _two_means(x)
    near = np.argmax(x @ centres.T, axis=1)
    if centres[0] @ centres[1] >= max_cos or np.bincount(near, minlength=2).min() < min_frames:
      continue
    second = np.argmax(shape @ centres.T, axis=1) == 1
    columns[spk], scores[spk] = active[:, spk] & ~second, score[:, spk] * ~second
    columns.append(active[:, spk] & second)
    scores.append(score[:, spk] * second)
    parents.append(list(parents[spk]))
  return np.stack(columns, axis=1), np.stack(scores, axis=1), parents


def _two_means(x: np.ndarray, rounds: int = 20) -> np.ndarray:
  """[2, G] spherical 2-means centres of unit rows `x`: from the most typical row and the row
  least like it."""
  first = x[np.argmax(x @ x.mean(axis=0))]
  centres = np.stack([first, x[np.argmin(x @ first)]])
  for _ in range(rounds):
    near = np.argmax(x @ centres.T, axis=1)
    centres = _unit_responses(np.stack([x[near == j].mean(axis=0) if np.any(near == j)
                                        else centres[j] for j in range(2)]))
  return centres


def merge_groups(active: np.ndarray, min_overlap: float,
                 min_groups: int = 1) -> list[list[int]]:
  """Speakers (columns of `active`) to merge: one person split over two clusters is marked
  twice at once. While some pair is co-active on at least `min_overlap` of the frames of the
  less-heard one, that one joins the other (down to `min_groups` speakers). Returns the groups
  of columns, each group's first column the one kept."""
  groups = [[j] for j in range(active.shape[1])]
  act = active.astype(np.float64)
  while len(groups) > max(1, min_groups):
    heard = act.sum(axis=0)
    both = act.T @ act
    share = both / np.maximum(np.minimum(heard[:, None], heard[None, :]), 1.0)
    np.fill_diagonal(share, 0.0)
    i, j = np.unravel_index(np.argmax(share), share.shape)
    if share[i, j] < min_overlap:
      break
    keep, drop = (i, j) if heard[i] >= heard[j] else (j, i)
    act[:, keep] = np.maximum(act[:, keep], act[:, drop])
    groups[keep] += groups[drop]
    act = np.delete(act, drop, axis=1)
    del groups[drop]
  return groups


@dataclasses.dataclass
class Inference:
  """The model's per-window outputs over one recording (what `decode` clusters and stitches)."""
  uri: str
  window_frames: np.ndarray        # [W] first frame of each window
  vad: np.ndarray                  # [W, Tw, S] local speaker probabilities
  osd: np.ndarray                  # [W, Tw] overlap probability
  emb: np.ndarray                  # [W, S, E] local speaker embeddings
  direction: np.ndarray | None     # [W, S, G] SRP-PHAT response per local speaker (arrays)
  total_frames: int
  num_samples: int
  sample_rate: int
  hop: int
  # [total_frames, G] SRP-PHAT response of every frame over azimuths (arrays with `spatial`;
  # float16, 9 kB a second): what `resegment` reads.
  response: np.ndarray | None = None
  # [W, S, 256] d-vector (`jaxdiar.voice`) of each local speaker, from the first channel's
  # audio where it talks (alone, when that is long enough); zero where it is never heard.
  voice: np.ndarray | None = None
  # [ceil(num_samples / 512)] the pretrained speech detector's probability (`jaxdiar.vad`,
  # Silero VAD) every 32 ms of the first channel.
  speech: np.ndarray | None = None


# A local speaker's audio for its d-vector: its frames more likely talking than not (whatever
# the decoding's onset, which is chosen for the turns).
VOICE_ONSET = 0.5


def voice_segments(audio: np.ndarray, vad: np.ndarray, hop: int, onset: float,
                   min_alone_seconds: float = 0.5, sample_rate: int = 16000) -> list:
  """The audio of each local speaker of one window ([S] arrays from one channel's
  `audio`): its frames above `onset` where no other local speaker is, or all its frames above
  `onset` when those alone last under `min_alone_seconds`; empty when it has fewer than 5."""
  vad = np.asarray(vad, np.float32)
  out = []
  for s in range(vad.shape[1]):
    active = vad[:, s] > onset
    if active.sum() < 5:
      out.append(np.zeros(0, np.float32))
      continue
    others = np.delete(vad, s, axis=1).max(axis=1) if vad.shape[1] > 1 else np.zeros(len(vad))
    alone = active & (others < onset)
    frames = np.flatnonzero(alone if alone.sum() * hop >= min_alone_seconds * sample_rate
                            else active)
    samples = (frames[:, None] * hop + np.arange(hop)).ravel()
    out.append(audio[samples[samples < len(audio)]])
  return out


def check_input(path, model: runtime.ExportedModel, replicate_channels: bool = False,
                channel: int | None = None):
  """(sample rate, channels, frames, tile) of a recording the model can take, read from its
  header: tile 1 = as is, 0 = one channel only (`channel`, default the first), n = one
  channel copied to n channels. Raises InputError / AudioError with a clear message."""
  meta = model.meta
  rate, channels, frames = audio_lib.info(path)
  if frames == 0:
    raise InputError(f"{path}: empty recording")
  if channel is not None:
    if isinstance(channel, bool) or int(channel) != channel or not 0 <= channel < channels:
      raise InputError(f"{path}: channel {channel!r} does not exist ({channels} channel(s), "
                       f"numbered from 0)")
    if model.num_channels == 1:
      return rate, channels, frames, 0
    if not replicate_channels:
      raise InputError(f"{path}: one channel chosen, the model expects {model.num_channels} "
                       "(use a one-channel model, or --replicate-channels)")
    return rate, channels, frames, model.num_channels
  tile = 1
  if channels != model.num_channels:
    if model.needs_array and not (replicate_channels and channels == 1):
      raise InputError(f"{path}: {channels} channel(s), the model expects "
                       f"{model.num_channels} (its '{meta['feature_kind']}' features need the "
                       "array; a mono file can be run with --replicate-channels)")
    tile = model.num_channels if channels == 1 else 1
  if not model.needs_array and model.num_channels == 1 and channels > 1:
    tile = 0                                    # a one-channel model reads the first channel
  return rate, channels, frames, tile


def infer(path, model: runtime.ExportedModel, *, uri: str | None = None,
          replicate_channels: bool = False, progress: bool = True,
          spatial: bool = True, step_seconds: float | None = None,
          voice: bool = False, detect_speech: bool = False,
          channel: int | None = None, stages: Stages | None = None) -> Inference:
  """Run the model over sliding windows of one recording (read in blocks).

  With `spatial` and a multi-channel recording, each local speaker also gets its SRP-PHAT
  response over azimuths, from the frames where it talks alone (`jaxdiar.spatial`). With
  `voice`, each local speaker gets a d-vector of the pretrained voice encoder
  (`jaxdiar.voice`) from its audio in the window (`voice_segments`, first channel). With
  `detect_speech`, the pretrained speech detector (`jaxdiar.vad`) scores the first channel.
  `channel`: read that channel only (a one-channel model, or copied with `replicate_channels`);
  it is then also the channel of the d-vectors and the speech detector. `stages`: where the
  time goes (`windows` in all, of which `voice` and `directions`; `speech_detector`).
  Raises InputError / AudioError with a clear message.
  """
  meta, inf = model.meta, model.meta["inference"]
  sr, hop = model.sample_rate, model.hop
  path = pathlib.Path(path)
  uri = uri or path.stem
  rate, channels, frames, tile = check_input(path, model, replicate_channels, channel)
  read_channel = channel or 0       # the channel the speech detector reads
  if channel is not None:
    channels = 1
  num_samples = int(round(frames * sr / rate))
  window = int(round(inf["window_seconds"] * sr))
  # Whole hops: a window's frames are then frames of the recording (window_frames exact).
  step = max(1, int(round((step_seconds or inf["step_seconds"]) * sr / hop))) * hop
  window = min(window, max(num_samples, meta["n_fft"]))
  starts = _window_starts(num_samples, window, step, hop)
  batch = inf["batch_windows"]
  steer = None
  if spatial and channels > 1 and len(meta["mic_positions"]) == channels:
    steer = spatial_lib.steering(meta["mic_positions"], meta["n_fft"], sr,
                                 spatial_lib.azimuth_grid())
  vads, osds, embs, dirs, voices = [], [], [], [], []
  if voice:
    from jaxdiar import voice as voice_lib     # librosa's mel filters: loaded only when asked
    if sr != voice_lib.SAMPLE_RATE:
      raise InputError(f"the voice encoder takes {voice_lib.SAMPLE_RATE} Hz audio, the model "
                       f"runs at {sr} Hz")
    voice_params = voice_lib.load()
  if detect_speech:
    from jaxdiar import vad as vad_lib
    if sr != vad_lib.SAMPLE_RATE:
      raise InputError(f"the speech detector takes {vad_lib.SAMPLE_RATE} Hz audio, the model "
                       f"runs at {sr} Hz")
    detector = vad_lib.Detector()
  total = 1 + num_samples // hop
  response = None if steer is None else np.zeros((total, steer.real.shape[-1]), np.float16)
  done = 0                                  # frames of `response` computed so far
  peak = 0.0
  half = int(np.ceil(meta["n_fft"] / 2 / hop))             # frames of audio on either side

  def finish(b0, group, raw, out):
    """Keep one batch's outputs (blocks until the model is done) and its directions."""
    nonlocal done
    out = {k: np.asarray(v) for k, v in out.items()}
    n = len(group)
    # Copies: a view would keep the whole batch's output buffers alive.
    vads.append(out["vad"][:n].astype(np.float16))
    osds.append(out["osd"][:n].astype(np.float16))
    embs.append(out["spk_emb"][:n].astype(np.float32))
    t0 = time.perf_counter()
    if voice:
      segments = [seg for j in range(n) for seg in
                  voice_segments(raw[j][0], out["vad"][j], hop, VOICE_ONSET, sample_rate=sr)]
      voices.append(voice_lib.embed(segments, voice_params).reshape(n, -1, voice_lib.EMBEDDING_DIM))
    stages.add("voice", time.perf_counter() - t0)
    t0 = time.perf_counter()
    for j in range(n if steer is not None else 0):
      # Overlapping windows share frames: each frame's response is computed once (but the
      # `half` frames at a window's end, zero-padded there), kept from the first window
      # that holds all of its audio: that of the recording's STFT.
      f0 = group[j] // hop
      tw = out["vad"].shape[1]
      first = min(max(done - f0, 0), tw)
      lead = max(first - half, 0)
      spec = spatial_lib.stft(raw[j][:, lead * hop:], meta["n_fft"], hop)
      new = spatial_lib.frame_response(spec[:, :, first - lead:tw - lead], steer)
      keep = len(new) if b0 + j == len(starts) - 1 else max(len(new) - half, 0)
      m = max(0, min(keep, total - f0 - first))
      response[f0 + first:f0 + first + m] = new[:m]
      done = max(done, f0 + first + keep)
      r = np.concatenate([response[f0:f0 + first].astype(np.float32), new])
      dirs.append(local_directions(out["vad"][j][:len(r)], r).astype(np.float32))
    stages.add("directions", time.perf_counter() - t0)

  stages = stages or _UNTIMED
  stages.lap("setup")
  pending = None
  with tqdm.tqdm(total=len(starts), desc=f"diarize {uri}", unit="window",
                 disable=not progress) as bar:    # closed (a clean line) on errors too
    for b0 in range(0, len(starts), batch):
      group = starts[b0:b0 + batch]
      raw = [read_block(path, rate, sr, s, window) for s in group]
      if channel is not None:
        raw = [x[channel:channel + 1] for x in raw]
      if tile == 0:
        blocks = [x[:1] for x in raw]
      else:
        blocks = [np.tile(x, (tile, 1)) if tile > 1 else x for x in raw]
      audio = np.stack(blocks + [np.zeros_like(blocks[0])] * (batch - len(blocks)))
      peak = max(peak, float(np.abs(audio).max()))
      out = model(audio)      # dispatched: the previous batch's directions run meanwhile
      if pending is not None:
        finish(*pending)
        bar.update(len(pending[1]))
      pending = (b0, group, raw, out)
    finish(*pending)
    bar.update(len(pending[1]))
  if peak == 0.0:
    raise InputError(f"{path}: the audio is all zeros")
  stages.lap("windows")
  speech = None
  if detect_speech:       # its own pass over the first channel, in blocks (state carried)
    size = vad_lib.SEGMENT * vad_lib.CHUNK
    speech = np.concatenate([
        detector.push(read_block(path, rate, sr, s, min(size, num_samples - s))[read_channel],
                      final=s + size >= num_samples)
        for s in range(0, num_samples, size)]).astype(np.float16)
  stages.lap("speech_detector")
  return Inference(uri, np.array(starts) // hop, np.concatenate(vads), np.concatenate(osds),
                   np.concatenate(embs), np.stack(dirs) if dirs else None,
                   total, num_samples, sr, hop, response,
                   np.concatenate(voices) if voice else None, speech)


def decode(inference: Inference, options: dict, *, num_speakers: int | None = None,
           min_speakers: int | None = None, max_speakers: int | None = None,
           stages: Stages | None = None) -> Result:
  """Cluster the local speakers of every window into global speakers, stitch, binarize.

  `options` are the model's inference settings (meta["inference"]), any of which a caller
  may override. Stitching `count`: the number of talkers at each frame, averaged over the
  covering windows (`count="expected"`: the sum of the local probabilities;
  `"threshold"`: the active local speakers), rounded, at least one where anyone talks and
  two where the overlap head fires, marks that many global speakers (the highest stitched
  scores); `mean`: each global speaker's averaged probability through hysteresis thresholds.
  On an array (frame responses in `inference`), unless the count is given: a speaker whose
  speech comes from two places is split (`split_cos`, `split_seconds`), the spatial
  resegmentation re-decides the frames (`resegment`), and two speakers marked together on
  `merge_overlap` of the frames of one are merged, then the frames decided again. The
  speech detector's gate comes last. `stages`: the time of each (cluster, stitch, split,
  resegment_merge, gate, turns).
  """
  stages = stages or _UNTIMED
  stages.lap("before_decode")
  o = {**DEFAULT_DECODE, **options}
  need = needs(o)
  inf = inference
  check_counts(num_speakers, min_speakers, max_speakers)
  cap = max_speakers or max(MAX_SPEAKERS, num_speakers or 0, min_speakers or 0)
  emb = inf.emb
  if need["voice"]:
    if inf.voice is None:
      raise ValueError("decoding setting voice_weight > 0 needs the local speakers' d-vectors: "
                       "infer(..., voice=True)")
    emb = voice_joined(inf.emb, inf.voice, o["voice_weight"])
  fs = inf.hop / inf.sample_rate
  total, (num_windows, tw, _) = inf.total_frames, inf.vad.shape
  vad = inf.vad.astype(np.float32)
  heard = heard_frames(inf, o["onset"])                                    # [W, S] frames
  windows, slots = np.nonzero(heard >= o["min_active_frames"])   # the local speakers
  locals_ = list(zip(windows, slots))
  labels = cluster(emb[windows, slots], windows, num_speakers=num_speakers,
                   min_speakers=min_speakers, max_speakers=cap,
                   threshold=o["cluster_threshold"],
                   max_embeddings=o.get("max_cluster_embeddings", 2000),
                   directions=(inf.direction[windows, slots] if inf.direction is not None
                               and o["spatial_weight"] > 0 else None),
                   spatial_weight=o["spatial_weight"], refine=o["refine"],
                   anchors=heard[windows, slots] * fs >= o["anchor_seconds"],
                   min_cluster_size=o["min_cluster_size"], heard=heard[windows, slots] * fs,
                   found_seconds=o["found_seconds"], found_total=o["found_total"])
  k = int(labels.max()) + 1 if len(labels) else 0
  stages.lap("cluster")
  if num_speakers is None and max_speakers is None and k >= cap:
    log.warning("%s: the estimated speaker count reached the cap of %d (max_speakers); "
                "give --max-speakers to allow more", inf.uri, cap)
  score = np.zeros((total, k))
  cover = np.zeros(total)
  count = np.zeros(total)
  osd = np.zeros(total)
  speech = np.zeros(total)
  for w in range(num_windows):
    f0 = inf.window_frames[w]
    n = max(0, min(tw, total - f0))
    cover[f0:f0 + n] += 1
    osd[f0:f0 + n] += inf.osd[w, :n]
    speech[f0:f0 + n] += 1.0 - np.prod(1.0 - vad[w, :n], axis=1)    # P(anyone talks)
    if o["count"] == "expected":             # expected number of talkers: sum of probabilities
      count[f0:f0 + n] += vad[w, :n].sum(axis=1)
  for (w, slot), label in zip(locals_, labels):
    f0 = inf.window_frames[w]
    n = max(0, min(tw, total - f0))
    score[f0:f0 + n, label] += vad[w, :n, slot]
    if o["count"] == "threshold":            # active local speakers
      count[f0:f0 + n] += vad[w, :n, slot] > o["onset"]
  score /= np.maximum(cover, 1)[:, None]
  count /= np.maximum(cover, 1)
  osd /= np.maximum(cover, 1)
  speech /= np.maximum(cover, 1)
  if o["median_frames"] > 1 and k:
    score = scipy.ndimage.median_filter(score, size=(o["median_frames"], 1), mode="nearest")
    count = scipy.ndimage.median_filter(count, size=o["median_frames"], mode="nearest")
    speech = scipy.ndimage.median_filter(speech, size=o["median_frames"], mode="nearest")
  min_speech, min_silence = min_durations(o, fs)
  if o["stitch"] == "count" and k:
    active = top_speakers(score, talker_count(count, speech, osd, k, o))
    for spk in range(k):
      active[:, spk] = fill_and_drop(active[:, spk], min_speech, min_silence)
  else:
    active = binarize_each(score, o, fs)
  # Who each final speaker is: the clusters it comes from (a split speaker's halves share
  # their cluster's embedding).
  parents = [[j] for j in range(k)]
  stages.lap("stitch")
  count_free = num_speakers is None           # a given count is kept as it is
  room = max(0, cap - k)
  if o["split_cos"] is not None and inf.response is not None and k and count_free and room:
    active, score, parents = split_by_direction(active, score, inf.response, parents,
                                                max_cos=o["split_cos"],
                                                min_frames=int(round(o["split_seconds"] / fs)),
                                                max_new=room)
  first = active
  stages.lap("split")

  def resegmented(active, score):
    if not (o["resegment"] and inf.response is not None and active.shape[1] > 1):
      return active
    active = resegment_lib.apply(active, score, osd, inf.response, o["resegment"],
                                 o["resegment_threshold"])
    for spk in range(active.shape[1]):
      active[:, spk] = fill_and_drop(active[:, spk], min_speech, min_silence)
    return active

  active = resegmented(first, score)
  if o["merge_overlap"] is not None and active.shape[1] > 1 and count_free:
    groups = merge_groups(active, o["merge_overlap"], min_groups=min_speakers or 1)
    if len(groups) < active.shape[1]:       # the same speaker twice: merge, decide again
      first = np.stack([first[:, g].any(axis=1) for g in groups], axis=1)
      score = np.stack([score[:, g].max(axis=1) for g in groups], axis=1)
      parents = [sorted({j for i in g for j in parents[i]}) for g in groups]
      active = resegmented(first, score)
  stages.lap("resegment_merge")
  if need["detect_speech"] and active.shape[1]:
    if inf.speech is None:
      raise ValueError("decoding settings speech_gate / speech_fill need the speech detector's "
                       "probabilities: infer(..., detect_speech=True)")
    active = gate_speech(active, score, inf.speech, fs, gate=o["speech_gate"],
                         fill=o["speech_fill"], pad=o["speech_pad"])
  stages.lap("gate")
  turns = turns_of(active, fs, inf.uri, inf.num_samples / inf.sample_rate)
  centroids = voices = None
  if k:                       # each speaker's embedding (the model's, what enrolment compares;
                              # the d-vectors where computed): its local speakers', by frames heard
    weight = heard[windows, slots].astype(np.float64)
    centroids = _centroids(inf.emb[windows, slots], weight, labels, parents)
    if inf.voice is not None:
      voices = _centroids(inf.voice[windows, slots], weight, labels, parents)
  stages.lap("turns")
  return Result(turns, score, osd, fs, centroids, active, voices)


def _centroids(x: np.ndarray, weight: np.ndarray, labels: np.ndarray, parents: list) -> np.ndarray:
  """[len(parents), E] unit weighted mean of the unit vectors `x` of each group of clusters."""
  x = x.astype(np.float64)
  x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-9
  out = np.stack([np.sum(x[np.isin(labels, group)] * weight[np.isin(labels, group), None],
                         axis=0) for group in parents])
  return out / (np.linalg.norm(out, axis=1, keepdims=True) + 1e-9)


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


# Decoding settings that model files exported before they existed do not carry: the old
# behaviour (mean stitching, no directions, no overlap rule, every local speaker clustered).
DEFAULT_DECODE = settings_lib.legacy_defaults()


def needs(options: dict) -> dict:
  """What `infer` must compute for these decoding settings (its keyword arguments): the
  local speakers' d-vectors, the speech detector's probabilities."""
  return dict(voice=options.get("voice_weight", 0) > 0,
              detect_speech=(options.get("speech_gate") is not None
                             or options.get("speech_fill") is not None))


def voice_joined(emb: np.ndarray, voice: np.ndarray, weight: float) -> np.ndarray:
  """What is clustered: the model's embeddings (weight 0), the d-vectors (1), or between
  the unit vectors [sqrt(1 - w) e, sqrt(w) v] (one cosine distance = (1 - w) * the model's
  distance + w * the d-vectors')."""
  if weight >= 1:
    return voice
  unit = lambda v: v / (np.linalg.norm(v, axis=-1, keepdims=True) + 1e-9)
  return _weighted_join(unit(emb), unit(voice), weight)


def check_counts(num_speakers=None, min_speakers=None, max_speakers=None) -> None:
  """Speaker counts a decoding can honour: each at least 1, min <= num <= max where given.
  Raises InputError naming the one at fault (before any audio is read)."""
  given = dict(num_speakers=num_speakers, min_speakers=min_speakers, max_speakers=max_speakers)
  for name, value in given.items():
    if value is not None and (isinstance(value, bool) or int(value) != value or value < 1):
      raise InputError(f"{name} must be a whole number of at least 1, not {value!r}")
  if min_speakers is not None and max_speakers is not None and min_speakers > max_speakers:
    raise InputError(f"min_speakers ({min_speakers}) is above max_speakers ({max_speakers})")
  if num_speakers is not None and not ((min_speakers or 1) <= num_speakers
                                       <= (max_speakers or num_speakers)):
    raise InputError(f"num_speakers ({num_speakers}) is outside min_speakers..max_speakers "
                     f"({min_speakers}..{max_speakers})")


def decoding_settings(model: runtime.ExportedModel, options: dict) -> dict:
  """The decoding settings a run uses: the model's, overridden by `options` (validated)."""
  settings_lib.validate(options)
  return {**DEFAULT_DECODE, **model.meta["inference"], **options}


def infer_options(o: dict) -> dict:
  """`infer`'s keyword arguments for the decoding settings `o`: the directions where a
  spatial stage reads them, the window step, the d-vectors and speech detector if needed."""
  return dict(spatial=(o["spatial_weight"] > 0 or bool(o["resegment"])
                       or o["split_cos"] is not None),
              step_seconds=o["step_seconds"], **needs(o))


def diarize(path, model: runtime.ExportedModel, *, uri: str | None = None,
            num_speakers: int | None = None, min_speakers: int | None = None,
            max_speakers: int | None = None, replicate_channels: bool = False,
            progress: bool = True, channel: int | None = None, **options) -> Result:
  """Diarize one recording (`infer` then `decode`; `options` override the model's inference
  settings). Raises InputError / AudioError with a clear message."""
  check_counts(num_speakers, min_speakers, max_speakers)
  o = decoding_settings(model, options)
  inference = infer(path, model, uri=uri, replicate_channels=replicate_channels,
                    progress=progress, channel=channel, **infer_options(o))
  return decode(inference, o, num_speakers=num_speakers, min_speakers=min_speakers,
                max_speakers=max_speakers)


def main(argv=None) -> int:
  """The command line (`jaxdiar.cli.diarize`, a thin user of `jaxdiar.pipeline`)."""
  from jaxdiar.cli import diarize as cli     # the CLI builds on this module: loaded when run
  return cli.main(argv)


if __name__ == "__main__":
  sys.exit(main())
