"""DiarizationTCN: parameter count, shapes, causality and receptive field."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default
from configs import smoke
from jaxdiar.core import model as model_lib


def _tiny(**overrides):
  cfg = smoke.get_config().model
  for k, v in overrides.items():
    cfg[k] = v
  return model_lib.from_config(cfg)


def test_default_parameter_count():
  """SPEC: about 6.58 M. Exactly 6,575,504: TCN 4,664,064 (two weight-norm convs per block
  with their g vectors, 1x1 downsamples at 771->256 and 256->512), attention 1,050,624,
  BatchNorm scales/offsets and the heads the rest. BatchNorm running statistics are not
  parameters (as PyTorch's buffers)."""
  config = default.get_config()
  model = model_lib.from_config(config.model)
  variables = jax.eval_shape(lambda r: model_lib.init_variables(model, r, 771),
                             jax.random.key(0))
  params = variables["params"]
  assert model_lib.count_params(params) == 6_575_504
  tcn = sum(model_lib.count_params(params[f"tcn_{i}"]) for i in range(5))
  assert tcn == 4_664_064
  assert model_lib.count_params(params["attention"]) == 1_050_624
  assert set(variables["batch_stats"]) == {"input_norm", "bottleneck_norm", "vad_head",
                                           "osd_head", "embedding_head"}


@pytest.mark.parametrize("train", [False, True])
def test_output_shapes(train):
  model = _tiny(num_speaker_classes=7)
  b, d, t = 2, 771, 50
  variables = model_lib.init_variables(model, jax.random.key(0), d)
  feats = jax.random.normal(jax.random.key(1), (b, d, t))
  if train:
    out, updates = model.apply(variables, feats, train=True, rngs={"dropout": jax.random.key(2)},
                               mutable=["batch_stats"])
    assert set(updates["batch_stats"]) == set(variables["batch_stats"])
  else:
    out = model.apply(variables, feats)
  e, s = model.embedding_dim, model.num_speakers
  assert out["vad"].shape == (b, t, s)
  assert out["osd"].shape == (b, t)
  assert out["frame_emb"].shape == (b, t, e)
  assert out["chunk_emb"].shape == (b, e)
  assert out["spk_emb"].shape == (b, s, e)
  assert out["spk_logits"].shape == (b, s, 7)
  assert all(v.dtype == jnp.float32 for v in out.values())
  sim = model.apply(variables, out["spk_emb"][:, 0], out["spk_emb"][:, 1],
                    method=model_lib.DiarizationTCN.similarity)
  assert sim.shape == (b,)


def test_eager_equals_jit():
  model = _tiny()
  variables = model_lib.init_variables(model, jax.random.key(0), 257)
  feats = jax.random.normal(jax.random.key(1), (2, 257, 40))
  eager = model.apply(variables, feats)
  jitted = jax.jit(model.apply)(variables, feats)
  for k in eager:
    np.testing.assert_allclose(eager[k], jitted[k], atol=1e-4, rtol=1e-4)


def test_bfloat16_activations_keep_float32_params():
  model = _tiny(dtype="bfloat16")
  variables = model_lib.init_variables(model, jax.random.key(0), 257)
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables["params"]))
  out = jax.jit(model.apply)(variables, jax.random.normal(jax.random.key(1), (2, 257, 30)))
  assert out["vad"].dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(out["vad"])))


@pytest.mark.parametrize("use_attention,window", [(False, 0), (True, 0), (True, 8)])
def test_causal_outputs_ignore_the_future(use_attention, window):
  """causal=True: perturbing frames > t leaves every frame output at <= t unchanged."""
  model = _tiny(causal=True, use_attention=use_attention, attention_window=window)
  variables = model_lib.init_variables(model, jax.random.key(0), 257)
  t_cut, t = 37, 80
  feats = jax.random.normal(jax.random.key(1), (2, 257, t))
  noisy = feats.at[:, :, t_cut + 1:].add(5.0 * jax.random.normal(jax.random.key(2),
                                                                 (2, 257, t - t_cut - 1)))
  apply = jax.jit(model.apply)
  a, b = apply(variables, feats), apply(variables, noisy)
  for k in ("vad", "osd", "frame_emb"):
    np.testing.assert_allclose(a[k][:, :t_cut + 1], b[k][:, :t_cut + 1], atol=1e-5)
    assert float(jnp.abs(a[k][:, t_cut + 1:] - b[k][:, t_cut + 1:]).max()) > 1e-3


