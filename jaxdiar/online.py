"""python -m jaxdiar.online simulate|import|train: time-budget training (`jaxdiar.training.budget`,
whose docstring is the description; the command: `jaxdiar/cli/online.py`). The names existing
code reads from `jaxdiar.online` are kept here."""

import sys

from jaxdiar.cli.online import main

from jaxdiar.training import checkpoints
from jaxdiar.training.budget import load_config
from jaxdiar.training.budget import make_optimizer
from jaxdiar.training.budget import pool_geometry
from jaxdiar.training.budget import time_learning_rate
from jaxdiar.training.budget import train
from jaxdiar.training.checkpoints import load_state
from jaxdiar.training.checkpoints import load_variables
from jaxdiar.training.checkpoints import save_state
from jaxdiar.training.checkpoints import save_variables
from jaxdiar.training.device import DevicePool
from jaxdiar.training.device import check_capacity
from jaxdiar.training.device import device_memory_bytes
from jaxdiar.training.device import window_batch
from jaxdiar.training.pool import import_corpus
from jaxdiar.training.pool import save_meeting
from jaxdiar.training.pool import simulate_pool

__all__ = [
    "DevicePool", "check_capacity", "checkpoints", "device_memory_bytes", "import_corpus",
    "load_config", "load_state", "load_variables", "main", "make_optimizer", "pool_geometry",
    "save_meeting", "save_state", "save_variables", "simulate_pool", "time_learning_rate",
    "train", "window_batch",
]

if __name__ == "__main__":
  sys.exit(main())
