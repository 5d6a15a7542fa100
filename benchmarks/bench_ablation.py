"""Training ablations at equal compute, each scored at meeting level (SPEC section 9).

  python -m benchmarks.bench_ablation --root /tmp/ablate --config configs/array8.py \
      --init jaxdiar/models/array8.jaxdiar --seconds 300 \
      --variant base= --variant osd2=--config.loss.osd_weight=2.0 \
      --variant pauses=--config.data.augment_pause_prob=0.3

One pool of simulated training meetings (`jaxdiar.online simulate`, made once under ROOT/pool)
feeds every variant; each variant (`name=override[ override...]`, one change each) trains
for the same wall-clock budget (`jaxdiar.online train --seconds`, from `--init` when given:
fine-tuning, else from scratch), is exported, and runs through the real `diarize` pipeline
on the dev meetings of `bench_accuracy` (voices training never hears). Two decodings per
run: the config's own (the bundled pipeline's settings) and the model alone (no spatial
resegmentation, split or merge: what the network's outputs give). `--init` with no variant
name is scored as the row `init (no training)`. Runs resume when re-launched (a finished
variant is skipped; a killed one continues from its last save). Results: a markdown table
on stdout and ROOT/ablation.json (each row: overrides, steps, wall time, DER est. / true
count and their parts), copied to `--out`.
"""

import argparse
import json
import pathlib
import shlex
import subprocess
import sys
import time

from benchmarks import bench_accuracy
from benchmarks import common
from configs import default
from jaxdiar import diarize as diarize_lib
from jaxdiar.data import devmeetings
from jaxdiar.io import rttm

TRAIN_SPEECH = "../shared/data/speech/libri-train-clean-100"
MODEL_ONLY = dict(resegment=None, split_cos=None, merge_overlap=None)


def ensure_pool(root: pathlib.Path, config: str, speech: str, seconds: float) -> pathlib.Path:
  """ROOT/pool, simulated once for `seconds` (a marker file says it is complete)."""
  pool = root / "pool"
  if not (pool / "DONE").exists():
    pool.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "jaxdiar.online", "simulate", "--config", config,
                    "--speech", speech, "--out", str(pool), "--seconds", str(seconds)],
                   check=True)
    (pool / "DONE").write_text(f"{len(list(pool.glob('*.npz')))} meetings\n")
  return pool


def train(root, name, config, overrides, pool, speech, seconds, init) -> dict:
  out = root / "runs" / name
  done = out / "summary.json"
  if not done.exists():
    cmd = [sys.executable, "-m", "jaxdiar.online", "train", "--config", config, "--pool",
           str(pool), "--out", str(out), "--speech", speech, "--seconds", str(seconds),
           *shlex.split(overrides)]
    if init:
      cmd += ["--init", init]
    t0 = time.time()
    with open(root / f"{name}.log", "a") as log:
      subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT)
    progress = json.loads((out / "progress.json").read_text())
    done.write_text(json.dumps(dict(progress=progress, wall_seconds=round(time.time() - t0, 1))))
  return json.loads(done.read_text())


def score(model, folder, meetings, refs, options: dict) -> dict:
  inferences = bench_accuracy.infer_all(model, folder, meetings,
                                        step_seconds=options.get("step_seconds"),
                                        **diarize_lib.needs(options))
  out = {}
  for label, extra in (("pipeline", {}), ("model only", MODEL_ONLY)):
    opts = {**options, **extra}
    out[label] = {count: bench_accuracy.summarise(refs, bench_accuracy.decode_all(
        inferences, refs, opts, true_count=count == "true")) for count in ("est", "true")}
  return out


