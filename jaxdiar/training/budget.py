"""Training on meetings simulated while it trains, for a wall-clock budget: the pure steps of
`jaxdiar.training.steps` on windows drawn from the device pool (`jaxdiar.training.pool`: the
meetings folder; `jaxdiar.training.device`: the pool on the accelerator; the formats:
`jaxdiar.training.checkpoints`; the command: `jaxdiar/cli/online.py`).

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

The pure step functions are those of `jaxdiar.training.steps`; the orbax/grain loop of
`jaxdiar.training.trainer` is the one to use for corpora on disk and for multi-host runs.
"""

import functools
import json
import logging
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxdiar.core import features as features_lib
from jaxdiar.core import model as model_lib
from jaxdiar.io import atomic
from jaxdiar.io import configfile
from jaxdiar.models import bundled
from jaxdiar.models import runtime
from jaxdiar.training import build
from jaxdiar.training import steps
from jaxdiar.training.checkpoints import load_state
from jaxdiar.training.checkpoints import load_variables
from jaxdiar.training.checkpoints import save_state
from jaxdiar.training.checkpoints import save_variables
from jaxdiar.training.device import DevicePool
from jaxdiar.training.device import check_capacity
from jaxdiar.training.device import window_batch

logger = logging.getLogger(__name__)


def make_optimizer(tcfg) -> optax.GradientTransformation:
  """`steps.make_optimizer` with the base learning rate as an injected hyper-parameter,
  set each step from the fraction of the time budget spent."""
  return optax.inject_hyperparams(lambda learning_rate: steps.make_optimizer(
      tcfg, learning_rate))(learning_rate=tcfg.learning_rate)


def time_learning_rate(tcfg, fraction: float) -> float:
  """One-cycle learning rate at `fraction` of the budget (the trainer's schedule over time)."""
  schedule = optax.cosine_onecycle_schedule(10_000, tcfg.learning_rate, pct_start=tcfg.pct_start)
  return float(schedule(int(min(max(fraction, 0.0), 1.0) * 10_000)))



