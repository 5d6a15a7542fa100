"""python -m jaxdiar.voice: the ported speaker encoder on audio files.

The command's body: `jaxdiar/cli/voice.py`; the library: `jaxdiar.models.voice`."""

import sys

from jaxdiar.cli.voice import main

__all__ = ["main"]

if __name__ == "__main__":
  sys.exit(main())
