"""Enrolled-speaker naming on the simulated dev meetings (issue 13).

  python -m benchmarks.bench_naming --model array8 --model mono [--seed 2026] [--cache DIR]

Every one of the dev voices (libri-test-other, 10 speakers) is enrolled for each meeting from
that speaker's utterances that the meeting does not use (one-channel clips, as a user would
record them; copied to every channel for an array model), so the bank holds 10 names of which
2-4 talk. Each meeting is diarized (estimated speaker count) and every hypothesis speaker is
mapped to a reference speaker by the DER's optimal mapping (pyannote.metrics). Per threshold:
- named right: share of the hypothesis speech time whose speaker carries the name of the
  reference speaker it maps to;
- false names: share carrying another name (a wrong voice, or a speaker that maps to nobody);
- unnamed: the rest (kept as spkNN).
The threshold is chosen on the dev seed and reported on the held-out seed beside it.
"""

import argparse
import json
import pathlib
import sys

import numpy as np
from pyannote.metrics.diarization import DiarizationErrorRate

from benchmarks import bench_accuracy
from benchmarks import common
from configs import default
from jaxdiar import diarize as diarize_lib
from jaxdiar.core import scoring as evaluate
from jaxdiar.data import devmeetings
from jaxdiar.decoding import enroll
from jaxdiar.io import rttm
from jaxdiar.models import bundled

def utterance_embeddings(model, speech: pathlib.Path) -> dict:
  """source path (as the meetings record it) -> (weighted embedding sum, speech seconds)."""
  out = {}
  for path in sorted(speech.glob("*/*.flac")):
    key = str(path)
    out[key] = enroll.clip_embedding(path, model, replicate_channels=True)
  return out


def meeting_bank(utterances: dict, used: set, fingerprint: str) -> dict:
  """A bank of every speaker from its utterances not in `used`."""
  sums: dict[str, list] = {}
  for key, (e, s) in utterances.items():
    if pathlib.Path(key).name in used:
      continue
    speaker = pathlib.Path(key).parent.name
    total, seconds = sums.get(speaker, (0.0, 0.0))
    sums[speaker] = (total + e, seconds + s)
  names = sorted(sums)
  emb = np.stack([sums[n][0] / (np.linalg.norm(sums[n][0]) + 1e-9) for n in names])
  return dict(names=np.array(names), embeddings=emb.astype(np.float32),
              fingerprint=np.array(fingerprint), threshold=np.array(0.0))


def score_names(ref_turns, result, bank, uri, thresholds) -> dict:
  """threshold -> (right, false, unnamed seconds, total hypothesis speech seconds)."""
  hyp = evaluate.to_annotation(result.turns, uri)
  mapping = DiarizationErrorRate().optimal_mapping(evaluate.to_annotation(ref_turns, uri), hyp)
  seconds = {label: hyp.label_duration(label) for label in hyp.labels()}
  out = {}
  for t in thresholds:
    names = {f"spk{k:02d}": n for k, n in enroll.assign_names(result.centroids, bank, t).items()}
    right = sum(s for label, s in seconds.items()
                if label in names and mapping.get(label) == names[label])
    named = sum(s for label, s in seconds.items() if label in names)
    out[t] = (right, named - right, sum(seconds.values()) - named, sum(seconds.values()))
  return out


def run(name, model, *, speech, seed, meetings, thresholds, cache) -> dict:
  folder, listing = devmeetings.cached(str(speech), num_meetings=meetings, seed=seed,
                                       geometry=default.circular_array())
  refs = {m["uri"]: rttm.read_rttm(folder / f"{m['uri']}.rttm")[m["uri"]] for m in listing}
  options = {**diarize_lib.DEFAULT_DECODE, **model.meta["inference"]}
  inferences = bench_accuracy.infer_all(
      model, folder, listing, cache=cache and pathlib.Path(cache) / folder.name / name,
      **diarize_lib.needs(options))
  utterances = utterance_embeddings(model, pathlib.Path(speech))
  totals = {t: np.zeros(4) for t in thresholds}
  for m in listing:
    uri = m["uri"]
    scene = json.loads((folder / f"{uri}.json").read_text())
    used = {pathlib.Path(u["source"]).name for u in scene["utterances"]}
    bank = meeting_bank(utterances, used, model.fingerprint)
    result = diarize_lib.decode(inferences[uri], options)
    for t, row in score_names(refs[uri], result, bank, uri, thresholds).items():
      totals[t] += row
  rows = {}
  for t, (right, false, unnamed, total) in totals.items():
    rows[f"{t:g}"] = dict(named_right=round(right / total, 4), false_names=round(false / total, 4),
                          unnamed=round(unnamed / total, 4), speech_seconds=round(total, 1))
  return dict(folder=folder.name, seed=seed, meetings=meetings, thresholds=rows)


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--model", action="append", required=True,
                 help="a bundled model name, or NAME=PATH (.jaxdiar or jaxdiar.online folder)")
  p.add_argument("--speech", default=bench_accuracy.DEV_SPEECH)
  p.add_argument("--seed", type=int, action="append", default=None,
                 help="dev meeting seeds (default 2026 = dev, 2027 = held-out)")
  p.add_argument("--meetings", type=int, default=16)
  p.add_argument("--thresholds", default="0.3,0.4,0.5,0.6,0.7,0.8")
  p.add_argument("--cache", default=None, help="the model window outputs of bench_accuracy")
  p.add_argument("--out", default=None)
  args = p.parse_args(argv)
  if not pathlib.Path(args.speech).is_dir():
    print(f"{args.speech}: dev speech not found", file=sys.stderr)
    return 2
  thresholds = [float(t) for t in args.thresholds.split(",")]
  results = {}
  for spec in args.model:
    name, _, path = spec.partition("=")
    if not path:
      name, path = f"{spec} (bundled)", str(bundled.path(spec))
    model = bench_accuracy.load_model(path)
    for seed in args.seed or [2026, 2027]:
      key = f"{name}, seed {seed}"
      results[key] = run(name, model, speech=args.speech, seed=seed, meetings=args.meetings,
                         thresholds=thresholds, cache=args.cache)
      for t, row in results[key]["thresholds"].items():
        print(f"{key:32s} threshold {t:>4s}: named right {row['named_right']:6.1%}  "
              f"false names {row['false_names']:6.1%}  unnamed {row['unnamed']:6.1%}",
              flush=True)
  common.write("naming", results, args.out)
  return 0


if __name__ == "__main__":
  sys.exit(main())
