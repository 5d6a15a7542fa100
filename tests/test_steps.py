"""jaxdiar.training.steps alone: optimizer groups, the one-cycle schedule, per-group learning rates."""

import jax
import jax.numpy as jnp
import pytest

from configs import smoke
from jaxdiar.core import model as model_lib
from jaxdiar.training import steps


def test_optimizer_groups_and_learning_rates():
  config = smoke.get_config()
  assert steps.param_group(("tcn_0", "conv1", "v")) == "tcn"
  assert steps.param_group(("input_norm", "scale")) == "tcn"
  assert steps.param_group(("attention", "query", "kernel")) == "attention"
  assert steps.param_group(("vad_head", "conv", "kernel")) == "heads"
  # One-cycle: warm-up to the peak at 30 % of the steps, then down to ~0.
  peak_step = int(0.3 * config.train.num_steps)
  assert steps.learning_rate(config.train, peak_step) == pytest.approx(
      config.train.learning_rate, rel=1e-3)
  assert steps.learning_rate(config.train, config.train.num_steps) < 1e-6
  # The per-group multipliers really scale the updates: grads of ones, first AdamW step.
  model = model_lib.from_config(config.model)
  params = model_lib.init_variables(model, jax.random.key(0), 771)["params"]
  config.train.weight_decay = 0.0
  config.train.grad_clip_norm = 1e9
  tx = steps.make_optimizer(config.train)
  updates, _ = tx.update(jax.tree.map(jnp.ones_like, params), tx.init(params), params)
  first = lambda name: float(jnp.abs(jax.tree.leaves(updates[name])[0]).max())
  assert first("tcn_0") * 2 == pytest.approx(first("attention"), rel=1e-4)
  assert first("attention") * 2 == pytest.approx(first("vad_head"), rel=1e-4)
