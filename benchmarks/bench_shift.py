"""The shift suite (SPEC section 9): models scored on sets that each break one habit of the
training simulator (`jaxdiar.data.shift`), beside the one-speaker floor and SRP-PHAT
clustering on the same meetings. Read after a choice, never to make one.

  python -m benchmarks.bench_shift [--model NAME=PATH ...] [--sets uneven,crowd,...]
      [--ami ../shared/data/ami-excerpts --ami-only trn05,...] [--out FILE]
  python -m benchmarks.bench_shift --fit ...     # the randomised fit meetings: for choosing

With no --model, the bundled array8 and mono (mono on the first channel). Per set and system:
DER with the estimated and the true count (collar 0, overlap scored), its parts, the meetings
whose count is right; then the mean over the sets (the suite's headline) and the worst set.
Results to benchmarks/results/shift-<date>.json (merged by system name).
"""

import argparse
import datetime
import json
import pathlib
import sys

import numpy as np

from benchmarks import bench_accuracy as acc
from benchmarks import common
from configs import default
from jaxdiar import cli
from jaxdiar.core import geometry
from jaxdiar.data import shift
from jaxdiar.io import rttm
from jaxdiar.models import bundled

SPEECH = "../shared/data/speech/libri-test-other"
CLASSIFIER_SPEECH = "../shared/data/speech/libri-train-clean-100"
SUITE_SEED = 4100
FIT_SEED = 3100
FIT_MEETINGS = 32
FLOOR = "one speaker (oracle VAD)"
SRP = "SRP-PHAT clustering (oracle VAD), 20 deg"


def score_set(folder, meetings, models: dict, variants: dict, *, baselines: bool,
              cache=None, mics=None, counts=("est", "true")) -> dict:
  """{system: {"est": summary, "true": summary}} on one set's meetings (the models' rows:
  with each of `counts`). `mics`: the meetings' geometry when it is not the 8-mic circle:
  SRP-PHAT uses it, and each one-channel model is scored on channel 0 alone and as
  `NAME + --mics` (the spatial stages with it)."""
  geometry_ = default.circular_array() if mics is None else mics
  refs = {m["uri"]: rttm.read_rttm(folder / f"{m['uri']}.rttm").get(m["uri"], [])
          for m in meetings}
  out = {}
  if baselines:
    out[FLOOR] = {"est": acc.summarise(refs, acc.one_speaker(refs))}
    hyps = acc.srp_phat(folder, meetings, refs, geometry=geometry_, thresholds_deg=(20.0,))
    out[SRP] = {"est": acc.summarise(refs, hyps[20.0]), "true": acc.summarise(refs, hyps["true"])}
  for name, model in models.items():
    rows = {name: {}} | {v: opts for v, (m, opts) in variants.items() if m == name}
    if mics is not None and spatial_alone(model):     # the same windows, spatial stages on
      rows[f"{name} + --mics"] = bundled.any_array_settings()
    # One inference holds what every row decodes with.
    inferences = acc.infer_all(model, folder, meetings,
                               **acc.diarize_lib.needs_of_all(
                                   [{**model.meta["inference"], **o} for o in rows.values()]),
                               cache=cache and pathlib.Path(cache) / folder.name / name,
                               mics=mics if spatial_alone(model) else None)
    defaults = {**acc.diarize_lib.DEFAULT_DECODE, **model.meta["inference"]}
    for row, opts in rows.items():
      out[row] = {count: acc.summarise(refs, acc.decode_all(inferences, refs, {**defaults, **opts},
                                                            true_count=count == "true"))
                  for count in counts}
  return out


def parse_models(specs) -> dict:
  """{name: loaded model} of `NAME=PATH` items (PATH: a .jaxdiar file, a jaxdiar.online
  folder or a bundled model's name)."""
  models = {}
  for spec in specs:
    name, _, path = spec.partition("=")
    models[name] = acc.load_model(str(bundled.resolve(path)))
  return models


def parse_variants(items) -> dict:
  """{row: (model name, settings)} of `ROW=MODEL:JSON` items."""
  variants = {}
  for item in items:
    row, _, rest = item.partition("=")
    model, _, opts = rest.partition(":")
    variants[row] = (model, json.loads(opts))
  return variants


def spatial_alone(model) -> bool:
  """Whether the model takes a geometry other than its own: a one-channel model (the spatial
  stages alone use it) or one whose features take the geometry (`srp`)."""
  return model.num_channels == 1 or model.takes_geometry


def means(sets: dict) -> dict:
  """{system: {"mean": DER, "worst": (set, DER), "sets": n}} over the sets (est. count)."""
  systems = {s for per in sets.values() for s in per}
  out = {}
  for s in sorted(systems):
    ders = {name: per[s]["est"]["der"] for name, per in sets.items() if s in per}
    worst = max(ders, key=ders.get)
    out[s] = dict(mean=float(np.mean(list(ders.values()))), worst=[worst, ders[worst]],
                  sets=len(ders))
  return out


