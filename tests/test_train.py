"""The trainer: end to end, resume, non-finite stop, 1 vs 8 devices, two processes (with
and without a shared data disk)."""

import json
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

from configs import smoke
from jaxdiar.training import build
from jaxdiar.training import checkpoints
from jaxdiar.training import trainer

REPO = pathlib.Path(__file__).resolve().parents[1]


def tiny_config(data_dir, **train):
  config = smoke.get_config()
  config.data.data_dir = str(data_dir)
  config.data.max_workers = 1
  config.train.num_steps = 12
  config.train.log_every = 3
  config.train.checkpoint_every = 6
  # Global batch 8 on the 8 forced CPU devices (conftest): the sharded path end to end.
  config.train.batch_size = 8
  config.eval.batch_size = 8
  config.eval.every = 12
  for k, v in train.items():
    config.train[k] = v
  return config


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return tmp_path_factory.mktemp("jaxdiar-data")


def _params(workdir, config, step):
  """Restore the parameters of a checkpoint without the trainer."""
  return checkpoints.restore_state(workdir, step)[0]["params"]


def test_smoke_run_end_to_end_then_resume_reaches_the_same_parameters(data_dir, tmp_path):
  config = tiny_config(data_dir, num_steps=12)
  full = tmp_path / "full"
  metrics = trainer.train_and_evaluate(config, full)
  lines = [json.loads(l) for l in (full / "metrics.jsonl").read_text().splitlines()]
  losses = [l["loss/total"] for l in lines if "loss/total" in l]
  assert len(losses) == 4 and losses[-1] < losses[0], losses
  assert {"lr", "grad_norm", "param_norm", "steps_per_second"} <= set(lines[0])
  assert 0.0 <= metrics["dev/der"] and "dev/speaker_f1" in metrics
  assert list((full / "tensorboard").glob("events.out.tfevents.*"))
  assert sorted(int(p.name) for p in (full / "checkpoints").iterdir() if p.name.isdigit()) == [6, 12]

  # A run killed after its step-6 checkpoint, then restarted, ends where the full one did.
  killed = tmp_path / "killed"
  trainer.train_and_evaluate(config, killed)
  import shutil
  shutil.rmtree(killed / "checkpoints" / "12")
  trainer.train_and_evaluate(config, killed)
  a, b = _params(full, config, 12), _params(killed, config, 12)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def test_nan_in_a_batch_stops_cleanly(data_dir, tmp_path, monkeypatch):
  config = tiny_config(data_dir, num_steps=12)
  calls = {"n": 0}
  original = trainer.global_batch

  def poisoned(local, sharding):
    calls["n"] += 1
    if calls["n"] == 8:
      local = dict(local, audio=np.full_like(local["audio"], np.nan))
    return original(local, sharding)

  monkeypatch.setattr(trainer, "global_batch", poisoned)
  with pytest.raises(trainer.NonFiniteError, match="step 8"):
    trainer.train_and_evaluate(config, tmp_path / "nan")
  steps = sorted(int(p.name) for p in (tmp_path / "nan" / "checkpoints").iterdir()
                 if p.name.isdigit())
  assert steps == [6]     # the last good checkpoint, nothing after the NaN


def _synthetic_batch(batch_size, seconds=1.0, seed=0):
  rng = np.random.default_rng(seed)
  n = int(seconds * 16000)
  t = 1 + n // 256
  activity = (rng.random((batch_size, t, 4)) < 0.3).astype(np.uint8)
  return dict(audio=(0.1 * rng.standard_normal((batch_size, 8, n))).astype(np.float32),
              activity=activity, overlap=(activity.sum(-1) >= 2).astype(np.uint8),
              speaker_ids=rng.integers(-1, 4, size=(batch_size, 4)).astype(np.int32))


