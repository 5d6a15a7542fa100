"""python -m jaxdiar.diarize INPUT... (--out FILE | --out-dir DIR) [--format F] [--model M]

Diarize recordings with an exported model (default: the bundled model that fits each input's
channel count) and write the result as RTTM, JSON, CSV, SRT, VTT, Praat TextGrid or ELAN EAF
(`--format`, or the extension of `--out`; `--out -` writes to stdout).

INPUT is an audio file (wav, flac, ogg), `-` (a wav/flac on stdin), or a folder: a folder of
per-channel files of one recording (AMI's `NAME.Array1-01.wav` ... `-08.wav`, `NAME.CH1.wav`
...) is read as one recording; any other folder is a batch of recordings (`--pattern`).
Several recordings go to one RTTM or CSV file, or one file each with `--out-dir`. A recording
that fails is reported and skipped: exit 0 when all succeeded, 1 when some failed, 2 when all
did (or the arguments are wrong).

With `--transcript T` (Whisper / faster-whisper / WhisperX JSON, SRT or VTT) the output is the
transcript with each word's speaker (`--out rec.srt`, `.vtt` or `.json`). `--exclusive` keeps
one talker at a time (in overlap, the one the model is most confident in). `--embeddings
E.npz` writes each talker's embedding (and d-vector where computed).
"""

import argparse
import contextlib
import pathlib
import sys

import numpy as np

from jaxdiar import pipeline as pipeline_lib
from jaxdiar.core import geometry
from jaxdiar.data import audio as audio_lib
from jaxdiar.decoding import enroll
from jaxdiar.decoding import settings as settings_lib
from jaxdiar.decoding.decode import MAX_SPEAKERS
from jaxdiar.decoding.decode import check_counts
from jaxdiar.decoding.windows import InputError
from jaxdiar.io import atomic
from jaxdiar.io import formats
from jaxdiar.io import rttm
from jaxdiar.io import transcript as transcript_lib
from jaxdiar.models import bundled
from jaxdiar.models import runtime

PROG = "jaxdiar.diarize"


def _say(message: str) -> None:
  print(f"{PROG}: {message}", file=sys.stderr)


def parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(prog="python -m jaxdiar.diarize", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("inputs", nargs="+", help="audio files, folders, or - (stdin)")
  p.add_argument("--model", default=None,
                 help="a .jaxdiar file (python -m jaxdiar.export) or a bundled name "
                      f"({', '.join(bundled.MODELS)}); default: the bundled model that fits the "
                      "input (8 channels: 'array8', otherwise 'mono')")
  out = p.add_mutually_exclusive_group(required=True)
  out.add_argument("--out", help="the file to write (all recordings; - for stdout)")
  out.add_argument("--out-dir", help="a folder: one file per recording, named by its uri")
  p.add_argument("--format", default=None, choices=formats.FORMATS,
                 help="output format (default: --out's extension; rttm with --out-dir)")
  p.add_argument("--pattern", default="*",
                 help="which files of a folder of recordings to diarize (glob, default *)")
  p.add_argument("--num-speakers", type=int, default=None)
  p.add_argument("--min-speakers", type=int, default=None)
  p.add_argument("--max-speakers", type=int, default=None,
                 help=f"at most this many speakers (default: an estimated count stops at "
                      f"{MAX_SPEAKERS}, with a warning)")
  p.add_argument("--exclusive", action="store_true",
                 help="one talker at a time (what aligning an ASR transcript needs)")
  p.add_argument("--transcript", default=None,
                 help="an ASR transcript (Whisper/faster-whisper/WhisperX JSON, SRT, VTT): "
                      "write it with each word's speaker (--out .srt, .vtt or .json)")
  p.add_argument("--embeddings", default=None,
                 help="an .npz of each talker's embedding (and d-vector where computed)")
  p.add_argument("--mics", default=None, metavar="FILE|PRESET",
                 help="where the microphones are: a JSON / CSV file of [x, y, z] metres in "
                      "channel order, or a preset (" + ", ".join(geometry.PRESETS) + "): the "
                      "spatial stages then use this array")
  p.add_argument("--channel", type=int, default=None,
                 help="diarize this channel only (numbered from 0); with --mics, the channel "
                      "a one-channel model reads")
  p.add_argument("--split-channels", action="store_true",
                 help="each channel is one talker's close microphone (calls, two-track "
                      "podcasts): speech per channel, one label per channel")
  p.add_argument("--replicate-channels", action="store_true",
                 help="run a mono recording through a multi-channel model by copying it to "
                      "every channel (the spatial features then carry nothing)")
  p.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                 help="a decoding setting for this run, e.g. onset=0.6 (names: "
                      "jaxdiar/settings.py)")
  p.add_argument("--speakers", default=None,
                 help="enrolled-speaker bank (python -m jaxdiar.enroll): name the speakers")
  p.add_argument("--name-threshold", type=float, default=None,
                 help="cosine similarity a speaker needs to take a name (default: the bank's)")
  p.add_argument("--plot", default=None, help="PNG of the first input's result")
  p.add_argument("--ref", default=None, help="reference RTTM for --plot")
  return p


