"""Train step: jaxdiar vs the PyTorch seed (eager and torch.compile), and model FLOPs
utilisation against the matmul peak measured in the same run.

python -m benchmarks.bench_train_step [--batch 8] [--seconds 8] [--skip-compile]

The JAX step is the real one: features from raw 8-channel audio inside the step, model,
multi-task loss with vectorised PIT, AdamW. The PyTorch step starts from precomputed
771-dim features (an advantage to PyTorch) with the seed's loop over permutations.
"""

import argparse
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common
from configs import default
from jaxdiar import features as features_lib
from jaxdiar import model as model_lib
from jaxdiar import trainer


def matmul_peak(n: int = 2048, dtype=jnp.float32) -> float:
  """FLOP/s of a large jitted matmul on this device: the practical peak."""
  a = jnp.ones((n, n), dtype)
  f = jax.jit(lambda x: x @ x)
  t = common.timeit(lambda: f(a).block_until_ready(), repeat=10)
  return 2 * n ** 3 / t


def jax_step(batch_size, seconds, dtype="float32"):
  config = default.get_config()
  config.model.num_speaker_classes = 200
  config.train.compute_dtype = dtype
  model = model_lib.from_config(trainer.dict_with(config.model, dtype=dtype))
  tx = trainer.make_optimizer(config.train)
  state = trainer.init_state(jax.random.key(0), model=model, tx=tx,
                             num_features=features_lib.feature_dim(config.features))
  rng = np.random.default_rng(0)
  n = int(seconds * 16000)
  t = 1 + n // 256
  act = (rng.random((batch_size, t, 4)) < 0.3).astype(np.uint8)
  batch = dict(audio=(0.1 * rng.standard_normal((batch_size, 8, n))).astype(np.float32),
               activity=act, overlap=(act.sum(-1) >= 2).astype(np.uint8),
               speaker_ids=rng.integers(0, 200, (batch_size, 4)).astype(np.int32))
  step = jax.jit(functools.partial(trainer.train_step, model=model, tx=tx, config=config),
                 donate_argnums=0)
  t0 = time.perf_counter()
  compiled = step.lower(state, batch, jax.random.key(1)).compile()
  compile_s = time.perf_counter() - t0
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  holder = {"state": state}

  def run():
    holder["state"], m = compiled(holder["state"], batch, jax.random.key(1))
    jax.block_until_ready(m)

  return common.timeit(run, warmup=2, repeat=5), float(cost.get("flops", 0.0)), compile_s, t


def torch_step(batch_size, frames, compile_model: bool):
  import torch
  from benchmarks import torch_baseline
  torch.manual_seed(0)
  model = torch_baseline.SeedModel(num_classes=200)
  opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
  feats = torch.randn(batch_size, 771, frames)
  act = (torch.rand(batch_size, frames, 4) < 0.3).float()
  overlap = (act.sum(-1) >= 2).float()
  ids = torch.randint(0, 200, (batch_size, 4))
  forward = torch.compile(model) if compile_model else model

  def run():
    opt.zero_grad(set_to_none=True)
    vad, osd, emb, logits = forward(feats)
    loss = torch_baseline.seed_loss(model, vad, osd, emb, logits, act, overlap, ids)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()

  t0 = time.perf_counter()
  run()
  first = time.perf_counter() - t0
  return common.timeit(run, warmup=1, repeat=3), first


def main(argv=None):
  p = argparse.ArgumentParser()
  p.add_argument("--batch", type=int, default=8)
  p.add_argument("--seconds", type=float, default=8.0)
  p.add_argument("--skip-compile", action="store_true", help="skip torch.compile")
  p.add_argument("--dtypes", default="float32")
  args = p.parse_args(argv)
  peak = matmul_peak()
  rows, result = [], dict(batch=args.batch, seconds=args.seconds, matmul_peak_gflops=peak / 1e9)
  for dtype in args.dtypes.split(","):
    t_jax, flops, compile_s, frames = jax_step(args.batch, args.seconds, dtype)
    rows.append(dict(impl=f"jax ({dtype})", step_s=t_jax,
                     frames_per_s=args.batch * frames / t_jax,
                     gflops_per_step=flops / 1e9, mfu=flops / t_jax / peak, first_s=compile_s))
  try:
    import torch
    torch.set_num_threads(max(1, __import__("os").cpu_count()))
    t_eager, first = torch_step(args.batch, frames, False)
    rows.append(dict(impl="torch eager", step_s=t_eager, frames_per_s=args.batch * frames / t_eager,
                     gflops_per_step=float("nan"), mfu=float("nan"), first_s=first))
    if not args.skip_compile:
      t_comp, first = torch_step(args.batch, frames, True)
      rows.append(dict(impl="torch.compile", step_s=t_comp,
                       frames_per_s=args.batch * frames / t_comp,
                       gflops_per_step=float("nan"), mfu=float("nan"), first_s=first))
  except ImportError:
    print("torch not installed (pip install -e '.[bench]'): PyTorch baseline skipped")
  base = rows[0]["step_s"]
  for r in rows:
    r["jax_speedup"] = r["step_s"] / base
  print(f"matmul peak {peak / 1e9:.1f} GFLOP/s")
  print(common.table(rows))
  result["rows"] = rows
  print(f"-> {common.record('train_step', result)}")


if __name__ == "__main__":
  main()
