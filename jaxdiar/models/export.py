"""Features + model forward as one `jax.export` artifact (symbolic batch and sample count),
with its config inside; causal models get a streaming step too. Load with
`jaxdiar.models.runtime.load`, which needs neither flax nor the model code. The second form
copies an exported model with some of its decoding settings (`meta["inference"]`, what
`diarize` uses when the command line does not say otherwise) changed, e.g. settings found on
dev meetings. The third writes a fine-tune's weights interpolated with those of the model it
started from, (1 - ALPHA) * base + ALPHA * fine-tuned (WiSE-FT, Wortsman
et al. 2022), with the base file's decoding settings.
"""

import io
import json
import zipfile

import jax
from jax import export as jax_export
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxdiar.core import features as features_lib
from jaxdiar.core import model as model_lib
from jaxdiar.decoding import settings as settings_lib
from jaxdiar.io import atomic
from jaxdiar.models import bundled
from jaxdiar.models import runtime


def forward_fn(model, variables, fcfg):
  """audio [B, C, N] -> probabilities and local embeddings, with `variables` closed over."""
  return lambda audio: forward_with(model, fcfg)(variables, audio)


def forward_with(model, fcfg):
  """(variables, audio) -> outputs: the weights are an argument, not baked-in constants
  (XLA then compiles a small program, in a fraction of the memory). For features that take
  the geometry (`srp`): (variables, audio, mics [C, 3], mic_mask [C]) -> outputs."""
  def forward(variables, audio, mics=None, mic_mask=None):
    if mics is not None:
      b = audio.shape[0]
      mics = jnp.broadcast_to(mics, (b,) + mics.shape)
      mic_mask = jnp.broadcast_to(mic_mask, (b,) + mic_mask.shape)
    feats = features_lib.extract(audio, fcfg, mics, mic_mask)
    out = model.apply(variables, feats, train=False)
    return dict(vad=jax.nn.sigmoid(out["vad"]), osd=jax.nn.sigmoid(out["osd"]),
                spk_emb=out["spk_emb"], frame_emb=out["frame_emb"])
  return forward


def stream_fn(model, fcfg):
  def step(variables, block, state):
    feats, stft_state = features_lib.extract_stream(block, state["stft"], fcfg)
    out, cache = model.apply(variables, feats, state["model"],
                             method=model_lib.DiarizationTCN.stream)
    return (dict(vad=jax.nn.sigmoid(out["vad"]), osd=jax.nn.sigmoid(out["osd"]),
                 frame_emb=out["frame_emb"]), dict(stft=stft_state, model=cache))
  return step


def _weights_npz(leaves, float16: bool) -> bytes:
  """The variables' leaves as `variables.npz`; with `float16`, floating leaves stored in half
  precision (runtime.load casts them back to the exported dtype: half the file)."""
  weights = io.BytesIO()
  np.savez(weights, *[np.asarray(x).astype(np.float16)
                      if float16 and np.issubdtype(np.asarray(x).dtype, np.floating)
                      else np.asarray(x) for x in leaves])
  return weights.getvalue()


def export(config, variables, out, *, platforms=("cpu", "cuda", "tpu"),
           float16: bool = False) -> dict:
  """Write the .jaxdiar file for a config and its variables; returns its meta. `float16`:
  store the weights in half precision (computation stays float32)."""
  model = model_lib.from_config(config.model)
  fcfg = config.features
  num_channels = len(fcfg.mic_positions)
  b, n = jax_export.symbolic_shape("b, n", constraints=[f"n >= {fcfg.n_fft}"])
  audio_spec = jax.ShapeDtypeStruct((b, num_channels, n), jnp.float32)
  var_spec = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), variables)
  geometry_specs = ()
  if features_lib.kind(fcfg.kind).takes_positions:
    geometry_specs = (jax.ShapeDtypeStruct((num_channels, 3), jnp.float32),
                      jax.ShapeDtypeStruct((num_channels,), jnp.float32))
  forward = jax_export.export(jax.jit(forward_with(model, fcfg)),
                              platforms=platforms)(var_spec, audio_spec, *geometry_specs)
  files = {"forward.jaxexport": forward.serialize(),
           "variables.npz": _weights_npz(jax.tree.leaves(variables), float16)}
  block_frames = config.inference.stream_block_frames
  if model_lib.streamable(config.model):
    d = features_lib.feature_dim(fcfg)
    sb, = jax_export.symbolic_shape("b")
    cache = jax.eval_shape(lambda: model.stream_cache(1, d))
    state_spec = dict(
        stft=jax.ShapeDtypeStruct((sb, num_channels, fcfg.n_fft - fcfg.hop), jnp.float32),
        model=jax.tree.map(lambda a: jax.ShapeDtypeStruct((sb,) + a.shape[1:], a.dtype), cache))
    block_spec = jax.ShapeDtypeStruct((sb, num_channels, block_frames * fcfg.hop), jnp.float32)
    stream = jax_export.export(jax.jit(stream_fn(model, fcfg)),
                               platforms=platforms)(var_spec, block_spec, state_spec)
    files["stream.jaxexport"] = stream.serialize()
  inf = config.inference
  meta = dict(format_version=runtime.FORMAT_VERSION, sample_rate=fcfg.sample_rate,
              n_fft=fcfg.n_fft, hop=fcfg.hop, num_channels=num_channels,
              mic_positions=list(map(list, fcfg.mic_positions)), feature_kind=fcfg.kind,
              num_speakers=config.model.num_speakers, embedding_dim=config.model.embedding_dim,
              causal=config.model.causal, stream_block_frames=block_frames,
              inference=inf.to_dict(), platforms=list(platforms))
  _write_model(out, {"meta.json": json.dumps(meta, indent=1).encode(), **files})
  return meta


