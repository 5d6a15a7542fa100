"""python -m jaxdiar.export (--workdir DIR [--step N] | --variables DIR) --out model.jaxdiar
   python -m jaxdiar.export --model in.jaxdiar --set KEY=JSON [--set ...] --out out.jaxdiar
   python -m jaxdiar.export --model in.jaxdiar --config configs/NAME.py --out out.jaxdiar
   python -m jaxdiar.export --variables DIR --blend base.jaxdiar:ALPHA --out out.jaxdiar
"""

import argparse
import sys

import ml_collections

from jaxdiar.core import model as model_lib
from jaxdiar.decoding import settings as settings_lib
from jaxdiar.io import atomic
from jaxdiar.io import configfile
from jaxdiar.models import export
from jaxdiar.models import runtime
from jaxdiar.training import checkpoints


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog="python -m jaxdiar.export",
                              description=__doc__ + "\n" + export.__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  src = p.add_mutually_exclusive_group(required=True)
  src.add_argument("--workdir", help="a jaxdiar.train workdir (orbax checkpoints)")
  src.add_argument("--variables", help="a jaxdiar.online output folder (variables-*.npz)")
  src.add_argument("--model", help="an exported .jaxdiar file whose settings --set changes")
  p.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                 help="with --model: a decoding setting, e.g. resegment_threshold=0.7")
  p.add_argument("--config", default=None,
                 help="with --model: export its weights and settings again with this "
                      "version's forward (e.g. the frame embeddings that reassign_classifier "
                      "needs); CONFIG: the config the model was trained with")
  p.add_argument("--out", required=True)
  p.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
  p.add_argument("--blend", default=None, metavar="BASE:ALPHA",
                 help="with --workdir/--variables: export (1 - ALPHA) * BASE's weights + ALPHA * "
                      "these, with BASE's decoding settings (BASE: the .jaxdiar file the "
                      "fine-tune started from)")
  p.add_argument("--float16", action="store_true",
                 help="store the weights in half precision (half the file; computation stays "
                      "float32): with --model, a copy of that file")
  args = p.parse_args(argv)
  if args.model and not (args.set or args.float16 or args.config):
    p.error("--model needs at least one --set (or --float16, or --config)")
  if args.config and not args.model:
    p.error("--config goes with --model")
  if args.config and args.set:
    p.error("--config exports the file's settings as they are: --set them after")
  if args.set and not args.model:
    p.error("--set goes with --model")
  if args.blend and args.model:
    p.error("--blend goes with --workdir or --variables")
  try:
    atomic.check_output(args.out)
    if args.config:
      config = configfile.load(args.config, prog="jaxdiar.export")
      export.again(args.model, config, args.out, float16=args.float16)
      print(f"{args.out}: {args.model} exported again with {args.config}'s network")
      return 0
    if args.model:
      settings = settings_lib.parse_items(args.set)
      runtime.load(args.model)              # a readable model file of this format, or why not
      export.set_inference(args.model, args.out, settings, float16=args.float16)
      print(f"{args.out}: {args.model} with "
            + ", ".join(sorted(settings) + (["float16 weights"] if args.float16 else []))
            + (" set" if settings else ""))
      return 0
    if args.variables:
      config, variables = checkpoints.load_variables(args.variables)
      step = "final"
    else:
      config, variables, step = checkpoints.load_checkpoint(args.workdir, args.step)
    if args.blend:
      base_path, sep, alpha = args.blend.rpartition(":")
      if not sep:
        raise ValueError(f"--blend {args.blend}: expected BASE:ALPHA")
      base = runtime.load(base_path)
      variables = export.blend(base.variables, variables, float(alpha))
      config.inference = ml_collections.ConfigDict(base.meta["inference"])
      step = f"{step}, blended {float(alpha):g} with {base_path}"
  except (FileNotFoundError, atomic.OutputError, ValueError, runtime.ModelFileError,
          configfile.ConfigError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  export.export(config, variables, args.out, float16=args.float16)
  kinds = "forward + streaming step" if model_lib.streamable(config.model) else "forward"
  print(f"exported step {step} of {args.workdir or args.variables} to {args.out} ({kinds})")
  return 0


if __name__ == "__main__":
  sys.exit(main())
