r"""python -m jaxdiar.train --config configs/<name>.py --workdir DIR [--config.a.b=value ...]

Multi-host: `jax.distributed.initialize()` runs when more than one process is expected
(automatic on SLURM and TPU pods), or with explicit --coordinator_address, --num_processes
and --process_id.
"""

import os
import sys

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from jaxdiar import cli
from jaxdiar.training import trainer

_CONFIG = config_flags.DEFINE_config_file("config", "configs/default.py", "Training config.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints, logs and metrics go here.",
                               required=True)
_COORDINATOR = flags.DEFINE_string("coordinator_address", None,
                                   "host:port of process 0 (multi-host without SLURM/TPU).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in the job.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index.")


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)   # orbax logs every checkpoint file at INFO
  cli.configure_logging()                  # the trainer's progress lines
  if _COORDINATOR.value or _NUM_PROCESSES.value:
    jax.distributed.initialize(coordinator_address=_COORDINATOR.value,
                               num_processes=_NUM_PROCESSES.value,
                               process_id=_PROCESS_ID.value)
  elif any(k in os.environ for k in ("SLURM_NTASKS", "TPU_WORKER_ID")):
    jax.distributed.initialize()
  try:
    metrics = trainer.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  except trainer.NonFiniteError as e:
    print(f"jaxdiar: stopped: {e}", file=sys.stderr)
    return 3
  finally:
    if jax.process_count() > 1:
      jax.distributed.shutdown()
  if "dev/der" in metrics:
    print(f"final dev DER {metrics['dev/der']:.4f}")
  return 0


def _parse_or_exit(argv) -> list[str]:
  """absl's flag parsing, with a bad --config or override as one line (absl would print a
  traceback for a config key that does not exist, or a missing config file)."""
  try:
    rest = flags.FLAGS(argv)
    _CONFIG.value.keys()          # config_flags defers a config file's load error to here
  except flags.Error as e:
    sys.exit(f"error: {e}")
  except AttributeError as e:     # config_flags' answer to a key the config does not have
    sys.exit(f"error: the config has no field {str(e).strip(chr(34) + chr(39))}")
  except OSError as e:
    sys.exit(f"error: {' '.join(str(e).split())}")
  return rest


def run() -> None:
  """The command: absl parses the flags, then `main`."""
  app.run(lambda argv: sys.exit(main(argv)), flags_parser=_parse_or_exit)


if __name__ == "__main__":
  run()
