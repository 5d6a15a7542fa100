"""Matching the local speakers of the live diarizer to global speakers: one centroid per
speaker (cosine, joined with the talker direction on an array), distinct local speakers to
distinct global ones (Hungarian), a new speaker when none is near enough; in the causal mode
provisional speakers for voices not yet heard long enough (confirmed or dropped later, a
dropped one's segments relabelled). A mixin of `Streamer`, whose attributes it reads (see
`Streamer.__init__`); `Segment`, what the streamer gives out."""

import dataclasses
import json

import numpy as np
import scipy.optimize


@dataclasses.dataclass(frozen=True)
class Segment:
  start: float
  end: float
  speaker: str

  def to_json(self) -> str:
    return json.dumps(dict(start=round(self.start, 3), end=round(self.end, 3),
                           speaker=self.speaker))


class SpeakerMatching:
  """`Streamer`'s speaker matching (centroids, provisional and dropped speakers)."""

  def _assign(self, x: np.ndarray, seconds: np.ndarray, weights: np.ndarray | None = None,
              reliable_seconds: float | None = None,
              pieces: np.ndarray | None = None) -> np.ndarray:
    """Global speaker of each local one (-1: none left); updates the centroids. A local
    speaker heard `reliable_seconds` (default: the anchor length, at most half the window)
    may found a speaker and moves its centroid by `weights` (default: `seconds`). With
    `pieces` (causal mode, the piece of each row) and a provisional threshold, the others may
    found provisional speakers (see __init__)."""
    n, k = len(x), len(self.centroids)
    if not n:
      return np.zeros(0, int)
    if reliable_seconds is None:
      reliable_seconds = min(self.o["anchor_seconds"], 0.5 * self.window / self.sr)
    reliable = seconds >= reliable_seconds
    weights = seconds if weights is None else weights
    threshold = self.o["cluster_threshold"]
    reuse = [c for c, last in sorted(self.dropped.items())
             if last < self.decided and c not in self.open]     # numbers free again
    free = self.max_speakers - k + len(reuse)
    cost = np.full((n, k + n), 1e6)
    centroids = np.stack(self.centroids) if k else np.zeros((0, x.shape[1]))
    if k:
      cost[:, :k] = 1.0 - x @ centroids.T
      cost[:, list(self.dropped)] = 1e6
      for c, piece in self.provisional.items():  # only for its own piece, which keeps it
        own = pieces == piece                   # unless nearer another (or confirms it)
        cost[~own, c] = 1e6
        cost[own, c] = np.where(reliable[own], threshold,
                                np.minimum(cost[own, c], self.provisional_threshold)) - 1e-6
    founders = reliable | (k == 0 and self.first_founds)   # the first speaker: any voice
    early = (~founders & self._far_in_direction(x, centroids)
             if self.provisional_threshold is not None else np.zeros(n, bool))
    for i in range(min(n, free)):           # "a new speaker": the threshold, reliable ones only
      cost[founders, k + i] = threshold
      cost[early, k + i] = self.provisional_threshold     # or a provisional one, farther
    rows, cols = scipy.optimize.linear_sum_assignment(cost)
    labels = np.full(n, -1)
    for r, c in zip(rows, cols):
      if cost[r, c] >= 1e6:
        continue
      if c >= k:                            # a new global speaker
        c = self._new_speaker(x[r], reuse)
        if early[r]:
          self.provisional[c] = int(pieces[r])
      labels[r] = c
      if reliable[r]:
        self.provisional.pop(c, None)       # confirmed
        w = float(weights[r])
        v = self.centroids[c] * self.mass[c] + x[r] * w
        self.centroids[c] = v / (np.linalg.norm(v) + 1e-9)
        self.mass[c] += w
    if self.provisional:
      self._drop_provisional(pieces, labels)
    self._relabel_waiting()
    return labels

  def pop_relabels(self) -> list[dict[str, str]]:
    """The relabel events since the last call, each {label already sent: its final label}
    (a dropped provisional speaker's segments belong to a confirmed speaker)."""
    out, self.relabels = self.relabels, []
    return out

  def final_segments(self) -> list[Segment]:
    """The segments under their final labels (`segments` keeps the labels they were sent
    with), those of one speaker that now touch or overlap merged."""
    by_speaker: dict[str, list[list[float]]] = {}
    for g in sorted(self.segments, key=lambda g: (g.start, g.end)):
      runs = by_speaker.setdefault(self.renamed.get(g.speaker, g.speaker), [])
      if runs and g.start <= runs[-1][1]:
        runs[-1][1] = max(runs[-1][1], g.end)
      else:
        runs.append([g.start, g.end])
    return sorted((Segment(a, b, spk) for spk, runs in by_speaker.items() for a, b in runs),
                  key=lambda g: (g.start, g.end, g.speaker))

  def _live(self, k: int) -> np.ndarray:
    """The speakers among the first `k` that are not dropped provisional ones."""
    return np.array([c for c in range(k) if c not in self.dropped], int)

  def _far_in_direction(self, x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """[n] bool: the joint vectors `x` whose direction is farther than provisional_direction
    (cosine distance of the responses alone) from every speaker not dropped (`centroids`, all
    speakers' joint vectors); all of them without directions (x is the embedding alone)."""
    e, a = self.model.meta["embedding_dim"], self.o["spatial_weight"]
    live = self._live(len(centroids))
    if self.provisional_direction is None or x.shape[1] == e or not len(live):
      return np.ones(len(x), bool)
    ours = x[:, e:] / np.sqrt(a)                                # unit responses
    theirs = centroids[live, e:]
    theirs = theirs / (np.linalg.norm(theirs, axis=1, keepdims=True) + 1e-9)
    return (1.0 - ours @ theirs.T).min(axis=1) > self.provisional_direction

  def _new_speaker(self, x: np.ndarray, reuse: list[int]) -> int:
    """A new global speaker with centroid `x`: in the place of a dropped provisional one whose
    frames are all decided, or a new place; its number in the output is a new one."""
    name = max(self.names, default=-1) + 1
    if reuse:
      c = reuse.pop(0)
      del self.dropped[c]
      self.centroids[c], self.mass[c], self.names[c] = x.copy(), 0.0, name
      self.piece_label[self.piece_label == c] = -1          # its old pieces: all decided
      if self.reseg:
        self.dir_sum[c], self.dir_mass[c] = 0.0, 0.0
        self.piece_dir[c], self.piece_dir_mass[c] = 0.0, 0.0
      return c
    self.centroids.append(x.copy())
    self.mass.append(0.0)
    self.names.append(name)
    return len(self.centroids) - 1

  def _drop_provisional(self, pieces: np.ndarray, labels: np.ndarray) -> None:
    """Provisional speakers whose piece ended, or was matched to another speaker, are
    dropped; the slots' current pieces that carried the label are unlabelled, and the
    segments already given its label are relabelled (`_relabel`)."""
    current = set(self.piece.tolist())
    for c, piece in list(self.provisional.items()):
      row = np.flatnonzero(pieces == piece)
      matched_elsewhere = len(row) and labels[row[0]] != c
      if piece in current and not matched_elsewhere:
        continue
      del self.provisional[c]
      stale = self.piece[self.piece_label[self.piece] == c]
      self.piece_label[stale] = -1
      self.dropped[c] = self.received // self.hop - 1      # no frame after this one has it
      self.num_dropped += 1
      self._relabel(c, int(labels[row[0]]) if matched_elsewhere else -1)

  def _relabel(self, dropped: int, matched: int) -> None:
    """The final label of a dropped provisional speaker's frames: the confirmed speaker its
    piece was matched to, else the confirmed speaker whose centroid is nearest its own (none
    yet: decided when the first one is, `_relabel_waiting`). Queued as a relabel event
    (`Streamer.pop_relabels`)."""
    old = f"spk{self.names[dropped]:02d}"
    confirmed = self._confirmed(exclude=dropped)
    if matched not in confirmed:
      if not confirmed:
        self.waiting[old] = self.centroids[dropped].copy()
        return
      near = np.stack([self.centroids[c] for c in confirmed]) @ self.centroids[dropped]
      matched = confirmed[int(np.argmax(near))]
    self._rename(old, f"spk{self.names[matched]:02d}")

  def _confirmed(self, exclude: int = -1) -> list[int]:
    return [c for c in range(len(self.centroids))
            if c != exclude and c not in self.dropped and c not in self.provisional
            and c not in self.folded]

  def fold_short(self, min_seconds: float) -> None:
    """At the end of the stream: each confirmed speaker whose segments (under their final
    labels) add up to less than `min_seconds` joins the confirmed speaker whose centroid is
    nearest, the shortest first, while two or more are left; a relabel event each (earlier
    relabels to it follow it)."""
    while True:
      confirmed = self._confirmed()
      if len(confirmed) < 2:
        return
      label = {c: f"spk{self.names[c]:02d}" for c in confirmed}
      talk = dict.fromkeys(label.values(), 0.0)
      for g in self.segments:
        final = self.renamed.get(g.speaker, g.speaker)
        if final in talk:
          talk[final] += g.end - g.start
      c = min(confirmed, key=lambda c: talk[label[c]])
      if talk[label[c]] >= min_seconds:
        return
      others = [o for o in confirmed if o != c]
      near = np.stack([self.centroids[o] for o in others]) @ self.centroids[c]
      to = others[int(np.argmax(near))]
      self.folded[c] = to
      self._rename(label[c], label[to])

  def _rename(self, old: str, new: str) -> None:
    """Label `old`'s segments (sent or to come, and those relabelled to it before) belong to
    `new`: the final labels and a relabel event."""
    for sent, final in self.renamed.items():
      if final == old:
        self.renamed[sent] = new
    self.renamed[old] = new
    self.relabels.append({old: new})

  def _relabel_waiting(self) -> None:
    """Dropped provisional speakers that had no confirmed speaker to go to: the nearest one,
    once there is one."""
    confirmed = self._confirmed()
    if not self.waiting or not confirmed:
      return
    centroids = np.stack([self.centroids[c] for c in confirmed])
    for old, centroid in self.waiting.items():
      self._rename(old, f"spk{self.names[confirmed[int(np.argmax(centroids @ centroid))]]:02d}")
    self.waiting = {}
