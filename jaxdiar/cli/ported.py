"""What the commands of the ported networks (`python -m jaxdiar.vad`, `python -m jaxdiar.voice`)
share: their parser, the port subcommand and the reading of their inputs."""

import argparse
import sys

import numpy as np

from jaxdiar.data import audio as audio_lib
from jaxdiar.models import ported


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
  except ported.NOT_THE_CHECKPOINT as e:
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