def markdown(results: dict) -> str:
  """The README table: a row per set, the floor / SRP / each model (est. count, true count,
  count right), then the mean."""
  sets = results["sets"]
  systems = [s for s in results["mean"] if s not in (FLOOR, SRP)]
  head = ["set", "floor", "SRP-PHAT"] + [f"{s} est. / true (right #spk)" for s in systems]
  lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
  pct = lambda x: f"{100 * x:.1f}"
  for name, per in sets.items():
    cells = [name, pct(per[FLOOR]["est"]["der"]) if FLOOR in per else "-",
             pct(per[SRP]["est"]["der"]) if SRP in per else "-"]
    for s in systems:
      e = per.get(s)
      cells.append(f"{pct(e['est']['der'])} / {pct(e['true']['der'])} "
                   f"({e['est']['count_right']}/{e['est']['meetings']})" if e else "-")
    lines.append("| " + " | ".join(cells) + " |")
  mean = results["mean"]
  lines.append("| **mean** | " + " | ".join(
      [pct(mean[FLOOR]["mean"]) if FLOOR in mean else "-",
       pct(mean[SRP]["mean"]) if SRP in mean else "-"]
      + [f"**{pct(mean[s]['mean'])}** (worst {mean[s]['worst'][0]} {pct(mean[s]['worst'][1])})"
         for s in systems]) + " |")
  return "\n".join(lines)


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--model", action="append", default=[],
                 help="NAME=PATH (.jaxdiar or a bundled name); default: array8 and mono")
  p.add_argument("--variant", action="append", default=[],
                 help='ROW=MODEL:{"key": value}: decode options scored as another row')
  p.add_argument("--sets", default=",".join(shift.SUITE))
  p.add_argument("--fit", action="store_true",
                 help="score the randomised fit meetings instead (where choices are made)")
  p.add_argument("--meetings", type=int, default=16)
  p.add_argument("--mics", default=None, metavar="PRESET|FILE",
                 help="simulate the sets with this array instead of the 8-mic circle (the "
                      "'plain' set: the generator's base draws); one-channel models are also "
                      "scored with the spatial stages on this geometry")
  p.add_argument("--seed", type=int, default=None)
  p.add_argument("--speech", default=SPEECH)
  p.add_argument("--fit-speech-classifier", default=None, metavar="SEEDS",
                 help="with --mics: refit the one-channel models' frame speech classifier for "
                      "the --mics path on the randomised fit meetings of these seeds, simulated "
                      "with each array of --fit-mics, and score it as another row (the weights "
                      "go to the results file: jaxdiar/models/any-array.json takes them)")
  p.add_argument("--fit-mics", default="respeaker-4,respeaker-6", metavar="PRESETS",
                 help="arrays the classifier's meetings are simulated with")
  p.add_argument("--fit-speech", default=CLASSIFIER_SPEECH,
                 help="voices of the classifier's meetings (not the suite's)")
  p.add_argument("--speech-net", action="store_true",
                 help="with --fit-speech-classifier: the frame speech network's features too")
  p.add_argument("--fit-overlap-classifier", default=None, metavar="SEEDS",
                 help="with --mics: fit the one-channel models' frame overlap classifier for "
                      "the --mics path (over its speech classifier, or the one "
                      "--fit-speech-classifier refits) likewise, and score it as another row")
  p.add_argument("--overlap-threshold", type=float, default=None,
                 help="with --fit-overlap-classifier: its threshold (default: any-array.json's)")
  p.add_argument("--no-baselines", action="store_true")
  p.add_argument("--ami", default=None, help="AMI excerpts folder: score one-channel models")
  p.add_argument("--ami-only", default=None, metavar="URIS")
  p.add_argument("--cache", default=None, help="keep the models' window outputs here")
  p.add_argument("--out", default=None)
  p.add_argument("--table", default=None, help="print the markdown table of a results file")
  args = p.parse_args(argv)
  cli.configure_logging()                    # the simulators' progress lines
  if args.table:
    print(markdown(json.loads(pathlib.Path(args.table).read_text())))
    return 0
  if not pathlib.Path(args.speech).is_dir():
    print(f"{args.speech}: speech folder not found", file=sys.stderr)
    return 2
  specs = args.model or (["mono=mono"] if args.mics else ["array8=array8", "mono=mono"])
  models = parse_models(specs)
  variants = parse_variants(args.variant)
  mics = None if args.mics is None else geometry.load(args.mics)
  fitted, overlap_fitted = {}, {}
  for flag, value, verb in (("--fit-speech-classifier", args.fit_speech_classifier, "refits"),
                            ("--fit-overlap-classifier", args.fit_overlap_classifier, "fits")):
    if value and args.mics is None:
      p.error(f"{flag} {verb} the --mics path's classifier: give --mics")
  fitting = bool(args.fit_speech_classifier or args.fit_overlap_classifier)
  arrays = [geometry.load(a) for a in args.fit_mics.split(",")] if fitting else []
  for name, model in models.items():
    if model.num_channels != 1:
      continue
    speech = {}                          # the speech classifier the overlap one is fitted over
    if args.fit_speech_classifier:
      fitted[name] = acc.fit_speech_classifier(
          model, acc.diarize_lib.decoding_settings(model, {}, mics), args.fit_speech,
          [int(x) for x in args.fit_speech_classifier.split(",")], 16, None,
          cache=args.cache, name=name, arrays=arrays, net=args.speech_net)
      print(f"{name}: speech classifier for --mics {json.dumps(fitted[name]['weights'])}",
            flush=True)
      speech = {"speech_gate": None, "speech_fill": None,
                "speech_classifier": fitted[name]["weights"]}
      variants[f"{name} + --mics, classifier refitted"] = (name, {
          **bundled.any_array_settings(), **speech})
    if args.fit_overlap_classifier:
      over = acc.fit_overlap_classifier(
          model, {**acc.diarize_lib.decoding_settings(model, {}, mics), **speech},
          args.fit_speech, [int(x) for x in args.fit_overlap_classifier.split(",")], 16, None,
          cache=args.cache, name=name, arrays=arrays)
      print(f"{name}: overlap classifier for --mics {json.dumps(over['weights'])}", flush=True)
      overlap_fitted[name] = over
      variants[f"{name} + --mics, overlap classifier"] = (name, {
          **bundled.any_array_settings(), **speech, "overlap_classifier": over["weights"],
          **({} if args.overlap_threshold is None
             else {"overlap_classifier_threshold": args.overlap_threshold})})
  names = [shift.FIT] if args.fit else args.sets.split(",")
  seed = args.seed if args.seed is not None else (FIT_SEED if args.fit else SUITE_SEED)
  meetings_count = FIT_MEETINGS if args.fit and args.meetings == 16 else args.meetings
  sets = {}
  for name in names:
    folder, meetings = shift.cached(args.speech, name, num_meetings=meetings_count, seed=seed,
                                    geometry=default.circular_array() if mics is None
                                    else mics)
    sets[name] = score_set(folder, meetings, models, variants,
                           baselines=not args.no_baselines, cache=args.cache, mics=mics)
    for system, e in sets[name].items():
      est, true = e["est"], e.get("true")
      print(f"{name:8s} {system:40s} est {100 * est['der']:5.1f} % (miss "
            f"{100 * est['missed']:.1f} FA {100 * est['false_alarm']:.1f} conf "
            f"{100 * est['confusion']:.1f}, count {est['count_right']}/{est['meetings']})"
            + (f" true {100 * true['der']:5.1f} %" if true else ""), flush=True)
  results = dict(sets=sets, mean=means(sets))
  if args.ami:
    mono = {n: m for n, m in models.items() if m.num_channels == 1}
    results["ami_excerpts"] = acc.ami_excerpts(mono, args.ami,
                                               args.ami_only and args.ami_only.split(","))
    acc.print_rows(results["ami_excerpts"], prefix="AMI ")
  print(markdown(results))
  tag = ("fit" if args.fit else "shift") + (f"-{pathlib.Path(args.mics).stem}" if args.mics
                                            else "")
  out = pathlib.Path(args.out or pathlib.Path(__file__).parent / "results" /
                     f"{tag}-{datetime.date.today().isoformat()}.json")
  old = json.loads(out.read_text()) if out.exists() else {}
  for name, per in sets.items():
    old.setdefault("sets", {}).setdefault(name, {}).update(per)
  old["mean"] = means(old["sets"])
  if args.ami:
    old.setdefault("ami_excerpts", {}).update(results["ami_excerpts"])
  if fitted:
    old.setdefault("speech_classifier_fit", {}).update(
        {n: dict(f, arrays=args.fit_mics.split(",")) for n, f in fitted.items()})
  if overlap_fitted:
    old.setdefault("overlap_classifier_fit", {}).update(
        {n: dict(f, arrays=args.fit_mics.split(",")) for n, f in overlap_fitted.items()})
  old.update(machine=common.machine(), seed=seed, speech=args.speech,
             generator_version=shift.VERSION,
             models={n: str(s.partition("=")[2]) for n, s in zip(models, specs)},
             variants={r: [m, o] for r, (m, o) in variants.items()})
  out.write_text(json.dumps(old, indent=1))
  print(f"-> {out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
