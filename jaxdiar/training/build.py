"""The one setup seam: `build(config)` for training, export, tests and benchmarks.

  built = build.build(config, num_speaker_classes=200)
  state = built.init(jax.random.key(0))
  state, metrics = built.train_step(state, built.shard(batch), rng)

`build` resolves the config once (a locked copy: the number of speaker classes read from the
data, the compute dtype chosen for the backend) and returns it with the model, the optimizer,
the device mesh and its shardings, and the jitted, sharded init / train / eval steps. The
checkpoints (every format) are `jaxdiar.training.checkpoints`'.
"""

import dataclasses
import functools
from typing import Any, Callable

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
import ml_collections
import numpy as np
import optax

from jaxdiar.core import features as features_lib
from jaxdiar.core import model as model_lib
from jaxdiar.training import steps


def compute_dtype(tcfg, backend: str | None = None) -> str:
  """`train.compute_dtype`: "auto" is bfloat16 on GPU/TPU and float32 on CPU; parameters and
  optimizer state are float32 in every case."""
  dtype = tcfg.compute_dtype
  if dtype == "auto":
    dtype = "float32" if (backend or jax.default_backend()) == "cpu" else "bfloat16"
  if dtype not in ("float32", "bfloat16"):
    raise ValueError(f"train.compute_dtype={dtype!r}: use auto, float32 or bfloat16")
  return dtype


def parse_mesh(spec) -> tuple[str, int]:
  """`train.mesh` -> (data axis name, size): "data:-1" (-1 = every device), "batch:8"; the
  list form [("data", -1)] of older configs is read too."""
  if isinstance(spec, str):
    name, sep, size = spec.partition(":")
    try:
      if not name or not sep:
        raise ValueError
      return name, int(size)
    except ValueError:
      raise ValueError(f"train.mesh={spec!r}: expected AXIS:SIZE, e.g. data:-1") from None
  (name, size), = spec
  return str(name), int(size)


def make_mesh(spec, devices=None) -> Mesh:
  """A one-axis data-parallel mesh over `devices` (default: every device of every process)."""
  name, size = parse_mesh(spec)
  devices = np.array(jax.devices() if devices is None else devices)
  if size not in (-1, len(devices)):
    raise ValueError(f"train.mesh asks for {size} devices, {len(devices)} are visible")
  return Mesh(devices, (name,))


def resolve(config, *, num_speaker_classes: int | None = None) -> ml_collections.ConfigDict:
  """A locked copy of `config` with what it leaves to the data and the backend filled in."""
  config = config.copy_and_resolve_references()
  with config.unlocked():
    if num_speaker_classes is not None:
      config.model.num_speaker_classes = max(int(num_speaker_classes), 1)
    config.train.compute_dtype = compute_dtype(config.train)
  config.lock()
  return config


@dataclasses.dataclass(frozen=True)
class Built:
  config: ml_collections.ConfigDict      # resolved and locked
  model: model_lib.DiarizationTCN
  tx: optax.GradientTransformation
  mesh: Mesh
  replicated: NamedSharding
  batch_sharding: NamedSharding          # rows over the mesh's data axis
  init: Callable[[jax.Array], steps.TrainState]
  train_step: Callable[..., tuple[steps.TrainState, dict]]
  eval_step: Callable[..., dict]
  num_features: int

  @property
  def data_axis(self) -> str:
    return self.mesh.axis_names[0]

  def shard(self, batch: Any):
    """A batch held whole by this process -> arrays sharded over the data axis."""
    return jax.device_put(batch, self.batch_sharding)


def build(config, *, num_speaker_classes: int | None = None, devices=None, tx=None,
          donate: bool = True) -> Built:
  """Everything a training loop needs, from one config (see the module docstring).

  `tx` replaces the config's optimizer (e.g. one with injected hyper-parameters); `donate`
  lets the train step reuse the state's buffers (the caller must not read the old state).
  """
  config = resolve(config, num_speaker_classes=num_speaker_classes)
  tcfg = config.train
  mesh = make_mesh(tcfg.mesh, devices)
  if tcfg.batch_size % mesh.size or config.eval.batch_size % mesh.size:
    raise ValueError(f"train.batch_size ({tcfg.batch_size}) and eval.batch_size "
                     f"({config.eval.batch_size}) must be multiples of the {mesh.size} devices")
  replicated = NamedSharding(mesh, P())
  batch_sharding = NamedSharding(mesh, P(mesh.axis_names[0]))
  model = model_lib.from_config(config.model, dtype=tcfg.compute_dtype)
  tx = tx or steps.make_optimizer(tcfg)
  num_features = features_lib.feature_dim(config.features)
  init = jax.jit(functools.partial(steps.init_state, model=model, tx=tx,
                                   num_features=num_features), out_shardings=replicated)
  train_step = jax.jit(functools.partial(steps.train_step, model=model, tx=tx, config=config),
                       in_shardings=(replicated, batch_sharding, replicated),
                       out_shardings=(replicated, replicated),
                       donate_argnums=0 if donate else ())
  eval_step = jax.jit(functools.partial(steps.eval_step, model=model, config=config),
                      in_shardings=(replicated, batch_sharding), out_shardings=replicated)
  return Built(config, model, tx, mesh, replicated, batch_sharding, init, train_step,
               eval_step, num_features)
