"""Config ablations: run each variant in its own workdir and collect the results in a table.

  python launch/sweep.py --config configs/smoke.py --root workdirs/sweep \
      --variant base= --variant no_attention=--config.model.use_attention=False \
      --variant lps=--config.features.kind=lps

Each variant is `name=override[ override...]`; runs are sequential (one host) and resume
if re-launched (finished variants are skipped). The table (markdown and JSON) reports the
final dev metrics of each run's metrics.jsonl.
"""

import argparse
import json
import pathlib
import shlex
import subprocess
import sys


def final_metrics(workdir: pathlib.Path) -> dict:
  path = workdir / "metrics.jsonl"
  if not path.exists():
    return {}
  out = {}
  for line in path.read_text().splitlines():
    row = json.loads(line)
    out.update({k: v for k, v in row.items() if k.startswith("dev/")}, step=row["step"])
  return out


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--config", required=True)
  p.add_argument("--root", required=True)
  p.add_argument("--variant", action="append", required=True, help="name=overrides")
  p.add_argument("--dry-run", action="store_true", help="print the commands only")
  args = p.parse_args(argv)
  root = pathlib.Path(args.root)
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
