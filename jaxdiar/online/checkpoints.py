"""`jaxdiar.online`'s checkpoints: the variables as `variables-NNN.npz` chunks (each under
`CHUNK_BYTES`, read back by `load_variables` for `jaxdiar.export` and `--init`) and the whole
train state as `state-NNN.bin` with `progress.json` (what a killed run resumes from)."""

import json
import pathlib

import flax
import ml_collections
import numpy as np

from jaxdiar import atomic

CHUNK_BYTES = 15_000_000


def save_variables(out, variables) -> list[pathlib.Path]:
  """Variables as `variables-NNN.npz` chunks of at most ~15 MB (flattened '/' keys)."""
  out = pathlib.Path(out)
  flat = {"/".join(k): np.asarray(v) for k, v in
          flax.traverse_util.flatten_dict(flax.core.unfreeze(variables)).items()}
  chunks, current, size = [], {}, 0
  for key in sorted(flat):
    if current and size + flat[key].nbytes > CHUNK_BYTES:
      chunks.append(current)
      current, size = {}, 0
    current[key] = flat[key]
    size += flat[key].nbytes
  chunks.append(current)
  paths = []
  for old in out.glob("variables-*.npz"):
    old.unlink()
  for i, chunk in enumerate(chunks):
    path = out / f"variables-{i:03d}.npz"
    with atomic.atomic_path(path) as tmp, open(tmp, "wb") as f:
      np.savez(f, **chunk)
    paths.append(path)
  return paths


def load_variables(folder):
  """(config, variables) saved by `train`."""
  folder = pathlib.Path(folder)
  files = sorted(folder.glob("variables-*.npz"))
  if not files or not (folder / "config.json").exists():
    raise FileNotFoundError(f"{folder}: no config.json and variables-*.npz (jaxdiar.online)")
  flat = {}
  for path in files:
    with np.load(path) as z:
      flat.update({tuple(k.split("/")): z[k] for k in z.files})
  config = ml_collections.ConfigDict(json.loads((folder / "config.json").read_text()))
  return config, flax.traverse_util.unflatten_dict(flat)


def save_state(out, state, progress: dict) -> None:
  """The whole train state (flax msgpack, in <15 MB chunks) and `progress.json` (training
  seconds spent, steps, budget, the chunk names): what `train` resumes from. The chunks of a
  save get new names and `progress.json` is replaced last, so a run killed mid-save resumes
  from the previous complete one."""
  out = pathlib.Path(out)
  blob = flax.serialization.to_bytes(state)
  names = []
  for i in range(0, max(len(blob), 1), CHUNK_BYTES):
    names.append(f"state-{progress['steps']:09d}-{i // CHUNK_BYTES:03d}.bin")
    atomic.write_bytes(out / names[-1], blob[i:i + CHUNK_BYTES])
  atomic.write_text(out / "progress.json", json.dumps(dict(progress, files=names)))
  for old in out.glob("state-*.bin"):
    if old.name not in names:
      old.unlink()


def load_state(out, template):
  """(state, progress) saved by `save_state`, or (template, None) when there is none."""
  path = pathlib.Path(out) / "progress.json"
  if not path.exists():
    return template, None
  progress = json.loads(path.read_text())
  blob = b"".join((path.parent / name).read_bytes() for name in progress["files"])
  return flax.serialization.from_bytes(template, blob), progress
