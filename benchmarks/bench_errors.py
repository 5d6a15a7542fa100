"""Where a model's diarization errors are, on the dev meetings of `bench_accuracy`.

  python -m benchmarks.bench_errors --model jaxdiar/models/array8.jaxdiar [--seed 2027] \
      [--cache DIR] [--true-count] [--out FILE]

Frame by frame (the model's hop), after the reference speakers are mapped one-to-one onto the
hypothesis speakers that overlap them most (as pyannote.metrics maps them), each frame's
missed, false-alarm and confused talkers are counted and summed two ways: by the frame's
distance to the nearest reference change (a talker starting or stopping: are the errors at the
boundaries or inside the turns?) and by how many talkers the reference has there (silence,
one, two, three or more: is it the overlap?). Every figure is in points of DER (per cent of
the reference talker-frames), so each table's cells add up to the frame-level DER. Results:
benchmarks/results/errors-<model>-<date>.json.
"""

import argparse
import datetime
import json
import pathlib
import sys

import numpy as np

from benchmarks import bench_accuracy
from benchmarks import common
from configs import default
from jaxdiar import diarize as diarize_lib
from jaxdiar.core import resegment
from jaxdiar.data import corpus
from jaxdiar.data import devmeetings
from jaxdiar.io import rttm

DISTANCE_BINS = (0, 4, 8, 16, 32, 64)        # frames; the last bin is open
TALKER_BINS = ("0", "1", "2", "3+")


def frame_errors(ref: np.ndarray, hyp: np.ndarray) -> dict:
  """ref [T, R], hyp [T, H] bool -> per-frame reference talkers, missed, false alarm and
  confused talkers under the one-to-one mapping of largest total overlap."""
  ref, hyp = ref.astype(bool), hyp.astype(bool)
  n_ref, n_hyp = ref.sum(axis=1), hyp.sum(axis=1)
  correct = (hyp & resegment.frame_labels(hyp, ref)).sum(axis=1)   # the paired speaker's frames
  return dict(ref=n_ref, missed=np.maximum(n_ref - n_hyp, 0),
              false_alarm=np.maximum(n_hyp - n_ref, 0),
              confusion=np.minimum(n_ref, n_hyp) - correct)


def boundary_distance(ref: np.ndarray) -> np.ndarray:
  """[T] frames from each frame to the nearest change of any reference talker (a large
  number where nothing ever changes)."""
  change = np.flatnonzero(np.any(ref[1:] != ref[:-1], axis=1)) + 0.5
  if not len(change):
    return np.full(len(ref), np.inf)
  t = np.arange(len(ref))
  i = np.searchsorted(change, t)
  before = change[np.maximum(i - 1, 0)]
  after = change[np.minimum(i, len(change) - 1)]
  return np.minimum(np.abs(t - before), np.abs(t - after))


def breakdown(pairs) -> dict:
  """[(ref, hyp), ...] of frame matrices -> points of DER by boundary distance and by the
  reference talker count, with their sums."""
  parts = ("missed", "false_alarm", "confusion")
  by_distance = {p: np.zeros(len(DISTANCE_BINS)) for p in parts}
  by_talkers = {p: np.zeros(len(TALKER_BINS)) for p in parts}
  frames_d, frames_t, total_ref = np.zeros(len(DISTANCE_BINS)), np.zeros(len(TALKER_BINS)), 0
  for ref, hyp in pairs:
    e = frame_errors(ref, hyp)
    d = np.digitize(boundary_distance(ref), DISTANCE_BINS) - 1
    n = np.minimum(e["ref"], len(TALKER_BINS) - 1)
    total_ref += int(e["ref"].sum())
    np.add.at(frames_d, d, 1)
    np.add.at(frames_t, n, 1)
    for p in parts:
      np.add.at(by_distance[p], d, e[p])
      np.add.at(by_talkers[p], n, e[p])
  pts = lambda x: [round(100.0 * float(v) / max(total_ref, 1), 3) for v in x]
  edges = [f"{a}-{b}" for a, b in zip(DISTANCE_BINS, DISTANCE_BINS[1:])] + [
      f">={DISTANCE_BINS[-1]}"]
  der = sum(float(by_talkers[p].sum()) for p in parts) / max(total_ref, 1)
  return dict(
      der=round(100.0 * der, 3), ref_talker_frames=total_ref,
      by_boundary_distance=dict(bins_frames=edges, frames=frames_d.astype(int).tolist(),
                                **{p: pts(by_distance[p]) for p in parts}),
      by_reference_talkers=dict(bins=list(TALKER_BINS), frames=frames_t.astype(int).tolist(),
                                **{p: pts(by_talkers[p]) for p in parts}))


