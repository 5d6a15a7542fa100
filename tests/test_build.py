"""jaxdiar.training.build, the setup seam: the mesh from the config (a renamed data axis), the one
dtype field (bf16 tracks f32), gradient accumulation, the resolved config, and every config
field overridable from the command line."""

import jax
import numpy as np
import pytest
from absl import flags
from ml_collections import config_flags

from configs import default
from configs import smoke
from jaxdiar.training import build
from tests.test_train import _run_steps, _synthetic_batch


def _leaves(config, prefix=""):
  for key, value in config.items():
    if hasattr(value, "items"):
      yield from _leaves(value, f"{prefix}{key}.")
    else:
      yield f"{prefix}{key}", value


def _max_diff(a, b) -> float:
  return max(float(np.abs(np.asarray(x) - np.asarray(y)).max())
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_parse_mesh():
  assert build.parse_mesh("data:-1") == ("data", -1)
  assert build.parse_mesh("batch:8") == ("batch", 8)
  assert build.parse_mesh([("data", -1)]) == ("data", -1)      # older configs' list form
  for bad in ("data", ":8", "data:eight"):
    with pytest.raises(ValueError, match="AXIS:SIZE"):
      build.parse_mesh(bad)
  with pytest.raises(ValueError, match="asks for 3 devices, 8 are visible"):
    build.make_mesh("data:3")


def test_renamed_data_axis_trains_identically():
  batch = _synthetic_batch(8)
  config = smoke.get_config()
  config.train.mesh = "batch:-1"
  config.train.batch_size = config.eval.batch_size = 8
  built = build.build(config, devices=jax.devices())
  assert built.data_axis == "batch" and built.batch_sharding.spec == jax.sharding.PartitionSpec(
      "batch")
  a, ma = _run_steps(jax.devices(), batch, mesh="data:-1")
  b, mb = _run_steps(jax.devices(), batch, mesh="batch:-1")
  assert _max_diff(a.params, b.params) == 0.0
  assert float(ma["loss/total"]) == float(mb["loss/total"])


def test_compute_dtype_and_resolve():
  tcfg = default.get_config().train
  assert tcfg.compute_dtype == "auto"
  assert build.compute_dtype(tcfg, "cpu") == "float32"
  assert build.compute_dtype(tcfg, "gpu") == build.compute_dtype(tcfg, "tpu") == "bfloat16"
  tcfg.compute_dtype = "float16"
  with pytest.raises(ValueError, match="auto, float32 or bfloat16"):
    build.compute_dtype(tcfg)
  config = smoke.get_config()
  resolved = build.resolve(config, num_speaker_classes=37)
  assert resolved.model.num_speaker_classes == 37 and resolved.train.compute_dtype == "float32"
  assert config.model.num_speaker_classes == 4 and config.train.compute_dtype == "auto"
  with pytest.raises(AttributeError):
    resolved.model.new_field = 1                 # locked: no field added after resolution


def test_bfloat16_step_tracks_float32():
  """Four steps on one batch: bf16 activations (f32 parameters and optimizer) give the f32
  losses to 0.5 % (measured: 1e-4)."""
  batch = _synthetic_batch(8)
  losses = {}
  for dtype in ("float32", "bfloat16"):
    config = smoke.get_config()
    config.train.batch_size = config.eval.batch_size = 8
    config.train.compute_dtype = dtype
    built = build.build(config, devices=jax.devices()[:1])
    assert built.model.dtype == np.dtype(dtype)
    state, sharded, losses[dtype] = built.init(jax.random.key(0)), built.shard(batch), []
    for _ in range(4):
      state, metrics = built.train_step(state, sharded, jax.random.key(1))
      losses[dtype].append(float(metrics["loss/total"]))
    assert jax.tree.leaves(state.params)[0].dtype == np.float32
  np.testing.assert_allclose(losses["bfloat16"], losses["float32"], rtol=5e-3)
  assert losses["float32"][-1] < losses["float32"][0]


def test_gradient_accumulation_equals_the_larger_batch():
  """k = 2 micro-batches that are the same 4 examples = one step on them (the mean of two
  equal gradients; no dropout, so the micro-steps see the same function). The parameters do
  not move after the first micro-step. (Two different micro-batches differ from their
  concatenation by design: BatchNorm statistics and the similarity pairs span the batch.)"""
  a = _synthetic_batch(4, seed=1)

  def run(batches, k):
    config = smoke.get_config()
    config.model.dropout = config.model.head_dropout = 0.0
    config.train.batch_size = config.eval.batch_size = 4
    config.train.grad_accum_steps = k
    built = build.build(config, devices=jax.devices()[:1], donate=False)
    states = [built.init(jax.random.key(0))]
    for b in batches:
      states.append(built.train_step(states[-1], built.shard(b), jax.random.key(1))[0])
    return [jax.device_get(s.params) for s in states]

  p0, p1, accumulated = run([a, a], 2)
  _, single = run([a], 1)
  assert _max_diff(p0, p1) == 0.0                 # micro-step 1: accumulate only
  moved = _max_diff(single, p0)
  assert moved > 1e-5
  assert _max_diff(accumulated, single) < 1e-3 * moved


@pytest.mark.parametrize("config_file", ["configs/default.py"])
def test_every_config_field_overridable_from_the_command_line(config_file):
  """Each leaf of the config, set to another value of its type with --config.a.b=..., reads
  back as that value (lists cannot be overridden by ml_collections: the configs use tuples)."""
  config = default.get_config()
  failures = []
  for path, value in _leaves(config):
    parent, _, leaf = path.rpartition(".")
    kind = (config[parent] if parent else config).get_ref(leaf).get_type()
    if value is None and kind is float:           # an optional number (None: off)
      new, text = 0.5, "0.5"
    elif value is None and kind is int:           # an optional whole number (None: off)
      new, text = 3, "3"
    elif value is None:
      new, text = (0.5, -0.5), "(0.5, -0.5)"
    elif isinstance(value, bool):
      new = not value
      text = str(new)
    elif isinstance(value, int):
      new, text = value + 1, str(value + 1)
    elif isinstance(value, float):
      new, text = value + 0.5, repr(value + 0.5)
    elif isinstance(value, str):
      new, text = value + "x", value + "x"
    elif isinstance(value, tuple):
      new, text = value, repr(value)
    else:
      failures.append(f"{path}: a {type(value).__name__} field")
      continue
    argv = ["prog", f"--config={config_file}", f"--config.{path}={text}"]
    values = flags.FlagValues()
    holder = config_flags.DEFINE_config_file("config", config_file, flag_values=values,
                                             sys_argv=argv)
    try:
      values(argv)
    except Exception as e:                      # noqa: BLE001 - report every field at once
      failures.append(f"{path}: {str(e)[:100]}")
      continue
    got = holder.value
    for key in path.split("."):
      got = got[key]
    if got != new:
      failures.append(f"{path}: {text!r} read back as {got!r}")
  assert not failures, "\n".join(failures)


def test_trainable_freezes_the_other_modules_and_their_statistics():
  """train.trainable=("vad_head",): two steps move the VAD head's parameters and BatchNorm
  statistics and nothing else, bit for bit; a name the model does not have is refused."""
  config = smoke.get_config()
  config.train.batch_size = config.eval.batch_size = 4
  config.train.trainable = ("vad_head",)
  built = build.build(config, devices=jax.devices()[:1])
  start = jax.device_get(built.init(jax.random.key(0)))
  state, batch = built.init(jax.random.key(0)), built.shard(_synthetic_batch(4))
  for _ in range(2):
    state, _ = built.train_step(state, batch, jax.random.key(1))
  state = jax.device_get(state)
  for tree in ("params", "batch_stats"):
    before, after = getattr(start, tree), getattr(state, tree)
    assert set(before) == set(after) and "vad_head" in before
    for name in before:
      same = [np.array_equal(a, b) for a, b in zip(jax.tree.leaves(before[name]),
                                                   jax.tree.leaves(after[name]))]
      assert (not any(same)) if name == "vad_head" else all(same), (tree, name)
  config.train.trainable = ("vad_heads",)
  with pytest.raises(ValueError, match="no module vad_heads in the model"):
    build.build(config, devices=jax.devices()[:1]).init(jax.random.key(0))
