"""python -m jaxdiar.enroll --model M --speaker NAME CLIP.wav [CLIP ...] [--speaker ...] --out bank.npz
"""

import argparse
import sys

import numpy as np

from jaxdiar.core import geometry
from jaxdiar.data import audio as audio_lib
from jaxdiar.decoding import enroll
from jaxdiar.decoding import windows as windows_lib
from jaxdiar.io import atomic
from jaxdiar.models import bundled
from jaxdiar.models import runtime


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog="python -m jaxdiar.enroll",
                              description=__doc__ + "\n" + enroll.__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--model", required=True,
                 help=f"a .jaxdiar file or a bundled model name ({', '.join(bundled.MODELS)})")
  p.add_argument("--speaker", nargs="+", action="append", required=True,
                 metavar=("NAME", "CLIP"), help="a name and one or more clips of that person")
  p.add_argument("--out", required=True, help="the bank to write (.npz)")
  p.add_argument("--threshold", type=float, default=None,
                 help="cosine similarity a speaker needs to take a name (stored in the bank; "
                      f"default {enroll.DEFAULT_THRESHOLD['one channel']} for a one-channel model, "
                      f"{enroll.DEFAULT_THRESHOLD['array']} for an array model)")
  p.add_argument("--mics", default=None, metavar="FILE|PRESET",
                 help="the clips' microphone positions (jaxdiar.core.geometry): checked as "
                      "diarize --mics checks them (one per channel; an array model's own)")
  args = p.parse_args(argv)
  clips = {}
  for name, *paths in args.speaker:
    if not paths:
      p.error(f"--speaker {name}: give at least one clip")
    if name in clips:
      p.error(f"--speaker {name} given twice")
    clips[name] = paths
  try:
    atomic.check_output(args.out)
    mics = None if args.mics is None else geometry.load(args.mics)
    model = runtime.load(args.model)
    bank = enroll.enroll(model, clips, mics=mics)
  except (geometry.GeometryError, runtime.ModelFileError, windows_lib.InputError,
          audio_lib.AudioError, FileNotFoundError, atomic.OutputError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  if args.threshold is not None:
    bank["threshold"] = np.array(args.threshold)
  try:
    enroll.save_bank(args.out, bank)
  except OSError as e:
    print(f"error: {args.out}: cannot write ({e.strerror})", file=sys.stderr)
    return 2
  for name, s in zip(bank["names"], bank["seconds"]):
    print(f"enrolled {name}: {s:.1f} s of speech")
  print(f"wrote {len(bank['names'])} speaker(s) to {args.out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