def test_non_causal_heads_see_the_next_frame():
  model = _tiny(causal=False, use_attention=False)
  variables = model_lib.init_variables(model, jax.random.key(0), 257)
  feats = jax.random.normal(jax.random.key(1), (1, 257, 40))
  a = model.apply(variables, feats)["vad"]
  b = model.apply(variables, feats.at[:, :, 21].add(3.0))["vad"]
  assert float(jnp.abs(a[:, 20] - b[:, 20]).max()) > 1e-4   # symmetric k3 head padding


def test_tcn_receptive_field_is_125_frames():
  """The gradient of TCN output frame t reaches exactly frames t-124 ... t.

  SPEC section 4 says 63 frames, which is 1 + (k-1) * sum(2**i): one dilated conv per
  block, the same miscount as the design's "2.17 M" parameters. The SPEC's own parameter
  count (6.58 M, asserted above) needs two convs per block, and two causal convs of span
  (k-1) * 2**i per block give 1 + 2 (k-1) (2**5 - 1) = 125 frames (2.0 s at 62.5 fps).
  """
  config = default.get_config()
  assert model_lib.receptive_field(config.model.kernel_size, len(config.model.channels)) == 125
  cfg = smoke.get_config().model
  blocks = [model_lib.TemporalBlock(c, cfg.kernel_size, 2 ** i, 0.0)
            for i, c in enumerate(cfg.channels)]

  def tcn(params, x):
    for block, p in zip(blocks, params):
      x = block.apply(p, x, train=False)
    return x

  t, c_in, target = 200, 8, 150
  x = jax.random.normal(jax.random.key(0), (1, t, c_in))
  params, h = [], x
  for i, block in enumerate(blocks):
    params.append(block.init(jax.random.key(i), h, train=False))
    h = block.apply(params[-1], h, train=False)
  grad = jax.grad(lambda x: jnp.sum(tcn(params, x)[0, target]))(x)
  reached = np.nonzero(np.abs(np.asarray(grad[0])).sum(axis=-1) > 0)[0]
  assert reached.min() == target - 124 and reached.max() == target
  assert len(reached) == 125


@pytest.mark.parametrize("rate,width", [(0.2, 512), (0.5, 64), (0.2, 6)])
def test_dropout_rate_scale_and_rng(rate, width):
  x = jnp.ones((64, 100, width))
  layer = model_lib.Dropout(rate, deterministic=False)
  y = np.asarray(layer.apply({}, x, rngs={"dropout": jax.random.key(0)}))
  dropped = np.mean(y == 0)
  assert abs(dropped - rate) < 0.01                     # the rate, to 1/256 and sampling
  assert abs(y.mean() - 1.0) < 0.02                     # inverted scaling: unbiased
  kept = y[y != 0]
  np.testing.assert_allclose(kept, kept[0])             # one scale for every kept value
  again = np.asarray(layer.apply({}, x, rngs={"dropout": jax.random.key(0)}))
  other = np.asarray(layer.apply({}, x, rngs={"dropout": jax.random.key(1)}))
  np.testing.assert_array_equal(y, again)
  assert np.mean((y == 0) != (other == 0)) > 0.1
  # Neighbouring elements (bytes of one 32-bit draw) are not correlated.
  z = (y == 0).reshape(-1)
  assert abs(np.corrcoef(z[:-1], z[1:])[0, 1]) < 0.02
  off = model_lib.Dropout(rate, deterministic=True).apply({}, x)
  np.testing.assert_array_equal(off, x)
  with pytest.raises(ValueError, match="dropout rate"):
    model_lib.Dropout(1.0, deterministic=False).apply({}, x, rngs={"dropout": jax.random.key(0)})
