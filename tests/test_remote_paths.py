"""A gs:// workdir reaches orbax, the metric writers and export unmangled (pathlib would turn
gs://bucket into gs:/bucket). The bucket is a local folder behind `etils.epath`'s test mock;
orbax's and TensorBoard's writers are handed the gs:// path and record it, then write to that
folder (their own gs:// clients would need the network)."""

import json

import numpy as np
import orbax.checkpoint as ocp
import pytest
import tensorboardX
from etils import epath
from etils.epath import testing as epath_testing

from jaxdiar.io import atomic
from jaxdiar.models import export
from jaxdiar.models import runtime
from jaxdiar.training import checkpoints
from jaxdiar.training import trainer

BUCKET = "gs://bucket/"


@pytest.fixture
def bucket(tmp_path, monkeypatch):
  """(local folder standing for gs://bucket, {writer: [paths it was handed]})."""
  root = tmp_path / "bucket"
  root.mkdir()
  seen = {"epath": set(), "orbax": [], "tensorboard": []}

  def local(path):
    text = str(path)
    if text.startswith(BUCKET):
      seen["epath"].add(text)
      return str(root / text[len(BUCKET):])
    assert not text.startswith("gs:/"), f"mangled path {text}"
    return text

  def redirect(original, path, *args, **kwargs):
    if "dst" in kwargs:
      kwargs["dst"] = local(kwargs["dst"])
    args = [local(a) if isinstance(a, (str, epath.Path)) and str(a).startswith("gs:")
            else a for a in args]
    return original(local(path), *args, **kwargs)

  manager_cls, writer_cls = ocp.CheckpointManager, tensorboardX.SummaryWriter

  def manager(directory, *args, **kwargs):
    seen["orbax"].append(str(directory))
    return manager_cls(local(directory), *args, **kwargs)

  def writer(logdir, *args, **kwargs):
    seen["tensorboard"].append(str(logdir))
    return writer_cls(local(logdir), *args, **kwargs)

  monkeypatch.setattr(checkpoints.ocp, "CheckpointManager", manager)
  monkeypatch.setattr(trainer.tensorboardX, "SummaryWriter", writer)
  fns = {name: redirect for name in ("copy", "exists", "glob", "isdir", "listdir", "makedirs",
                                     "mkdir", "open", "remove", "rename", "replace", "rmtree",
                                     "stat", "walk")}
  with epath_testing.mock_epath(**fns):
    yield root, seen


def test_gs_workdir_reaches_orbax_metrics_tensorboard_and_export(bucket, trained_smoke):
  root, seen = bucket
  config, _ = trained_smoke
  config = config.copy_and_resolve_references()
  config.train.num_steps = 4
  config.train.log_every = 2
  config.train.checkpoint_every = 2
  config.eval.every = 4
  metrics = trainer.train_and_evaluate(config, BUCKET + "runs/one")
  assert "dev/der" in metrics
  assert set(seen["orbax"]) == {BUCKET + "runs/one/checkpoints"}
  assert seen["tensorboard"] == [BUCKET + "runs/one/tensorboard"]
  assert {BUCKET + "runs/one/config.json", BUCKET + "runs/one/metrics.jsonl"} <= seen["epath"]
  run = root / "runs" / "one"
  rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in rows if "loss/total" in r] == [2, 4]
  assert sorted(p.name for p in (run / "checkpoints").iterdir() if p.name.isdigit()) == ["2", "4"]
  assert list((run / "tensorboard").glob("events.out.tfevents.*"))

  # Export reads the gs:// workdir and writes the model file to the bucket.
  cfg, variables, step = checkpoints.load_checkpoint(BUCKET + "runs/one")
  assert step == 4 and seen["orbax"][-1] == BUCKET + "runs/one/checkpoints"
  export.export(cfg, variables, BUCKET + "models/m.jaxdiar", platforms=("cpu",))
  assert BUCKET + "models/m.jaxdiar" in seen["epath"]
  model = runtime.load(root / "models" / "m.jaxdiar")
  out = model(np.zeros((1, 8, 16000), np.float32))
  assert out["vad"].shape == (1, 63, 4)

  # A resumed run on the same gs:// workdir continues from its checkpoint.
  config.train.num_steps = 6
  trainer.train_and_evaluate(config, BUCKET + "runs/one")
  rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in rows if "loss/total" in r] == [2, 4, 6]


def test_remote_output_checks_and_atomic_write(bucket):
  root, seen = bucket
  assert atomic.check_output(BUCKET + "a/b.txt") == epath.Path(BUCKET + "a/b.txt")
  atomic.write_text(BUCKET + "a/b.txt", "hello")
  assert (root / "a" / "b.txt").read_text() == "hello"
  assert BUCKET + "a/b.txt" in seen["epath"]
  with pytest.raises(RuntimeError):
    with atomic.atomic_path(BUCKET + "a/c.txt"):
      raise RuntimeError("fails before the copy")
  assert not (root / "a" / "c.txt").exists()
