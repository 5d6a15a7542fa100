"""Train step: jaxdiar vs the PyTorch seed (eager and torch.compile), and model FLOPs
utilisation against the matmul peak measured in the same run.

python -m benchmarks.bench_train_step [--batch 8] [--seconds 8] [--skip-compile]

The JAX step is the real one: features from raw 8-channel audio inside the step, model,
multi-task loss with vectorised PIT, AdamW. The PyTorch step starts from precomputed
771-dim features (an advantage to PyTorch) with the seed's loop over permutations.
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common
from configs import default
from jaxdiar.core import features as features_lib
from jaxdiar.training import build


def matmul_peak(n: int | None = None, dtype=jnp.float32) -> float:
  """FLOP/s of a large jitted matmul of random data on this device: the practical peak
  (2048^2 on CPU, 8192^2 on an accelerator, where smaller products do not fill it)."""
  n = n or (2048 if jax.devices()[0].platform == "cpu" else 8192)
  a = jax.random.normal(jax.random.key(0), (n, n), dtype)
  f = jax.jit(lambda x: x @ x)
  t = common.timeit(lambda: f(a).block_until_ready(), repeat=10)
  return 2 * n ** 3 / t


def _batch(batch_size, seconds):
  rng = np.random.default_rng(0)
  n = int(seconds * 16000)
  t = 1 + n // 256
  act = (rng.random((batch_size, t, 4)) < 0.3).astype(np.uint8)
  return dict(audio=(0.1 * rng.standard_normal((batch_size, 8, n))).astype(np.float32),
              activity=act, overlap=(act.sum(-1) >= 2).astype(np.uint8),
              speaker_ids=rng.integers(0, 200, (batch_size, 4)).astype(np.int32))


def jax_step(batch_size, seconds, dtype="float32", from_features=False):
  """A compiled JAX train step as a no-argument callable, with its FLOPs and compile time.

  from_features: the step starts from precomputed 771-dim features (the same work as the
  PyTorch step), given to steps.train_step as batch["features"].
  """
  config = default.get_config()
  config.train.compute_dtype = dtype
  built = build.build(config, num_speaker_classes=200, devices=jax.local_devices()[:1])
  state = built.init(jax.random.key(0))
  batch = _batch(batch_size, seconds)
  frames = batch["activity"].shape[1]
  if from_features:
    batch["features"] = np.asarray(
        jax.jit(lambda a: features_lib.extract(a, config.features))(batch.pop("audio")))
  step = built.train_step
  t0 = time.perf_counter()
  compiled = step.lower(state, batch, jax.random.key(1)).compile()
  compile_s = time.perf_counter() - t0
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  holder = {"state": state}

  def run():
    holder["state"], m = compiled(holder["state"], batch, jax.random.key(1))
    jax.block_until_ready(m)

  return run, float(cost.get("flops", 0.0)), compile_s, frames


def torch_step(batch_size, frames, compile_model: bool, autocast_bf16: bool = False):
  """The PyTorch seed step (on CUDA when there is one) as a no-argument callable."""
  import torch
  from benchmarks import torch_baseline
  device = "cuda" if torch.cuda.is_available() else "cpu"
  torch.manual_seed(0)
  model = torch_baseline.SeedModel(num_classes=200).to(device)
  opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
  feats = torch.randn(batch_size, 771, frames, device=device)
  act = (torch.rand(batch_size, frames, 4, device=device) < 0.3).float()
  overlap = (act.sum(-1) >= 2).float()
  ids = torch.randint(0, 200, (batch_size, 4), device=device)
  forward = torch.compile(model) if compile_model else model

  def run():
    opt.zero_grad(set_to_none=True)
    with torch.autocast(device, dtype=torch.bfloat16, enabled=autocast_bf16):
      vad, osd, emb, logits = forward(feats)
      loss = torch_baseline.seed_loss(model, vad, osd, emb, logits, act, overlap, ids)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    if device == "cuda":
      torch.cuda.synchronize()

  t0 = time.perf_counter()
  run()
  return run, time.perf_counter() - t0


def main(argv=None):
  p = argparse.ArgumentParser()
  p.add_argument("--batch", type=int, default=8)
  p.add_argument("--seconds", type=float, default=8.0)
  p.add_argument("--skip-compile", action="store_true", help="skip torch.compile")
  p.add_argument("--dtypes", default="float32")
  p.add_argument("--rounds", type=int, default=3,
                 help="interleaved rounds (every implementation timed once per round); "
                      "figures are medians over rounds, so a slow spell of a shared machine "
                      "hits every implementation alike")
  args = p.parse_args(argv)
  dtypes = args.dtypes.split(",")
  impls = {}   # name -> dict(run, flops, first_s, dtype): dtype picks the peak for its MFU
  frames = None
  for dtype in dtypes:
    run, flops, compile_s, frames = jax_step(args.batch, args.seconds, dtype)
    impls[f"jax ({dtype})"] = dict(run=run, flops=flops, first_s=compile_s, dtype=dtype)
  run, model_flops, compile_s, _ = jax_step(args.batch, args.seconds, from_features=True)
  impls["jax from features"] = dict(run=run, flops=model_flops, first_s=compile_s,
                                    dtype="float32")
  try:
    import torch
    torch.set_num_threads(max(1, __import__("os").cpu_count()))
    torch_names = ["torch eager"] + ([] if args.skip_compile else ["torch.compile"])
    for name in torch_names:
      run, first = torch_step(args.batch, frames, name == "torch.compile")
      # The PyTorch step does the work of "jax from features": count that step's FLOPs.
      impls[name] = dict(run=run, flops=model_flops, first_s=first, dtype="float32")
    if "bfloat16" in dtypes and torch.cuda.is_available():
      run, first = torch_step(args.batch, frames, False, autocast_bf16=True)
      impls["torch eager bf16 autocast"] = dict(run=run, flops=model_flops, first_s=first,
                                                dtype="bfloat16")
  except ImportError:
    print("torch not installed (pip install -e '.[bench]'): PyTorch baseline skipped")
  times = {name: [] for name in impls}
  peaks = {dtype: [] for dtype in {impl["dtype"] for impl in impls.values()}}
  for r in range(args.rounds):
    for dtype in peaks:
      peaks[dtype].append(matmul_peak(dtype=jnp.dtype(dtype)))
    for name, impl in impls.items():
      times[name].append(common.timeit(impl["run"], warmup=1, repeat=3))
    print(f"round {r + 1}/{args.rounds}: " + ", ".join(
        f"{k} {v[-1]:.3f} s" for k, v in times.items()), flush=True)
  peak = {dtype: float(np.median(v)) for dtype, v in peaks.items()}
  base = next(iter(impls))
  rows = []
  for name, impl in impls.items():
    step_s = float(np.median(times[name]))
    ratios = [b / a for a, b in zip(times[base], times[name])]   # per round, this / JAX
    rows.append(dict(impl=name, step_s=step_s, frames_per_s=args.batch * frames / step_s,
                     gflops_per_step=impl["flops"] / 1e9,
                     mfu=impl["flops"] / step_s / peak[impl["dtype"]],
                     first_s=impl["first_s"], jax_speedup=float(np.median(ratios))))
  result = dict(batch=args.batch, seconds=args.seconds, rounds=args.rounds,
                matmul_peak_gflops=peak["float32"] / 1e9,
                matmul_peak_gflops_by_dtype={k: v / 1e9 for k, v in peak.items()},
                matmul_peak_gflops_rounds={k: [x / 1e9 for x in v] for k, v in peaks.items()},
                rows=rows)
  torch_rows = [r for r in rows if r["impl"].startswith("torch")]
  if torch_rows:
    fastest = max((r for r in torch_rows if "bf16" not in r["impl"]), key=lambda r: r["mfu"])
    # If JAX ran the model at the matmul peak it would be 1 / torch MFU times faster than
    # PyTorch on the same work: no implementation can beat this ratio on this device.
    result["bound_speedup_vs_torch"] = 1.0 / fastest["mfu"]
    result["bound_against"] = fastest["impl"]
  print("matmul peak " + ", ".join(f"{k} {v / 1e9:.1f}" for k, v in peak.items()) + " GFLOP/s")
  print(common.table(rows))
  if "bound_speedup_vs_torch" in result:
    print(f"{result['bound_against']} runs at {100 * fastest['mfu']:.0f}% of the matmul peak: no "
          f"implementation can be more than {result['bound_speedup_vs_torch']:.2f}x faster here")
  print(f"-> {common.record('train_step', result)}")


if __name__ == "__main__":
  main()
