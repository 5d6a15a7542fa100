"""Training on meetings simulated while it trains, for a wall-clock budget (`pool`: the
meetings folder; `device`: the pool on the accelerator; `checkpoints`; `train`; the command:
`jaxdiar/cli/online.py`).

  python -m jaxdiar.online simulate --speech DIR --out POOL --workers 12 --seconds 600
  python -m jaxdiar.online import --config configs/mono.py --corpus CORPUS --out POOL
  python -m jaxdiar.online train --config configs/array8.py --pool POOL --out DIR --seconds 480

For machines with many cores and an accelerator (and no TFDS/grain): simulator processes
write finished meetings into a pool folder (each file written under a temporary name, then
renamed); the trainer keeps every meeting of the pool on the device in a fixed-capacity ring
and draws random windows from it inside the jitted step, with the augmentation (gain, white
noise, cyclic rotation of a circular array; a random channel for a one-channel model) on the
device too. The learning rate follows the config's one-cycle schedule over the *time* budget,
so runs of different speed are compared at equal compute. Every `--save-every` seconds the
variables are saved as `variables-NNN.npz` chunks (each under 15 MB; `load_variables` reads
them back for `jaxdiar.export`) and the whole train state as `state-NNN.bin` with
`progress.json`: the same command on the same `--out` resumes a killed run where its last
save left it, with the rest of its budget. `import` adds annotated real recordings (RTTM +
audio) to a pool folder beside simulated meetings (`import_corpus`).

The pure step functions are those of `jaxdiar.steps`; the orbax/grain loop of
`jaxdiar.trainer` is the one to use for corpora on disk and for multi-host runs.
"""


from jaxdiar.online import checkpoints
from jaxdiar.online.checkpoints import load_state
from jaxdiar.online.checkpoints import load_variables
from jaxdiar.online.checkpoints import save_state
from jaxdiar.online.checkpoints import save_variables
from jaxdiar.online.device import DevicePool
from jaxdiar.online.device import check_capacity
from jaxdiar.online.device import device_memory_bytes
from jaxdiar.online.device import window_batch
from jaxdiar.online.pool import import_corpus
from jaxdiar.online.pool import save_meeting
from jaxdiar.online.pool import simulate_pool
from jaxdiar.online.train import load_config
from jaxdiar.online.train import make_optimizer
from jaxdiar.online.train import pool_geometry
from jaxdiar.online.train import time_learning_rate
from jaxdiar.online.train import train

__all__ = [
    "DevicePool", "check_capacity", "checkpoints", "device_memory_bytes", "import_corpus",
    "load_config", "load_state", "load_variables", "make_optimizer", "pool_geometry",
    "save_meeting", "save_state", "save_variables", "simulate_pool", "time_learning_rate",
    "train", "window_batch",
]
