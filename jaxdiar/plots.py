"""python -m jaxdiar.plots: training curves of a workdir.

The command's body: `jaxdiar/cli/plots.py`; the library: `jaxdiar.io.plots`."""

import sys

from jaxdiar.cli.plots import main

__all__ = ["main"]

if __name__ == "__main__":
  sys.exit(main())
