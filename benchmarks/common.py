"""Shared benchmark plumbing: timing, machine description, results JSON."""

import datetime
import json
import os
import pathlib
import platform
import time

import jax

RESULTS = pathlib.Path(__file__).resolve().parent / "results"


def machine() -> dict:
  cpu = platform.processor()
  try:
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
      if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
  except OSError:
    pass
  info = dict(cpu=cpu, cores=os.cpu_count(), python=platform.python_version(),
              jax=jax.__version__, device_kind=jax.devices()[0].device_kind,
              platform=jax.devices()[0].platform, num_devices=len(jax.devices()))
  try:
    import torch
    info["torch"] = torch.__version__
  except ImportError:
    info["torch"] = None
  return info


def machine_name() -> str:
  d = jax.devices()[0]
  return f"{d.platform}-{os.cpu_count()}core" if d.platform == "cpu" else \
      d.device_kind.lower().replace(" ", "-")


def timeit(fn, *, warmup: int = 1, repeat: int = 5, min_seconds: float = 0.0) -> float:
  """Median seconds per call of fn() (fn must block until its result is ready)."""
  for _ in range(warmup):
    fn()
  times = []
  start = time.perf_counter()
  while len(times) < repeat or time.perf_counter() - start < min_seconds:
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  times.sort()
  return times[len(times) // 2]


def record(name: str, result: dict, path: pathlib.Path | None = None) -> pathlib.Path:
  """Merge one benchmark's result into benchmarks/results/<machine>-<date>.json."""
  RESULTS.mkdir(parents=True, exist_ok=True)
  path = path or RESULTS / f"{machine_name()}-{datetime.date.today().isoformat()}.json"
  data = json.loads(path.read_text()) if path.exists() else {}
  data["machine"] = machine()
  data.setdefault("benchmarks", {})[name] = dict(
      result, measured_at=datetime.datetime.now().isoformat(timespec="seconds"))
  tmp = path.with_suffix(".tmp")
  tmp.write_text(json.dumps(data, indent=1))
  tmp.replace(path)
  return path


def write(prefix: str, result: dict, out=None) -> pathlib.Path:
  """A benchmark's own results file: `out`, or benchmarks/results/<prefix>-<date>.json."""
  path = pathlib.Path(out or RESULTS / f"{prefix}-{datetime.date.today().isoformat()}.json")
  path.write_text(json.dumps(result, indent=1, default=float) + "\n")
  print(f"wrote {path}")
  return path


def table(rows: list[dict]) -> str:
  keys = list(rows[0])
  width = {k: max(len(k), *(len(_fmt(r[k])) for r in rows)) for k in keys}
  lines = ["  ".join(k.rjust(width[k]) for k in keys)]
  lines += ["  ".join(_fmt(r[k]).rjust(width[k]) for k in keys) for r in rows]
  return "\n".join(lines)


def _fmt(v) -> str:
  if isinstance(v, float):
    return f"{v:.4g}"
  return str(v)