def expand(inputs, pattern: str) -> list[str]:
  """The recordings of the inputs: a folder of recordings becomes its files (said on
  stderr); a per-channel folder, a file and `-` stay as they are."""
  out = []
  for item in inputs:
    path = pathlib.Path(item)
    if item != "-" and path.is_dir():
      if audio_lib.is_channel_folder(path):
        _say(f"{item}: read as one recording's channels (per-channel files)")
        out.append(item)
        continue
      files = audio_lib.recordings(path, pattern)
      _say(f"{item}: a folder of {len(files)} recording(s) matching {pattern!r}")
      if not files:
        raise InputError(f"{item}: no audio files matching {pattern!r} "
                         f"({', '.join(audio_lib.AUDIO_EXTENSIONS)})")
      out += [str(f) for f in files]
    else:
      out.append(item)
  return out


def main(argv=None) -> int:
  args = parser().parse_args(argv)
  try:                                     # what can be checked before any audio is read
    for out in (args.out, args.plot, args.embeddings):
      if out and out != "-":
        atomic.check_output(out)
    if args.out_dir:
      atomic.check_output(pathlib.Path(args.out_dir) / "probe")
    check_counts(args.num_speakers, args.min_speakers, args.max_speakers)
    settings = settings_lib.parse_items(args.set)
    inputs = expand(args.inputs, args.pattern)
    if inputs.count("-") > 1:
      raise InputError("stdin (-) can be read once")
    fmt = formats.infer_format(args.out if args.out else "-", args.format)
    if args.transcript:
      if len(inputs) != 1 or not args.out:
        raise InputError("--transcript takes one recording and --out")
      fmt = pathlib.Path(args.out).suffix.lower().lstrip(".") if args.out != "-" else (
          args.format or "json")
      if fmt not in transcript_lib.TRANSCRIPT_FORMATS:
        raise InputError(f"--transcript writes {', '.join(transcript_lib.TRANSCRIPT_FORMATS)} "
                         f"(from --out's extension), not {fmt!r}")
      segments = transcript_lib.load(args.transcript)
    if args.out and len(inputs) > 1 and fmt not in formats.MULTI:
      raise InputError(f"a {fmt} file holds one recording: use --out-dir for {len(inputs)}")
    pipeline = pipeline_lib.Pipeline(args.model, settings=settings, speakers=args.speakers,
                                     name_threshold=args.name_threshold, mics=args.mics,
                                     progress=True,
                                     notify=_say)
  except (atomic.OutputError, InputError, ValueError, OSError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  names = [("stdin" if p == "-" else pathlib.Path(p).stem) for p in inputs]
  uris = rttm.unique_uris(names)
  for path, name, uri in zip(inputs, names, uris):
    if uri != name:
      _say(f"{path}: written under the uri '{uri}'"
           + (" (RTTM fields hold no spaces)" if rttm.safe_uri(name) == uri
              else " (another input has its name)"))
  errors = (InputError, runtime.ModelFileError, audio_lib.AudioError, FileNotFoundError,
            enroll.BankError)
  done, failed = [], []
  for path, uri in zip(inputs, uris):
    try:
      with (pipeline_lib.spooled_stdin() if path == "-" else
            contextlib.nullcontext(path)) as source:
        result = pipeline.run(source, uri=uri, num_speakers=args.num_speakers,
                              min_speakers=args.min_speakers, max_speakers=args.max_speakers,
                              exclusive=args.exclusive, channel=args.channel,
                              split_channels=args.split_channels,
                              replicate_channels=args.replicate_channels)
    except errors as e:
      # One input: its error is the answer. Several: the others are still diarized.
      print(f"error: {e}" if len(inputs) == 1 else f"error: {path}: skipped: {e}",
            file=sys.stderr)
      failed.append(path)
      continue
    if not len(result.annotation):
      _say(f"{path}: no speech found")
    if args.out_dir:
      target = pathlib.Path(args.out_dir) / (uri + formats.SUFFIX[fmt])
      target.parent.mkdir(parents=True, exist_ok=True)
      atomic.write_text(target, result.dumps(fmt))
      _say(f"{uri}: {len(result.annotation.labels())} speaker(s), "
           f"{len(result.annotation)} turn(s) -> {target}")
    done.append((path, result))
  if not done:
    return 2
  if args.out:
    if args.transcript:
      text = transcript_lib.dumps(pipeline.attribute(segments, done[0][1].annotation), fmt)
    elif len(done) == 1:
      text = done[0][1].dumps(fmt)
    else:
      text = formats.dumps_many([r.annotation for _, r in done], fmt)
    if args.out == "-":
      sys.stdout.write(text)
    else:
      atomic.write_text(args.out, text)   # written once, at the end, then renamed
  turns = sum(len(r.annotation) for _, r in done)
  summary = (f"wrote {turns} turns for {len(done)} recording(s) to {args.out or args.out_dir}"
             + (f"; {len(failed)} failed: {', '.join(map(str, failed))}" if failed else ""))
  print(summary, file=sys.stderr if args.out == "-" else sys.stdout)
  if args.embeddings:
    write_embeddings(args.embeddings, [r for _, r in done])
  if args.plot:
    from jaxdiar.io import plots   # matplotlib only when asked
    path, result = done[0]
    if result.result is not None:
      ref = rttm.read_rttm(args.ref).get(pathlib.Path(path).stem, []) if args.ref else None
      _, model = pipeline.model_for(audio_lib.info(path)[1])
      plots.diarization_figure(path, result.result, model.sample_rate, ref, args.plot)
  return 1 if failed else 0


def write_embeddings(path, results) -> None:
  """One row per talker of each recording: `uris`, `labels`, `embeddings` [N, E] (the unit
  mean of the model's embeddings of its local speakers, weighted by frames heard: what the
  clustering starts from and enrolment compares) and, where the voice encoder ran, `voice`
  [N, 256] (its d-vectors, likewise; zero rows elsewhere)."""
  rows = [(r.uri, label, vector, r.voice.get(label)) for r in results
          for label, vector in sorted(r.embeddings.items())]
  arrays = dict(uris=np.array([r[0] for r in rows], dtype=str),
                labels=np.array([r[1] for r in rows], dtype=str))
  if rows:
    arrays["embeddings"] = np.stack([r[2] for r in rows])
    if any(r[3] is not None for r in rows):
      dim = next(r[3] for r in rows if r[3] is not None).shape[0]
      arrays["voice"] = np.stack([r[3] if r[3] is not None else np.zeros(dim, np.float32)
                                  for r in rows])
  with atomic.atomic_path(path, suffix=".npz") as tmp:
    np.savez(tmp, **arrays)
  print(f"wrote {len(rows)} talker embedding(s) to {path}", file=sys.stderr)
