"""How much of a model's error the count, the speech decision and its embeddings each hold, on
the meetings the rule chooses on (`bench_choose`: fit 32 + dev 16).

  python -m benchmarks.bench_bounds --model array8=jaxdiar/models/array8.jaxdiar \
      [--cache DIR] [--out FILE]

Rows (DER, estimated count unless said, collar 0, overlap scored, pyannote.metrics):
- the model's decoding; the same with the true count;
- oracle speech: the decision before the speech stage (neither gate nor classifier), then no
  speaker where the reference has none and the top-scoring one where it has some and none is
  marked (`speech.decide` with the reference for P(speech)), then the model's frame overlap
  classifier where it has one, as after its own speech stage (`jaxdiar.decoding.talkers`); and
  with the true count too.
And the local speakers' separability: the clustering's anchors (heard `anchor_seconds`), each
given the reference talker its frames overlap most; over the pairs from different windows of
one meeting, the AUC of "same talker" for the cosine similarity of the model's embeddings, of
the SRP-PHAT directions (mean-removed responses), and of the joint vectors the clustering cuts;
the mean over meetings with two talkers or more.
Results: benchmarks/results/bounds-<date>.json.
"""

import argparse
import datetime
import json
import pathlib
import sys

import numpy as np
import scipy.stats

from benchmarks import bench_accuracy as acc
from benchmarks import bench_choose
from benchmarks import bench_shift
from benchmarks import common
from jaxdiar import diarize as diarize_lib
from jaxdiar.data import corpus
from jaxdiar.decoding import cluster as cluster_lib
from jaxdiar.decoding import frames as frames_lib
from jaxdiar.decoding import speech as speech_lib
from jaxdiar.decoding import talkers as talkers_lib
from jaxdiar.decoding.local import heard_frames
from jaxdiar.io import rttm


def auc(positive: np.ndarray, score: np.ndarray) -> float:
  """The area under the ROC curve of `score` for the boolean `positive` (Mann-Whitney, ties
  counted half)."""
  positive = np.asarray(positive, bool)
  n_pos, n_neg = int(positive.sum()), int((~positive).sum())
  if not n_pos or not n_neg:
    raise ValueError("auc needs positives and negatives")
  ranks = scipy.stats.rankdata(score)
  return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def oracle_speech(active: np.ndarray, score: np.ndarray, reference: np.ndarray, options: dict,
                  fs: float, overlap=None) -> np.ndarray:
  """The decision `active` [T, K] with the reference's speech [T] (bool) for P(speech); then,
  with `overlap` (a function of that decision giving P(two or more talk) [T]), the top-scoring
  speaker alone where two or more are marked and it is under `overlap_classifier_threshold`."""
  min_speech, min_silence = frames_lib.min_durations(options, fs)
  active = speech_lib.decide(active, score, reference.astype(np.float32), threshold=0.5,
                             fill=0.5, min_speech=min_speech, min_silence=min_silence)
  if overlap is None or active.shape[1] < 2:
    return active
  return talkers_lib.decide(active, score, overlap(active),
                            threshold=options["overlap_classifier_threshold"],
                            min_speech=min_speech, min_silence=min_silence)


def separability(inf, reference: np.ndarray, options: dict) -> dict | None:
  """{"embedding", "direction", "joint"}: same-talker AUCs over the anchors' cross-window pairs
  of one meeting (`reference` [>= frames, R] bool); None with fewer than two talkers heard."""
  fs = inf.hop / inf.sample_rate
  heard = heard_frames(inf, options["onset"])
  windows, slots = np.nonzero(heard * fs >= options["anchor_seconds"])
  who = np.array([np.argmax(inf.vad[w, :, s].astype(np.float32)
                            @ reference[inf.window_frames[w]:][:inf.vad.shape[1]])
                  for w, s in zip(windows, slots)], int)
  if len(np.unique(who)) < 2 or inf.direction is None:
    return None
  emb = inf.emb[windows, slots].astype(np.float64)
  emb /= np.linalg.norm(emb, axis=1, keepdims=True) + 1e-9
  direction = inf.direction[windows, slots]
  vectors = dict(embedding=emb, direction=cluster_lib.unit_responses(direction),
                 joint=cluster_lib.joint_vectors(emb, direction, options["spatial_weight"]))
  upper = np.triu_indices(len(who), 1)
  apart = (windows[:, None] != windows[None, :])[upper]
  same = (who[:, None] == who[None, :])[upper][apart]
  if same.all() or not same.any():
    return None
  return {k: auc(same, (x @ x.T)[upper][apart]) for k, x in vectors.items()}


