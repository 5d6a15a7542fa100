"""python -m jaxdiar.evaluate: scores an RTTM against a reference (pyannote.metrics).

The command's body: `jaxdiar/cli/evaluate.py`; the library: `jaxdiar.core.scoring`."""

import sys

from jaxdiar.cli.evaluate import main

__all__ = ["main"]

if __name__ == "__main__":
  sys.exit(main())
