"""python -m jaxdiar.vad detect AUDIO... | port silero_vad.jit --out NPZ

The ported speech detector on the command line (the detector: `jaxdiar.models.vad`)."""

import sys

from jaxdiar.cli import ported
from jaxdiar.decoding.frames import runs
from jaxdiar.models import vad


def main(argv=None) -> int:
  p, e = ported.parser(vad.__doc__, source="jit_file",
                       source_help="convert silero-vad's silero_vad.jit (needs torch)",
                       default_out=vad.weights_path(), run="detect",
                       run_help="print the speech regions of each audio file (first channel) "
                                "as 'file start end' lines in seconds")
  e.add_argument("--threshold", type=float, default=0.5)
  args = p.parse_args(argv)
  if args.command == "port":
    return ported.port_command(vad.port, args.jit_file, args.out, "silero-vad's silero_vad.jit")
  read = ported.read_inputs(args.files, vad.SAMPLE_RATE, vad.load)
  if read is None:
    return 2
  waves, params = read
  for f, wav in zip(args.files, waves):
    for a, b in runs(vad.speech_probability(wav, params) >= args.threshold):
      print(f"{f} {a * vad.FRAME_SECONDS:.3f} {b * vad.FRAME_SECONDS:.3f}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
