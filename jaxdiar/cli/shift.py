"""python -m jaxdiar.data.shift [set|pool] --speech DIR --out DIR ...

Writes one shift-suite set, or training meetings for a pool (the generator:
`jaxdiar.data.shift`)."""

import argparse
import sys

from jaxdiar import cli
from jaxdiar.data import shift


def main(argv=None) -> int:
  from configs import default
  cli.configure_logging()
  p = argparse.ArgumentParser(description=shift.__doc__.split("\n\n")[0])
  p.add_argument("command", nargs="?", choices=["set", "pool"], default="set",
                 help="set: one set's meetings (default); pool: training meetings drawn with "
                      "randomised settings for jaxdiar.online train --pool")
  p.add_argument("--speech", required=True, help="folder <speaker>/<utterance>.flac")
  p.add_argument("--set", choices=sorted(shift.SETS) + list(shift.FITS))
  p.add_argument("--out", required=True)
  p.add_argument("--meetings", type=int, default=16)
  p.add_argument("--seed", type=int, default=4100)
  p.add_argument("--seconds", type=float, default=600.0, help="pool: simulate this long")
  p.add_argument("--start", type=int, default=0, help="pool: first index (one per writer)")
  p.add_argument("--step", type=int, default=1, help="pool: index step (the writers' count)")
  p.add_argument("--arrays", choices=["array8", "random"], default="array8",
                 help="pool: the 8-microphone 10 cm circle, or a random small array of 8 "
                      "microphones per meeting (shift.random_array; for the any-array model)")
  a = p.parse_args(argv)
  geometry = default.circular_array(8, 0.10)
  if a.command == "pool":
    n = shift.pool(a.speech, a.out, seconds=a.seconds, seed=a.seed, geometry=geometry,
                   start=a.start, step=a.step, random_arrays=a.arrays == "random")
    print(f"wrote {n} training meetings into {a.out}", file=sys.stderr)
    return 0
  if a.set is None:
    p.error("--set is required")
  shift.make(a.speech, a.set, a.out, num_meetings=a.meetings, seed=a.seed, geometry=geometry)
  return 0


if __name__ == "__main__":
  sys.exit(main())
