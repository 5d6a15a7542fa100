"""Thin command-line entry points over the library.

The library reports progress and notices through `logging` (one logger per module, under
"jaxdiar"); a program shows them with `configure_logging`.
"""

import logging
import sys


class _Stderr(logging.StreamHandler):
  """A handler writing to whatever sys.stderr is when a message comes (tests swap it)."""

  def emit(self, record):
    self.stream = sys.stderr
    super().emit(record)


def configure_logging(verbosity: int = 0) -> None:
  """Show the library's messages on stderr as plain lines: notices and progress (INFO) by
  default, DEBUG with `verbosity` > 0, warnings only below 0 (`--quiet`). Idempotent."""
  logger = logging.getLogger("jaxdiar")
  logger.setLevel(logging.DEBUG if verbosity > 0 else
                  logging.INFO if verbosity == 0 else logging.WARNING)
  if not any(getattr(h, "_jaxdiar", False) for h in logger.handlers):
    handler = _Stderr()
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler._jaxdiar = True
    logger.addHandler(handler)
  logger.propagate = False
