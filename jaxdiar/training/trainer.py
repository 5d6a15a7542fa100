"""Training: the loop around the pure steps of `jaxdiar.training.steps`, with data, evaluation,
checkpoints and logging.

`train_and_evaluate(config, workdir)` runs the same code on 1 CPU, 8 forced CPU devices,
GPUs, several hosts or a TPU pod: one Mesh over every device of every process, the batch
sharded on its data axis (`train.mesh`), parameters replicated; the setup is `jaxdiar.training.build`.
"""

import json
import logging
import time

import jax
from jax.experimental import multihost_utils
import numpy as np
from etils import epath
import psutil
import tensorboardX
import tqdm

from jaxdiar.core import losses
from jaxdiar.core import metrics as metrics_lib
from jaxdiar.core import model as model_lib
from jaxdiar.data import pipeline
from jaxdiar.data import prepare as prepare_lib
from jaxdiar.io import atomic
from jaxdiar.training import build
from jaxdiar.training import checkpoints
from jaxdiar.training.steps import learning_rate

logger = logging.getLogger(__name__)


class NonFiniteError(RuntimeError):
  """Loss or gradients became NaN/inf."""


# ---------------------------------------------------------------------------- data


def global_batch(local_batch, sharding):
  """This host's rows -> one global array sharded over the mesh's data axis."""
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x),
                      local_batch)


def check_memory(compiled, batch_size: int) -> str:
  """Print the compiled step's memory and refuse a batch that cannot fit the device."""
  analysis = compiled.memory_analysis()
  if analysis is None:
    return "memory analysis unavailable on this backend"
  need = (analysis.argument_size_in_bytes + analysis.output_size_in_bytes
          + analysis.temp_size_in_bytes - analysis.alias_size_in_bytes)
  stats = jax.local_devices()[0].memory_stats() or {}
  limit = stats.get("bytes_limit") or psutil.virtual_memory().available
  report = (f"train step memory: args {analysis.argument_size_in_bytes / 2**20:.1f} MiB, "
            f"temp {analysis.temp_size_in_bytes / 2**20:.1f} MiB, out "
            f"{analysis.output_size_in_bytes / 2**20:.1f} MiB; needs {need / 2**30:.2f} GiB of "
            f"{limit / 2**30:.2f} GiB available per device")
  if need > limit:
    raise MemoryError(f"{report}. Batch {batch_size} does not fit: lower train.batch_size and "
                      "raise train.grad_accum_steps to keep the effective batch.")
  return report


# ---------------------------------------------------------------------------- loop


class MetricWriter:
  """TensorBoard event files and a JSON-lines file in the workdir (process 0 only).

  A run resumed at step `start` first drops the rows written after it by the killed run (and a
  torn last line), so that metrics.jsonl holds every step once."""

  def __init__(self, workdir, start: int = 0):
    self.enabled = jax.process_index() == 0
    if self.enabled:
      self.path = epath.Path(workdir) / "metrics.jsonl"
      self.rows = []
      if self.path.exists():
        for line in self.path.read_text(encoding="utf-8").splitlines():
          try:
            if json.loads(line)["step"] <= start:
              self.rows.append(line + "\n")
          except (json.JSONDecodeError, KeyError, TypeError):
            pass                           # a line torn by the kill
        atomic.write_text(self.path, "".join(self.rows))
      self.tb = tensorboardX.SummaryWriter(str(epath.Path(workdir) / "tensorboard"),
                                           purge_step=start + 1 if start else None)
      # Local files are appended to; an object store (gs://) cannot append: the whole file
      # is written again at each row (a few hundred kB for a long run).
      self.remote = atomic.is_remote(workdir)
      self.jsonl = None if self.remote else open(self.path, "a", encoding="utf-8")

  def write(self, step: int, scalars: dict):
    if not self.enabled:
      return
    for k, v in scalars.items():
      self.tb.add_scalar(k, v, step)
    row = json.dumps(dict(step=step, **scalars)) + "\n"
    if self.remote:
      self.rows.append(row)
      atomic.write_text(self.path, "".join(self.rows))
    else:
      self.jsonl.write(row)
      self.jsonl.flush()

  def close(self):
    if self.enabled:
      self.tb.close()
      if self.jsonl is not None:
        self.jsonl.close()


