"""Test set-up: 8 forced CPU devices (for the sharding tests) and paths to shared data."""

import os
import pathlib

# Tests are dominated by XLA compile time: skip most optimisations (the whole suite runs
# ~25 % faster on 2 cores). Set in the environment so subprocesses (two-process training,
# fresh-process export) inherit it.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")

import jax  # noqa: E402
import pytest  # noqa: E402

# Must happen before any JAX computation; single-device tests just use device 0.
jax.config.update("jax_num_cpu_devices", 8)

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = pathlib.Path(os.environ.get("JAXDIAR_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared_data(*parts) -> pathlib.Path:
  """A path under ../shared/data, or skip the test when it is absent."""
  path = SHARED_DATA.joinpath(*parts)
  if not path.exists():
    pytest.skip(f"shared data not present: {path}")
  return path


@pytest.fixture(scope="session")
def trained_smoke(tmp_path_factory):
  """(config, workdir) of a smoke model trained for 12 steps on the procedural corpus."""
  from configs import smoke
  from jaxdiar.training import trainer
  root = tmp_path_factory.mktemp("smoke")
  config = smoke.get_config()
  config.data.data_dir = str(root / "data")
  config.data.max_workers = 1
  config.train.num_steps = 12
  config.train.batch_size = 8      # 8 forced devices
  config.eval.batch_size = 8
  config.train.checkpoint_every = 12
  config.eval.every = 12
  trainer.train_and_evaluate(config, root / "workdir")
  return config, root / "workdir"


@pytest.fixture(scope="session")
def exported(trained_smoke, tmp_path_factory):
  """(path of the smoke model exported as .jaxdiar, its workdir)."""
  from jaxdiar.cli import export as cli_export
  config, workdir = trained_smoke
  out = tmp_path_factory.mktemp("export") / "smoke.jaxdiar"
  assert cli_export.main(["--workdir", str(workdir), "--out", str(out)]) == 0
  return out, workdir


@pytest.fixture(scope="session")
def meeting(trained_smoke):
  """The first dev meeting of the smoke corpus (8 channels, 1 minute)."""
  config, _ = trained_smoke
  dev = sorted(pathlib.Path(config.data.data_dir).glob("simulated-*/dev"))[0]
  return dev / "meeting00000.wav"
