"""python -m jaxdiar.stream INPUT [--model M] [--out FINAL.rttm] [--step 0.5] [--latency 0.5]

A live diarizer: audio in, closed speaker segments out as JSON lines on stdout
(`{"start": s, "end": s, "speaker": "spk00"}`), progress and diagnostics on stderr. When a
provisional speaker (causal mode) is dropped, a line `{"relabel": {"spk03": "spk01"}}` says
that every segment labelled spk03 (sent or still to come) belongs to spk01; --out writes the
final labels.
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
import json
import pathlib
import signal
import sys

import numpy as np

from jaxdiar.core import geometry
from jaxdiar.data import audio as audio_lib
from jaxdiar.decoding import settings as settings_lib
from jaxdiar.decoding import windows as windows_lib
from jaxdiar.io import atomic
from jaxdiar.io import formats
from jaxdiar.io import rttm
from jaxdiar.live.sources import file_blocks
from jaxdiar.live.sources import pcm_blocks
from jaxdiar.live.streamer import CAUSAL_THRESHOLD
from jaxdiar.live.streamer import PIECE_SECONDS
from jaxdiar.live.streamer import STREAM_THRESHOLD
from jaxdiar.live.streamer import Streamer
from jaxdiar.live.streamer import TUNABLE
from jaxdiar.models import bundled
from jaxdiar.models import runtime

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
  p.add_argument("--mics", default=None, metavar="FILE|PRESET",
                 help="the microphones' positions (jaxdiar.core.geometry): picks the array model "
                      "for its own array, else the one-channel model (channel 0; with --set "
                      "spatial_weight=W the talkers' directions from these positions)")
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


def _relabels(streamer) -> None:
  """A JSON line per relabel event: {"relabel": {"spk03": "spk01"}}, every segment sent (or
  still to be sent) with the first label belongs to the second speaker."""
  for event in streamer.pop_relabels():
    print(json.dumps({"relabel": event}), flush=True)


def _interrupt(signum, frame):
  raise KeyboardInterrupt


def _run(args, stdin: bool) -> int:
  """`main` after parsing: stream, print the segments, write --out (also when stopped)."""
  interrupted = False
  try:
    if args.out:
      atomic.check_output(args.out)
    channels = args.channels if stdin else audio_lib.info(args.input)[1]
    mics = None if args.mics is None else geometry.load(args.mics)
    windows_lib.check_mics(mics, channels, "stdin" if stdin else args.input, args.mics)
    name = args.model or bundled.choose_live(channels, mics)
    model = runtime.load(name)
    causal = args.causal or (args.model is None and name == bundled.LIVE)
    if not args.model:
      print(f"jaxdiar.stream: using the bundled '{name}' model"
            + (" (causal, its 128 ms blocks)" if causal else ""), file=sys.stderr)
    if mics is not None and not model.needs_array:
      print(f"jaxdiar.stream: the '{name}' model reads channel 0; with --set spatial_weight=W "
            "the talkers' directions come from the --mics positions (off by default: "
            "docs/arrays.md)", file=sys.stderr)
    elif model.num_channels == 1 and channels > 1:
      print(f"jaxdiar.stream: {channels} channels: the '{name}' model reads channel 0 "
            "(--mics FILE|PRESET names the array)", file=sys.stderr)
    settings = settings_lib.parse_items(args.set, extra=TUNABLE, what="setting")
    if args.threshold is not None:
      settings["cluster_threshold"] = args.threshold
    latency = args.latency
    if latency is None and args.model is None and name == bundled.LIVE:
      latency = bundled.LIVE_LATENCY
    streamer = Streamer(model, step_seconds=args.step, latency_seconds=latency,
                        max_speakers=args.max_speakers, num_channels=channels,
                        causal=causal, mics=mics, **{"piece_seconds": args.piece, **settings})
    block = streamer.step
    blocks = (pcm_blocks(sys.stdin.buffer, channels, args.sample_rate, args.format,
                         model.sample_rate, block) if stdin
              else file_blocks(args.input, model.sample_rate, block, args.realtime))
    try:
      for x in blocks:
        for segment in streamer.push(x):
          print(segment.to_json(), flush=True)
        _relabels(streamer)
    except KeyboardInterrupt:              # the usual way to stop a microphone: keep the output
      interrupted = True
    for segment in streamer.finish():      # closes the segments still open
      print(segment.to_json(), flush=True)
    _relabels(streamer)
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
                                   for s in streamer.final_segments()], uri)
    atomic.write_text(args.out, formats.dumps(final, formats.infer_format(args.out),
                                              duration=audio_s))
  if interrupted:
    print("jaxdiar.stream: interrupted" + (f"; wrote {args.out}" if args.out else ""),
          file=sys.stderr)
    return 130
  return 0


if __name__ == "__main__":
  sys.exit(main())