def evaluate(state, dev_source, jitted_eval, batch_sharding, config, num_ids: int) -> dict:
  """Dev losses, frame DER (miss/FA/confusion), per-speaker P/R/F1, OSD P/R.

  `jitted_eval` returns replicated outputs; each host scores the rows it fed, and the
  counts are summed over hosts.
  """
  ecfg = config.eval
  shards, host = jax.process_count(), jax.process_index()
  per_host = ecfg.batch_size // shards
  loader = pipeline.make_loader(dev_source, global_batch_size=ecfg.batch_size, seed=0,
                                shuffle=False, num_epochs=1, shard_index=host,
                                shard_count=shards, drop_remainder=False)
  acc = metrics_lib.FrameMetrics(num_ids)
  sums = np.zeros(4)   # loss, vad loss, osd loss (example-weighted), examples
  for local in loader:
    n = local["audio"].shape[0]
    if n < per_host:   # pad the last batch to the compiled size; padding is not scored
      local = jax.tree.map(lambda x: np.concatenate(
          [x, np.zeros((per_host - n,) + x.shape[1:], x.dtype)]), local)
    out = jitted_eval(state, global_batch(local, batch_sharding))
    mine = slice(host * per_host, host * per_host + n)
    out = {k: np.asarray(v)[mine] for k, v in out.items()}
    acc.update(out["vad"], local["activity"][:n], out["perm"], local["speaker_ids"][:n],
               out["osd"], local["overlap"][:n], ecfg.vad_threshold, ecfg.osd_threshold)
    sums += [out["loss"].sum(), out["vad_loss"].sum(), out["osd_loss"].sum(), n]
  vector = np.concatenate([sums, acc.as_vector()])
  if shards > 1:
    vector = np.asarray(multihost_utils.process_allgather(vector)).sum(axis=0)
  acc = metrics_lib.FrameMetrics(num_ids)
  acc.merge(vector[4:])
  examples = max(vector[3], 1.0)
  result = {f"dev/{k}": float(v / examples)
            for k, v in zip(("loss", "vad_loss", "osd_loss"), vector[:3])}
  result.update({f"dev/{k}": v for k, v in acc.result().items()})
  return result


