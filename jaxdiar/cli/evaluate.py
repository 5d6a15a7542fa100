"""python -m jaxdiar.evaluate --ref REF.rttm --hyp HYP.rttm [--uem UEM] [--collar C]
"""

import argparse
import json
import sys

from jaxdiar.core import scoring
from jaxdiar.io import atomic
from jaxdiar.io import rttm


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog="python -m jaxdiar.evaluate",
                              description=__doc__ + "\n" + scoring.__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--ref", required=True)
  p.add_argument("--hyp", required=True)
  p.add_argument("--uem", default=None)
  p.add_argument("--collar", type=float, default=0.0)
  p.add_argument("--skip-overlap", action="store_true")
  p.add_argument("--json", default=None, help="write the scores as JSON here")
  p.add_argument("--plot-confusion", default=None, help="PNG of the speaker confusion")
  args = p.parse_args(argv)
  try:
    for out in (args.json, args.plot_confusion):
      if out:
        atomic.check_output(out)
    ref, hyp = rttm.read_rttm(args.ref), rttm.read_rttm(args.hyp)
    uem = rttm.read_uem(args.uem) if args.uem else None
  except (rttm.FormatError, FileNotFoundError, IsADirectoryError, atomic.OutputError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  result = scoring.score(ref, hyp, uem, args.collar, args.skip_overlap)
  print(scoring.format_table(result))
  if args.json:
    atomic.write_text(args.json, json.dumps(result, indent=1, ensure_ascii=False))
  if args.plot_confusion:
    from jaxdiar.io import plots   # deferred: matplotlib only when a plot is asked for
    plots.confusion_figure(ref, hyp, uem, args.plot_confusion)
  return 0


if __name__ == "__main__":
  sys.exit(main())
