"""The Python API: a pyannote.audio-style `Pipeline` that returns a `pyannote.core.Annotation`.

    from jaxdiar import Pipeline
    pipeline = Pipeline.from_pretrained("array8")      # or "mono", a .jaxdiar path, or None
    annotation = pipeline("meeting.wav", num_speakers=None, min_speakers=None, max_speakers=None)
    annotation = pipeline({"waveform": array, "sample_rate": 16000})   # [channels, samples]
    exclusive = pipeline(..., exclusive=True)           # one talker at a time (model's scores)
    annotation, embeddings = pipeline("meeting.wav", return_embeddings=True)
    segments = pipeline.attribute("whisper.json", annotation)         # words with speakers

The command line (`python -m jaxdiar.diarize`) and the service (`jaxdiar.serve`) are thin users
of `Pipeline.run`, which returns everything a run knows (`Diarization`).
"""

import contextlib
import dataclasses
import logging
import os
import pathlib
import shutil
import sys
import tempfile
import time
from typing import Callable

import numpy as np
import soundfile as sf
from pyannote.core import Annotation

from jaxdiar.core import geometry
from jaxdiar.data import audio as audio_lib
from jaxdiar.decoding import decode as decode_lib
from jaxdiar.decoding import enroll
from jaxdiar.decoding import frames as frames_lib
from jaxdiar.decoding import settings as settings_lib
from jaxdiar.decoding import windows as windows_lib
from jaxdiar.io import formats
from jaxdiar.io import rttm
from jaxdiar.io import transcript as transcript_lib
from jaxdiar.models import bundled
from jaxdiar.models import runtime
from jaxdiar.models import vad as vad_lib

log = logging.getLogger(__name__)

# --split-channels: each channel is one talker's close microphone, its speech found by the
# pretrained speech detector with these thresholds and durations (pyannote's usual VAD
# hysteresis 0.5 / 0.35, 0.25 s shortest speech, 0.1 s shortest pause).
SPLIT_ONSET, SPLIT_OFFSET = 0.5, 0.35
SPLIT_MIN_SPEECH, SPLIT_MIN_SILENCE = 0.25, 0.1


@dataclasses.dataclass
class Diarization:
  """One recording's result: the annotation and what produced it."""
  uri: str
  duration: float                    # seconds
  annotation: Annotation
  model: str                         # the bundled name or the file
  settings: dict                     # the decoding settings used
  embeddings: dict[str, np.ndarray]  # label -> unit model embedding (enrolment compares it)
  voice: dict[str, np.ndarray]       # label -> unit d-vector, where the voice encoder ran
  result: decode_lib.Result | None = None   # frame-level scores (None with split_channels)

  def json(self) -> dict:
    """The JSON answer of the CLI and the service."""
    return formats.result_json(self.annotation, uri=self.uri, duration=self.duration,
                               model=self.model, settings=_plain(self.settings))

  def dumps(self, fmt: str) -> str:
    """The result as the text of format `fmt` (`jaxdiar.io.formats.FORMATS`)."""
    return formats.dumps(self.annotation, fmt, uri=self.uri, duration=self.duration,
                         model=self.model, settings=_plain(self.settings))


def _geometry(mics) -> tuple:
  """(positions [M, 3] or None, the name given for messages or None) of a `mics` argument."""
  if mics is None:
    return None, None
  return geometry.load(mics), str(mics) if isinstance(mics, (str, os.PathLike)) else None


