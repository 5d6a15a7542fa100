"""Every checkpoint format, in one place.

- `jaxdiar.train` (the orbax/grain loop, `jaxdiar.training.trainer`): orbax checkpoints
  `checkpoints/<step>/{state,data}` under the workdir (any `epath` path, `gs://` included):
  `manager`, `restore_train` / `save_train` (the state and the data iterator's position),
  `restore_state` / `load_checkpoint` (without building the model: export, tests);
- `jaxdiar.online` (the time-budget trainer, `jaxdiar.training.budget`): the variables as
  `variables-NNN.npz` chunks (each under `CHUNK_BYTES`, read back by `load_variables` for
  `jaxdiar.export` and `--init`) and the whole train state as `state-NNN.bin` with
  `progress.json` (what a killed run resumes from).
"""

import json
import pathlib

import flax
import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from jaxdiar.io import atomic

CHUNK_BYTES = 15_000_000


def checkpoint_dir(workdir) -> epath.Path:
  """Where a workdir keeps its orbax checkpoints (local or gs://)."""
  path = epath.Path(workdir) / "checkpoints"
  return path if "://" in str(workdir) else path.absolute()    # orbax wants absolute paths


def manager(workdir, tcfg) -> ocp.CheckpointManager:
  """Orbax manager of a workdir: the last `keep_checkpoints` and the best dev one."""
  policy = ocp.checkpoint_managers.AnyPreservationPolicy([
      ocp.checkpoint_managers.LatestN(n=tcfg.keep_checkpoints),
      # The best dev checkpoint besides them; those saved without a dev metric are not kept
      # by this rule (orbax's default keeps them all: the bound would not hold).
      ocp.checkpoint_managers.BestN(get_metric_fn=lambda m: m["dev_der"], reverse=True, n=1,
                                    keep_checkpoints_without_metrics=False),
  ])
  options = ocp.CheckpointManagerOptions(preservation_policy=policy,
                                         best_fn=lambda m: m["dev_der"], best_mode="min",
                                         enable_async_checkpointing=True)
  return ocp.CheckpointManager(checkpoint_dir(workdir), options=options)


def restore_state(workdir, step: int | None = None) -> tuple[dict, int]:
  """(the saved train state as nested dicts of arrays on this process's first device, its
  step) of a workdir's latest or given checkpoint, without building the model; whatever the
  topology it was saved from (8 devices, 2 hosts, ...)."""
  manager = ocp.CheckpointManager(checkpoint_dir(workdir),
                                  item_handlers=dict(state=ocp.StandardCheckpointHandler()))
  try:
    step = manager.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"{workdir}: no checkpoint")
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    target = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=device),
                          manager.item_metadata(step)["state"])
    restored = manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(target)))
  finally:
    manager.close()
  return restored["state"], step

def restore_train(manager, step: int, target) -> tuple:
  """(train state, the data iterator's state as JSON) saved by `save_train` at `step`;
  `target` gives the shapes, dtypes and shardings."""
  restored = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(target), data=ocp.args.JsonRestore()))
  return restored["state"], restored["data"]


def save_train(manager, step: int, state, data_state, dev_der: float | None = None) -> None:
  """The train state and the data iterator's position (JSON) at `step`; `dev_der` is what the
  best-checkpoint rule reads (checkpoints without it are kept by the latest-N rule only)."""
  manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                             data=ocp.args.JsonSave(data_state)),
               metrics={"dev_der": dev_der} if dev_der is not None else None)


def load_checkpoint(workdir, step: int | None = None):
  """(config, variables) of a training workdir: its latest, or the given, checkpoint."""
  config_file = epath.Path(workdir) / "config.json"
  if not config_file.exists():
    raise FileNotFoundError(f"{workdir}: no config.json (not a jaxdiar training workdir)")
  config = ml_collections.ConfigDict(json.loads(config_file.read_text()))
  state, step = restore_state(workdir, step)
  return config, {"params": state["params"], "batch_stats": state["batch_stats"]}, step


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
