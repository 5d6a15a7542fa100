"""python -m jaxdiar.stream INPUT [--model M] [--out FINAL.rttm] [--step 0.5] [--latency 0.5]

A live diarizer: audio in, closed speaker segments out as JSON lines on stdout
(`{"start": s, "end": s, "speaker": "spk00"}`), progress and diagnostics on stderr.
INPUT is an audio file (read as fast as possible, or at real-time pace with --realtime) or
`-`: raw interleaved PCM on stdin (e.g. `arecord -f S16_LE -c 8 -r 16000 | python -m
jaxdiar.stream - --channels 8`), described by --channels, --sample-rate and --format.

The diart recipe on an exported model: a rolling buffer of the model's window (8 s) advanced
every --step seconds; each advance runs the model on the buffer, matches the buffer's local
speakers to global speakers (cosine distance of the embeddings, joined on an array by the
talker direction as offline; distinct local speakers go to distinct global ones, Hungarian;
a new speaker when none is close enough, up to --max-speakers; centroids updated by the
speech of speakers heard long enough) and adds their outputs to the timeline. A frame is
decided --latency seconds after it entered (from one step up to the window: more latency,
more buffers averaged), with offline `diarize`'s talker-count rule; a segment is written as
soon as it closes. `Streamer.push(block) -> [Segment]` is the Python API under the command.

--causal (a model exported with a streaming step, e.g. `configs/array8_causal.py`): no
rolling buffer; the model's own causal step runs once per block of 128 ms (its state carries
the past), so each frame is computed once and can be decided as soon as its block is in.
Each local speaker slot gathers its evidence in pieces (its frame embeddings and per-frame
SRP-PHAT responses where it talks alone; a piece ends after a pause or at --piece seconds,
since a slot may pass from one voice to the next); every block the pieces that talk are
matched to global speakers as above (Hungarian, distinct slots to distinct speakers, a new
speaker only from a piece heard long enough; before that, a voice far from every speaker
gets a provisional one at once, confirmed or dropped once its piece has been heard enough:
`--set provisional_threshold=null` turns them off), and a frame's speakers are its active slots
under the labels their pieces have when it is decided (--latency after it arrived, at least
one block: more latency, better-informed labels). On an array with a model carrying
resegmentation weights each decided frame is then re-decided from the speakers' directions
(where they talked alone so far) as offline.
"""

import argparse
import dataclasses
import inspect
import json
import pathlib
import signal
import sys
import time

import numpy as np
import scipy.optimize

from jaxdiar import atomic
from jaxdiar import bundled
from jaxdiar import formats
from jaxdiar import resegment as resegment_lib
from jaxdiar import rttm
from jaxdiar import runtime
from jaxdiar import settings as settings_lib
from jaxdiar import spatial as spatial_lib
from jaxdiar.data import audio as audio_lib
from jaxdiar.decoding import cluster as cluster_lib
from jaxdiar.decoding import decode as decode_lib
from jaxdiar.decoding import frames as frames_lib
from jaxdiar.decoding import windows as windows_lib


@dataclasses.dataclass(frozen=True)
class Segment:
  start: float
  end: float
  speaker: str

  def to_json(self) -> str:
    return json.dumps(dict(start=round(self.start, 3), end=round(self.end, 3),
                           speaker=self.speaker))


# Cosine distance beyond which a local speaker founds a new global one: one centroid per
# speaker is matched here, not average-linked as offline, and a larger cut than the offline
# one splits fewer voices (array8 on 4 dev meetings at 0.5 s latency: 0.48 -> 50.4 %,
# 0.65 -> 46.1 %, 0.8 -> 53.4 % DER).
STREAM_THRESHOLD = 0.65

