"""python -m jaxdiar.train --config configs/<name>.py --workdir DIR: training on a corpus on disk,
one process per host (the loop: `jaxdiar.training.trainer`; the command: `jaxdiar/cli/train.py`)."""

from jaxdiar.cli.train import main
from jaxdiar.cli.train import run

__all__ = ["main", "run"]

if __name__ == "__main__":
  run()
