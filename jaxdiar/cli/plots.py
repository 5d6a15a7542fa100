"""python -m jaxdiar.plots --workdir DIR --out curves.png

The training curves of a workdir as a PNG (the figures themselves: `jaxdiar.io.plots`)."""

import argparse
import sys

from jaxdiar.io import plots


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog="python -m jaxdiar.plots",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--workdir", required=True)
  p.add_argument("--out", required=True)
  args = p.parse_args(argv)
  plots.training_curves(args.workdir, args.out)
  return 0


if __name__ == "__main__":
  sys.exit(main())