def _run_steps(devices, batch, num_steps=2, **train):
  """`num_steps` train steps of the smoke model on `batch`, set up by `build.build`."""
  config = smoke.get_config()
  config.model.dropout = 0.1
  config.train.batch_size = config.eval.batch_size = len(batch["audio"])
  for k, v in train.items():
    config.train[k] = v
  built = build.build(config, devices=devices)
  state = built.init(jax.random.key(0))
  batch = built.shard(batch)
  for _ in range(num_steps):
    state, metrics = built.train_step(state, batch, jax.random.key(1))
  return jax.device_get(state), jax.device_get(metrics)


def test_one_device_equals_eight_devices():
  assert len(jax.devices()) == 8
  batch = _synthetic_batch(8)
  s1, m1 = _run_steps(jax.devices()[:1], batch)
  s8, m8 = _run_steps(jax.devices(), batch)
  np.testing.assert_allclose(m1["loss/total"], m8["loss/total"], rtol=1e-5)
  np.testing.assert_allclose(m1["grad_norm"], m8["grad_norm"], rtol=2e-5)
  _assert_params_agree(s1.params, jax.tree.leaves(s8.params))
  # The running mean of the BatchNorm after the bottleneck bias follows that bias (batch
  # mean of x + b) with weight 1 - momentum = 0.1; every other statistic is held to 1e-5.
  lr = smoke.get_config().train.learning_rate
  for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(s1.batch_stats),
                          jax.tree.leaves(s8.batch_stats)):
    tol = 0.1 * lr if "bottleneck_norm" in jax.tree_util.keystr(path) else 1e-5
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=tol)


# Parameters whose true gradient is exactly zero: a per-channel constant before a BatchNorm
# (the bottleneck bias; the attention LayerNorm bias, which reaches it through the 1x1
# bottleneck conv) and the attention key bias (softmax is shift-invariant). Their computed
# gradient is float noise that depends on the reduction order, and Adam normalises it into
# steps of up to lr each. Measured over 2 steps: up to 2.9e-4 on these, 3e-6 on the rest.
_ZERO_GRADIENT = ("['bottleneck']['bias']", "['attention_norm']['bias']",
                  "['attention']['key']['bias']")


def _assert_params_agree(params, other_leaves, num_steps=2):
  lr = smoke.get_config().train.learning_rate
  for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(params), other_leaves):
    name = jax.tree_util.keystr(path)
    atol = num_steps * lr if name in _ZERO_GRADIENT else 3e-5
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=atol, err_msg=name)


TWO_PROCESS_SCRIPT = r"""
import sys, json
import jax, numpy as np
pid, port = int(sys.argv[1]), sys.argv[2]
jax.config.update("jax_num_cpu_devices", 2)
jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2,
                           process_id=pid)
sys.path.insert(0, sys.argv[3])
from tests import test_train as t
from jaxdiar.training import build, trainer
batch = t._synthetic_batch(8)
local = {k: v[pid * 4:(pid + 1) * 4] for k, v in batch.items()}   # this host's rows only
from configs import smoke
config = smoke.get_config(); config.model.dropout = 0.1
config.train.batch_size = config.eval.batch_size = 8
built = build.build(config)
state = built.init(jax.random.key(0))
gbatch = trainer.global_batch(local, built.batch_sharding)
for _ in range(2):
  state, metrics = built.train_step(state, gbatch, jax.random.key(1))
leaves = [np.asarray(x.addressable_data(0)) for x in jax.tree.leaves(state.params)]
np.savez(sys.argv[4], *leaves)
print(json.dumps(dict(pid=pid, devices=len(jax.devices()), loss=float(metrics["loss/total"]))))
jax.distributed.shutdown()
"""


