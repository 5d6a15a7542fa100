"""Corpora as meetings, and meetings cut into fixed training windows.

A corpus folder holds RTTM file(s) and, per recording `<uri>`, either `<uri>.wav` (one
multi-channel or mono file) or a folder `<uri>/` of per-channel wavs (AMI / AliMeeting
layout), and optionally UEM file(s). Simulated corpora use the same layout.
"""

from collections.abc import Iterator, Sequence
import dataclasses
import pathlib

import numpy as np

from jaxdiar.data import audio as audio_lib
from jaxdiar.io import rttm


@dataclasses.dataclass(frozen=True)
class Meeting:
  uri: str
  audio_path: pathlib.Path          # a file or a per-channel folder
  turns: tuple[rttm.Turn, ...]
  uem: tuple[tuple[float, float], ...] | None = None

  @property
  def speakers(self) -> list[str]:
    return sorted({t.speaker for t in self.turns})


def find_audio(folder: pathlib.Path, uri: str) -> pathlib.Path | None:
  if (folder / uri).is_dir():
    return folder / uri
  for ext in audio_lib.AUDIO_EXTENSIONS:
    if (folder / f"{uri}{ext}").is_file():
      return folder / f"{uri}{ext}"
  return None


def read_corpus(folder, uris: Sequence[str] | None = None) -> list[Meeting]:
  """Meetings of a corpus folder (every RTTM uri that has audio, or the given uris)."""
  folder = pathlib.Path(folder).expanduser()
  rttms = sorted(folder.glob("*.rttm"))
  if not rttms:
    raise FileNotFoundError(f"{folder}: no .rttm files")
  turns: dict[str, list[rttm.Turn]] = {}
  for path in rttms:
    for uri, t in rttm.read_rttm(path).items():
      turns.setdefault(uri, []).extend(t)
  uem: dict[str, list] = {}
  for path in sorted(folder.glob("*.uem")):
    for uri, regions in rttm.read_uem(path).items():
      uem.setdefault(uri, []).extend(regions)
  meetings = []
  for uri in (uris if uris is not None else sorted(turns)):
    audio = find_audio(folder, uri)
    if audio is None:
      if uris is not None:
        raise FileNotFoundError(f"{folder}: no audio for {uri!r} ({uri}.wav or {uri}/)")
      continue
    meetings.append(Meeting(uri, audio, tuple(sorted(turns.get(uri, []))),
                            tuple(uem[uri]) if uri in uem else None))
  if not meetings:
    raise FileNotFoundError(f"{folder}: no recording matches the RTTM uris")
  return meetings


def frame_activity(turns: Sequence[rttm.Turn], speakers: Sequence[str], num_frames: int,
                   hop: int, sample_rate: int, start_sample: int = 0) -> np.ndarray:
  """[T, len(speakers)] uint8: speaker k talks at frame t (frame centre t*hop + start)."""
  index = {s: k for k, s in enumerate(speakers)}
  act = np.zeros((num_frames, len(speakers)), np.uint8)
  for turn in turns:
    if turn.speaker not in index:
      continue
    # Frame t is centred on sample start + t*hop: active iff onset <= centre < offset.
    # Rounded to 1e-6 frame first: a turn written from frame edges (decode writes t * hop /
    # rate) must not gain a frame from float error (13.000000000000002 -> 14).
    first = int(np.ceil(round((turn.onset * sample_rate - start_sample) / hop, 6)))
    last = int(np.ceil(round((turn.offset * sample_rate - start_sample) / hop, 6)))
    first, last = max(first, 0), min(last, num_frames)
    if last > first:
      act[first:last, index[turn.speaker]] = 1
  return act


def windows(meeting: Meeting, speaker_ids: dict[str, int], num_speakers: int,
            window_seconds: float, hop_seconds: float, sample_rate: int, frame_hop: int,
            num_channels: int) -> Iterator[dict]:
  """Fixed windows of a meeting as examples.

  Each example: audio [C, N] int16, activity [T, S] uint8 (T = 1 + N // frame_hop),
  overlap [T] uint8 (>= 2 talkers among all, not only the kept S), speaker_ids [S] int32
  (-1 for empty slots), uri, start (sample). Windows with more than S talkers keep the S
  most active.
  """
  rate, channels, frames = audio_lib.info(meeting.audio_path)
  if channels != num_channels:
    raise audio_lib.AudioError(f"{meeting.audio_path}: {channels} channels, the config's "
                               f"array has {num_channels}")
  audio = audio_lib.to_int16(audio_lib.read(meeting.audio_path, sample_rate))
  length = int(round(window_seconds * sample_rate))
  hop = int(round(hop_seconds * sample_rate))
  num_frames = 1 + length // frame_hop
  all_speakers = meeting.speakers
  for start in range(0, max(audio.shape[1] - length, 0) + 1, hop):
    chunk = audio[:, start:start + length]
    if chunk.shape[1] < length:
      chunk = np.pad(chunk, ((0, 0), (0, length - chunk.shape[1])))
    act = frame_activity(meeting.turns, all_speakers, num_frames, frame_hop, sample_rate, start)
    order = np.argsort(-act.sum(axis=0), kind="stable")[:num_speakers]
    order = [k for k in order if act[:, k].any()]
    activity = np.zeros((num_frames, num_speakers), np.uint8)
    ids = np.full(num_speakers, -1, np.int32)
    for slot, k in enumerate(order):
      activity[:, slot] = act[:, k]
      ids[slot] = speaker_ids.get(all_speakers[k], -1)
    yield dict(audio=chunk, activity=activity, overlap=(act.sum(axis=1) >= 2).astype(np.uint8),
               speaker_ids=ids, uri=meeting.uri, start=np.int64(start))
