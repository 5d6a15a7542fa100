"""The live diarizer's causal mode: the model's own streaming step once per block (128 ms),
each local speaker slot's evidence gathered in pieces (its voice may change after a pause or
within a long turn), pieces matched to global speakers, frames scored by the labels of their
slots' pieces, and on an array the live spatial resegmentation. A mixin of `Streamer`, whose
attributes it reads (see `Streamer.__init__`)."""

import numpy as np

from jaxdiar.core import resegment as resegment_lib
from jaxdiar.core import spatial as spatial_lib
from jaxdiar.decoding import cluster as cluster_lib
from jaxdiar.decoding import frames as frames_lib
from jaxdiar.decoding import local as local_lib

# Frames of context before the ones being decided (the widest smoothing of
# jaxdiar.core.resegment is 45 frames, centred).
RESEGMENT_CONTEXT = 45


class CausalSlots:
  """`Streamer`'s causal mode: slots, pieces, their labels, the live resegmentation."""

  def _update_causal(self, chunk: np.ndarray) -> None:
    """One block through the model's streaming step; slot evidence and labels updated."""
    out, self.state = self.model.stream_step(self._model_input(chunk), self.state)
    vad = np.asarray(out["vad"], np.float64)[0]                     # [m, S]
    emb = np.asarray(out["frame_emb"], np.float64)[0]               # [m, E]
    m = len(vad)
    g0 = (self.received - self.step) // self.hop                     # the block's first frame
    g = np.arange(g0, g0 + m)
    self._grow(g0 + m)
    self.cover[g] = 1.0
    self.count[g] = vad.sum(axis=1)
    self.anyone[g] = 1.0 - np.prod(1.0 - vad, axis=1)
    self.osd[g] = np.asarray(out["osd"])[0]
    self.slot_vad[g] = vad
    # Each slot's evidence is gathered per piece: a piece ends after a pause of reset_seconds
    # (the slot's next voice may be another speaker) or when it is piece_seconds long (a
    # slot can pass from one voice to the next without a pause); a piece cut for length
    # keeps its label until the new one has evidence of its own.
    active = vad > self.o["onset"]
    talks = active.any(axis=0)
    first_active = np.where(talks, g0 + np.argmax(active, axis=0), -1)
    paused = talks & (first_active - self.slot_last > self.reset_frames)
    long = talks & ~paused & (g0 - self.piece_start >= self.piece_frames)
    fresh = paused | long
    self.slot_emb[fresh], self.slot_mass[fresh] = 0.0, 0.0
    if self.slot_dir is not None:
      self.slot_dir[fresh] = 0.0
    self.piece_start[paused] = first_active[paused]
    self.piece_start[long] = g0
    fresh_slots = np.flatnonzero(fresh)
    if self.num_pieces + len(fresh_slots) > len(self.piece_label):
      self.piece_label = np.concatenate([self.piece_label, np.full(len(self.piece_label), -1)])
    new_ids = self.num_pieces + np.arange(len(fresh_slots))
    carry = long | (paused & (first_active - self.slot_last <= self.carry_frames))
    self.piece_label[new_ids] = np.where(carry[fresh_slots],
                                         self.piece_label[self.piece[fresh_slots]], -1)
    self.piece[fresh_slots] = new_ids
    self.num_pieces += len(fresh_slots)
    self.slot_piece[g] = self.piece
    self.slot_last = np.where(talks, g0 + m - 1 - np.argmax(active[::-1], axis=0),
                              self.slot_last)
    # Evidence where each slot talks alone.
    w = local_lib.alone_weights(vad)                                     # [m, S]
    self.slot_emb += w.T @ emb
    self.slot_mass += w.sum(axis=0)
    if self.slot_dir is not None:
      buffer = np.concatenate([self.tail, chunk], axis=1)
      self.tail = buffer[:, buffer.shape[1] - self.tail.shape[1]:]
      spec = spatial_lib.frames_stft(buffer, m, self.model.meta["n_fft"], self.hop)
      response = spatial_lib.frame_response(spec, self.steer)
      self.slot_dir += w.T @ response
      if self.reseg:
        self.response[g] = response
        self.filled = g0 + m
    # The slots that talk in this block and have been heard enough are (re)labelled.
    fs = self.hop / self.sr
    talking = np.flatnonzero(talks & (self.slot_mass >= self.o["min_active_frames"]))
    if len(talking):
      x = self.slot_emb[talking]
      x = x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-9)
      if self.slot_dir is not None:
        d = self.slot_dir[talking] / self.slot_mass[talking][:, None]
        x = cluster_lib.joint_vectors(x, d, self.o["spatial_weight"])
      labels = self._assign(x, self.slot_mass[talking] * fs,
                            weights=w.sum(axis=0)[talking] * fs,
                            reliable_seconds=self.reliable_seconds,
                            pieces=self.piece[talking])
      self.piece_label[self.piece[talking]] = labels
      if self.reseg and self.templates == "pieces":   # directions from reliable pieces
        for slot, label in zip(talking, labels):
          if label >= 0 and self.slot_mass[slot] * fs >= self.reliable_seconds:
            self.piece_dir[label] += w[:, slot] @ response
            self.piece_dir_mass[label] += w[:, slot].sum()

  def _held(self, upto: int) -> int:
    """How far to decide with `hold_seconds`: up to the first frame in [decided, upto) where
    a talking slot's voice is unplaced (see __init__), but every frame older than the hold."""
    force = max(self.decided, (self.received + self.step - self.hold) // self.hop)
    if upto <= force:
      return upto
    span = slice(force, upto)
    pieces = self.slot_piece[span]                                   # [t, S]
    fs = self.hop / self.sr
    unsure = ((self.piece_label[pieces] < 0)
              | ((pieces == self.piece) & (self.slot_mass * fs < self.reliable_seconds)))
    waiting = np.flatnonzero((unsure & (self.slot_vad[span] > self.o["onset"])).any(axis=1))
    return force + int(waiting[0]) if len(waiting) else upto

  def _causal_score(self, a: int, b: int) -> np.ndarray:
    """[b - a, max_speakers] each global speaker's score over frames [a, b): the largest
    probability of the slots whose pieces carry its label now."""
    score = np.zeros((b - a, self.max_speakers))
    label = self.piece_label[self.slot_piece[a:b]]                    # [t, S]
    rows, slots = np.nonzero(label >= 0)
    np.maximum.at(score, (rows, label[rows, slots]), self.slot_vad[a:b][rows, slots])
    score[:, list(self.dropped)] = 0.0      # dropped provisional speakers: no longer anyone
    return score

  def _resegment(self, a: int, b: int, k: int) -> np.ndarray:
    """[b - a, k] bool: frames [a, b) re-decided by the spatial resegmentation, over a slice
    reaching RESEGMENT_CONTEXT frames back and up to the newest response; the speakers'
    templates are their mean responses where the first decision marked them alone so far.
    Dropped provisional speakers take no part."""
    live = self._live(k)
    out = np.zeros((b - a, k), bool)
    if not len(live):
      return out
    lo, hi = max(0, a - RESEGMENT_CONTEXT), max(b, self.filled)
    self._grow(hi)
    score = self._causal_score(lo, hi)[:, live]
    if self.o["stitch"] == "count":
      first = self._first_decision(lo, hi, len(live), score)
    else:                         # mean stitching: each speaker's score, hysteresis
      first = frames_lib.binarize_each(score, self.o, self.hop / self.sr,
                                        open_end=self.open_end)
    response = self.response[lo:hi]
    only = resegment_lib.alone(first).astype(np.float64)
    new = slice(a - lo, b - lo)
    sums = self.dir_sum[live] + only[new].T @ response[new]
    mass = self.dir_mass[live] + only[new].sum(axis=0)
    heard = (first.T.astype(np.float64) @ response) / np.maximum(first.sum(axis=0), 1)[:, None]
    templates = np.where(mass[:, None] > 0, sums / np.maximum(mass, 1)[:, None], heard)
    if self.templates == "pieces":
      pm = self.piece_dir_mass[live, None]
      templates = np.where(pm > 0, self.piece_dir[live] / np.maximum(pm, 1e-9), templates)
    cover = np.maximum(self.cover[lo:hi], 1.0)
    out[:, live] = resegment_lib.apply(first, score, self.osd[lo:hi] / cover, response,
                                       self.o["resegment"], self.o["resegment_threshold"],
                                       templates=templates)[new]
    self.dir_sum[live], self.dir_mass[live] = sums, mass
    return out