def train(config, pool_dir, out, *, seconds: float, capacity: int = 1024, min_meetings: int = 8,
          save_every: float = 60.0, log_every: int = 100, speakers: list[str] | None = None,
          meeting_seconds: float | None = None, max_steps: int | None = None,
          init=None) -> dict:
  """Train `config` for `seconds` of wall clock on the meetings appearing in `pool_dir`;
  with `init` (a folder saved by `train`, or an exported .jaxdiar file such as a bundled
  model), start from its variables (fine-tuning)."""
  start_time = time.time()
  out = pathlib.Path(out)
  out.mkdir(parents=True, exist_ok=True)
  speakers = sorted(speakers or [])
  config = build.resolve(config, num_speaker_classes=len(speakers))
  fcfg, tcfg, d = config.features, config.train, config.data
  model = model_lib.from_config(config.model, dtype=tcfg.compute_dtype)
  tx = make_optimizer(tcfg)
  sr, hop = fcfg.sample_rate, fcfg.hop
  window = int(round(d.window_seconds * sr))
  meeting_samples = int(round((meeting_seconds or d.meeting_seconds) * sr))
  model_channels = len(fcfg.mic_positions)
  pool_channels = len(pool_geometry(config))
  check_capacity(capacity, pool_channels, meeting_samples)
  pool = DevicePool(pool_dir, capacity, pool_channels, meeting_samples,
                    1 + meeting_samples // hop,
                    config.model.num_speakers, {s: i for i, s in enumerate(speakers)},
                    geometry=pool_geometry(config))
  atomic.write_text(out / "config.json", config.to_json(indent=1))
  state = steps.init_state(jax.random.key(tcfg.seed), model=model, tx=tx,
                           num_features=features_lib.feature_dim(fcfg))
  if init is not None:
    if bundled.resolve(init).is_file():          # a .jaxdiar file or a bundled model's name
      variables = runtime.load(init).variables
    else:
      _, variables = load_variables(init)
    try:
      like = functools.partial(jax.tree_util.tree_map_with_path, _like)
      state = state.replace(params=like(state.params, variables["params"]),
                            batch_stats=like(state.batch_stats, variables.get("batch_stats", {})))
    except (KeyError, ValueError) as e:
      raise SystemExit(f"jaxdiar.online: {init} does not fit {out}'s config: {e}") from None
  state, progress = load_state(out, state)      # a killed run continues where it stopped
  rotate = bool(d.augment_rotate) and features_lib.is_uniform_circular(fcfg.mic_positions)
  any_array = features_lib.kind(fcfg.kind).takes_positions
  batcher = functools.partial(window_batch, window_samples=window, hop=hop,
                              model_channels=model_channels, gain_db=d.augment_gain_db,
                              noise_snr_db=d.augment_noise_snr_db, rotate=rotate,
                              silence_db=d.get("augment_silence_db", 0.0),
                              pause_prob=d.get("augment_pause_prob", 0.0), sample_rate=sr,
                              band_prob=d.get("augment_band_prob", 0.0),
                              subset_mono_prob=(d.get("subset_mono_prob", 0.1) if any_array
                                                else None))

  @functools.partial(jax.jit, donate_argnums=0)
  def step(state, pool_audio, pool_activity, pool_ids, pool_mics, index, frame_start, rng, lr):
    k_batch, k_step = jax.random.split(jax.random.fold_in(rng, state.step))
    batch = batcher(pool_audio, pool_activity, pool_ids, index, frame_start, k_batch,
                    pool_mics=pool_mics)
    hyper = dict(state.opt_state.hyperparams, learning_rate=lr)
    state = state.replace(opt_state=state.opt_state._replace(hyperparams=hyper))
    return steps.train_step(state, batch, k_step, model=model, tx=tx, config=config)

  while pool.filled < min_meetings:
    pool.refresh()
    if pool.filled < min_meetings:
      if time.time() - start_time > seconds:
        raise RuntimeError(f"{pool_dir}: fewer than {min_meetings} meetings after {seconds} s")
      time.sleep(1.0)
  rng = jax.random.key(tcfg.seed + 1)
  max_start = (meeting_samples - window) // hop
  train_start = time.time()
  if progress:                # resumed: the same budget, less what was already spent
    budget, spent, step_count = progress["budget"], progress["seconds"], progress["steps"]
    logger.info(f"jaxdiar.online: resuming {out} at step {step_count} ({spent:.0f} of "
          f"{budget:.0f} s spent)")
  else:
    budget, spent, step_count = seconds - (train_start - start_time), 0.0, 0
    if budget < 0.25 * seconds:
      raise RuntimeError(f"{pool_dir}: the pool took {train_start - start_time:.0f} s of the "
                         f"{seconds:.0f} s budget to reach {min_meetings} meetings")
  host_rng = np.random.default_rng([tcfg.seed, step_count])
  log = open(out / "metrics.jsonl", "a")
  last_save, last_refresh, sums, summed = train_start, train_start, {}, 0
  elapsed = lambda: spent + time.time() - train_start

  def checkpoint():
    save_variables(out, {"params": state.params, "batch_stats": state.batch_stats})
    save_state(out, state, dict(budget=budget, seconds=elapsed(), steps=step_count))
  logger.info(f"jaxdiar.online: training {out} for {budget:.0f} s on {jax.devices()[0]} "
              f"({tcfg.compute_dtype}), {pool.filled} meetings in the pool")
  while True:
    now = time.time()
    fraction = elapsed() / budget
    if fraction >= 1.0 or (max_steps is not None and step_count >= max_steps):
      break
    if now - last_refresh > 5.0:
      pool.refresh()
      last_refresh = now
    index = host_rng.integers(0, pool.filled, tcfg.batch_size).astype(np.int32)
    frame_start = host_rng.integers(0, max_start + 1, tcfg.batch_size).astype(np.int32)
    lr = time_learning_rate(tcfg, fraction)
    state, metrics = step(state, pool.audio, pool.activity, pool.ids, pool.mics, index,
                          frame_start, rng, jnp.float32(lr))
    step_count += 1
    summed += 1                 # fewer than log_every in a resumed sitting's first row
    for k, v in metrics.items():
      sums[k] = sums.get(k, 0.0) + v
    if step_count % log_every == 0:
      row = {k: float(v) / summed for k, v in sums.items()}
      row.update(step=step_count, seconds=round(elapsed(), 1), lr=lr,
                 pool=pool.loaded)
      if not row.get("finite", 1.0) > 0.99:
        logger.warning(f"jaxdiar.online: non-finite steps at {step_count}")
      log.write(json.dumps(row) + "\n")
      log.flush()
      logger.info(f"step {step_count} loss {row['loss/total']:.4f} vad {row['loss/vad']:.4f} "
                  f"lr {lr:.2e} pool {pool.loaded} {row['seconds']} s")
      sums, summed = {}, 0
    if time.time() - last_save > save_every:
      checkpoint()
      last_save = time.time()
  checkpoint()
  summary = dict(steps=step_count, seconds=round(elapsed(), 1),
                 meetings=pool.loaded, device=str(jax.devices()[0]), dtype=tcfg.compute_dtype,
                 batch_size=tcfg.batch_size)
  atomic.write_text(out / "summary.json", json.dumps(summary, indent=1))
  log.close()
  return summary


def _like(path, template, value):
  """`value` as the variable `template` (at `path`) of the model being trained. A model whose
  input is wider than the one it starts from (e.g. `srp` features from an `lps` model: more
  rows of the input norm and the first TCN block) gets the old rows as they were and zero weights for the new
  inputs, so that it starts as the old model; BatchNorm scales and variances of the new
  inputs start at 1."""
  value = jnp.asarray(value, template.dtype)
  if value.shape != template.shape:
    grown = [a for a, (v, t) in enumerate(zip(value.shape, template.shape)) if v != t]
    first_layers = any(getattr(k, "key", None) in ("input_norm", "tcn_0") for k in path)
    if (not first_layers or value.ndim != template.ndim or len(grown) != 1
        or value.shape[grown[0]] > template.shape[grown[0]]):
      raise ValueError(f"shape {value.shape}, expected {template.shape}")
    axis = grown[0]
    size = template.shape[axis] - value.shape[axis]
    fill = 1.0 if getattr(path[-1], "key", None) in ("scale", "var") else 0.0
    shape = value.shape[:axis] + (size,) + value.shape[axis + 1:]
    value = jnp.concatenate([value, jnp.full(shape, fill, value.dtype)], axis=axis)
  return value


def pool_geometry(config):
  """The array the pool is simulated with: the config's, or data.pool_geometry for a
  one-channel model trained on array recordings."""
  return config.data.get("pool_geometry", None) or config.features.mic_positions



def load_config(path, overrides=()):
  """A config file by path with `--config.a.b=value` overrides (`jaxdiar.io.configfile`)."""
  try:
    return configfile.load(path, overrides, prog="jaxdiar.online")
  except configfile.ConfigError as e:
    raise SystemExit(f"jaxdiar.online: {e}") from None
