"""python -m jaxdiar.simulate: simulated meetings.

The command's body: `jaxdiar/cli/simulate.py`; the library: `jaxdiar.data.simulate`."""

import sys

from jaxdiar.cli.simulate import main

__all__ = ["main"]

if __name__ == "__main__":
  sys.exit(main())