def _plain(value):
  """JSON-ready settings (tuples as lists)."""
  if isinstance(value, dict):
    return {k: _plain(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_plain(v) for v in value]
  return value


class Pipeline:
  """Diarize recordings with a bundled or exported model.

  Args:
    model: a bundled model's name ("array8", "mono"), a .jaxdiar file, or None: the bundled
      model that fits each recording's channel count (8: "array8", otherwise "mono").
    settings: decoding settings over the model's own (names: `jaxdiar.decoding.settings`; a name the
      schema does not know is refused).
    speakers: an enrolled-speaker bank (`python -m jaxdiar.enroll`): matching talkers are
      labelled with their names.
    name_threshold: cosine similarity a talker needs to take a name (default: the bank's).
    mics: where the recordings' microphones are (`jaxdiar.core.geometry`: a preset name such as
      "respeaker-4", a JSON / CSV file of [x, y, z] metres in channel order, or the array):
      the spatial stages then run with that geometry (a one-channel model reads one channel);
      a recording with another channel count is refused. A call's own `mics=` replaces it
      for that recording.
    progress: a progress bar over each recording's windows.
    notify: where notices go (which model was picked, channels dropped); default: logging.
  """

  def __init__(self, model: str | os.PathLike | None = None, *, settings: dict | None = None,
               speakers: str | os.PathLike | None = None, name_threshold: float | None = None,
               mics=None, progress: bool = False,
               notify: Callable[[str], None] | None = None):
    self.model = None if model is None else str(model)
    self.mics, self.mics_name = _geometry(mics)
    self.settings = dict(settings or {})
    settings_lib.validate(self.settings)
    if speakers is not None and not pathlib.Path(speakers).is_file():
      raise windows_lib.InputError(f"{speakers}: no such speaker bank")
    self.speakers = speakers
    self.name_threshold = name_threshold
    self.progress = progress
    self.notify = notify or log.info
    self._models: dict[str, runtime.ExportedModel] = {}
    self._banks: dict[str, dict] = {}
    if self.model is not None:              # a named model is read (and checked) at once
      self._models[self.model] = runtime.load(self.model)

  @property
  def loaded_model(self) -> runtime.ExportedModel | None:
    """The model given by name (loaded when the pipeline was made); None when it is chosen
    per recording."""
    return None if self.model is None else self._models[self.model]

  @classmethod
  def from_pretrained(cls, model: str | os.PathLike | None = None, **kwargs) -> "Pipeline":
    """The pipeline of a bundled model ("array8", "mono"), of a .jaxdiar file, or (None) of
    the bundled model that fits each recording."""
    return cls(model, **kwargs)

  # ------------------------------------------------------------------------------ models

  def model_for(self, channels: int, mics=None) -> tuple[str, runtime.ExportedModel]:
    """(name, model) for a recording of `channels` channels (loaded once; `mics`: its
    geometry, where known)."""
    name = self.model or bundled.choose(channels, mics)
    if name not in self._models:
      if self.model is None:
        self.notify(f"no model given: using the bundled '{name}' model ({bundled.path(name)})")
      self._models[name] = runtime.load(name)
    return name, self._models[name]

  def bank_for(self, model: runtime.ExportedModel) -> dict | None:
    if self.speakers is None:
      return None
    if model.fingerprint not in self._banks:
      self._banks[model.fingerprint] = enroll.load_bank(self.speakers, model)
    return self._banks[model.fingerprint]

  # ------------------------------------------------------------------------------- calls

  def __call__(self, file, *, num_speakers: int | None = None,
               min_speakers: int | None = None, max_speakers: int | None = None,
               exclusive: bool = False, return_embeddings: bool = False,
               uri: str | None = None, channel: int | None = None,
               split_channels: bool = False, replicate_channels: bool = False, mics=None):
    """The diarization of `file` (a path, an AMI-style folder of per-channel files, or
    {"waveform": [channels, samples] array, "sample_rate": int, "uri": optional}); `mics`:
    this recording's microphone positions (as the pipeline's `mics`, which it replaces).
    Returns an Annotation, or (annotation, {label: embedding}) with `return_embeddings`."""
    out = self.run(file, num_speakers=num_speakers, min_speakers=min_speakers,
                   max_speakers=max_speakers, exclusive=exclusive, uri=uri, channel=channel,
                   split_channels=split_channels, replicate_channels=replicate_channels,
                   mics=mics)
    if return_embeddings:
      return out.annotation, out.embeddings
    return out.annotation

  def run(self, file, *, num_speakers: int | None = None, min_speakers: int | None = None,
          max_speakers: int | None = None, exclusive: bool = False, uri: str | None = None,
          channel: int | None = None, split_channels: bool = False,
          replicate_channels: bool = False, name_speakers: bool = True,
          settings: dict | None = None, mics=None) -> Diarization:
    """`__call__`'s work, with everything it knows (`Diarization`); `name_speakers`: use the
    speaker bank if the pipeline has one; `settings`: decoding settings for this recording
    over the pipeline's (validated). Raises InputError / AudioError (and the bank's
    BankError) with a clear message."""
    decode_lib.check_counts(num_speakers, min_speakers, max_speakers)
    if split_channels and (channel is not None or num_speakers or min_speakers
                           or max_speakers):
      raise windows_lib.InputError("split_channels gives one talker a channel: no channel "
                                   "or speaker counts with it")
    with audio_input(file) as (path, name):
      uri = rttm.safe_uri(uri or name)
      rate, channels, frames = audio_lib.info(path)
      if frames == 0:
        raise windows_lib.InputError(f"{path}: empty recording")
      duration = frames / rate
      if split_channels:
        return self._split_channels(path, uri, rate, channels, frames)
      mics, mics_name = (self.mics, self.mics_name) if mics is None else _geometry(mics)
      windows_lib.check_mics(mics, channels, name, mics_name)
      model_name, model = self.model_for(1 if channel is not None and mics is None
                                         else channels, mics)
      if mics is not None and model.takes_geometry:
        self.notify(f"{name}: {channels} channels with the given geometry: the '{model_name}' "
                    "model reads them all with their positions; the spatial stages use them too")
      elif mics is not None and not model.needs_array:
        self.notify(f"{name}: {channels} channels with the given geometry: the '{model_name}' "
                    f"model reads channel {channel or 0}; the spatial stages (directions in "
                    "the clustering, split, merge, resegmentation, the speech and overlap "
                    "classifiers) use the --mics positions")
      elif ((model.num_channels == 1 or model.takes_geometry) and channels > 1
            and channel is None and mics is None
            and channels != len(model.meta["mic_positions"])):
        self.notify(f"{name}: {channels} channels: the "
                    f"{'bundled ' if self.model is None else ''}'{model_name}' model reads "
                    "channel 0 only; give the microphones' positions (--mics FILE|PRESET) for "
                    "the spatial stages")
      bank = self.bank_for(model) if name_speakers else None    # read before the audio
      o = decode_lib.decoding_settings(model, {**self.settings, **(settings or {})}, mics)
      inference = windows_lib.infer(path, model, uri=uri, replicate_channels=replicate_channels,
                                    progress=self.progress, channel=channel, mics=mics,
                                    **decode_lib.infer_options(o))
    start = time.perf_counter()
    if self.progress:             # the windows had their bar; the decoding says what it does
      self.notify(f"{uri}: decoding {inference.total_frames} frames of "
                  f"{inference.vad.shape[0]} windows (clustering, stitching, "
                  f"{'spatial stages, ' if inference.response is not None else ''}turns)")
    result = decode_lib.decode(inference, o, num_speakers=num_speakers,
                                min_speakers=min_speakers, max_speakers=max_speakers)
    if self.progress:
      self.notify(f"{uri}: decoded in {time.perf_counter() - start:.1f} s: "
                  f"{len({t.speaker for t in result.turns})} speaker(s)")
    turns = result.turns
    if exclusive and result.active is not None:
      turns = frames_lib.turns_of(frames_lib.exclusive_active(result.active, result.speech),
                                   result.frame_seconds, uri, duration)
    labels = {f"spk{k:02d}": f"spk{k:02d}" for k in range(result.speech.shape[1])}
    if bank is not None:
      names = enroll.assign_names(result.centroids, bank, self.name_threshold)
      labels.update({f"spk{k:02d}": n for k, n in names.items()})
    turns = [rttm.Turn(t.uri, t.onset, t.offset, labels[t.speaker]) for t in turns]
    heard = {t.speaker for t in turns}
    vectors = lambda x: ({} if x is None else
                         {labels[f"spk{k:02d}"]: v.astype(np.float32) for k, v in enumerate(x)
                          if labels[f"spk{k:02d}"] in heard})
    return Diarization(uri, duration, formats.to_annotation(turns, uri), model_name, o,
                       vectors(result.centroids), vectors(result.voice), result)

  def _split_channels(self, path, uri: str, rate: int, channels: int,
                      frames: int) -> Diarization:
    """Each channel one talker (`spk{channel:02d}`): the speech detector's speech on it
    (`rate`, `channels`, `frames`: the file's header)."""
    duration = frames / rate
    fs = vad_lib.FRAME_SECONDS
    num_samples = int(round(frames * vad_lib.SAMPLE_RATE / rate))
    probs = windows_lib.detect_channels(path, rate, num_samples, list(range(channels)))
    active = np.stack([frames_lib.binarize(p, SPLIT_ONSET, SPLIT_OFFSET,
                                            int(round(SPLIT_MIN_SPEECH / fs)),
                                            int(round(SPLIT_MIN_SILENCE / fs)))
                       for p in probs], axis=1)
    turns = frames_lib.turns_of(active, fs, uri, duration)
    settings = dict(split_channels=True, onset=SPLIT_ONSET, offset=SPLIT_OFFSET,
                    min_speech_seconds=SPLIT_MIN_SPEECH, min_silence_seconds=SPLIT_MIN_SILENCE)
    return Diarization(uri, duration, formats.to_annotation(turns, uri), "silero_vad",
                       settings, {}, {}, None)

  # --------------------------------------------------------------------------- after

  exclusive = staticmethod(formats.exclusive)

  @staticmethod
  def attribute(transcript, annotation: Annotation,
                max_gap: float = transcript_lib.MAX_GAP) -> list[transcript_lib.Segment]:
    """Speakers for a transcript (a file path, or `transcript.Segment`s): each word gets the
    talker who overlaps it most in the exclusive form of `annotation` (the nearest within
    `max_gap` seconds otherwise)."""
    segments = (transcript_lib.load(transcript) if isinstance(transcript, (str, os.PathLike))
                else list(transcript))
    return transcript_lib.attribute(segments, formats.exclusive(annotation), max_gap)


@contextlib.contextmanager
def audio_input(file):
  """(path, name) of a recording given as a path or {"audio": path, "uri": name} (m4a, mp4,
  aac ... decoded to a temporary wav), or as an in-memory waveform (written to a temporary
  float wav); temporary files are removed afterwards."""
  if isinstance(file, dict):
    if "waveform" in file:
      waveform = np.asarray(file["waveform"], np.float32)
      if waveform.ndim == 1:
        waveform = waveform[None]
      if waveform.ndim != 2 or waveform.shape[1] == 0:
        raise windows_lib.InputError(f"waveform of shape {waveform.shape}: expected "
                                     "[channels, samples]")
      if waveform.shape[0] > waveform.shape[1]:
        raise windows_lib.InputError(f"waveform of shape {waveform.shape}: more channels than "
                                     "samples; expected [channels, samples]")
      rate = file.get("sample_rate")
      if not isinstance(rate, (int, np.integer)) or rate <= 0:
        raise windows_lib.InputError(f"sample_rate {rate!r}: a positive integer is needed")
      if not np.all(np.isfinite(waveform)):
        raise windows_lib.InputError("waveform contains NaN or infinite samples")
      with tempfile.TemporaryDirectory(prefix="jaxdiar-", ignore_cleanup_errors=True) as folder:
        path = pathlib.Path(folder) / "waveform.wav"
        sf.write(path, waveform.T, int(rate), subtype="FLOAT")
        yield path, str(file.get("uri") or "waveform")
      return
    if "audio" not in file:
      raise windows_lib.InputError("a dict input needs 'waveform' and 'sample_rate', or 'audio'")
    path = pathlib.Path(file["audio"])
    name = str(file.get("uri") or path.stem)
  else:
    path = pathlib.Path(file)
    name = path.stem
  if audio_lib.needs_decoding(path) and path.is_file():
    with tempfile.TemporaryDirectory(prefix="jaxdiar-", ignore_cleanup_errors=True) as folder:
      yield audio_lib.decode_to_wav(path, pathlib.Path(folder) / "decoded.wav"), name
    return
  yield path, name


@contextlib.contextmanager
def spooled_stdin(stream=None):
  """Standard input (a wav or flac) in a temporary file, removed afterwards: long inputs are
  then read in blocks as files are."""
  stream = stream or sys.stdin.buffer
  with tempfile.TemporaryDirectory(prefix="jaxdiar-stdin-", ignore_cleanup_errors=True) as folder:
    path = pathlib.Path(folder) / "stdin"
    with open(path, "wb") as f:
      shutil.copyfileobj(stream, f, 1 << 20)
    with open(path, "rb") as f:
      head = f.read(4)
    suffix = {b"RIFF": ".wav", b"fLaC": ".flac", b"OggS": ".ogg"}.get(head)
    if suffix is None:
      raise audio_lib.AudioError("stdin: not a wav, flac or ogg stream")
    yield path.rename(path.with_suffix(suffix))
