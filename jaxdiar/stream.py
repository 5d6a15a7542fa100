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
"""

import argparse
import dataclasses
import json
import pathlib
import sys
import time

import numpy as np
import scipy.optimize

from jaxdiar import atomic
from jaxdiar import bundled
from jaxdiar import diarize as diarize_lib
from jaxdiar import rttm
from jaxdiar import runtime
from jaxdiar import spatial as spatial_lib
from jaxdiar.data import audio as audio_lib


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


class Streamer:
  """Blocks of audio in ([C, n] float32 at the model's rate), closed segments out."""

  def __init__(self, model: runtime.ExportedModel, *, step_seconds: float = 0.5,
               latency_seconds: float | None = None, max_speakers: int = 8,
               num_channels: int | None = None, **options):
    meta = model.meta
    self.model, self.sr, self.hop = model, model.sample_rate, model.hop
    self.o = {**diarize_lib.DEFAULT_DECODE, **meta["inference"],
              "cluster_threshold": STREAM_THRESHOLD, **options}
    self.window = int(round(self.o["window_seconds"] * self.sr)) // self.hop * self.hop
    self.step = max(1, int(round(step_seconds * self.sr / self.hop))) * self.hop
    latency = self.step if latency_seconds is None else int(round(latency_seconds * self.sr))
    if not self.step <= latency <= self.window:
      raise ValueError(f"latency must be between the step ({self.step / self.sr:g} s) and the "
                       f"window ({self.window / self.sr:g} s), got {latency / self.sr:g} s")
    self.latency = latency // self.hop * self.hop
    self.max_speakers = max_speakers
    channels = num_channels or model.num_channels
    if channels != model.num_channels and model.needs_array:
      raise diarize_lib.InputError(f"{channels} channel(s), the model expects "
                                   f"{model.num_channels}")
    self.channels = channels
    self.first_only = not model.needs_array and model.num_channels == 1 and channels > 1
    self.steer = None
    if (self.o["spatial_weight"] > 0 and channels > 1
        and len(meta["mic_positions"]) == channels):
      self.steer = spatial_lib.steering(meta["mic_positions"], meta["n_fft"], self.sr,
                                        spatial_lib.azimuth_grid())
    self.buffer = np.zeros((channels, self.window), np.float32)
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
      raise diarize_lib.InputError(f"blocks must be [{self.channels}, n], got {block.shape}")
    if not np.all(np.isfinite(block)):
      raise diarize_lib.InputError("NaN or infinite samples in the stream")
    self.samples_in += block.shape[1]
    return self._feed(block)

  def _feed(self, block: np.ndarray) -> list[Segment]:
    self.pending = np.concatenate([self.pending, block], axis=1)
    out = []
    while self.pending.shape[1] >= self.step:
      chunk, self.pending = self.pending[:, :self.step], self.pending[:, self.step:]
      self.buffer = np.concatenate([self.buffer[:, self.step:], chunk], axis=1)
      self.received += self.step
      t0, before = time.perf_counter(), self.decided
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

  # ------------------------------------------------------------------- internal
  def _grow(self, frames: int) -> None:
    if frames <= len(self.cover):
      return
    n = max(frames, 2 * len(self.cover))
    for name in ("score", "count", "anyone", "osd", "cover"):
      old = getattr(self, name)
      new = np.zeros((n,) + old.shape[1:])
      new[:len(old)] = old
      setattr(self, name, new)

  def _update(self) -> None:
    audio = self.buffer[:1] if self.first_only else self.buffer
    if self.model.num_channels > 1 and audio.shape[0] == 1:
      audio = np.tile(audio, (self.model.num_channels, 1))
    out = {k: np.asarray(v)[0] for k, v in self.model(audio[None]).items()}
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
      d = diarize_lib.local_directions(vad, response)[slots]
      x = diarize_lib.joint_vectors(x, d, self.o["spatial_weight"])
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

  def _assign(self, x: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """Global speaker of each local one (-1: none left); updates the centroids."""
    n, k = len(x), len(self.centroids)
    if not n:
      return np.zeros(0, int)
    reliable = seconds >= min(self.o["anchor_seconds"], 0.5 * self.window / self.sr)
    free = self.max_speakers - k
    cost = np.full((n, k + n), 1e6)
    if k:
      cost[:, :k] = 1.0 - x @ np.stack(self.centroids).T
    for i in range(min(n, free)):           # "a new speaker": the threshold, reliable ones only
      cost[reliable, k + i] = self.o["cluster_threshold"]
    rows, cols = scipy.optimize.linear_sum_assignment(cost)
    labels = np.full(n, -1)
    for r, c in zip(rows, cols):
      if cost[r, c] >= 1e6:
        continue
      if c >= k:                            # a new global speaker
        self.centroids.append(x[r].copy())
        self.mass.append(0.0)
        c = len(self.centroids) - 1
      labels[r] = c
      if reliable[r]:
        w = float(seconds[r])
        v = self.centroids[c] * self.mass[c] + x[r] * w
        self.centroids[c] = v / (np.linalg.norm(v) + 1e-9)
        self.mass[c] += w
    return labels

  def _decide(self, upto: int, final: bool = False) -> list[Segment]:
    """Decide the frames [decided, upto) with the talker-count rule; close segments."""
    upto = max(upto, self.decided)
    self._grow(upto)
    fs = self.hop / self.sr
    min_silence = int(round(self.o["min_silence_seconds"] / fs))
    min_speech = int(round(self.o["min_speech_seconds"] / fs))
    k = len(self.centroids)
    span = slice(self.decided, upto)
    cover = np.maximum(self.cover[span], 1.0)
    talkers = diarize_lib.talker_count(self.count[span] / cover, self.anyone[span] / cover,
                                       self.osd[span] / cover, k, self.o)
    out = []
    for frame, n in zip(range(self.decided, upto), talkers):
      active = set(np.argsort(-self.score[frame, :k])[:n].tolist()) if n else set()
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

  def _close(self, spk: int, a: int, b: int, min_speech: int) -> list[Segment]:
    del self.open[spk]
    if b - a < min_speech:
      return []
    fs = self.hop / self.sr
    end = min(b * fs, self.samples_in / self.sr)
    if a * fs >= end:                       # only in the padding after the end
      return []
    segment = Segment(a * fs, end, f"spk{spk:02d}")
    self.segments.append(segment)
    return [segment]


# --------------------------------------------------------------------------- input


def file_blocks(path, sample_rate: int, block: int, realtime: bool = False):
  """[C, block] blocks of an audio file (or per-channel folder) at `sample_rate`."""
  rate, _, frames = audio_lib.info(path)
  total = int(round(frames * sample_rate / rate))
  t0 = time.perf_counter()
  for start in range(0, total, block):
    x = diarize_lib._read_block(path, rate, sample_rate, start, min(block, total - start))
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


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog="python -m jaxdiar.stream", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("input", help="audio file, per-channel folder, or - for raw PCM on stdin")
  p.add_argument("--model", default=None,
                 help="a .jaxdiar file or bundled name (default: the bundled model that fits "
                      "the channel count)")
  p.add_argument("--out", default=None, help="also write every segment as RTTM at the end")
  p.add_argument("--uri", default=None, help="RTTM uri (default: the file's name, or 'stdin')")
  p.add_argument("--step", type=float, default=0.5, help="seconds between model updates")
  p.add_argument("--latency", type=float, default=None,
                 help="seconds from a sample's arrival to its decision (step .. window; "
                      "default: the step)")
  p.add_argument("--max-speakers", type=int, default=8)
  p.add_argument("--threshold", type=float, default=STREAM_THRESHOLD,
                 help="cosine distance beyond which a voice is a new speaker")
  p.add_argument("--realtime", action="store_true", help="read a file at real-time pace")
  p.add_argument("--channels", type=int, default=None, help="stdin: channel count")
  p.add_argument("--sample-rate", type=int, default=16000, help="stdin: sample rate")
  p.add_argument("--format", choices=("s16", "f32"), default="s16", help="stdin: sample format")
  args = p.parse_args(argv)
  stdin = args.input == "-"
  if stdin and not args.channels:
    p.error("reading stdin needs --channels")
  try:
    if args.out:
      atomic.check_output(args.out)
    channels = args.channels if stdin else audio_lib.info(args.input)[1]
    name = args.model or bundled.choose(channels)
    model = runtime.load(bundled.resolve(name))
    if not args.model:
      print(f"jaxdiar.stream: using the bundled '{name}' model", file=sys.stderr)
    streamer = Streamer(model, step_seconds=args.step, latency_seconds=args.latency,
                        max_speakers=args.max_speakers, num_channels=channels,
                        cluster_threshold=args.threshold)
    block = streamer.step
    blocks = (pcm_blocks(sys.stdin.buffer, channels, args.sample_rate, args.format,
                         model.sample_rate, block) if stdin
              else file_blocks(args.input, model.sample_rate, block, args.realtime))
    for x in blocks:
      for segment in streamer.push(x):
        print(segment.to_json(), flush=True)
    for segment in streamer.finish():
      print(segment.to_json(), flush=True)
  except (diarize_lib.InputError, audio_lib.AudioError, runtime.ModelFileError,
          atomic.OutputError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print("jaxdiar.stream: interrupted", file=sys.stderr)
    return 130
  steps = np.array(streamer.step_seconds or [0.0])
  audio_s = streamer.samples_in / model.sample_rate
  print(f"jaxdiar.stream: {audio_s:.1f} s of audio, {len(streamer.segments)} segments, "
        f"{len(streamer.centroids)} speakers; per step (every {streamer.step / model.sample_rate:g}"
        f" s) {1e3 * np.median(steps):.0f} ms median, {1e3 * np.percentile(steps, 95):.0f} ms p95;"
        f" RTF {steps.sum() / max(audio_s, 1e-9):.3f}", file=sys.stderr)
  if args.out:
    uri = args.uri or ("stdin" if stdin else pathlib.Path(args.input).stem)
    rttm.write_rttm(args.out, [rttm.Turn(uri, s.start, s.end, s.speaker)
                               for s in streamer.segments])
  return 0


if __name__ == "__main__":
  sys.exit(main())
