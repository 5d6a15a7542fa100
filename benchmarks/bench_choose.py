"""The rule that chooses (README, docs/shift-suite.md): candidates scored on the randomised fit
meetings (`jaxdiar.data.shift` 'fit', 32, seed 3100) and the dev meetings (training simulator,
16, seed 2026); the lowest mean of the two DERs (estimated count, collar 0, overlap scored) wins.
With --long the long fit meetings ('fit-long', 16 of 10-20 min, seed 3600) are a third set of
the mean: what chooses the settings that scale with the recording's length.
The shift suite is read afterwards, once, for the winner alone (`bench_shift`).

  python -m benchmarks.bench_choose --model array8=jaxdiar/models/array8.jaxdiar \
      [--model ft=DIR/ft.jaxdiar] [--variant NAME=MODEL:'{"cluster_threshold": 0.35}' ...] \
      [--long] [--cache DIR] [--out FILE]

Each model is scored with its own decoding (the row named as the model) and with each of its
variants (settings over its own). Window outputs are cached per model under --cache (decoding
variants then cost no inference). Results: benchmarks/results/choose-<date>.json.
"""

import argparse
import datetime
import json
import pathlib
import sys

from benchmarks import bench_accuracy as acc
from benchmarks import bench_shift
from benchmarks import common
from configs import default
from jaxdiar import cli
from jaxdiar.data import devmeetings
from jaxdiar.data import shift

SPEECH = acc.DEV_SPEECH
FIT = dict(set=shift.FIT, meetings=bench_shift.FIT_MEETINGS, seed=bench_shift.FIT_SEED)
DEV = dict(meetings=16, seed=2026)
FIT_LONG = dict(set=shift.FIT_LONG, meetings=16, seed=3600)
PARTS = ("der", "missed", "false_alarm", "confusion", "count_right", "meetings")


def meeting_sets(speech: str = SPEECH, long: bool = False) -> dict:
  """{"fit": (folder, meetings), "dev": (folder, meetings)} and with `long` "fit-long",
  simulated on first use."""
  geometry = default.circular_array()
  sets = {"fit": shift.cached(speech, FIT["set"], num_meetings=FIT["meetings"],
                              seed=FIT["seed"], geometry=geometry),
          "dev": devmeetings.cached(speech, num_meetings=DEV["meetings"], seed=DEV["seed"],
                                    geometry=geometry)}
  if long:
    sets["fit-long"] = shift.cached(speech, FIT_LONG["set"], num_meetings=FIT_LONG["meetings"],
                                    seed=FIT_LONG["seed"], geometry=geometry)
  return sets


def choose(scores: dict) -> dict:
  """`scores` {row: {set: summary}} (the sets "fit", "dev" and maybe "fit-long") -> {"mean":
  {row: mean DER over the sets}, "chosen": the row of the lowest mean}."""
  if not scores:
    raise ValueError("nothing to choose from")
  mean = {row: sum(x["der"] for x in s.values()) / len(s) for row, s in scores.items()}
  return dict(mean=mean, chosen=min(mean, key=mean.get))


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--model", action="append", default=[], help="NAME=PATH (.jaxdiar, a "
                 "jaxdiar.online folder or a bundled name); default: array8=array8")
  p.add_argument("--variant", action="append", default=[], metavar="NAME=MODEL:JSON",
                 help="settings over MODEL's own, scored as the row NAME")
  p.add_argument("--speech", default=SPEECH)
  p.add_argument("--long", action="store_true", help="the long fit meetings too, in the mean")
  p.add_argument("--cache", default=None, help="keep the models' window outputs here")
  p.add_argument("--out", default=None)
  args = p.parse_args(argv)
  cli.configure_logging()
  if not pathlib.Path(args.speech).is_dir():
    print(f"{args.speech}: speech folder not found", file=sys.stderr)
    return 2
  specs = args.model or ["array8=array8"]
  models = bench_shift.parse_models(specs)
  variants = bench_shift.parse_variants(args.variant)
  for row, (model, _) in variants.items():
    if model not in models:
      p.error(f"--variant {row}: no --model named {model!r}")
  scores = {}
  for set_name, (folder, meetings) in meeting_sets(args.speech, args.long).items():
    rows = bench_shift.score_set(folder, meetings, models, variants, baselines=False,
                                 cache=args.cache, counts=("est",))
    for row, summary in rows.items():
      scores.setdefault(row, {})[set_name] = {k: summary["est"][k] for k in PARTS}
  found = choose(scores)
  for row, s in sorted(scores.items(), key=lambda x: found["mean"][x[0]]):
    print(f"{row:32s} " + " ".join(f"{name} {100 * x['der']:6.2f} ({x['count_right']}/"
                                   f"{x['meetings']})" for name, x in s.items())
          + f" mean {100 * found['mean'][row]:6.2f}"
          + ("  <- chosen" if row == found["chosen"] else ""))
  out = pathlib.Path(args.out or pathlib.Path(__file__).parent / "results" /
                     f"choose-{datetime.date.today().isoformat()}.json")
  out.write_text(json.dumps(dict(
      rule="lowest mean of the fit and dev DERs (and fit-long's with --long; estimated count, "
           "collar 0, overlap scored)",
      fit=FIT, dev=DEV, fit_long=FIT_LONG if args.long else None, speech=args.speech,
      machine=common.machine(),
      models={n: s.partition("=")[2] for n, s in zip(models, specs)},
      variants={row: [model, opts] for row, (model, opts) in variants.items()},
      scores=scores, **found), indent=1))
  print(f"-> {out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