def markdown(result: dict, hop_seconds: float) -> str:
  lines = []
  for key, label in (("by_boundary_distance", "distance to a reference change"),
                     ("by_reference_talkers", "reference talkers")):
    b = result[key]
    names = (b["bins_frames"] if key == "by_boundary_distance" else b["bins"])
    if key == "by_boundary_distance":
      names = [f"{n} frames" + (f" (< {DISTANCE_BINS[i + 1] * hop_seconds:.2f} s)"
                                if i + 1 < len(DISTANCE_BINS) else "")
               for i, n in enumerate(names)]
    lines += [f"| {label} | frames | miss | false alarm | confusion |",
              "| --- | --- | --- | --- | --- |"]
    lines += [f"| {n} | {f} | {m:.2f} | {a:.2f} | {c:.2f} |" for n, f, m, a, c in
              zip(names, b["frames"], b["missed"], b["false_alarm"], b["confusion"])]
    lines.append("")
  lines.append(f"frame-level DER {result['der']:.2f} % (points in each table add up to it)")
  return "\n".join(lines)


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--model", required=True, help=".jaxdiar file or jaxdiar.online folder")
  p.add_argument("--speech", default=bench_accuracy.DEV_SPEECH)
  p.add_argument("--meetings", type=int, default=16)
  p.add_argument("--seed", type=int, default=2026)
  p.add_argument("--true-count", action="store_true", help="decode with the true count")
  p.add_argument("--cache", default=None, help="keep the model's window outputs here")
  p.add_argument("--out", default=None)
  args = p.parse_args(argv)
  if not pathlib.Path(args.speech).is_dir():
    print(f"{args.speech}: dev speech not found", file=sys.stderr)
    return 2
  model = bench_accuracy.load_model(args.model)
  folder, meetings = devmeetings.cached(args.speech, num_meetings=args.meetings, seed=args.seed,
                                        geometry=default.circular_array())
  name = pathlib.Path(args.model).stem
  cache = args.cache and pathlib.Path(args.cache) / folder.name / name
  options = {**diarize_lib.DEFAULT_DECODE, **model.meta["inference"]}
  inferences = bench_accuracy.infer_all(model, folder, meetings, cache=cache,
                                        **diarize_lib.needs(options))
  pairs = []
  for m in meetings:
    uri, inf = m["uri"], inferences[m["uri"]]
    turns = rttm.read_rttm(folder / f"{uri}.rttm")[uri]
    names = sorted({t.speaker for t in turns})
    result = diarize_lib.decode(inf, options,
                                num_speakers=len(names) if args.true_count else None)
    ref = corpus.frame_activity(turns, names, len(result.active), inf.hop, inf.sample_rate)
    pairs.append((ref, result.active))
  result = breakdown(pairs)
  hop_seconds = model.hop / model.sample_rate
  print(markdown(result, hop_seconds))
  result.update(model=args.model, count="true" if args.true_count else "estimated",
                hop_seconds=hop_seconds, dev=dict(speech=args.speech, seed=args.seed,
                                                  meetings=args.meetings),
                machine=common.machine())
  out = pathlib.Path(args.out or pathlib.Path(__file__).parent / "results" /
                     f"errors-{name}-seed{args.seed}-{datetime.date.today().isoformat()}.json")
  out.write_text(json.dumps(result, indent=1))
  print(f"-> {out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
