"""Config ablations: run each variant in its own workdir and collect the results in a table.

  python launch/sweep.py --config configs/smoke.py --root workdirs/sweep \
      --variant base= --variant no_attention=--config.model.use_attention=False \
      --variant lps=--config.features.kind=lps

Each variant is `name=override[ override...]`; runs are sequential (one host) and resume
if re-launched (finished variants are skipped). The table (markdown and JSON) reports the
final dev metrics of each run's metrics.jsonl.

Search mode (Optuna TPE, continuous hyper-parameters, pruning on dev DER):

  python launch/sweep.py --config configs/default.py --root workdirs/search --optuna 20 \
      --param train.learning_rate=1e-4:3e-3:log --param loss.osd_weight=0.2:2

Each trial trains in its own workdir (`trialNNN`) in a subprocess; every dev evaluation it
writes is reported to the trial, and a trial the median rule prunes is stopped. The study
lives in ROOT/optuna.db (sqlite), so a re-launched search continues it.
"""

import argparse
import json
import pathlib
import shlex
import subprocess
import sys
import time


def final_metrics(workdir: pathlib.Path) -> dict:
  path = workdir / "metrics.jsonl"
  if not path.exists():
    return {}
  out = {}
  for line in path.read_text().splitlines():
    row = json.loads(line)
    out.update({k: v for k, v in row.items() if k.startswith("dev/")}, step=row["step"])
  return out


def dev_rows(workdir: pathlib.Path) -> list[dict]:
  """The rows of metrics.jsonl that carry a dev DER, in order."""
  path = workdir / "metrics.jsonl"
  if not path.exists():
    return []
  rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
  return [r for r in rows if "dev/der" in r]


def parse_param(spec: str):
  """'a.b=lo:hi[:log]' -> (key, lo, hi, log)."""
  key, _, bounds = spec.partition("=")
  parts = bounds.split(":")
  if not key or len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
    raise SystemExit(f"--param {spec!r}: expected KEY=LOW:HIGH or KEY=LOW:HIGH:log")
  return key, float(parts[0]), float(parts[1]), len(parts) == 3


def search(config: str, root: pathlib.Path, trials: int, params: list[str], extra: list[str],
           seed: int = 0, poll: float = 2.0) -> dict:
  """Optuna TPE over `params`, minimising the final dev DER; median pruning on each
  dev evaluation. Returns {"best": params, "best_der": value, "trials": [...]}."""
  import optuna
  space = [parse_param(p) for p in params]
  root.mkdir(parents=True, exist_ok=True)
  study = optuna.create_study(
      study_name="sweep", storage=f"sqlite:///{root.absolute() / 'optuna.db'}",
      load_if_exists=True, direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed),
      pruner=optuna.pruners.MedianPruner(n_startup_trials=2))

  def objective(trial):
    values = {key: trial.suggest_float(key, lo, hi, log=log) for key, lo, hi, log in space}
    workdir = root / f"trial{trial.number:03d}"
    cmd = [sys.executable, "-m", "jaxdiar.train", "--config", config, "--workdir",
           str(workdir), *extra, *[f"--config.{k}={v!r}" for k, v in values.items()]]
    proc = subprocess.Popen(cmd)
    reported = 0

    def report():
      nonlocal reported
      for row in dev_rows(workdir)[reported:]:
        trial.report(row["dev/der"], row["step"])
        reported += 1
        if trial.should_prune():
          return True
      return False

    while proc.poll() is None:
      time.sleep(poll)
      if report():
        proc.kill()
        proc.wait()
        raise optuna.TrialPruned()
    if proc.returncode != 0:
      raise RuntimeError(f"trial {trial.number}: {shlex.join(cmd)} exited {proc.returncode}")
    if report():
      raise optuna.TrialPruned()
    rows = dev_rows(workdir)
    if not rows:
      raise RuntimeError(f"trial {trial.number}: no dev evaluation in {workdir}")
    return rows[-1]["dev/der"]

  study.optimize(objective, n_trials=trials)
  done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
  result = dict(best=study.best_params if done else None,
                best_der=study.best_value if done else None,
                trials=[dict(number=t.number, state=t.state.name, params=t.params,
                             value=t.value) for t in study.trials])
  (root / "search.json").write_text(json.dumps(result, indent=1))
  return result


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--config", required=True)
  p.add_argument("--root", required=True)
  p.add_argument("--variant", action="append", default=[], help="name=overrides")
  p.add_argument("--dry-run", action="store_true", help="print the commands only")
  p.add_argument("--optuna", type=int, default=0, metavar="TRIALS",
                 help="search mode: this many Optuna trials over the --param ranges")
  p.add_argument("--param", action="append", default=[],
                 help="KEY=LOW:HIGH[:log], a config field searched in --optuna mode")
  p.add_argument("--set", action="append", default=[],
                 help="a fixed override for every trial of --optuna mode (--config.a.b=v)")
  args = p.parse_args(argv)
  root = pathlib.Path(args.root)
  if args.optuna:
    if not args.param:
      raise SystemExit("--optuna needs at least one --param KEY=LOW:HIGH[:log]")
    result = search(args.config, root, args.optuna, args.param, args.set)
    print("| trial | state | " + " | ".join(k for k, *_ in map(parse_param, args.param)) +
          " | dev DER |\n|" + " --- |" * (len(args.param) + 3))
    for t in result["trials"]:
      print(f"| {t['number']} | {t['state']} | " +
            " | ".join(f"{t['params'].get(k, float('nan')):.4g}"
                       for k, *_ in map(parse_param, args.param)) +
            f" | {t['value'] if t['value'] is None else format(t['value'], '.4f')} |")
    print(f"best: {result['best']} dev DER {result['best_der']}")
    return 0
  if not args.variant:
    raise SystemExit("give --variant NAME=OVERRIDES (or --optuna N with --param)")
  results = {}
  for variant in args.variant:
    name, _, overrides = variant.partition("=")
    workdir = root / name
    cmd = [sys.executable, "-m", "jaxdiar.train", "--config", args.config,
           "--workdir", str(workdir), *shlex.split(overrides)]
    if args.dry_run:
      print(shlex.join(cmd))
      continue
    if not (workdir / "done").exists():
      subprocess.run(cmd, check=True)
      (workdir / "done").write_text("ok\n")
    results[name] = final_metrics(workdir)
  if args.dry_run:
    return 0
  keys = ["step", "dev/der", "dev/missed", "dev/false_alarm", "dev/confusion", "dev/osd_recall"]
  print("| variant | " + " | ".join(keys) + " |\n|" + " --- |" * (len(keys) + 1))
  for name, m in results.items():
    print(f"| {name} | " + " | ".join(f"{m.get(k, float('nan')):.4g}" for k in keys) + " |")
  (root / "sweep.json").write_text(json.dumps(results, indent=1))
  return 0


if __name__ == "__main__":
  sys.exit(main())
