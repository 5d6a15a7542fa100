"""python -m jaxdiar.export: writes a .jaxdiar model file from a training run.

The command's body: `jaxdiar/cli/export.py`; the library: `jaxdiar.models.export`."""

import sys

from jaxdiar.cli.export import main

__all__ = ["main"]

if __name__ == "__main__":
  sys.exit(main())
