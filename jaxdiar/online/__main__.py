"""python -m jaxdiar.online (the command: jaxdiar/cli/online.py)."""

import sys

from jaxdiar.cli.online import main

sys.exit(main())