def train_and_evaluate(config, workdir) -> dict:
  """Train `config` in `workdir`, resuming from its latest checkpoint. Returns the last
  metrics (train and dev)."""
  workdir = epath.Path(workdir)       # local or gs://: never through pathlib
  workdir.mkdir(parents=True, exist_ok=True)
  is_main = jax.process_index() == 0
  log = logger.info if is_main else (lambda msg: None)

  if config.model.num_speakers > losses.MAX_PIT_SPEAKERS:
    raise ValueError(f"model.num_speakers must be <= {losses.MAX_PIT_SPEAKERS}")
  data = prepare_lib.prepare(config)
  built = build.build(config, num_speaker_classes=data.num_train_speakers)
  config, tcfg, mesh = built.config, built.config.train, built.mesh
  replicated, batch_sharding = built.replicated, built.batch_sharding
  if is_main:
    atomic.write_text(workdir / "config.json", config.to_json_best_effort(indent=1))
  rng = jax.random.key(tcfg.seed)
  init_rng, step_rng = jax.random.split(rng)
  abstract_state = jax.eval_shape(built.init, init_rng)
  micro_steps = tcfg.num_steps * tcfg.grad_accum_steps

  loader = pipeline.make_loader(data.train, global_batch_size=tcfg.batch_size,
                                seed=config.data.seed,
                                augment=pipeline.augment_from_config(config.data, config.features))
  train_iter = iter(loader)

  manager = checkpoints.manager(workdir, tcfg)
  latest = manager.latest_step()
  if latest is not None:
    target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated),
                          abstract_state)
    state, data_state = checkpoints.restore_train(manager, latest, target)
    train_iter.set_state(json.dumps(data_state).encode())
    log(f"jaxdiar: resumed from {workdir / 'checkpoints'} at step {latest}")
  else:
    state = built.init(init_rng)
  log(f"jaxdiar: {model_lib.count_params(state.params):,} parameters, "
      f"{mesh.size} device(s) on {jax.process_count()} process(es), "
      f"{data.num_train_speakers} training speakers")

  per_host = tcfg.batch_size // jax.process_count()
  # The shapes and dtypes the loader yields (one example through the eval transform).
  example = pipeline.ToFloat().map(data.train[0])
  batch_spec = jax.tree.map(lambda x: jax.ShapeDtypeStruct(
      (tcfg.batch_size,) + np.shape(x), np.asarray(x).dtype, sharding=batch_sharding), example)
  t0 = time.time()
  compiled = built.train_step.lower(state, batch_spec, step_rng).compile()
  log(f"jaxdiar: compiled the train step in {time.time() - t0:.1f} s (per-host batch "
      f"{per_host}); {check_memory(compiled, tcfg.batch_size)}")

  start = int(state.step)
  writer = MetricWriter(workdir, start)
  bar = tqdm.tqdm(total=micro_steps, initial=start, desc="train", unit="step",
                  disable=not is_main, dynamic_ncols=True)
  last_metrics, dev = {}, {}
  pending = None
  window_start, window_steps = time.time(), 0

  def save(step, dev_metrics=None):
    checkpoints.save_train(manager, step, state, json.loads(train_iter.get_state().decode()),
                           dev_metrics["dev/der"] if dev_metrics else None)

  try:
    for step in range(start + 1, micro_steps + 1):
      batch = global_batch(next(train_iter), batch_sharding)
      state, metrics = compiled(state, batch, step_rng)
      window_steps += 1
      # Check the previous step's finiteness: one step of lag keeps dispatch asynchronous.
      if pending is not None and float(pending["finite"]) == 0.0:
        raise NonFiniteError(f"non-finite loss or gradients at step {step - 1}; the state "
                             "was not updated and the last good checkpoint is kept")
      pending = metrics
      bar.update()
      if step % tcfg.log_every == 0 or step == micro_steps:
        scalars = {k: float(v) for k, v in jax.device_get(metrics).items()}
        if scalars["finite"] == 0.0:
          raise NonFiniteError(f"non-finite loss or gradients at step {step}; the state was "
                               "not updated and the last good checkpoint is kept")
        elapsed = time.time() - window_start
        scalars.update(lr=learning_rate(tcfg, step // tcfg.grad_accum_steps),
                       steps_per_second=window_steps / max(elapsed, 1e-9))
        window_start, window_steps = time.time(), 0
        writer.write(step, scalars)
        bar.set_postfix(loss=f"{scalars['loss/total']:.4f}")
        last_metrics = scalars
      dev = {}
      if step % config.eval.every == 0 or step == micro_steps:
        dev = evaluate(state, data.dev, built.eval_step, batch_sharding, config, len(data.speakers))
        writer.write(step, dev)
        log(f"\njaxdiar: step {step} dev DER {dev['dev/der']:.4f} (miss {dev['dev/missed']:.4f}"
            f", FA {dev['dev/false_alarm']:.4f}, conf {dev['dev/confusion']:.4f})")
        last_metrics.update(dev)
      if step % tcfg.checkpoint_every == 0 or step == micro_steps:
        save(step, dev or None)
    if pending is not None and float(pending["finite"]) == 0.0:
      raise NonFiniteError(f"non-finite loss or gradients at step {micro_steps}; the last "
                           "good checkpoint is kept")
  finally:
    bar.close()
    manager.wait_until_finished()
    manager.close()
    writer.close()
  return last_metrics