# Causal mode: the longest piece of a slot's speech gathered into one embedding and direction,
# the pause after which a slot starts a new piece (its next voice may be another speaker), the
# pause under which that piece takes the slot's last label until it has its own, how long a
# piece must have talked alone to found a new speaker or move a centroid, and the distance
# cut. Chosen on the 16 dev meetings with a causal model (DER at 128 ms latency; pieces of
# 1.5 / 2 / 3 s, 0.7 / 1 s, cut 0.45 / 0.55: 30.1-34.9 %; without pieces, one running
# embedding per slot with a half-life of 1-4 s: 41.6-46.2 %; carrying the label over pauses
# under 1-4 s: 31.4 -> 31.0 %). The cut and the direction's weight in the matching were
# chosen again (2026-12-01) with the live resegmentation and the causal model of that date
# (configs/array8_causal.py), at 0.5 s latency on the 16 dev meetings: cut 0.35 / 0.4 / 0.45 /
# 0.55 / 0.65 with weight 0.75: 22.9 / 20.8 / 20.3 / 22.1 / - %; weight 0.4 (the offline one)
# / 0.6 / 0.75 / 0.9 at cut 0.55: 26.7 / 22.1 / 22.1 / 22.1 %, at 0.45: 29.3 / - / 20.3 / 21.3 %.
PIECE_SECONDS = 2.0
RESET_SECONDS = 0.5
CARRY_SECONDS = 2.0
RELIABLE_SECONDS = 1.0
CAUSAL_THRESHOLD = 0.45
CAUSAL_SPATIAL_WEIGHT = 0.75
# Causal mode, provisional speakers: a voice not yet reliable whose distance to every speaker
# is over this cut founds a provisional one at once (see Streamer). Chosen at 0.25 s latency
# on the 16 dev meetings (2026-12-02, benchmarks/results/live-causal-provisional-2026-12-02.json,
# with a prototype of the rule): cut 0.65 / 0.7 / 0.8: 19.1 / 19.1 / 19.1 % against 21.9 %
# without; founding only once the voice is heard alone 0.25 / 0.5 s: 19.8 / 20.7 % (cut 0.7 /
# 0.6). This code, with the direction condition below: 19.1 % (held-out 21.9 % against 24.6 %,
# 64 dev meetings 24.3 % against 27.0 %).
PROVISIONAL_THRESHOLD = 0.7
# ... and its direction alone must be farther than this from every speaker's: 0.2 / 0.4 gave
# 19.1 / 19.8 % on the 16 dev meetings (27 provisional speakers dropped without it, 16 / 15
# with); 0.2 checked on held-out (22.2 -> 21.9 %) and 64 dev meetings (24.5 -> 24.3 %).
PROVISIONAL_DIRECTION = 0.2

# Live spatial resegmentation: frames of context before the ones being decided (the widest
# smoothing of jaxdiar.resegment is 45 frames, centred).
RESEGMENT_CONTEXT = 45


