"""What the ported pretrained networks (`jaxdiar.voice`, `jaxdiar.vad`) share: where their
shipped weights lie and how they load, how the original weights are converted, and their
command lines' parser and input reading."""

import argparse
import functools
import importlib.resources
import pathlib
import pickle
import sys

import numpy as np

from jaxdiar.data import audio as audio_lib


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


def parser(doc: str, *, source: str, source_help: str, default_out, run: str, run_help: str):
  """(the argument parser, its `run` subcommand's parser): `port SOURCE [--out]` and
  `run FILE...` (the caller adds that one's options)."""
  p = argparse.ArgumentParser(description=doc,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  sub = p.add_subparsers(dest="command", required=True)
  q = sub.add_parser("port", help=source_help)
  q.add_argument(source)
  q.add_argument("--out", default=str(default_out))
  r = sub.add_parser(run, help=run_help)
  r.add_argument("files", nargs="+")
  return p, r


def port_command(port, source, out, what: str) -> int:
  """Run `port(source, out)` (which writes the npz): exit status 0, or 2 with a one-line error
  when torch is missing or `source` is not `what`."""
  try:
    params = port(source, out)
  except ImportError:
    print("error: porting reads the PyTorch file: pip install torch", file=sys.stderr)
    return 2
  except NOT_THE_CHECKPOINT as e:
    print(f"error: {source}: not {what} ({e})", file=sys.stderr)
    return 2
  print(f"{out}: {sum(np.size(v) for v in params.values())} weights", file=sys.stderr)
  return 0


def read_inputs(files, sample_rate: int, load):
  """(first channel of each file at `sample_rate`, load()), or None after a one-line error
  on stderr (a missing or unreadable file, missing weights)."""
  try:
    return [audio_lib.read(f, sample_rate)[0] for f in files], load()
  except (audio_lib.AudioError, FileNotFoundError) as e:
    print(f"error: {e}", file=sys.stderr)
    return None
