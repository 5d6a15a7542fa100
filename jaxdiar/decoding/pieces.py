"""A window's local speaker cut at its pauses (its *pieces*), and each piece given back to the
recording's speaker it sounds like.

A window's output slot is one talker at a time, not one talker for the whole window: on
meetings of the shift suite's randomised fit generator 17 % of the frames where a local
speaker talks and the reference has one talker belong to another talker than the slot's
main one, and cut at its pauses of more than 0.16 s the same slots hold 4.7 % (the live
causal mode gathers a slot's evidence in such pieces for the same reason). `infer` keeps, for
every local speaker, the pieces of its window (a partition of the window's frames cut in the
middle of its pauses) with each piece's own embedding: the model's frame embeddings averaged
over the piece with the slot's probability. After the clustering of the local speakers,
`reassign` moves a piece to the cluster its embedding and direction are nearest to when a
logistic classifier (`reassign_classifier`, fitted on meetings of their own seeds by
`benchmarks/bench_accuracy.py --fit-reassign-classifier`) says the move is right; two pieces
of one window that talk together never end up in one cluster.
"""

import dataclasses

import numpy as np

from jaxdiar.core import spatial as spatial_lib
from jaxdiar.decoding.cluster import joint_vectors
from jaxdiar.decoding.cluster import unit_responses
from jaxdiar.decoding.local import alone_weights
from jaxdiar.decoding.local import local_directions

# The classifier's features of a piece, with its current cluster c and the nearest other b:
# joint / embedding / direction similarity to b less that to c, joint similarity to c,
# log seconds heard of the piece and of its local speaker, the share of its local speaker's
# pieces nearest another cluster, the piece's cosine with its local speaker (embedding,
# direction), whether it has no direction, log of the number of clusters.
NUM_FEATURES = 11
# Two pieces of one window active together on more frames than this are two talkers.
CO_ACTIVE_FRAMES = 5


@dataclasses.dataclass
class Pieces:
  """The pieces of every local speaker of a recording (what `infer` keeps), in the order
  window, slot, time."""
  window: np.ndarray             # [P] int32 window index
  slot: np.ndarray               # [P] int32 the window's output slot
  start: np.ndarray              # [P] int32 first frame, within the window
  stop: np.ndarray               # [P] int32 one past the last frame, within the window
  emb: np.ndarray                # [P, E] float32 embedding
  onset: float                   # the settings they were cut with
  gap_frames: int
  min_frames: int


