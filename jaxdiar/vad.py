"""python -m jaxdiar.vad: the ported speech detector on audio files.

The command's body: `jaxdiar/cli/vad.py`; the library: `jaxdiar.models.vad`."""

import sys

from jaxdiar.cli.vad import main

__all__ = ["main"]

if __name__ == "__main__":
  sys.exit(main())
