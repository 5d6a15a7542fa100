"""python -m jaxdiar.enroll: a bank of enrolled speakers' voiceprints.

The command's body: `jaxdiar/cli/enroll.py`; the library: `jaxdiar.decoding.enroll`."""

import sys

from jaxdiar.cli.enroll import main

__all__ = ["main"]

if __name__ == "__main__":
  sys.exit(main())