def again(model, config, out, *, float16: bool = False) -> dict:
  """Export the weights and decoding settings of an exported `model` (a file or a bundled
  model's name) again with this version's forward (e.g. its frame embeddings, which files
  exported before 2026-12-07 do not give). `config`: the config the model was trained with
  (its model and features sections). Raises ValueError where the config's network or
  features are not the file's (checked on a second of noise)."""
  old = runtime.load(bundled.resolve(model))
  config = config.copy_and_resolve_references()
  variables = old.variables
  classes = variables.get("params", {}).get("classifier", {}).get("fc2", {}).get("kernel")
  if classes is not None:                      # the training corpus's speakers
    config.model.num_speaker_classes = int(classes.shape[-1])
  fcfg = config.features
  for key in ("sample_rate", "n_fft", "hop"):
    if fcfg[key] != old.meta[key]:
      raise ValueError(f"config features.{key} {fcfg[key]} is not the file's {old.meta[key]}")
  if fcfg.kind != old.meta["feature_kind"] or not np.allclose(
      np.asarray(fcfg.mic_positions), np.asarray(old.meta["mic_positions"])):
    raise ValueError("the config's features (kind, microphones) are not the file's")
  net = model_lib.from_config(config.model)
  shapes = jax.eval_shape(lambda: model_lib.init_variables(net, jax.random.key(0),
                                                           features_lib.feature_dim(fcfg)))
  want = jax.tree_util.tree_map_with_path(lambda p, a: (jax.tree_util.keystr(p), a.shape),
                                          shapes)
  have = jax.tree_util.tree_map_with_path(lambda p, a: (jax.tree_util.keystr(p), a.shape),
                                          variables)
  if sorted(jax.tree.leaves(want, is_leaf=lambda x: isinstance(x, tuple))) != sorted(
      jax.tree.leaves(have, is_leaf=lambda x: isinstance(x, tuple))):
    raise ValueError("the config's network is not the file's (its variables differ in "
                     "names or shapes)")
  config.inference = ml_collections.ConfigDict(old.meta["inference"])
  meta = export(config, variables, out, float16=float16)
  new = runtime.load(out)
  noise = np.random.default_rng(0).normal(0, 0.1, (1, old.num_channels, old.sample_rate))
  args = (noise, np.asarray(old.meta["mic_positions"])) if old.takes_geometry else (noise,)
  a, b = old(*args), new(*args)
  gap = max(float(np.max(np.abs(np.asarray(a[k]) - np.asarray(b[k])))) for k in a)
  if gap > 1e-3:
    raise ValueError(f"the exported file does not reproduce {model} (outputs differ by "
                     f"{gap:.3g}): the config is not the one the model was trained with")
  return meta


def blend(base, tuned, alpha: float):
  """(1 - alpha) * base + alpha * tuned, leaf by leaf (two variable trees of one model)."""
  if not 0.0 <= alpha <= 1.0:
    raise ValueError(f"blend weight {alpha} is not in [0, 1]")
  if jax.tree.structure(base) != jax.tree.structure(tuned):
    raise ValueError("the two models' variables differ in structure (not the same network)")
  def mix(b, t):
    b, t = np.asarray(b), np.asarray(t)
    if b.shape != t.shape:
      raise ValueError(f"variables of shape {b.shape} and {t.shape} cannot be blended")
    return ((1.0 - alpha) * b.astype(np.float64) + alpha * t.astype(np.float64)).astype(b.dtype)
  return jax.tree.map(mix, base, tuned)


def _write_model(out, entries: dict) -> None:
  """The .jaxdiar zip of `entries` (name -> bytes), written atomically."""
  with atomic.atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
    for name, data in entries.items():
      z.writestr(name, bytes(data))


def set_inference(model, out, settings: dict, float16: bool = False) -> dict:
  """Copy the exported `model` to `out` with `settings` merged into its decoding settings
  (everything else byte for byte, but with `float16` the weights stored in half precision).
  Unknown keys raise ValueError. `model`: a file or a bundled model's name. Returns the new
  meta."""
  with zipfile.ZipFile(bundled.resolve(model)) as z:
    entries = {name: z.read(name) for name in z.namelist()}
  meta = json.loads(entries["meta.json"])
  settings_lib.validate(settings)
  meta["inference"].update(settings)
  if float16:
    with np.load(io.BytesIO(entries["variables.npz"])) as w:
      entries["variables.npz"] = _weights_npz([w[f"arr_{i}"] for i in range(len(w.files))], True)
  entries["meta.json"] = json.dumps(meta, indent=1).encode()
  _write_model(out, entries)
  return meta
