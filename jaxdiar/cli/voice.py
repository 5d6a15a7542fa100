"""python -m jaxdiar.voice embed AUDIO... | port pretrained.pt --out NPZ

The ported speaker encoder on the command line (the encoder: `jaxdiar.models.voice`)."""

import sys

from jaxdiar.cli import ported
from jaxdiar.models import voice


def main(argv=None) -> int:
  p, _ = ported.parser(voice.__doc__, source="pretrained",
                       source_help="convert resemblyzer's pretrained.pt (needs torch)",
                       default_out=voice.weights_path(), run="embed",
                       run_help="print the d-vector of each audio file (first channel)")
  args = p.parse_args(argv)
  if args.command == "port":
    return ported.port_command(voice.port, args.pretrained, args.out, "resemblyzer's pretrained.pt")
  read = ported.read_inputs(args.files, voice.SAMPLE_RATE, voice.load)
  if read is None:
    return 2
  waves, params = read
  for f, v in zip(args.files, voice.embed(waves, params)):
    print(f, " ".join(f"{x:.5f}" for x in v))
  return 0


if __name__ == "__main__":
  sys.exit(main())
