"""Audio for the live diarizer as [C, n] float32 blocks: a file (as fast as it can be read,
or at real-time pace) or raw interleaved PCM from a stream (a microphone piped to stdin)."""

import time

import numpy as np

from jaxdiar.data import audio as audio_lib
from jaxdiar.decoding import windows as windows_lib


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
    import soxr          # deferred: only raw PCM at another rate needs the resampler
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