def bounds(inferences: dict, folder, options: dict) -> dict:
  """The rows of the module docstring for one set of meetings."""
  hyp = {k: {} for k in ("model", "model, true count", "oracle speech",
                         "oracle speech, true count")}
  refs, aucs = {}, []
  before = dict(options, speech_gate=None, speech_fill=None, speech_classifier=None,
                overlap_classifier=None)
  for uri, inf in inferences.items():
    refs[uri] = turns = rttm.read_rttm(folder / f"{uri}.rttm").get(uri, [])
    names = sorted({t.speaker for t in turns})
    for true in (False, True):
      count = len(names) if true else None
      suffix = ", true count" if true else ""
      hyp["model" + suffix][uri] = diarize_lib.decode(inf, options, num_speakers=count).turns
      r = diarize_lib.decode(inf, before, num_speakers=count)
      ref = corpus.frame_activity(turns, names, len(r.active), inf.hop, inf.sample_rate)
      overlap = None
      if options["overlap_classifier"] is not None:
        overlap = lambda a, r=r: talkers_lib.probability(
            talkers_lib.evidence(inf, a, r.speech, r.overlap, r.frame_seconds),
            options["overlap_classifier"])
      active = oracle_speech(r.active, r.speech, ref.any(axis=1), options, r.frame_seconds,
                             overlap)
      hyp["oracle speech" + suffix][uri] = diarize_lib.turns_of(
          active, r.frame_seconds, uri, inf.num_samples / inf.sample_rate)
    extra = inf.vad.shape[1]
    full = corpus.frame_activity(turns, names, inf.total_frames + extra, inf.hop,
                                 inf.sample_rate).astype(np.float32)
    found = separability(inf, full, options)
    if found is not None:
      aucs.append(found)
  rows = {}
  for row, h in hyp.items():
    s = acc.summarise(refs, h)
    rows[row] = {k: round(100 * float(s[k]), 2) for k in ("der", "missed", "false_alarm",
                                                            "confusion")}
    rows[row]["count_right"] = int(s["count_right"])
  return dict(rows=rows, meetings=len(refs), separability=dict(
      meetings=len(aucs), **{k: round(float(np.mean([a[k] for a in aucs])), 3)
                             for k in ("embedding", "direction", "joint")} if aucs else {}))


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--model", default="array8=array8", help="NAME=PATH (.jaxdiar, a "
                 "jaxdiar.online folder or a bundled name)")
  p.add_argument("--speech", default=bench_choose.SPEECH)
  p.add_argument("--cache", default=None, help="keep the model's window outputs here")
  p.add_argument("--out", default=None)
  args = p.parse_args(argv)
  if not pathlib.Path(args.speech).is_dir():
    print(f"{args.speech}: speech folder not found", file=sys.stderr)
    return 2
  (name, model), = bench_shift.parse_models([args.model]).items()
  options = diarize_lib.decoding_settings(model, {})
  need = diarize_lib.infer_options(options)
  out = {}
  for set_name, (folder, meetings) in bench_choose.meeting_sets(args.speech).items():
    inferences = acc.infer_all(model, folder, meetings,
                               cache=args.cache and pathlib.Path(args.cache) / folder.name / name,
                               **need)
    out[set_name] = bounds(inferences, folder, options)
    for row, r in out[set_name]["rows"].items():
      print(f"{set_name:4s} {row:28s} DER {r['der']:6.2f} (miss {r['missed']:.1f} FA "
            f"{r['false_alarm']:.1f} conf {r['confusion']:.1f}) count {r['count_right']}/"
            f"{out[set_name]['meetings']}")
    print(f"{set_name:4s} same-talker AUC {out[set_name]['separability']}")
  path = pathlib.Path(args.out or pathlib.Path(__file__).parent / "results" /
                      f"bounds-{datetime.date.today().isoformat()}.json")
  path.write_text(json.dumps(dict(model=args.model, speech=args.speech, fit=bench_choose.FIT,
                                  dev=bench_choose.DEV, machine=common.machine(), sets=out),
                             indent=1))
  print(f"-> {path}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