def _two_processes(tmp_path, script: str, args) -> list[str]:
  """Run `script` as two jax.distributed processes on 127.0.0.1 with the arguments
  (process id, port, repository, *args(process id)); returns their stdouts."""
  import portpicker
  port = portpicker.pick_unused_port()
  path = tmp_path / "worker.py"
  path.write_text(script)
  env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu")
  env.pop("XLA_FLAGS", None)
  procs = [subprocess.Popen([sys.executable, str(path), str(i), str(port), str(REPO),
                             *map(str, args(i))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
           for i in range(2)]
  outs = []
  for p in procs:
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err[-3000:]
    outs.append(out)
  return outs


def test_two_processes_train_together_and_agree(tmp_path):
  outs = [json.loads(out.strip().splitlines()[-1]) for out in _two_processes(
      tmp_path, TWO_PROCESS_SCRIPT, lambda i: [tmp_path / f"params{i}.npz"])]
  assert outs[0]["devices"] == outs[1]["devices"] == 4
  assert outs[0]["loss"] == pytest.approx(outs[1]["loss"], rel=1e-6)
  params = [np.load(tmp_path / f"params{i}.npz") for i in range(2)]
  for k in params[0]:   # replicated parameters: bit-identical on both hosts
    np.testing.assert_array_equal(params[0][k], params[1][k])
  # ... and they agree with one process holding the whole batch on one device (tolerances
  # as in test_one_device_equals_eight_devices).
  single, metrics = _run_steps(jax.devices()[:1], _synthetic_batch(8))
  assert outs[0]["loss"] == pytest.approx(float(metrics["loss/total"]), rel=1e-5)
  _assert_params_agree(single.params, [params[0][f"arr_{i}"] for i in range(len(params[0]))])


TRAINER_TWO_PROCESS_SCRIPT = r"""
import sys
import jax
pid, port, repo, data_dir, workdir = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
jax.config.update("jax_num_cpu_devices", 2)
jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2,
                           process_id=pid)
sys.path.insert(0, repo)
from tests import test_train as t
from jaxdiar.data import prepare
from jaxdiar.training import trainer
config = t.tiny_config(data_dir, num_steps=4, checkpoint_every=4, log_every=2)
config.eval.every = 4
print("shared disk:", prepare.shared_disk(prepare.pathlib.Path(data_dir)), flush=True)
trainer.train_and_evaluate(config, workdir)
jax.distributed.shutdown()
"""


@pytest.mark.slow
def test_two_processes_with_their_own_data_disks_train_as_one_process(tmp_path):
  """Two processes on 127.0.0.1, each with its own data directory (no shared data disk: each
  prepares its corpus), the real trainer, a checkpoint in the shared workdir; the parameters
  equal one process fed the same global batches (host 0's rows then host 1's)."""
  from jaxdiar.data import pipeline
  from jaxdiar.data import prepare
  outs = _two_processes(tmp_path, TRAINER_TWO_PROCESS_SCRIPT,
                        lambda i: [tmp_path / f"host{i}-data", tmp_path / "workdir"])
  assert all("shared disk: False" in out for out in outs)
  for i in range(2):                   # each host wrote its own corpus
    assert list((tmp_path / f"host{i}-data").glob("simulated-*/speakers.json"))
  trained = checkpoints.restore_state(tmp_path / "workdir", 4)[0]["params"]

  config = tiny_config(tmp_path / "reference-data", num_steps=4)
  data = prepare.prepare(config)
  built = build.build(config, num_speaker_classes=data.num_train_speakers,
                      devices=jax.devices()[:1])
  augment = pipeline.augment_from_config(config.data, config.features)
  hosts = [iter(pipeline.make_loader(data.train, global_batch_size=8, seed=config.data.seed,
                                     augment=augment, shard_index=i, shard_count=2))
           for i in range(2)]
  init_rng, step_rng = jax.random.split(jax.random.key(config.train.seed))
  state = built.init(init_rng)
  for _ in range(4):
    rows = [next(h) for h in hosts]
    batch = {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}
    state, _ = built.train_step(state, built.shard(batch), step_rng)
  _assert_params_agree(jax.device_get(state.params), jax.tree.leaves(trained), num_steps=4)
