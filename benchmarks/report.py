"""Print the README's Performance table from the latest results JSON.

python -m benchmarks.report [results.json]
"""

import json
import pathlib
import sys

from benchmarks import common


def main(argv=None):
  argv = sys.argv[1:] if argv is None else argv
  if argv:
    path = pathlib.Path(argv[0])
  else:               # the newest run_all file (accuracy, errors, ... files hold other tables)
    files = sorted((p for p in common.RESULTS.glob("*.json")
                    if not p.name.startswith("training-")
                    and "benchmarks" in json.loads(p.read_text())), key=lambda p: p.stat().st_mtime)
    if not files:
      raise SystemExit(f"{common.RESULTS}: no benchmarks.run_all results")
    path = files[-1]
  data = json.loads(path.read_text())
  m, b = data["machine"], data["benchmarks"]
  print(f"Measured on {m['cpu']} ({m['cores']} cores, {m['device_kind']}), jax {m['jax']}, "
        f"torch {m['torch']} — `{path.relative_to(common.RESULTS.parents[1])}`.\n")
  print("| benchmark | figure | value | what it means |\n| --- | --- | --- | --- |")
  if "train_step" in b:
    rows = {r["impl"]: r for r in b["train_step"]["rows"]}
    jax_row = next(r for k, r in rows.items() if k.startswith("jax"))
    print(f"| train step ({b['train_step']['batch']} × {b['train_step']['seconds']:g} s, 8 ch) | "
          f"JAX step | {jax_row['step_s']:.2f} s | whole step: features from raw audio, model, "
          "loss, AdamW |")
    ts = b["train_step"]
    if "jax from features" in rows:
      r = rows["jax from features"]
      print(f"| | JAX step from precomputed features | {r['step_s']:.2f} s | the work of the "
            f"PyTorch step below; MFU {100 * r['mfu']:.0f} % |")
    for name in ("torch eager", "torch.compile"):
      if name in rows:
        print(f"| | PyTorch {name} time / JAX time | {rows[name]['jax_speedup']:.2f} | PyTorch "
              f"seed step {rows[name]['step_s']:.2f} s from precomputed features (> 1: JAX "
              f"faster); it runs at {100 * rows[name]['mfu']:.0f} % of the matmul peak |")
    if "bound_speedup_vs_torch" in ts:
      print(f"| | best possible ratio here | {ts['bound_speedup_vs_torch']:.2f} | 1 / MFU of "
            f"{ts['bound_against']}: what a step at 100 % of the matmul peak would reach |")
    print(f"| | MFU | {100 * jax_row['mfu']:.0f} % | XLA cost-analysis FLOPs / step time / "
          f"measured matmul peak ({ts['matmul_peak_gflops']:.0f} GFLOP/s); medians over "
          f"{ts.get('rounds', 1)} interleaved rounds |")
  if "pit" in b:
    for r in b["pit"]["rows"]:
      print(f"| PIT ({b['pit']['batch']} × {b['pit']['frames']} frames) | S = {r['S']} | "
            f"{r['vectorised_ms']:.2f} ms | {r['speedup_vs_loop']:.0f}× the permutation loop, "
            f"{r['speedup_vs_hungarian']:.2f}× scipy Hungarian |")
  if "features" in b:
    for r in b["features"]["rows"]:
      print(f"| features `{r['kind']}` | throughput | {r['jax_hours_per_s']:.3f} h/s | "
            f"{r['speedup']:.1f}× the numpy/librosa reference ({r['reference_hours_per_s']:.3f} h/s)"
            + (f"; at most {r['bound_speedup']:.0f}× with this FFT" if "bound_speedup" in r else "")
            + " |")
  if "data" in b:
    d = b["data"]
    print(f"| simulator ({d['speech']} speech, {d['meeting_seconds']:g} s meetings) | "
          f"meetings/min | {d['meetings_per_minute']:.1f} | 8 mics, room acoustics, noise |")
    print(f"| grain loader (augmented) | examples/s | {d['loader_examples_per_s']:.0f} | "
          f"{d['loader_headroom']:.0f}× what the default train step consumes "
          f"({d['train_step_examples_per_s']:.1f}/s) |")
  if "stream" in b:
    for r in b["stream"]["rows"]:
      print(f"| streaming step, {r['block_ms']:g} ms blocks | compute per block | "
            f"{r['step_ms']:.1f} ms | causal model; algorithmic latency {r['algorithmic_latency_ms']:.0f} ms |")
  if "diarize" in b:
    for r in b["diarize"]["rows"]:
      print(f"| diarize, {r['minutes']:g} min 8 ch | RTF / peak RSS | {r['rtf']:.3f} / "
            f"{r['peak_rss_mib']:.0f} MiB | features + model + clustering, fresh process |")


if __name__ == "__main__":
  main()
