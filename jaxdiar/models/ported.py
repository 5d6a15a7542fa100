"""What the ported pretrained networks (`jaxdiar.models.voice`, `jaxdiar.models.vad`) share:
where their shipped weights lie, how they load and how the original weights are converted
(their commands' shared part: `jaxdiar.cli.ported`)."""

import functools
import importlib.resources
import pathlib
import pickle

import numpy as np


def package_weights(name: str) -> pathlib.Path:
  """Where a shipped weight file lies (jaxdiar/models/NAME)."""
  return pathlib.Path(str(importlib.resources.files("jaxdiar") / "models" / name))


@functools.lru_cache(maxsize=4)
def load_npz(path: str, what: str, module: str) -> dict:
  """The float32 arrays of a ported network's npz (`what`, made as `module` says)."""
  path = pathlib.Path(path)
  if not path.exists():
    raise FileNotFoundError(f"{path}: {what} weights are missing (the package is incomplete; "
                            f"see {module} for how they are made)")
  with np.load(path) as z:
    return {k: z[k].astype(np.float32) for k in z.files}


# What reading a file that is not the expected checkpoint raises.
NOT_THE_CHECKPOINT = (OSError, KeyError, RuntimeError, ValueError, EOFError,
                      pickle.UnpicklingError)


def save_float16(out, params: dict) -> dict:
  """The npz the modules read: every array as float16 (half the size; checked in the tests
  against the original network's outputs)."""
  np.savez_compressed(out, **{k: np.asarray(v).astype(np.float16) for k, v in params.items()})
  return params
