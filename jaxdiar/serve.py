"""python -m jaxdiar.serve: the HTTP service.

The command's body: `jaxdiar/cli/serve.py`; the library: `jaxdiar.service.app`."""

import sys

from jaxdiar.cli.serve import main

__all__ = ["main"]

if __name__ == "__main__":
  sys.exit(main())
