"""`Streamer`: blocks of audio in, closed speaker segments out (`jaxdiar.live`). The rolling
mode is the diart recipe on an exported model: a rolling buffer of the model's window
advanced every step; each advance runs the model on the buffer, matches the buffer's local
speakers to global ones (`speakers`) and adds their outputs to the timeline; a frame is
decided `latency` after it entered, with offline `diarize`'s talker-count rule, and a segment
is written as soon as it closes. The causal mode (`causal`) feeds the same decisions."""

import time

import numpy as np

from jaxdiar.core import spatial as spatial_lib
from jaxdiar.decoding import cluster as cluster_lib
from jaxdiar.decoding import decode as decode_lib
from jaxdiar.decoding import frames as frames_lib
from jaxdiar.decoding import local as local_lib
from jaxdiar.decoding import windows as windows_lib
from jaxdiar.live import causal
from jaxdiar.live import gate
from jaxdiar.live import speakers
from jaxdiar.live.speakers import Segment
from jaxdiar.models import runtime


# Where each value below was chosen (DER on the dev meetings, with the figures):
# docs/inference.md, "How the live settings were chosen".
STREAM_THRESHOLD = 0.65            # rolling mode: distance beyond which a voice is new
PIECE_SECONDS = 2.0                # causal: the longest piece of one slot's speech
RESET_SECONDS = 0.5                # causal: a pause that starts a new piece
CARRY_SECONDS = 2.0                # causal: a pause under which the piece keeps the label
RELIABLE_SECONDS = 1.0             # causal: heard alone this long to found or move a speaker
CAUSAL_THRESHOLD = 0.45            # causal: distance beyond which a voice is new
CAUSAL_SPATIAL_WEIGHT = 0.75       # causal: the direction's weight in the matching (arrays)
PROVISIONAL_THRESHOLD = 0.7        # causal: a new voice this far founds a provisional speaker
PROVISIONAL_DIRECTION = 0.2        # ... and its direction this far from every speaker's
MIN_TALKER_SECONDS = 3.0           # at the end: a speaker with less speech joins the nearest


class Streamer(causal.CausalSlots, speakers.SpeakerMatching, gate.SpeechGate):
  """Blocks of audio in ([C, n] float32 at the model's rate), closed segments out: the
  rolling buffer (`_update`) or, with `causal`, the model's streaming step (`CausalSlots`);
  local speakers matched to global ones by `SpeakerMatching`; the speech detector's gate by
  `SpeechGate`; frames decided and segments closed here."""

  def __init__(self, model: runtime.ExportedModel, *, step_seconds: float = 0.5,
               latency_seconds: float | None = None, max_speakers: int = 8,
               num_channels: int | None = None, causal: bool = False,
               piece_seconds: float = PIECE_SECONDS,
               reset_seconds: float = RESET_SECONDS, carry_seconds: float = CARRY_SECONDS,
               reliable_seconds: float = RELIABLE_SECONDS, first_founds: bool = False,
               templates: str = "decided", open_end: bool = False,
               hold_seconds: float | None = None, live_gate: bool = False,
               provisional_threshold: float | None = PROVISIONAL_THRESHOLD,
               provisional_direction: float | None = PROVISIONAL_DIRECTION,
               min_talker_seconds: float = MIN_TALKER_SECONDS, mics=None, **options):
    meta = model.meta
    channels = num_channels or model.num_channels
    # mics ([C, 3]): a one-channel model reads channel 0; with a `spatial_weight` the talkers'
    # directions come from all channels with these positions (off by default: docs/arrays.md).
    positions = meta["mic_positions"]
    if mics is not None:
      mics = np.asarray(mics, float)
      windows_lib.check_geometry(mics, model, channels, "the stream")
      positions = positions if model.needs_array else mics
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
    self._init_gate(live_gate, channels)
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
    # Final labels: a dropped provisional speaker's output label -> the confirmed speaker's
    # its frames go to (`SpeakerMatching._relabel`); the events not yet taken by
    # `pop_relabels`.
    self.renamed: dict[str, str] = {}
    self.relabels: list[dict[str, str]] = []
    self.waiting: dict[str, np.ndarray] = {}            # dropped before any was confirmed
    # min_talker_seconds: at the end, a speaker with less speech (final labels) joins the
    # nearest one (`fold_short`): a voice split off its talker for a moment. 0: off.
    if min_talker_seconds < 0:
      raise ValueError(f"min_talker_seconds must be >= 0, got {min_talker_seconds}")
    self.min_talker_seconds = min_talker_seconds
    self.folded: dict[int, int] = {}                    # speaker -> the one it joined
    # Causal mode's cold start, three options measured on / off on dev and held-out meetings
    # (benchmarks/results/live-causal-coldstart-sweep-2026-12-01.json), each off by default:
    # each gains up to 0.9 points on dev at 128 ms and none gains on held-out.
    # first_founds: with no speaker yet, any voice heard enough to be matched founds one.
    self.first_founds = causal and first_founds
    if templates not in ("pieces", "decided"):
      raise ValueError(f"templates must be 'pieces' or 'decided', got {templates!r}")
    if channels != model.num_channels and model.needs_array:
      raise windows_lib.InputError(f"{channels} channel(s), the model expects "
                                   f"{model.num_channels}")
    self.channels = channels
    self.first_only = not model.needs_array and model.num_channels == 1 and channels > 1
    self.steer = None
    if self.o["spatial_weight"] > 0 and channels > 1 and len(positions) == channels:
      self.steer = spatial_lib.steering(positions, meta["n_fft"], self.sr,
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
    # each decided frame is re-decided as offline (jaxdiar.core.resegment), from the speakers'
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
      if self.detector is not None:
        self.speech_p = np.concatenate([self.speech_p, self._detect(chunk)])
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
    self.fold_short(self.min_talker_seconds)
    return out

  @property
  def decided_seconds(self) -> float:
    return self.decided * self.hop / self.sr

  @property
  def num_speakers(self) -> int:
    """The speakers found so far, less the provisional ones (dropped or not confirmed yet)
    and those folded into another at the end."""
    return len(self.centroids) - len(self.dropped) - len(self.provisional) - len(self.folded)

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
      d = local_lib.local_directions(vad, response)[slots]
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
    if self.detector is not None and len(self.speech_p):
      marked = marked & self._speech(self.decided, upto)[:, None]
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

  def _first_decision(self, a: int, b: int, k: int, score: np.ndarray) -> np.ndarray:
    """[b - a, k] bool: the offline talker-count rule on frames [a, b) (score [b - a, k])."""
    cover = np.maximum(self.cover[a:b], 1.0)
    talkers = frames_lib.talker_count(self.count[a:b] / cover, self.anyone[a:b] / cover,
                                       self.osd[a:b] / cover, k, self.o)
    if self.causal:               # no speaker without a labelled slot behind it
      talkers = np.minimum(talkers, np.count_nonzero(score > 0, axis=1))
    return frames_lib.top_speakers(score, talkers)

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


# The Streamer's own settings that --set reaches (the rest are flags of their own).
TUNABLE = frozenset({"piece_seconds", "reset_seconds", "carry_seconds", "reliable_seconds",
                     "hold_seconds", "provisional_threshold", "provisional_direction",
                     "min_talker_seconds", "live_gate"})
