"""Reading a recording in windows and running the model over them (`infer`): the
per-window local-speaker probabilities, overlap, embeddings, and where asked the talkers'
SRP-PHAT directions, the d-vectors and the speech detector's probabilities (`Inference`).
Audio is read in blocks: memory does not grow with the length."""

import dataclasses
import math
import pathlib
import time

import numpy as np
import tqdm

from jaxdiar.core import dereverb as dereverb_lib
from jaxdiar.core import geometry as geometry_lib
from jaxdiar.core import spatial as spatial_lib
from jaxdiar.data import audio as audio_lib
from jaxdiar.decoding import pieces as pieces_lib
from jaxdiar.decoding import views as views_lib
from jaxdiar.decoding.local import VOICE_ONSET
from jaxdiar.decoding.local import local_directions
from jaxdiar.decoding.local import voice_segments
from jaxdiar.models import runtime
from jaxdiar.models import speech_net as speech_net_lib
from jaxdiar.models import vad as vad_lib
from jaxdiar.models import voice as voice_lib


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


def window_starts(num_samples: int, window: int, step: int, hop: int = 1) -> list[int]:
  """Window starts every `step` samples, the last window reaching the end (its start rounded
  up to whole `hop`s, so that every window's frames are frames of the recording)."""
  if num_samples <= window:
    return [0]
  starts = list(range(0, num_samples - window + 1, step))
  if starts[-1] + window < num_samples:
    starts.append(-(-(num_samples - window) // hop) * hop)
  return starts


# Seconds of audio read either side of a block that is resampled: soxr's filter then runs over
# the recording's own samples at the block's edges, not over zeros.
RESAMPLE_MARGIN_SECONDS = 0.05


def read_block(path, rate: int, target_rate: int, start: int, length: int) -> np.ndarray:
  """[C, length] at target_rate from sample `start` (target-rate samples), zero-padded.

  From a file at another rate, the block is the same samples as resampling the whole file
  would give (up to float rounding): it is read from an instant where a sample of either
  rate falls (every rate / gcd samples of the file), RESAMPLE_MARGIN_SECONDS before the block
  to as long after it, resampled, and cut out (not each block on its own: its first sample at
  a truncated position, the filter ringing over zeros at both ends).
  """
  if rate == target_rate:
    block = audio_lib.read(path, target_rate, start, start + length)
  else:
    g = math.gcd(rate, target_rate)
    unit, step = target_rate // g, rate // g       # target / file samples between shared instants
    margin = int(np.ceil(RESAMPLE_MARGIN_SECONDS * target_rate))
    m0 = max(0, (start - margin) // unit * unit)   # a shared instant, in target samples
    stop = int(np.ceil((start + length + margin) * rate / target_rate))
    block = audio_lib.read(path, target_rate, m0 // unit * step, stop)[:, start - m0:]
  if block.shape[1] < length:
    block = np.pad(block, ((0, 0), (0, length - block.shape[1])))
  return block[:, :length]


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
  # [W, S, 256] d-vector (`jaxdiar.models.voice`) of each local speaker, from the first channel's
  # audio where it talks (alone, when that is long enough); zero where it is never heard.
  voice: np.ndarray | None = None
  # [ceil(num_samples / 512)] the pretrained speech detector's probability (`jaxdiar.models.vad`,
  # Silero VAD) every 32 ms of the first channel.
  speech: np.ndarray | None = None
  # [same] its highest probability over the recording's channels, each scored on its own
  # (`infer(..., speech_channels="all")`).
  speech_max: np.ndarray | None = None
  # the channels dereverberated together before the detector (`speech_dereverb`; 0: none)
  speech_dereverb: int = 0
  # [total_frames, 2] float32 dB: each frame's log energy on the read channel, whole band and
  # 300-3500 Hz (`spatial.frame_levels`; arrays with `spatial`): what the speech classifier's
  # energy features read.
  level: np.ndarray | None = None
  # [total_frames] float16: the project's frame speech network's P(speech) on the read channel
  # (`jaxdiar.models.speech_net`; `infer(..., speech_net=True)`), more of the classifier's.
  speech_net: np.ndarray | None = None
  # Each local speaker cut at its pauses, with the pieces' own embeddings
  # (`jaxdiar.decoding.pieces`; `infer(..., pieces=...)`): what `reassign_classifier` moves.
  pieces: pieces_lib.Pieces | None = None
  # Whether the window outputs average the model's two views of the array
  # (`jaxdiar.decoding.views`; `infer(..., turned_view=True)`).
  turned_view: bool = False


def check_mics(mics, channels: int, where, spec: str | None = None) -> None:
  """A geometry (`mics`, [M, 3]) must have one row per channel of the recording (`where`:
  its name in the message; `spec`: the --mics value given). Raises InputError naming --mics."""
  if mics is not None and len(mics) != channels:
    raise InputError(f"{where}: {channels} channel(s), but --mics{' ' + spec if spec else ''} "
                     f"gives {len(mics)} microphone positions (one [x, y, z] row per channel, "
                     "in channel order)")


def check_geometry(mics, model: runtime.ExportedModel, channels: int, where) -> None:
  """`check_mics`, and an array model takes its own geometry only (`where`: the recording's
  name in the message). Raises InputError naming --mics."""
  check_mics(mics, channels, where)
  meta = model.meta
  if mics is not None and model.needs_array and not geometry_lib.same(mics,
                                                                      meta["mic_positions"]):
    raise InputError(f"{where}: the model was trained for its own array "
                     f"({len(meta['mic_positions'])} microphones), not the --mics geometry: "
                     "use a one-channel model (e.g. --model mono) with --mics")


def recording_geometry(model: runtime.ExportedModel, channels: int, mics=None,
                       channel: int | None = None):
  """The microphone positions ([C, 3]) of a recording of `channels` channels for the spatial
  stages and a model that takes the geometry: `mics` when given, else the model's own array
  when the whole recording has its channel count, else None (no geometry known)."""
  if mics is not None:
    return mics
  own = model.meta["mic_positions"]
  return own if channel is None and len(own) == channels > 1 else None


def check_input(path, model: runtime.ExportedModel, replicate_channels: bool = False,
                channel: int | None = None, mics=None):
  """(sample rate, channels, frames, tile) of a recording the model can take, read from its
  header: tile 1 = as is, 0 = one channel only (`channel`, default the first), n = one
  channel copied to n channels. `mics`: the recording's microphone positions ([C, 3]), which
  must have one row per channel (and be the model's own for an array model). Raises
  InputError / AudioError with a clear message."""
  meta = model.meta
  rate, channels, frames = audio_lib.info(path)
  if frames == 0:
    raise InputError(f"{path}: empty recording")
  check_geometry(mics, model, channels, path)
  if channel is not None:
    if isinstance(channel, bool) or int(channel) != channel or not 0 <= channel < channels:
      raise InputError(f"{path}: channel {channel!r} does not exist ({channels} channel(s), "
                       f"numbered from 0)")
    if model.num_channels == 1 or model.takes_geometry:
      return rate, channels, frames, 0
    if not replicate_channels:
      raise InputError(f"{path}: one channel chosen, the model expects {model.num_channels} "
                       "(use a one-channel model, or --replicate-channels)")
    return rate, channels, frames, model.num_channels
  if model.takes_geometry:        # any array up to its channels, given its geometry
    if recording_geometry(model, channels, mics) is None:
      return rate, channels, frames, 0
    if channels > model.num_channels:
      raise InputError(f"{path}: {channels} channels, the model takes up to "
                       f"{model.num_channels}")
    return rate, channels, frames, 1
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
          channel: int | None = None, stages: Stages | None = None,
          mics=None, speech_channels: str = "first", speech_dereverb: int = 0,
          speech_net: bool = False, pieces: tuple | None = None,
          turned_view: bool = False) -> Inference:
  """Run the model over sliding windows of one recording (read in blocks).

  With `spatial` and a multi-channel recording, each local speaker also gets its SRP-PHAT
  response over azimuths, from the frames where it talks alone (`jaxdiar.core.spatial`). With
  `voice`, each local speaker gets a d-vector of the pretrained voice encoder
  (`jaxdiar.models.voice`) from its audio in the window (`voice_segments`, first channel). With
  `detect_speech`, the pretrained speech detector (`jaxdiar.models.vad`) scores the first channel
  (with `speech_channels="all"` also every other channel, each on its own: `speech_max`;
  `speech_dereverb` k: first k channels dereverberated together, `jaxdiar.core.dereverb`,
  and "all" means those k). With `speech_net`, the frame speech network
  (`jaxdiar.models.speech_net`) scores the read channel at every model frame. `pieces`
  (onset, gap seconds, minimum frames): each local speaker cut at its pauses, each piece
  with its own embedding (`jaxdiar.decoding.pieces`; the model file must give its frame
  embeddings). `turned_view`: a model of a uniform circular array also runs on the channels
  turned by one microphone, the two views averaged (`jaxdiar.decoding.views`; where the model
  reads one channel, copied or alone, there is nothing to turn and it runs once).
  `channel`: read that channel only (a one-channel model, or copied with `replicate_channels`);
  it is then also the channel of the d-vectors and the speech detector. `mics`: the
  recording's microphone positions ([C, 3] metres, `jaxdiar.core.geometry`): the directions come
  from all its channels with this geometry, whatever the model reads (a one-channel model
  then reads `channel`, default the first). `stages`: where the time goes (`windows` in all,
  of which `voice` and `directions`; `speech_detector`).
  Raises InputError / AudioError with a clear message.
  """
  meta, inf = model.meta, model.meta["inference"]
  sr, hop = model.sample_rate, model.hop
  path = pathlib.Path(path)
  uri = uri or path.stem
  rate, channels, frames, tile = check_input(path, model, replicate_channels, channel, mics)
  read_channel = channel or 0       # the channel the speech detector reads
  positions = recording_geometry(model, channels, mics, channel)
  num_samples = int(round(frames * sr / rate))
  window = int(round(inf["window_seconds"] * sr))
  # Whole hops: a window's frames are then frames of the recording (window_frames exact).
  step = max(1, int(round((step_seconds or inf["step_seconds"]) * sr / hop))) * hop
  window = min(window, max(num_samples, meta["n_fft"]))
  starts = window_starts(num_samples, window, step, hop)
  batch = inf["batch_windows"]
  steer = None
  if spatial and positions is not None:
    steer = spatial_lib.steering(positions, meta["n_fft"], sr, spatial_lib.azimuth_grid())
  vads, osds, embs, dirs, voices, parts = [], [], [], [], [], []
  if voice:
    if sr != voice_lib.SAMPLE_RATE:
      raise InputError(f"the voice encoder takes {voice_lib.SAMPLE_RATE} Hz audio, the model "
                       f"runs at {sr} Hz")
    voice_params = voice_lib.load()
  if detect_speech:
    if sr != vad_lib.SAMPLE_RATE:
      raise InputError(f"the speech detector takes {vad_lib.SAMPLE_RATE} Hz audio, the model "
                       f"runs at {sr} Hz")
  if speech_net and (sr, hop) != (speech_net_lib.SAMPLE_RATE, speech_net_lib.HOP):
    raise InputError(f"the frame speech network reads {speech_net_lib.SAMPLE_RATE} Hz audio in "
                     f"frames of {speech_net_lib.HOP} samples; the model runs at {sr} Hz, hop {hop}")
  if pieces is not None and "frame_emb" not in model.outputs:
    raise InputError("the pieces (reassign_classifier, piece_split_cos) need the model's frame "
                     "embeddings, which this model file does not give: export it again "
                     "(python -m jaxdiar.export --model FILE --config CONFIG --out NEW)")
  if turned_view and not views_lib.applies(model):
    raise InputError(views_lib.REFUSAL)
  turned = views_lib.turn(channels) if turned_view and tile == 1 and channel is None else None
  total = 1 + num_samples // hop
  response = None if steer is None else np.zeros((total, steer.real.shape[-1]), np.float16)
  level = None if steer is None else np.zeros((total, 2), np.float32)
  done = 0                                  # frames of `response` computed so far
  peak = 0.0
  half = int(np.ceil(meta["n_fft"] / 2 / hop))             # frames of audio on either side
  piece_gap = int(round(pieces[1] * sr / hop)) if pieces is not None else 0

  def finish(b0, group, raw, out, other):
    """Keep one batch's outputs (blocks until the model is done; `other`: the turned view's,
    or None) and its directions."""
    nonlocal done
    out = {k: np.asarray(v) for k, v in out.items()}
    if other is not None:
      out = views_lib.average(out, {k: np.asarray(v) for k, v in other.items()})
    n = len(group)
    # Copies: a view would keep the whole batch's output buffers alive.
    vads.append(out["vad"][:n].astype(np.float16))
    osds.append(out["osd"][:n].astype(np.float16))
    embs.append(out["spk_emb"][:n].astype(np.float32))
    for j in range(n if pieces is not None else 0):
      inside = max(0, min(out["vad"].shape[1], total - group[j] // hop))
      parts.extend((b0 + j, *piece) for piece in pieces_lib.of_window(
          out["vad"][j], out["frame_emb"][j], inside, onset=pieces[0],
          gap_frames=piece_gap, min_frames=pieces[2]))
    t0 = time.perf_counter()
    if voice:
      segments = [seg for j in range(n) for seg in
                  voice_segments(raw[j][read_channel], out["vad"][j], hop, VOICE_ONSET,
                                 sample_rate=sr)]
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
      level[f0 + first:f0 + first + m] = spatial_lib.frame_levels(
          spec[read_channel, :, first - lead:first - lead + m], sr, meta["n_fft"])
      done = max(done, f0 + first + keep)
      r = np.concatenate([response[f0:f0 + first].astype(np.float32), new])
      dirs.append(local_directions(out["vad"][j][:len(r)], r).astype(np.float32))
    stages.add("directions", time.perf_counter() - t0)

  stages = stages or Stages()
  stages.lap("setup")
  pending = None
  with tqdm.tqdm(total=len(starts), desc=f"diarize {uri}", unit="window",
                 disable=not progress) as bar:    # closed (a clean line) on errors too
    for b0 in range(0, len(starts), batch):
      group = starts[b0:b0 + batch]
      raw = [read_block(path, rate, sr, s, window) for s in group]     # every channel
      if tile == 0 or channel is not None:
        blocks = [x[read_channel:read_channel + 1] for x in raw]
        if tile > 1:
          blocks = [np.tile(x, (tile, 1)) for x in blocks]
      else:
        blocks = [np.tile(x, (tile, 1)) if tile > 1 else x for x in raw]
      audio = np.stack(blocks + [np.zeros_like(blocks[0])] * (batch - len(blocks)))
      peak = max(peak, float(np.abs(audio).max()))
      # Dispatched: the previous batch's directions run meanwhile.
      out = model(audio, positions) if model.takes_geometry and tile == 1 else model(audio)
      other = None if turned is None else model(audio[:, turned])
      if pending is not None:
        finish(*pending)
        bar.update(len(pending[1]))
      pending = (b0, group, raw, out, other)
    finish(*pending)
    bar.update(len(pending[1]))
  if peak == 0.0:
    raise InputError(f"{path}: the audio is all zeros")
  stages.lap("windows")
  speech = speech_max = None
  if detect_speech:       # its own pass over the channel(s)
    heard = (dereverb_lib.channel_subset(channels, speech_dereverb, read_channel)
             if speech_dereverb else [])            # dereverberated together, read channel first
    scored = [read_channel] if speech_channels == "first" else (heard or list(range(channels)))
    probs = detect_channels(path, rate, num_samples, scored, heard).astype(np.float16)
    speech = probs[scored.index(read_channel)]
    if speech_channels == "all":
      speech_max = probs.max(axis=0)
  stages.lap("speech_detector")
  net = None
  if speech_net:
    net = speech_net_lib.file_probability(path, rate, num_samples, read_channel, read_block)
  stages.lap("speech_net")
  return Inference(uri, np.array(starts) // hop, np.concatenate(vads), np.concatenate(osds),
                   np.concatenate(embs), np.stack(dirs) if dirs else None,
                   total, num_samples, sr, hop, response,
                   np.concatenate(voices) if voice else None, speech, speech_max,
                   speech_dereverb if detect_speech else 0, level, net,
                   pieces_lib.collect(parts, pieces[0], piece_gap, pieces[2],
                                      meta["embedding_dim"]) if pieces is not None else None,
                   turned is not None)


def detect_channels(path, rate: int, num_samples: int, channels: list[int],
                    dereverb: list[int] = ()) -> np.ndarray:
  """[len(channels), ceil(num_samples / 512)] the pretrained speech detector's probabilities
  of each of `channels` of a recording (`rate`: its sample rate; `num_samples` at 16 kHz), read
  in the detector's blocks (33 s), a state per channel carried across them. `dereverb`: channels
  dereverberated together (WPE, `jaxdiar.core.dereverb`) block by block first."""
  size = vad_lib.SEGMENT * vad_lib.CHUNK
  detectors = vad_lib.ChannelDetectors(len(channels))
  probs = []
  for s in range(0, num_samples, size):
    block = read_block(path, rate, vad_lib.SAMPLE_RATE, s, min(size, num_samples - s))
    if len(dereverb):
      block = block.copy()
      block[dereverb] = dereverb_lib.wpe(block[dereverb])
    probs.append(detectors.push(block[channels], final=s + size >= num_samples))
  return np.concatenate(probs, axis=1)