class Streamer:
  """Blocks of audio in ([C, n] float32 at the model's rate), closed segments out."""

  def __init__(self, model: runtime.ExportedModel, *, step_seconds: float = 0.5,
               latency_seconds: float | None = None, max_speakers: int = 8,
               num_channels: int | None = None, causal: bool = False,
               piece_seconds: float = PIECE_SECONDS,
               reset_seconds: float = RESET_SECONDS, carry_seconds: float = CARRY_SECONDS,
               reliable_seconds: float = RELIABLE_SECONDS, first_founds: bool = False,
               templates: str = "decided", open_end: bool = False,
               hold_seconds: float | None = None,
               provisional_threshold: float | None = PROVISIONAL_THRESHOLD,
               provisional_direction: float | None = PROVISIONAL_DIRECTION, **options):
    meta = model.meta
    self.model, self.sr, self.hop = model, model.sample_rate, model.hop
    causal_defaults = ({"cluster_threshold": CAUSAL_THRESHOLD}
                       | ({"spatial_weight": CAUSAL_SPATIAL_WEIGHT}
                          if meta["inference"].get("spatial_weight", 0) > 0 else {})
                       if causal else {"cluster_threshold": STREAM_THRESHOLD})
    self.o = {**decode_lib.DEFAULT_DECODE, **meta["inference"], **causal_defaults, **options}
    self.window = int(round(self.o["window_seconds"] * self.sr)) // self.hop * self.hop
    if causal and not model.can_stream:
      raise runtime.ModelFileError(
          "causal streaming needs a model exported with a streaming step (a causal one, e.g. "
          "trained with configs/array8_causal.py); this model has none")
    if causal and "frame_emb" not in model.stream_outputs:
      raise runtime.ModelFileError(
          "this model's streaming step has no frame embeddings (exported before the live "
          "causal mode): export it again with python -m jaxdiar.export")
    self.causal = causal
    self.step = (model.stream_block_samples if causal else
                 max(1, int(round(step_seconds * self.sr / self.hop))) * self.hop)
    latency = self.step if latency_seconds is None else int(round(latency_seconds * self.sr))
    if not self.step <= latency <= self.window:
      raise ValueError(f"latency must be between the step ({self.step / self.sr:g} s) and the "
                       f"window ({self.window / self.sr:g} s), got {latency / self.sr:g} s")
    self.latency = latency // self.hop * self.hop
    # hold_seconds (causal mode): a frame where a talking slot's voice is not placed yet (its
    # piece unlabelled, or not yet heard alone reliable_seconds: a new piece may carry the
    # slot's last label, and be relabelled) waits, up to this latency, for the evidence;
    # frames are still decided in order. Measured at 0.25 s on the dev meetings
    # (benchmarks/results/live-causal-hold-2026-12-02.json); off by default.
    self.hold = None
    if hold_seconds is not None:
      hold = int(round(hold_seconds * self.sr)) // self.hop * self.hop
      if not (causal and self.latency <= hold):
        raise ValueError(f"hold_seconds needs causal mode and at least the latency "
                         f"({self.latency / self.sr:g} s), got {hold_seconds:g}")
      self.hold = hold
    self.max_speakers = max_speakers
    # provisional_threshold (causal mode; None: off): a talking voice not yet heard alone
    # reliable_seconds, whose distance to every speaker is over this cut, founds a
    # provisional speaker at once instead of being given to the nearest one (or to none) for
    # its first second. Only its own piece is matched to it; it is confirmed when that piece
    # becomes reliable and is still nearer to it than to the others (a reliable piece keeps
    # its provisional speaker rather than found another), and dropped when the piece ends
    # first or is matched elsewhere. Frames already decided keep the provisional label; a
    # dropped speaker's number is not used again, and its place counts against max_speakers
    # only until its frames are all decided.
    if provisional_threshold is not None and not 0.0 < provisional_threshold < 2.0:
      raise ValueError(f"provisional_threshold must be a cosine distance in (0, 2) or None, "
                       f"got {provisional_threshold}")
    self.provisional_threshold = provisional_threshold if causal else None
    # provisional_direction (an array; None: no condition): the voice's direction must also be
    # farther than this from every speaker's (most provisional speakers that were dropped had
    # been voices of speakers already known).
    self.provisional_direction = provisional_direction
    self.provisional: dict[int, int] = {}               # speaker -> the piece it is for
    self.dropped: dict[int, int] = {}                   # speaker -> its last labelled frame
    self.names: list[int] = []                          # each speaker's number in the output
    self.num_dropped = 0                                # provisional speakers dropped so far
    # Causal mode's cold start, three options measured on / off on dev and held-out meetings
    # (benchmarks/results/live-causal-coldstart-sweep-2026-12-01.json), each off by default:
    # each gains up to 0.9 points on dev at 128 ms and none gains on held-out.
    # first_founds: with no speaker yet, any voice heard enough to be matched founds one.
    self.first_founds = causal and first_founds
    if templates not in ("pieces", "decided"):
      raise ValueError(f"templates must be 'pieces' or 'decided', got {templates!r}")
    channels = num_channels or model.num_channels
    if channels != model.num_channels and model.needs_array:
      raise windows_lib.InputError(f"{channels} channel(s), the model expects "
                                   f"{model.num_channels}")
    self.channels = channels
    self.first_only = not model.needs_array and model.num_channels == 1 and channels > 1
    self.steer = None
    if (self.o["spatial_weight"] > 0 and channels > 1
        and len(meta["mic_positions"]) == channels):
      self.steer = spatial_lib.steering(meta["mic_positions"], meta["n_fft"], self.sr,
                                        spatial_lib.azimuth_grid())
    self.buffer = np.zeros((channels, 0 if causal else self.window), np.float32)
    self.pending = np.zeros((channels, 0), np.float32)
    self.received = 0                                   # samples stepped into the buffer
    self.samples_in = 0                                 # samples pushed
    self.centroids: list[np.ndarray] = []               # unit vectors
    self.mass: list[float] = []
    frames = 1024
    self.score = np.zeros((frames, max_speakers))
    self.count = np.zeros(frames)
    self.anyone = np.zeros(frames)
    self.osd = np.zeros(frames)
    self.cover = np.zeros(frames)
    self.decided = 0                                    # frames decided so far
    self.open: dict[int, list[int]] = {}                # speaker -> [first, last active frame]
    self.segments: list[Segment] = []
    self.step_seconds: list[float] = []                 # compute time of each update
    # (first frame, end frame, samples received, compute seconds) of each update's decisions
    self.decisions: list[tuple[int, int, int, float]] = []
    if causal:
      slots = meta["num_speakers"]
      self.state = model.stream_init(1)
      self.tail = np.zeros((channels, meta["n_fft"] - self.hop), np.float32)
      self.slot_vad = np.zeros((frames, slots))
      self.slot_emb = np.zeros((slots, meta["embedding_dim"]))
      self.slot_mass = np.zeros(slots)                  # frames of the piece, talking alone
      self.slot_dir = (np.zeros((slots, self.steer.real.shape[1]))
                       if self.steer is not None else None)
      self.slot_piece = np.zeros((frames, slots), int)   # each frame's piece, per slot
      self.piece = np.arange(slots)                     # each slot's current piece
      self.piece_label = np.full(64, -1)                # global speaker of each piece
      self.num_pieces = slots
      self.slot_last = np.full(slots, -10 ** 9)         # last frame each slot was active
      self.piece_start = np.zeros(slots, int)           # first frame of each slot's piece
      self.piece_frames = int(round(piece_seconds * self.sr / self.hop))
      self.reset_frames = int(round(reset_seconds * self.sr / self.hop))
      self.carry_frames = int(round(carry_seconds * self.sr / self.hop))
      self.reliable_seconds = reliable_seconds
    # Live spatial resegmentation (causal mode, an array, a model with `resegment` weights):
    # each decided frame is re-decided as offline (jaxdiar.resegment), from the speakers'
    # directions over the frames decided so far and the responses up to the newest frame.
    self.reseg = bool(causal and self.steer is not None and self.o["resegment"])
    if self.reseg:
      g = self.steer.real.shape[1]
      self.response = np.zeros((frames, g), np.float32)
      self.dir_sum = np.zeros((max_speakers, g))
      self.dir_mass = np.zeros(max_speakers)
      self.filled = 0                                   # frames with a response so far
      # The speakers' direction templates: "decided", the mean response where the first
      # decision marks each alone among the frames decided so far; or "pieces", where its
      # reliable pieces talk alone (by the model's slot probabilities, in the blocks they are
      # matched; "decided" until it has one).
      self.templates = templates
      self.piece_dir = np.zeros((max_speakers, g))
      self.piece_dir_mass = np.zeros(max_speakers)
      # open_end: the first decision's newest segments may go on, so they are not dropped as
      # too short (segments still are, when they close).
      self.open_end = open_end

  def frame_latencies(self) -> np.ndarray:
    """Seconds from each decided frame's arrival to its decision, on a real-time clock
    (the audio arrives at its own pace; each update costs its measured compute)."""
    out = [received / self.sr - np.arange(a, b) * self.hop / self.sr + compute
           for a, b, received, compute in self.decisions if b > a]
    return np.concatenate(out) if out else np.zeros(0)

  # -------------------------------------------------------------------- public
  def push(self, block: np.ndarray) -> list[Segment]:
    """Feed [C, n] samples; returns the segments that closed."""
    block = np.asarray(block, np.float32)
    if block.ndim != 2 or block.shape[0] != self.channels:
      raise windows_lib.InputError(f"blocks must be [{self.channels}, n], got {block.shape}")
    if not np.all(np.isfinite(block)):
      raise windows_lib.InputError("NaN or infinite samples in the stream")
    self.samples_in += block.shape[1]
    return self._feed(block)

  def _feed(self, block: np.ndarray) -> list[Segment]:
    self.pending = np.concatenate([self.pending, block], axis=1)
    out = []
    while self.pending.shape[1] >= self.step:
      chunk, self.pending = self.pending[:, :self.step], self.pending[:, self.step:]
      self.received += self.step
      t0, before = time.perf_counter(), self.decided
      if self.causal:             # the block's frames are final once it is in
        self._update_causal(chunk)
        upto = (self.received + self.step - self.latency) // self.hop
        out += self._decide(upto if self.hold is None else self._held(upto))
      else:
        self.buffer = np.concatenate([self.buffer[:, self.step:], chunk], axis=1)
        self._update()
        out += self._decide((self.received - self.latency) // self.hop)
      self.step_seconds.append(time.perf_counter() - t0)
      self.decisions.append((before, self.decided, self.received, self.step_seconds[-1]))
    return out

  def finish(self) -> list[Segment]:
    """End of stream: the rest of the audio is stepped (zero-padded), every frame decided and
    every open segment closed."""
    out = []
    if self.pending.shape[1]:
      pad = self.step - self.pending.shape[1]
      out += self._feed(np.zeros((self.channels, pad), np.float32))
    out += self._decide(1 + self.samples_in // self.hop, final=True)
    return out

  @property
  def decided_seconds(self) -> float:
    return self.decided * self.hop / self.sr

  @property
  def num_speakers(self) -> int:
    """The speakers found so far, less the provisional ones (dropped or not confirmed yet)."""
    return len(self.centroids) - len(self.dropped) - len(self.provisional)

  # ------------------------------------------------------------------- internal
  def _grow(self, frames: int) -> None:
    if frames <= len(self.cover):
      return
    n = max(frames, 2 * len(self.cover))
    for name in (("score", "count", "anyone", "osd", "cover")
                 + (("slot_vad", "slot_piece") * self.causal)
                 + (("response",) * self.reseg)):
      old = getattr(self, name)
      new = np.zeros((n,) + old.shape[1:], old.dtype)
      new[:len(old)] = old
      setattr(self, name, new)

  def _model_input(self, audio: np.ndarray) -> np.ndarray:
    """[1, C, n] for the model: the first channel only for a one-channel model, one channel
    copied to all of an array model's."""
    audio = audio[:1] if self.first_only else audio
    if self.model.num_channels > 1 and audio.shape[0] == 1:
      audio = np.tile(audio, (self.model.num_channels, 1))
    return audio[None]

  def _update(self) -> None:
    out = {k: np.asarray(v)[0] for k, v in self.model(self._model_input(self.buffer)).items()}
    vad, osd, emb = out["vad"].astype(np.float64), out["osd"], out["spk_emb"]
    t = vad.shape[0]
    first = (self.received - self.window) // self.hop        # global frame of buffer frame 0
    valid = np.arange(t) + first >= 0
    heard = np.sum((vad > self.o["onset"]) & valid[:, None], axis=0)      # [S]
    slots = np.flatnonzero(heard >= self.o["min_active_frames"])
    x = emb[slots] / (np.linalg.norm(emb[slots], axis=1, keepdims=True) + 1e-9)
    if self.steer is not None and len(slots):
      response = spatial_lib.frame_response(
          spatial_lib.stft(self.buffer, self.model.meta["n_fft"], self.hop), self.steer)
      d = windows_lib.local_directions(vad, response)[slots]
      x = cluster_lib.joint_vectors(x, d, self.o["spatial_weight"])
    labels = self._assign(x, heard[slots] * self.hop / self.sr)
    g = np.arange(t) + first
    keep = valid & (g >= self.decided)
    g, f = g[keep], np.flatnonzero(keep)
    self._grow(int(g[-1]) + 1 if len(g) else 0)
    self.cover[g] += 1
    self.count[g] += vad[f].sum(axis=1)
    self.anyone[g] += 1.0 - np.prod(1.0 - vad[f], axis=1)
    self.osd[g] += osd[f]
    for slot, label in zip(slots, labels):
      if label >= 0:
        self.score[g, label] += vad[f, slot]

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
    w = windows_lib.alone_weights(vad)                                     # [m, S]
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
    return labels

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
    dropped; the slots' current pieces that carried the label are unlabelled."""
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

  def _decide(self, upto: int, final: bool = False) -> list[Segment]:
    """Decide the frames [decided, upto) with the talker-count rule; close segments."""
    upto = max(upto, self.decided)
    self._grow(upto)
    min_speech, min_silence = frames_lib.min_durations(self.o, self.hop / self.sr)
    k = len(self.centroids)
    span = slice(self.decided, upto)
    if self.reseg and k:
      marked = self._resegment(self.decided, upto, k)
    else:
      if self.causal:             # the frames' slots under their pieces' labels now
        self.score[span] = self._causal_score(self.decided, upto)
      marked = self._first_decision(self.decided, upto, k, self.score[span, :k])
    out = []
    for frame, row in zip(range(self.decided, upto), marked):
      active = set(np.flatnonzero(row).tolist())
      for spk in active:
        if spk in self.open:
          self.open[spk][1] = frame
        else:
          self.open[spk] = [frame, frame]
      for spk in list(self.open):
        a, b = self.open[spk]
        if spk not in active and frame - b >= min_silence:
          out += self._close(spk, a, b + 1, min_speech)
    self.decided = upto
    if final:
      for spk in list(self.open):
        a, b = self.open[spk]
        out += self._close(spk, a, b + 1, min_speech)
    return out

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

  def _first_decision(self, a: int, b: int, k: int, score: np.ndarray) -> np.ndarray:
    """[b - a, k] bool: the offline talker-count rule on frames [a, b) (score [b - a, k])."""
    cover = np.maximum(self.cover[a:b], 1.0)
    talkers = frames_lib.talker_count(self.count[a:b] / cover, self.anyone[a:b] / cover,
                                       self.osd[a:b] / cover, k, self.o)
    if self.causal:               # no speaker without a labelled slot behind it
      talkers = np.minimum(talkers, np.count_nonzero(score > 0, axis=1))
    return frames_lib.top_speakers(score, talkers)

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

  def _close(self, spk: int, a: int, b: int, min_speech: int) -> list[Segment]:
    del self.open[spk]
    if b - a < min_speech:
      return []
    fs = self.hop / self.sr
    end = min(b * fs, self.samples_in / self.sr)
    if a * fs >= end:                       # only in the padding after the end
      return []
    segment = Segment(a * fs, end, f"spk{self.names[spk]:02d}")
    self.segments.append(segment)
    return [segment]


# --------------------------------------------------------------------------- input


def file_blocks(path, sample_rate: int, block: int, realtime: bool = False):
  """[C, block] blocks of an audio file (or per-channel folder) at `sample_rate`."""
  rate, _, frames = audio_lib.info(path)
  total = int(round(frames * sample_rate / rate))
  t0 = time.perf_counter()
  for start in range(0, total, block):
    x = windows_lib.read_block(path, rate, sample_rate, start, min(block, total - start))
    if realtime:
      wait = t0 + (start + x.shape[1]) / sample_rate - time.perf_counter()
      if wait > 0:
        time.sleep(wait)
    yield x


def pcm_blocks(stream, channels: int, rate: int, fmt: str, sample_rate: int, block: int):
  """[C, n] float32 blocks at `sample_rate` from raw interleaved PCM (s16 or f32)."""
  dtype, scale = {"s16": (np.dtype("<i2"), 1 / 32768.0), "f32": (np.dtype("<f4"), 1.0)}[fmt]
  frame_bytes = dtype.itemsize * channels
  want = block * rate // sample_rate * frame_bytes
  resampler = None
  if rate != sample_rate:
    import soxr
    resampler = soxr.ResampleStream(rate, sample_rate, channels, dtype="float32")
  rest = b""
  while True:
    data = stream.read(want)
    last = not data
    data = rest + data
    usable = len(data) // frame_bytes * frame_bytes
    data, rest = data[:usable], data[usable:]
    x = (np.frombuffer(data, dtype).astype(np.float32) * scale).reshape(-1, channels)
    if resampler is not None:
      x = resampler.resample_chunk(x, last=last)
    if len(x):
      yield np.ascontiguousarray(x.T)
    if last:
      return


# The Streamer's own settings that --set reaches (the rest are flags of their own).
TUNABLE = {name for name in inspect.signature(Streamer).parameters
           if name.endswith("_seconds") and name not in ("step_seconds", "latency_seconds")
           } | {"provisional_threshold", "provisional_direction"}


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog="python -m jaxdiar.stream", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("input", help="audio file, per-channel folder, or - for raw PCM on stdin")
  p.add_argument("--model", default=None,
                 help="a .jaxdiar file or bundled name (default: the bundled model that fits "
                      "the channel count)")
  p.add_argument("--out", default=None, help="also write the final segments at the end (format from the extension: "
                      "rttm, json, csv, srt, vtt, TextGrid, eaf; other: rttm)")
  p.add_argument("--uri", default=None, help="RTTM uri (default: the file's name, or 'stdin')")
  p.add_argument("--causal", action="store_true",
                 help="run the model's causal streaming step per block (a causal model)")
  p.add_argument("--step", type=float, default=0.5,
                 help="seconds between model updates (with --causal: the model's block)")
  p.add_argument("--piece", type=float, default=PIECE_SECONDS,
                 help="--causal: longest piece of one slot's speech in one embedding")
  p.add_argument("--latency", type=float, default=None,
                 help="seconds from a sample's arrival to its decision (step .. window; "
                      "default: the step)")
  p.add_argument("--max-speakers", type=int, default=8)
  p.add_argument("--threshold", type=float, default=None,
                 help=f"cosine distance beyond which a voice is a new speaker (default "
                      f"{STREAM_THRESHOLD}, with --causal {CAUSAL_THRESHOLD})")
  p.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                 help="a decoding setting for this run, e.g. onset=0.6 or reliable_seconds=0.5")
  p.add_argument("--realtime", action="store_true", help="read a file at real-time pace")
  p.add_argument("--channels", type=int, default=None, help="stdin: channel count")
  p.add_argument("--sample-rate", type=int, default=16000, help="stdin: sample rate")
  p.add_argument("--format", choices=("s16", "f32"), default="s16", help="stdin: sample format")
  args = p.parse_args(argv)
  stdin = args.input == "-"
  if stdin and not args.channels:
    p.error("reading stdin needs --channels")
  previous = None
  try:                                     # SIGTERM ends the stream as Ctrl-C does
    previous = signal.signal(signal.SIGTERM, _interrupt)
  except ValueError:                       # not the main thread: leave signals alone
    pass
  try:
    return _run(args, stdin)
  finally:
    if previous is not None:
      signal.signal(signal.SIGTERM, previous)


def _interrupt(signum, frame):
  raise KeyboardInterrupt


def _run(args, stdin: bool) -> int:
  """`main` after parsing: stream, print the segments, write --out (also when stopped)."""
  interrupted = False
  try:
    if args.out:
      atomic.check_output(args.out)
    channels = args.channels if stdin else audio_lib.info(args.input)[1]
    name = args.model or bundled.choose(channels)
    model = runtime.load(name)
    if not args.model:
      print(f"jaxdiar.stream: using the bundled '{name}' model", file=sys.stderr)
    settings = settings_lib.parse_items(args.set, extra=TUNABLE, what="setting")
    if args.threshold is not None:
      settings["cluster_threshold"] = args.threshold
    streamer = Streamer(model, step_seconds=args.step, latency_seconds=args.latency,
                        max_speakers=args.max_speakers, num_channels=channels,
                        causal=args.causal, **{"piece_seconds": args.piece, **settings})
    block = streamer.step
    blocks = (pcm_blocks(sys.stdin.buffer, channels, args.sample_rate, args.format,
                         model.sample_rate, block) if stdin
              else file_blocks(args.input, model.sample_rate, block, args.realtime))
    try:
      for x in blocks:
        for segment in streamer.push(x):
          print(segment.to_json(), flush=True)
    except KeyboardInterrupt:              # the usual way to stop a microphone: keep the output
      interrupted = True
    for segment in streamer.finish():      # closes the segments still open
      print(segment.to_json(), flush=True)
  except (windows_lib.InputError, audio_lib.AudioError, runtime.ModelFileError,
          atomic.OutputError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print("jaxdiar.stream: interrupted", file=sys.stderr)
    return 130
  steps = np.array(streamer.step_seconds or [0.0])
  audio_s = streamer.samples_in / model.sample_rate
  print(f"jaxdiar.stream: {audio_s:.1f} s of audio, {len(streamer.segments)} segments, "
        f"{streamer.num_speakers} speakers"
        + (f" ({streamer.num_dropped} provisional ones dropped)" if streamer.num_dropped else "")
        + f"; per step (every {streamer.step / model.sample_rate:g}"
        f" s) {1e3 * np.median(steps):.0f} ms median, {1e3 * np.percentile(steps, 95):.0f} ms p95;"
        f" RTF {steps.sum() / max(audio_s, 1e-9):.3f}", file=sys.stderr)
  if args.out:
    uri = rttm.safe_uri(args.uri or ("stdin" if stdin else pathlib.Path(args.input).stem))
    final = formats.to_annotation([rttm.Turn(uri, s.start, s.end, s.speaker)
                                   for s in streamer.segments], uri)
    atomic.write_text(args.out, formats.dumps(final, formats.infer_format(args.out),
                                              duration=audio_s))
  if interrupted:
    print("jaxdiar.stream: interrupted" + (f"; wrote {args.out}" if args.out else ""),
          file=sys.stderr)
    return 130
  return 0


if __name__ == "__main__":
  sys.exit(main())
