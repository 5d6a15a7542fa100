"""python -m jaxdiar.export (--workdir DIR [--step N] | --variables DIR) --out model.jaxdiar

Features + model forward as one `jax.export` artifact (symbolic batch and sample count),
with its config inside; causal models get a streaming step too. Load with
`jaxdiar.runtime.load`, which needs neither flax nor the model code.
"""

import argparse
import io
import json
import pathlib
import sys
import zipfile

import jax
from jax import export as jax_export
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from jaxdiar import atomic
from jaxdiar import features as features_lib
from jaxdiar import model as model_lib
from jaxdiar import runtime


def load_checkpoint(workdir, step: int | None = None):
  """(config, variables) of a training workdir: its latest, or the given, checkpoint."""
  workdir = pathlib.Path(workdir)
  config_file = workdir / "config.json"
  if not config_file.exists():
    raise FileNotFoundError(f"{workdir}: no config.json (not a jaxdiar training workdir)")
  config = ml_collections.ConfigDict(json.loads(config_file.read_text()))
  with ocp.CheckpointManager((workdir / "checkpoints").absolute()) as mngr:
    step = mngr.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"{workdir}: no checkpoint")
    restored = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
  state = restored["state"]
  return config, {"params": state["params"], "batch_stats": state["batch_stats"]}, step


def forward_fn(model, variables, fcfg):
  """audio [B, C, N] -> probabilities and local embeddings, with `variables` closed over."""
  return lambda audio: forward_with(model, fcfg)(variables, audio)


def forward_with(model, fcfg):
  """(variables, audio) -> outputs: the weights are an argument, not baked-in constants
  (XLA then compiles a small program, in a fraction of the memory)."""
  def forward(variables, audio):
    out = model.apply(variables, features_lib.extract(audio, fcfg), train=False)
    return dict(vad=jax.nn.sigmoid(out["vad"]), osd=jax.nn.sigmoid(out["osd"]),
                spk_emb=out["spk_emb"])
  return forward


def stream_fn(model, fcfg):
  def step(variables, block, state):
    feats, stft_state = features_lib.extract_stream(block, state["stft"], fcfg)
    out, cache = model.apply(variables, feats, state["model"],
                             method=model_lib.DiarizationTCN.stream)
    return (dict(vad=jax.nn.sigmoid(out["vad"]), osd=jax.nn.sigmoid(out["osd"])),
            dict(stft=stft_state, model=cache))
  return step


def export(config, variables, out, *, platforms=("cpu", "cuda", "tpu")) -> dict:
  """Write the .jaxdiar file for a config and its variables; returns its meta."""
  model = model_lib.from_config(config.model)
  fcfg = config.features
  num_channels = len(fcfg.mic_positions)
  b, n = jax_export.symbolic_shape("b, n", constraints=[f"n >= {fcfg.n_fft}"])
  audio_spec = jax.ShapeDtypeStruct((b, num_channels, n), jnp.float32)
  var_spec = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), variables)
  forward = jax_export.export(jax.jit(forward_with(model, fcfg)),
                              platforms=platforms)(var_spec, audio_spec)
  weights = io.BytesIO()
  np.savez(weights, *[np.asarray(x) for x in jax.tree.leaves(variables)])
  files = {"forward.jaxexport": forward.serialize(), "variables.npz": weights.getvalue()}
  block_frames = config.inference.stream_block_frames
  if config.model.causal and not config.model.use_attention:
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
  with atomic.atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("meta.json", json.dumps(meta, indent=1))
    for name, data in files.items():
      z.writestr(name, bytes(data))
  return meta


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog="python -m jaxdiar.export", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  src = p.add_mutually_exclusive_group(required=True)
  src.add_argument("--workdir", help="a jaxdiar.train workdir (orbax checkpoints)")
  src.add_argument("--variables", help="a jaxdiar.online output folder (variables-*.npz)")
  p.add_argument("--out", required=True)
  p.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
  args = p.parse_args(argv)
  try:
    atomic.check_output(args.out)
    if args.variables:
      from jaxdiar import online
      config, variables = online.load_variables(args.variables)
      step = "final"
    else:
      config, variables, step = load_checkpoint(args.workdir, args.step)
  except (FileNotFoundError, atomic.OutputError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  meta = export(config, variables, args.out)
  kinds = "forward + streaming step" if meta["causal"] and not config.model.use_attention else "forward"
  print(f"exported step {step} of {args.workdir or args.variables} to {args.out} ({kinds})")
  return 0


if __name__ == "__main__":
  sys.exit(main())
