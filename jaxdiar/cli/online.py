"""python -m jaxdiar.online simulate|import|train: the command of `jaxdiar.training.budget`
(whose docstring is its description)."""

import argparse
import json
import os
import sys

from jaxdiar import cli
from jaxdiar.data import simulate as sim_lib
from jaxdiar.training import budget
from jaxdiar.training.budget import load_config
from jaxdiar.training.budget import pool_geometry
from jaxdiar.training.budget import train
from jaxdiar.training.pool import import_corpus
from jaxdiar.training.pool import simulate_pool


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog="python -m jaxdiar.online", description=budget.__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  sub = p.add_subparsers(dest="command", required=True)
  s = sub.add_parser("simulate", help="fill a pool folder with simulated meetings")
  s.add_argument("--config", required=True, help="config file (its data.sim, array, length)")
  s.add_argument("--speech", required=True, help="speech folder(s), comma-separated")
  s.add_argument("--out", required=True)
  s.add_argument("--workers", type=int, default=os.cpu_count())
  s.add_argument("--seconds", type=float, required=True)
  s.add_argument("--seed", type=int, default=1000)
  m = sub.add_parser("import", help="add annotated recordings (RTTM + audio) to a pool folder")
  m.add_argument("--config", required=True, help="config file (its pool array, length)")
  m.add_argument("--corpus", required=True, help="folder of RTTM, audio and optional UEM")
  m.add_argument("--out", required=True)
  m.add_argument("--uris", default=None, help="comma-separated recordings (default: all)")
  m.add_argument("--copies", type=int, default=1, help="write each piece this many times")
  t = sub.add_parser("train", help="train on a pool folder for a time budget")
  t.add_argument("--config", required=True)
  t.add_argument("--pool", required=True)
  t.add_argument("--out", required=True)
  t.add_argument("--seconds", type=float, required=True)
  t.add_argument("--speech", required=True, help="training speech (speaker ids of the classifier)")
  t.add_argument("--capacity", type=int, default=1024)
  t.add_argument("--save-every", type=float, default=60.0)
  t.add_argument("--max-steps", type=int, default=None)
  t.add_argument("--log-every", type=int, default=100, help="steps per metrics.jsonl row")
  t.add_argument("--init", default=None,
                 help="start from the variables of this train --out folder or .jaxdiar "
                      "file, e.g. jaxdiar/models/array8.jaxdiar (fine-tuning)")
  args, overrides = p.parse_known_args(argv)
  cli.configure_logging()
  config = load_config(args.config, overrides)
  if args.command == "simulate":
    n = simulate_pool(args.speech, args.out, workers=args.workers, seconds=args.seconds,
                      seed=args.seed, sim=config.data.sim,
                      geometry=pool_geometry(config), duration=config.data.meeting_seconds,
                      sample_rate=config.features.sample_rate, hop=config.features.hop)
    print(f"simulated {n} meetings into {args.out}")
    return 0
  if args.command == "import":
    n = import_corpus(args.corpus, args.out, channels=len(pool_geometry(config)),
                      meeting_seconds=config.data.meeting_seconds,
                      max_speakers=config.model.num_speakers,
                      uris=args.uris.split(",") if args.uris else None, copies=args.copies,
                      sample_rate=config.features.sample_rate, hop=config.features.hop)
    print(f"imported {n} meetings into {args.out}")
    return 0
  speakers = sim_lib.speech_source(args.speech).speakers
  summary = train(config, args.pool, args.out, seconds=args.seconds, capacity=args.capacity,
                  save_every=args.save_every, speakers=speakers, max_steps=args.max_steps,
                  init=args.init, log_every=args.log_every)
  print(json.dumps(summary))
  return 0


if __name__ == "__main__":
  sys.exit(main())
