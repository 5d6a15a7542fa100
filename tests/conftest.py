"""Test set-up: 8 forced CPU devices (for the sharding tests) and paths to shared data."""

import os
import pathlib

import jax
import pytest

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
