"""Export and the exported file (jaxdiar.export, jaxdiar.models.runtime): a fresh process without
flax equals the checkpoint, the streaming step equals the offline model, --set changes only
the decoding settings, a bad file is refused."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import smoke
from jaxdiar.cli import export as cli_export
from jaxdiar.core import features as features_lib
from jaxdiar.core import model as model_lib
from jaxdiar.models import export
from jaxdiar.models import runtime
from jaxdiar.training import checkpoints


FRESH_PROCESS = r"""
import sys, numpy as np
from jaxdiar.models import runtime
model = runtime.load(sys.argv[1])
data = np.load(sys.argv[2])
outs = {}
for i in range(int(data["count"])):
  for k, v in model(data[f"audio{i}"]).items():
    outs[f"{k}{i}"] = np.asarray(v)
assert "flax" not in sys.modules and "jaxdiar.core.model" not in sys.modules, "imported flax"
np.savez(sys.argv[3], **outs)
print("ok")
"""


def test_exported_file_in_a_fresh_process_equals_the_checkpoint(exported, tmp_path):
  path, workdir = exported
  config, variables, _ = checkpoints.load_checkpoint(workdir)
  forward = jax.jit(export.forward_fn(model_lib.from_config(config.model), variables,
                                      config.features))
  rng = np.random.default_rng(0)
  lengths = [(1, 16000), (2, 23456), (3, 40000)]        # several batch sizes and lengths
  audio = {f"audio{i}": (0.1 * rng.standard_normal((b, 8, n))).astype(np.float32)
           for i, (b, n) in enumerate(lengths)}
  np.savez(tmp_path / "in.npz", count=len(lengths), **audio)
  script = tmp_path / "fresh.py"
  script.write_text(FRESH_PROCESS)
  done = subprocess.run([sys.executable, str(script), str(path), str(tmp_path / "in.npz"),
                         str(tmp_path / "out.npz")], capture_output=True, text=True,
                        cwd=tmp_path, timeout=300)
  assert done.returncode == 0, done.stderr[-3000:]
  got = np.load(tmp_path / "out.npz")
  for i, (b, n) in enumerate(lengths):
    want = forward(audio[f"audio{i}"])
    assert got[f"vad{i}"].shape == (b, 1 + n // 256, 4)
    for k in ("vad", "osd", "spk_emb", "frame_emb"):
      np.testing.assert_allclose(got[f"{k}{i}"], want[k], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("attention_window", [None, 20])
def test_streaming_equals_offline_causal_model(tmp_path, attention_window):
  """Block by block (8 frames) = the offline causal model: TCN only, and with windowed
  causal attention over 20 frames (its state spans blocks)."""
  config = smoke.get_config()
  config.model.causal = True
  config.model.use_attention = attention_window is not None
  config.model.attention_window = attention_window or 0
  model = model_lib.from_config(config.model)
  d = features_lib.feature_dim(config.features)
  variables = model_lib.init_variables(model, jax.random.key(0), d)
  # Non-trivial BatchNorm statistics, as after training.
  variables = dict(variables, batch_stats=jax.tree.map(
      lambda x: x + 0.3 * jax.random.uniform(jax.random.key(3), x.shape), variables["batch_stats"]))
  path = tmp_path / "causal.jaxdiar"
  export.export(config, variables, path, platforms=("cpu",))
  m = runtime.load(path)
  assert m.can_stream and m.stream_outputs == ("frame_emb", "osd", "vad")
  block = m.stream_block_samples
  n = 12 * block
  audio = (0.1 * np.random.default_rng(0).standard_normal((2, 8, n))).astype(np.float32)
  offline = m(audio)
  state = m.stream_init(2)
  vad, osd, emb = [], [], []
  for s in range(0, n, block):
    out, state = m.stream_step(audio[:, :, s:s + block], state)
    vad.append(np.asarray(out["vad"]))
    osd.append(np.asarray(out["osd"]))
    emb.append(np.asarray(out["frame_emb"]))
  vad, osd, emb = (np.concatenate(x, 1) for x in (vad, osd, emb))
  assert vad.shape == (2, n // 256, 4)
  np.testing.assert_allclose(vad, offline["vad"][:, :n // 256], atol=2e-5)
  np.testing.assert_allclose(osd, offline["osd"][:, :n // 256], atol=2e-5)
  # The frame embeddings (the live diarizer's speaker evidence) too, against flax offline.
  want = model.apply(variables, features_lib.extract(jnp.asarray(audio), config.features))
  np.testing.assert_allclose(emb, np.asarray(want["frame_emb"])[:, :n // 256], atol=1e-4)
  # A model with full (unwindowed) attention has no streaming step, and says so.
  config.model.use_attention = True
  config.model.attention_window = 0
  model = model_lib.from_config(config.model)
  export.export(config, model_lib.init_variables(model, jax.random.key(0), d),
                tmp_path / "attn.jaxdiar", platforms=("cpu",))
  with pytest.raises(runtime.ModelFileError, match="streaming"):
    runtime.load(tmp_path / "attn.jaxdiar").stream_init()
  assert runtime.load(tmp_path / "attn.jaxdiar").stream_outputs == ()


def test_export_set_changes_only_the_decoding_settings(exported, tmp_path):
  path, _ = exported
  out = tmp_path / "tuned.jaxdiar"
  run = lambda *a: subprocess.run([sys.executable, "-m", "jaxdiar.export", *a],
                                  capture_output=True, text=True, timeout=300)
  done = run("--model", str(path), "--set", "resegment_threshold=0.7",
             "--set", "cluster_threshold=0.3", "--out", str(out))
  assert done.returncode == 0, done.stderr[-2000:]
  before, after = runtime.load(path), runtime.load(out)
  assert after.meta["inference"] == dict(before.meta["inference"], resegment_threshold=0.7,
                                         cluster_threshold=0.3)
  assert {k: v for k, v in after.meta.items() if k != "inference"} == \
      {k: v for k, v in before.meta.items() if k != "inference"}
  audio = (0.1 * np.random.default_rng(0).standard_normal((1, 8, 16000))).astype(np.float32)
  for k, v in before(audio).items():
    np.testing.assert_array_equal(np.asarray(after(audio)[k]), np.asarray(v))
  for args, message in [(["--set", "nope=1"], "unknown decoding setting(s) nope"),
                        (["--set", "onset=high"], "not JSON"),
                        (["--set", "onset"], "expected KEY=JSON")]:
    bad = run("--model", str(path), *args, "--out", str(tmp_path / "bad.jaxdiar"))
    assert bad.returncode == 2 and message in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "bad.jaxdiar").exists()


def test_export_blend_interpolates_the_weights_and_keeps_the_base_decoding(exported, tmp_path):
  _, workdir = exported
  config, tuned, _ = checkpoints.load_checkpoint(workdir)
  rng = np.random.default_rng(1)
  base_vars = jax.tree.map(lambda x: np.asarray(x) + rng.standard_normal(np.shape(x)).astype(
      np.asarray(x).dtype), tuned)
  base_config = config.copy_and_resolve_references()
  base_config.inference.cluster_threshold = 0.33
  base = tmp_path / "base.jaxdiar"
  export.export(base_config, base_vars, base, platforms=("cpu",))
  out = tmp_path / "blend.jaxdiar"
  assert cli_export.main(["--workdir", str(workdir), "--blend", f"{base}:0.25",
                          "--out", str(out)]) == 0
  got = runtime.load(out)
  assert got.meta["inference"] == runtime.load(base).meta["inference"]
  assert got.meta["inference"]["cluster_threshold"] == 0.33
  want = jax.tree.map(lambda b, t: 0.75 * b + 0.25 * np.asarray(t), base_vars, tuned)
  for g, w in zip(jax.tree.leaves(got.variables), jax.tree.leaves(want)):
    np.testing.assert_allclose(np.asarray(g), w, rtol=1e-6, atol=1e-6)
  for a in (0.0, 1.0):                               # the ends are the two models exactly
    ends = export.blend(base_vars, tuned, a)
    for g, w in zip(jax.tree.leaves(ends), jax.tree.leaves(base_vars if a == 0 else tuned)):
      np.testing.assert_array_equal(g, np.asarray(w))
  for blend_arg, message in [(f"{base}:1.5", "not in [0, 1]"), (str(base), "expected BASE:ALPHA"),
                             (f"{tmp_path / 'none.jaxdiar'}:0.5", "none.jaxdiar")]:
    bad = subprocess.run([sys.executable, "-m", "jaxdiar.export", "--workdir", str(workdir),
                          "--blend", blend_arg, "--out", str(tmp_path / "bad.jaxdiar")],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and message in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "bad.jaxdiar").exists()


def test_bad_model_file(tmp_path):
  (tmp_path / "m.jaxdiar").write_bytes(b"nope")
  with pytest.raises(runtime.ModelFileError, match="not a .jaxdiar"):
    runtime.load(tmp_path / "m.jaxdiar")


def test_float16_storage_halves_the_file_and_keeps_the_outputs(exported, tmp_path):
  path, workdir = exported
  half = tmp_path / "half.jaxdiar"
  assert cli_export.main(["--workdir", str(workdir), "--float16", "--out", str(half)]) == 0
  copy = tmp_path / "copy.jaxdiar"
  assert cli_export.main(["--model", str(path), "--float16", "--out", str(copy)]) == 0
  full_model, half_model, copy_model = runtime.load(path), runtime.load(half), runtime.load(copy)
  assert half.stat().st_size < 0.6 * path.stat().st_size
  for a, b in zip(jax.tree.leaves(full_model.variables), jax.tree.leaves(half_model.variables)):
    assert b.dtype == a.dtype                       # computed in the exported dtype
    np.testing.assert_allclose(b, a.astype(np.float16).astype(a.dtype), rtol=0, atol=0)
  assert copy_model.fingerprint == half_model.fingerprint       # the same stored weights
  audio = (0.1 * np.random.default_rng(0).standard_normal((1, 8, 16000))).astype(np.float32)
  ref, out = full_model(audio), half_model(audio)
  for k in ref:
    np.testing.assert_allclose(np.asarray(out[k]), np.asarray(ref[k]), atol=2e-2)


def test_export_again_gives_the_frame_embeddings_of_an_older_file(exported, tmp_path,
                                                                   monkeypatch):
  """A file exported before the forward gave its frame embeddings, exported again from its
  own weights with its config: the same outputs and settings, and the frame embeddings (whose
  probability-weighted means are the local speakers' embeddings)."""
  _, workdir = exported
  config, variables, _ = checkpoints.load_checkpoint(workdir)
  config.inference.cluster_threshold = 0.31
  with_frames = export.forward_with
  def without_frames(model, fcfg):
    forward = with_frames(model, fcfg)
    return lambda *a: {k: v for k, v in forward(*a).items() if k != "frame_emb"}
  monkeypatch.setattr(export, "forward_with", without_frames)
  old = tmp_path / "old.jaxdiar"
  export.export(config, variables, old, platforms=("cpu",))
  monkeypatch.setattr(export, "forward_with", with_frames)
  assert "frame_emb" not in runtime.load(old).outputs
  new = tmp_path / "new.jaxdiar"
  assert cli_export.main(["--model", str(old), "--config", "configs/smoke.py",
                          "--out", str(new)]) == 0
  before, after = runtime.load(old), runtime.load(new)
  assert after.meta == dict(before.meta, platforms=after.meta["platforms"])
  assert after.meta["inference"]["cluster_threshold"] == 0.31
  audio = (0.1 * np.random.default_rng(0).standard_normal((1, 8, 16000))).astype(np.float32)
  a, b = before(audio), after(audio)
  for k in a:
    np.testing.assert_allclose(np.asarray(b[k]), np.asarray(a[k]), atol=1e-6)
  vad, emb = np.asarray(b["vad"])[0], np.asarray(b["frame_emb"])[0]
  np.testing.assert_allclose((vad.T @ emb) / vad.sum(axis=0)[:, None],
                             np.asarray(b["spk_emb"])[0], rtol=1e-4, atol=1e-4)
  other = config.copy_and_resolve_references()
  other.model.embedding_dim = config.model.embedding_dim * 2
  with pytest.raises(ValueError, match="not the file's"):
    export.again(old, other, tmp_path / "bad.jaxdiar")
  assert not (tmp_path / "bad.jaxdiar").exists()
