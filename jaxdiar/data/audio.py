"""Reading and writing multi-channel audio: one multi-channel wav, or one wav per channel.

Other sample rates are resampled with soxr; every failure is an `AudioError` that names
the file.
"""

import os
import pathlib
import re

import numpy as np
import soundfile as sf
import soxr

from jaxdiar.io import atomic

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")
# Compressed formats of phones and video calls, decoded through PyAV (FFmpeg) when it is
# installed (`pip install av`, or the `media` extra) into a temporary wav.
DECODED_EXTENSIONS = (".m4a", ".mp4", ".aac", ".mp3", ".webm", ".mkv", ".mov", ".opus")


class AudioError(ValueError):
  """Unreadable or inconsistent audio."""


def natural_key(path) -> list:
  """Sort key that orders 'ch2' before 'ch10'."""
  return [int(s) if s.isdigit() else s for s in re.split(r"(\d+)", str(path))]


def channel_files(folder) -> list[pathlib.Path]:
  """The per-channel wavs of an AMI-style folder, channel order = natural name order."""
  files = sorted((p for p in pathlib.Path(folder).iterdir()
                  if p.suffix.lower() in AUDIO_EXTENSIONS), key=natural_key)
  if not files:
    raise AudioError(f"{folder}: no audio files ({', '.join(AUDIO_EXTENSIONS)})")
  return files


# What comes before a channel index in per-channel file names: AMI's "NAME.Array1-01",
# "NAME.CH1", "mic3", "chan_2", "channel-4".
_CHANNEL_MARK = re.compile(r"(?i)(array\d+-|ch|chan|channel|mic)[._-]?$")


def is_channel_folder(folder) -> bool:
  """Whether a folder holds one recording as per-channel files: two or more audio files
  whose names differ only by one number, written after a channel mark (AMI's
  `NAME.Array1-01.wav` ... `-08.wav`, `NAME.CH1.wav` ...). Otherwise each file is a recording."""
  files = [p for p in pathlib.Path(folder).iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS]
  if len(files) < 2:
    return False
  parts = [re.split(r"(\d+)", p.stem) for p in files]
  if len({len(x) for x in parts}) != 1:
    return False
  differ = [i for i in range(len(parts[0])) if len({x[i] for x in parts}) > 1]
  if len(differ) != 1 or differ[0] % 2 == 0:          # one differing part, and a number
    return False
  i = differ[0]
  if len({int(x[i]) for x in parts}) != len(parts):
    return False
  return bool(_CHANNEL_MARK.search("".join(parts[0][:i])))


def recordings(folder, pattern: str = "*") -> list[pathlib.Path]:
  """The audio files of a folder of recordings matching `pattern`, in natural order."""
  return sorted((p for p in pathlib.Path(folder).glob(pattern) if p.is_file()
                 and p.suffix.lower() in AUDIO_EXTENSIONS + DECODED_EXTENSIONS),
                key=natural_key)


def needs_decoding(path) -> bool:
  return pathlib.Path(path).suffix.lower() in DECODED_EXTENSIONS


def decode_to_wav(path, out) -> pathlib.Path:
  """The first audio stream of a compressed file (m4a, mp4, aac, ...) written to the float
  wav `out`, frame by frame (memory does not grow with the length). Raises AudioError,
  naming the package to install when PyAV is absent."""
  try:
    import av
  except ImportError:
    raise AudioError(f"{path}: {pathlib.Path(path).suffix} needs a decoder: pip install av "
                     "(PyAV), or convert it to wav/flac first") from None
  out = pathlib.Path(out)
  try:
    with av.open(str(path)) as container:
      if not container.streams.audio:
        raise AudioError(f"{path}: no audio stream")
      stream = container.streams.audio[0]
      channels = stream.codec_context.channels if stream.codec_context else None
      if not channels or not stream.rate or stream.layout is None:
        raise AudioError(f"{path}: an audio stream without channels or sample rate")
      resampler = av.AudioResampler(format="flt", layout=stream.layout, rate=stream.rate)
      with sf.SoundFile(out, "w", samplerate=stream.rate, channels=channels,
                        subtype="FLOAT") as f:
        for frame in container.decode(stream):
          for piece in resampler.resample(frame):
            f.write(piece.to_ndarray().reshape(-1, channels))
        for piece in resampler.resample(None):
          f.write(piece.to_ndarray().reshape(-1, channels))
  except AudioError:
    raise
  except (av.FFmpegError, sf.LibsndfileError, OSError, ValueError, RuntimeError, TypeError,
          AttributeError) as e:              # what a damaged container can make either raise
    raise AudioError(f"{path}: cannot decode ({e})") from e
  return out