def partition(active: np.ndarray, gap_frames: int, min_frames: int) -> list[tuple[int, int]]:
  """[(start, stop)] covering all frames of `active` [T] bool: cut in the middle of every run
  of inactive frames longer than `gap_frames` between two active frames; a piece with fewer
  than `min_frames` active frames joins the one before it (the first, the one after)."""
  n = len(active)
  idx = np.flatnonzero(active)
  cuts = [int((idx[j] + idx[j + 1] + 1) // 2) for j in np.flatnonzero(np.diff(idx) > gap_frames)]
  bounds = [0] + cuts + [n]
  merged = []
  for a, b in zip(bounds[:-1], bounds[1:]):
    size = int(active[a:b].sum())
    if merged and (merged[-1][2] < min_frames or size < min_frames):
      merged[-1][1] = b
      merged[-1][2] += size
    else:
      merged.append([a, b, size])
  return [(a, b) for a, b, _ in merged]


def of_window(vad: np.ndarray, frame_emb: np.ndarray, inside: int, *, onset: float,
              gap_frames: int, min_frames: int) -> list[tuple[int, int, int, np.ndarray]]:
  """[(slot, start, stop, embedding)] of one window's local speakers (vad [Tw, S], frame_emb
  [Tw, E], the first `inside` frames inside the recording): each slot above `onset` on
  `min_frames` frames cut by `partition`, each piece's embedding the frame embeddings'
  average weighted by the slot's probability over it."""
  vad = np.asarray(vad, np.float32)
  emb = np.asarray(frame_emb, np.float32)
  out = []
  for s in range(vad.shape[1]):
    active = np.zeros(len(vad), bool)
    active[:inside] = vad[:inside, s] > onset
    if active.sum() < min_frames:
      continue
    for a, b in partition(active, gap_frames, min_frames):
      v = vad[a:b, s]
      out.append((s, a, b, (v @ emb[a:b]) / (v.sum() + 1e-8)))
  return out


def collect(parts: list, onset: float, gap_frames: int, min_frames: int,
            embedding_dim: int) -> Pieces:
  """`Pieces` of [(window, slot, start, stop, embedding)]."""
  column = lambda i: np.array([p[i] for p in parts], np.int32)
  return Pieces(column(0), column(1), column(2), column(3),
                (np.stack([p[4] for p in parts]).astype(np.float32) if parts
                 else np.zeros((0, embedding_dim), np.float32)),
                onset, gap_frames, min_frames)


def check(pieces: Pieces | None, o: dict, frame_seconds: float) -> None:
  """Raises ValueError unless `pieces` were cut with the decoding settings `o`."""
  if pieces is None:
    raise ValueError("reassign_classifier and piece_split_cos need the local speakers' "
                     "pieces: infer(..., pieces=...) with a model file that gives its frame "
                     "embeddings (export it again: python -m jaxdiar.export --model FILE "
                     "--config CONFIG)")
  asked = (o["onset"], gap_frames(o, frame_seconds), o["min_active_frames"])
  have = (pieces.onset, pieces.gap_frames, pieces.min_frames)
  if not np.allclose(asked, have):
    raise ValueError(f"the pieces were cut with onset, gap, minimum frames {have}, the "
                     f"settings ask for {asked}: infer again with these settings")


def gap_frames(o: dict, frame_seconds: float) -> int:
  """The pause, in frames, that cuts a local speaker (`piece_gap_seconds`)."""
  return int(round(o["piece_gap_seconds"] / frame_seconds))


def directions(inf, pieces: Pieces, vad: np.ndarray) -> np.ndarray:
  """[P, G] SRP-PHAT response of each piece, from the frames where its slot talks alone
  (`local.local_directions` over the piece's frames)."""
  out = np.zeros((len(pieces.window), inf.response.shape[1]), np.float32)
  tw = vad.shape[1]
  for w in np.unique(pieces.window):
    f0 = int(inf.window_frames[w])
    n = max(0, min(tw, inf.total_frames - f0))
    alone = alone_weights(vad[w, :n])                                         # [n, S]
    rows = np.flatnonzero(pieces.window == w)
    weights = np.zeros((len(rows), n), np.float32)
    for j, i in enumerate(rows):
      a, b = pieces.start[i], min(pieces.stop[i], n)
      weights[j, a:b] = alone[a:b, pieces.slot[i]]
    out[rows] = spatial_lib.weighted_response(weights,
                                              np.asarray(inf.response[f0:f0 + n], np.float32))
  return out


def split_locals(inf, o: dict):
  """`inf` with every local speaker whose pieces form two groups far apart cut in two before
  the clustering: a weighted spherical 2-means of its pieces' unit embeddings joined with
  their directions (`spatial_weight`, as the clustering joins them; the pieces' seconds heard
  as weights), and where the two centres' cosine is under `piece_split_cos` and each group is
  heard `piece_split_seconds`, the smaller group becomes a local speaker of its own (a new
  slot of the window: its probability on those pieces' frames, the mean of their embeddings,
  its own direction; its d-vector, where the inference has them, is the whole local
  speaker's, as no piece has its own). The two are then two talkers of one window for the
  clustering. Returns (inference, number of local speakers cut)."""
  pieces = inf.pieces
  fs = inf.hop / inf.sample_rate
  num_windows, tw, num_slots = inf.vad.shape
  vad = inf.vad.astype(np.float32)
  spatial = o["spatial_weight"] > 0 and inf.direction is not None and inf.response is not None
  every = np.arange(len(pieces.window))
  x = joint_vectors(_unit(pieces.emb), directions(inf, pieces, vad) if spatial else None,
                    o["spatial_weight"] if spatial else 0.0)
  heard = _heard(inf, pieces, every, o["onset"], vad) * fs
  new_vad = np.concatenate([vad, np.zeros_like(vad)], axis=2)
  emb = np.concatenate([inf.emb, inf.emb], axis=1)
  direction = (np.concatenate([inf.direction, inf.direction], axis=1).astype(np.float32)
               if inf.direction is not None else None)
  slot = pieces.slot.copy()
  cut = set()
  for (w, s), rows in _by_local(pieces).items():
    near = _two_groups(x[rows], heard[rows], o["piece_split_cos"], o["piece_split_seconds"])
    if near is None:
      continue
    minor = rows[near]
    mask = np.zeros(tw, bool)
    for i in minor:
      mask[pieces.start[i]:pieces.stop[i]] = True
    new_vad[w, :, num_slots + s] = vad[w, :, s] * mask
    new_vad[w, :, s] = vad[w, :, s] * ~mask
    for target, group in ((num_slots + s, minor), (s, rows[~near])):
      mass = np.array([vad[w, pieces.start[i]:pieces.stop[i], s].sum() for i in group])
      emb[w, target] = mass @ pieces.emb[group] / mass.sum()
    slot[minor] = num_slots + s
    cut.add((w, s))
  if direction is not None:
    for w in sorted({w for w, _ in cut}):
      f0 = int(inf.window_frames[w])
      n = max(0, min(tw, inf.total_frames - f0))
      direction[w] = local_directions(new_vad[w, :n],
                                      np.asarray(inf.response[f0:f0 + n], np.float32))
  order = np.lexsort((pieces.start, slot, pieces.window))
  cut_pieces = Pieces(pieces.window[order], slot[order], pieces.start[order],
                      pieces.stop[order], pieces.emb[order], pieces.onset, pieces.gap_frames,
                      pieces.min_frames)
  voice = (np.concatenate([inf.voice, inf.voice], axis=1) if inf.voice is not None else None)
  return dataclasses.replace(inf, vad=new_vad.astype(inf.vad.dtype), emb=emb,
                             direction=direction, voice=voice, pieces=cut_pieces), len(cut)


def _by_local(pieces: Pieces) -> dict:
  """{(window, slot): rows of its pieces} of the local speakers with two pieces or more."""
  out = {}
  for i, key in enumerate(zip(pieces.window.tolist(), pieces.slot.tolist())):
    out.setdefault(key, []).append(i)
  return {k: np.array(v) for k, v in out.items() if len(v) > 1}


def _two_groups(x: np.ndarray, weight: np.ndarray, max_cos: float, min_seconds: float,
                rounds: int = 10):
  """[n] bool, the smaller of two groups of the unit rows `x` (weighted spherical 2-means
  from the heaviest row and the row least like it) where the centres' cosine is under
  `max_cos` and each group weighs `min_seconds`; None otherwise."""
  first = x[np.argmax(weight)]
  centres = np.stack([first, x[np.argmin(x @ first)]])
  for _ in range(rounds):
    near = np.argmax(x @ centres.T, axis=1)
    centres = _unit(np.stack([(x[near == j] * weight[near == j, None]).sum(axis=0)
                              if np.any(near == j) else centres[j] for j in range(2)]))
  totals = np.bincount(near, weights=weight, minlength=2)
  if centres[0] @ centres[1] >= max_cos or totals.min() < min_seconds:
    return None
  return near == int(np.argmin(totals))


@dataclasses.dataclass
class Candidates:
  """Each piece of the clustered local speakers, with its current cluster (its local
  speaker's), the nearest other cluster and the classifier's features."""
  index: np.ndarray              # [n] rows of Pieces
  current: np.ndarray            # [n] cluster
  other: np.ndarray              # [n] nearest other cluster (-1: one cluster)
  features: np.ndarray           # [n, NUM_FEATURES]


def _unit(x):
  return x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-9)


def candidates(inf, windows: np.ndarray, slots: np.ndarray, labels: np.ndarray,
               heard: np.ndarray, o: dict) -> Candidates:
  """The pieces of the local speakers (`windows`, `slots`, clustered as `labels`, heard
  `heard` frames each) with their features. The clusters' centroids: their local speakers'
  unit embeddings (the model's, whatever the clustering joined them with) joined with their
  directions (`spatial_weight`), as the clustering sees them without d-vectors."""
  pieces = inf.pieces
  fs = inf.hop / inf.sample_rate
  k = int(labels.max()) + 1 if len(labels) else 0
  row = {(int(w), int(s)): i for i, (w, s) in enumerate(zip(windows, slots))}
  index = np.array([i for i, (w, s) in enumerate(zip(pieces.window, pieces.slot))
                    if (int(w), int(s)) in row], int)
  local = np.array([row[int(pieces.window[i]), int(pieces.slot[i])] for i in index], int)
  if not len(index) or k < 2:
    return Candidates(index, labels[local] if len(index) else np.zeros(0, int),
                      np.full(len(index), -1), np.zeros((len(index), NUM_FEATURES)))
  spatial = (o["spatial_weight"] > 0 and inf.direction is not None
             and inf.response is not None)
  vad = inf.vad.astype(np.float32)
  slot_dir = inf.direction[windows, slots] if spatial else None
  piece_dir = directions(inf, pieces, vad)[index] if spatial else None
  weight = o["spatial_weight"] if spatial else 0.0
  slot_x = joint_vectors(_unit(inf.emb[windows, slots]), slot_dir, weight)
  piece_x = joint_vectors(_unit(pieces.emb[index]), piece_dir, weight)
  current = labels[local]
  of = lambda x: _unit(np.stack([x[labels == j].mean(axis=0) for j in range(k)]))
  joint = piece_x @ of(slot_x).T                                          # [n, K]
  emb_sim = _unit(pieces.emb[index]) @ of(_unit(inf.emb[windows, slots])).T
  if spatial:
    d_piece, d_slot = unit_responses(piece_dir), unit_responses(slot_dir)
    dir_sim = d_piece @ of(d_slot).T
    dir_self = np.sum(d_piece * d_slot[local], axis=1)
    no_dir = (np.abs(d_piece).sum(axis=1) == 0).astype(float)
  else:
    dir_sim = np.zeros_like(joint)
    dir_self = np.zeros(len(index))
    no_dir = np.ones(len(index))
  n = np.arange(len(index))
  masked = joint.copy()
  masked[n, current] = -np.inf
  other = np.argmax(masked, axis=1)
  nearer = (np.argmax(joint, axis=1) != current).astype(float)
  share = np.bincount(local, weights=nearer, minlength=len(labels)) / np.maximum(
      np.bincount(local, minlength=len(labels)), 1)
  piece_heard = _heard(inf, pieces, index, o["onset"], vad) * fs
  features = np.stack([
      joint[n, other] - joint[n, current], emb_sim[n, other] - emb_sim[n, current],
      dir_sim[n, other] - dir_sim[n, current], joint[n, current],
      np.log(np.maximum(piece_heard, fs)), np.log(np.maximum(heard[local] * fs, fs)),
      share[local], np.sum(_unit(pieces.emb[index]) * _unit(inf.emb[windows, slots])[local], 1),
      dir_self, no_dir, np.full(len(index), np.log(k))], axis=1)
  return Candidates(index, current, other, features)


def _heard(inf, pieces: Pieces, index: np.ndarray, onset: float, vad: np.ndarray) -> np.ndarray:
  """[n] frames each piece of `index` is above `onset`, inside the recording."""
  out = np.zeros(len(index))
  for j, i in enumerate(index):
    w = pieces.window[i]
    n = max(0, min(vad.shape[1], inf.total_frames - int(inf.window_frames[w])))
    out[j] = np.sum(vad[w, pieces.start[i]:min(pieces.stop[i], n), pieces.slot[i]] > onset)
  return out


def probability(features: np.ndarray, weights) -> np.ndarray:
  """[n] P(the move to the nearest other cluster is right) under logistic `weights`."""
  w = np.asarray(weights, np.float64)
  if w.shape != (NUM_FEATURES + 1,):
    raise ValueError(f"reassign_classifier: {w.size} numbers, expected {NUM_FEATURES + 1} (one "
                     f"per feature, then the intercept): refit with bench_accuracy "
                     f"--fit-reassign-classifier")
  return 1.0 / (1.0 + np.exp(-(features.astype(np.float64) @ w[:-1] + w[-1])))


def reassign(inf, cands: Candidates, weights, threshold: float, onset: float) -> np.ndarray:
  """[n] each candidate piece's cluster: the nearest other where the classifier's probability
  is above `threshold`, else its local speaker's; two pieces of one window active together
  (`CO_ACTIVE_FRAMES`) that would share a cluster because one of them moved both keep
  their local speaker's."""
  labels = cands.current.copy()
  if not len(labels) or (cands.other < 0).all():
    return labels
  move = probability(cands.features, weights) > threshold
  labels[move] = cands.other[move]
  pieces = inf.pieces
  on = inf.vad.astype(np.float32) > onset
  window = pieces.window[cands.index]
  for w in np.unique(window[labels != cands.current]):
    rows = np.flatnonzero(window == w)
    for a in range(len(rows)):
      for b in range(a + 1, len(rows)):
        i, j = rows[a], rows[b]
        if labels[i] != labels[j] or (labels[i] == cands.current[i]
                                      and labels[j] == cands.current[j]):
          continue
        pi, pj = cands.index[i], cands.index[j]
        if np.sum(_span(on[w, :, pieces.slot[pi]], pieces, pi)
                  & _span(on[w, :, pieces.slot[pj]], pieces, pj)) > CO_ACTIVE_FRAMES:
          labels[i], labels[j] = cands.current[i], cands.current[j]
  return labels


def _span(active: np.ndarray, pieces: Pieces, i: int) -> np.ndarray:
  """`active` [Tw] kept on piece i's frames only."""
  out = np.zeros_like(active)
  out[pieces.start[i]:pieces.stop[i]] = active[pieces.start[i]:pieces.stop[i]]
  return out


def fit(examples, l2: float = 1.0) -> list[float]:
  """Logistic weights (NUM_FEATURES + 1, intercept last) from (features [n, F], target [n]
  bool: the piece's talker is the nearest other cluster's) pairs, the features standardised
  for the solver and the weights given back in their units."""
  from jaxdiar.core import resegment as resegment_lib
  x = np.concatenate([f for f, _ in examples]).astype(np.float64)
  y = np.concatenate([t for _, t in examples])
  mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-9
  w = np.asarray(resegment_lib.fit([(((x - mu) / sd)[:, None, :], y[:, None])], l2=l2))
  return [float(v) for v in np.concatenate([w[:-1] / sd, [w[-1] - np.sum(w[:-1] * mu / sd)]])]