def markdown(rows: dict) -> str:
  pct = lambda x: f"{100 * x:.1f} %"
  lines = ["| run | change | steps | wall time | dev DER est. (pipeline) | true #spk | "
           "miss / FA / conf | model only est. / true |", "| --- |" + " --- |" * 7]
  for name, r in rows.items():
    p, m = r["scores"]["pipeline"], r["scores"]["model only"]
    e = p["est"]
    lines.append(f"| {name} | `{r['overrides'] or '-'}` | {r.get('steps', 0)} | "
                 f"{r.get('wall_seconds', 0):.0f} s | {pct(e['der'])} | {pct(p['true']['der'])} "
                 f"| {100 * e['missed']:.1f} / {100 * e['false_alarm']:.1f} / "
                 f"{100 * e['confusion']:.1f} | {pct(m['est']['der'])} / "
                 f"{pct(m['true']['der'])} |")
  return "\n".join(lines)


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--root", required=True, help="pool, runs and results (outside the repo)")
  p.add_argument("--config", required=True)
  p.add_argument("--variant", action="append", default=[], help="NAME=OVERRIDES")
  p.add_argument("--seconds", type=float, required=True, help="training budget per run")
  p.add_argument("--init", default=None, help="start every run from this model (fine-tune)")
  p.add_argument("--pool-seconds", type=float, default=120.0,
                 help="simulation time for the shared training pool")
  p.add_argument("--speech", default=TRAIN_SPEECH)
  p.add_argument("--dev-speech", default=bench_accuracy.DEV_SPEECH)
  p.add_argument("--meetings", type=int, default=16)
  p.add_argument("--seed", type=int, default=2026)
  p.add_argument("--out", default=None, help="results JSON (default: "
                 "benchmarks/results/ablation-<date>.json)")
  args = p.parse_args(argv)
  for folder in (args.speech, args.dev_speech):
    if not pathlib.Path(folder).is_dir():
      print(f"{folder}: speech folder not found", file=sys.stderr)
      return 2
  variants = []
  for spec in args.variant:
    name, sep, overrides = spec.partition("=")
    if not sep or not name:
      p.error(f"--variant {spec!r}: expected NAME=OVERRIDES")
    variants.append((name, overrides))
  root = pathlib.Path(args.root)
  root.mkdir(parents=True, exist_ok=True)
  results = root / "ablation.json"
  rows = json.loads(results.read_text()) if results.exists() else {}
  folder, meetings = devmeetings.cached(args.dev_speech, num_meetings=args.meetings,
                                        seed=args.seed, geometry=default.circular_array())
  refs = {m["uri"]: rttm.read_rttm(folder / f"{m['uri']}.rttm")[m["uri"]] for m in meetings}
  todo = ([("init (no training)", None)] if args.init else []) + variants
  pool = None
  for name, overrides in todo:
    if name in rows:
      continue
    row = dict(overrides=overrides)
    if overrides is None:                     # the starting model as it is
      model = bench_accuracy.load_model(args.init)
      row.update(overrides="", steps=0, wall_seconds=0.0)
    else:
      pool = pool or ensure_pool(root, args.config, args.speech, args.pool_seconds)
      summary = train(root, name, args.config, overrides, pool, args.speech, args.seconds,
                      args.init)
      model = bench_accuracy.load_model(str(root / "runs" / name))
      row.update(steps=summary["progress"].get("steps"), wall_seconds=summary["wall_seconds"])
    options = {**diarize_lib.DEFAULT_DECODE, **model.meta["inference"]}
    t0 = time.time()
    row["scores"] = score(model, folder, meetings, refs, options)
    row["score_seconds"] = round(time.time() - t0, 1)
    rows[name] = row
    results.write_text(json.dumps(rows, indent=1))
    e = row["scores"]["pipeline"]["est"]
    print(f"{name}: dev DER {100 * e['der']:.1f} % (model only "
          f"{100 * row['scores']['model only']['est']['der']:.1f} %), "
          f"{row['steps']} steps, {row['wall_seconds']:.0f} s", flush=True)
  print(markdown(rows))
  common.write("ablation", dict(machine=common.machine(), config=args.config, init=args.init,
                                seconds=args.seconds, dev=dict(speech=args.dev_speech,
                                                               seed=args.seed,
                                                               meetings=args.meetings),
                                rows=rows), args.out)
  return 0


if __name__ == "__main__":
  sys.exit(main())