def info(path) -> tuple[int, int, int]:
  """(sample_rate, channels, frames) of a file or per-channel folder."""
  path = pathlib.Path(path)
  if path.is_dir():
    files = channel_files(path)
    infos = [_info(f) for f in files]
    rates = {i.samplerate for i in infos}
    if len(rates) != 1:
      raise AudioError(f"{path}: channel files have different sample rates {sorted(rates)}")
    return infos[0].samplerate, sum(i.channels for i in infos), min(i.frames for i in infos)
  i = _info(path)
  return i.samplerate, i.channels, i.frames


def read(path, sample_rate: int, start: int = 0, stop: int | None = None) -> np.ndarray:
  """[C, N] float32 at `sample_rate` from a file or a per-channel folder.

  `start`/`stop` are in samples of the file's own rate (for block reading).
  """
  path = pathlib.Path(path)
  if path.is_dir():
    chans = [read(f, sample_rate, start, stop) for f in channel_files(path)]
    n = min(c.shape[1] for c in chans)
    return np.concatenate([c[:, :n] for c in chans], axis=0)
  try:
    data, rate = sf.read(path, start=start, stop=stop, dtype="float32", always_2d=True)
  except (sf.LibsndfileError, RuntimeError) as e:
    raise AudioError(f"{path}: cannot read audio ({e})") from e
  data = data.T
  if rate != sample_rate and data.shape[1]:
    data = np.ascontiguousarray(soxr.resample(data.T, rate, sample_rate).T, dtype=np.float32)
  if not np.all(np.isfinite(data)):
    raise AudioError(f"{path}: contains NaN or infinite samples")
  return data


def to_int16(audio: np.ndarray) -> np.ndarray:
  return np.clip(np.round(audio * 32767.0), -32768, 32767).astype(np.int16)


def write_wav(path, audio: np.ndarray, sample_rate: int) -> None:
  """[C, N] float or int16 -> 16-bit PCM wav, written to a temporary name then renamed."""
  data = audio if audio.dtype == np.int16 else to_int16(audio)
  with atomic.atomic_path(path, suffix=".wav") as tmp:
    sf.write(tmp, data.T, sample_rate, subtype="PCM_16")


def _info(path):
  if not os.path.exists(path):
    raise AudioError(f"{path}: cannot read audio (no such file)")
  try:
    info = sf.info(str(path))
  except (sf.LibsndfileError, RuntimeError) as e:
    raise AudioError(f"{path}: cannot read audio ({e})") from e
  if info.format == "WAV":
    _check_wav_length(path, info)
  return info


def _check_wav_length(path, info) -> None:
  """libsndfile reads a truncated wav as a shorter one without a word; refuse it when the
  data chunk's declared size is larger than what the file holds (sizes 0 and 0xFFFFFFFF,
  written by streaming recorders that never went back to the header, mean 'unknown')."""
  size = os.path.getsize(path)
  with open(path, "rb") as f:
    head = f.read(12)
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
      return
    offset = 12
    while offset + 8 <= size:
      f.seek(offset)
      chunk = f.read(8)
      name, length = chunk[:4], int.from_bytes(chunk[4:8], "little")
      if name == b"data":
        if length not in (0, 0xFFFFFFFF) and offset + 8 + length > size:
          raise AudioError(
              f"{path}: truncated wav (the header declares {length} bytes of audio, the file "
              f"holds {size - offset - 8}; {info.frames / info.samplerate:.2f} s readable)")
        return
      offset += 8 + length + (length & 1)
