"""Throughput and latency of `jaxdiar.serve`: 30 s 8-channel uploads at concurrency 1, 4, 8.

  python -m benchmarks.bench_serve [--model array8] [--workers 2] [--requests 16]

Starts the service on a free port of 127.0.0.1 (model loaded and compiled before the clock
starts), posts the same 30 s recording (the first 30 s of a dev meeting when the dev speech is
present, else a procedurally simulated meeting) from N client threads, and reports requests/s
and p50/p95 latency per concurrency level, with the CLI's in-process time for the same file as
the baseline measured in the same run. JSON in benchmarks/results/serve-<date>.json.
"""

import argparse
import concurrent.futures
import datetime
import os
import pathlib
import platform
import socket
import subprocess
import sys
import tempfile
import time

import httpx
import numpy as np
import soundfile as sf

from benchmarks import bench_accuracy
from benchmarks import common
from configs import default
from jaxdiar import diarize
from jaxdiar.cli import simulate as cli_simulate
from jaxdiar.data import devmeetings
from jaxdiar.models import bundled
from jaxdiar.models import runtime

def recording(folder: pathlib.Path, seconds: float = 30.0) -> pathlib.Path:
  path = folder / "upload.wav"
  speech = pathlib.Path(bench_accuracy.DEV_SPEECH)
  if speech.is_dir():
    meetings_dir, meetings = devmeetings.cached(str(speech), num_meetings=16, seed=2026,
                                                geometry=default.circular_array())
    src = meetings_dir / f"{meetings[0]['uri']}.wav"
  else:
    cli_simulate.main(["--out", str(folder / "sim"), "--num-meetings", "1",
                       "--duration", str(seconds)])
    src = folder / "sim" / "meeting00000.wav"
  audio, rate = sf.read(src, frames=int(seconds * 16000), dtype="int16")
  sf.write(path, audio, rate, subtype="PCM_16")
  return path


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--model", default="array8", help="bundled name or .jaxdiar path")
  p.add_argument("--workers", type=int, default=2)
  p.add_argument("--requests", type=int, default=16, help="requests per concurrency level")
  p.add_argument("--concurrency", default="1,4,8")
  p.add_argument("--out", default=None)
  args = p.parse_args(argv)
  model_path = bundled.resolve(args.model)
  tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-serve-"))
  wav = recording(tmp)
  data = wav.read_bytes()

  # Baseline in the same run: the same file through diarize in this process (compiled).
  model = runtime.load(model_path)
  diarize.diarize(wav, model, progress=False)
  times = []
  for _ in range(3):
    t0 = time.perf_counter()
    diarize.diarize(wav, model, progress=False)
    times.append(time.perf_counter() - t0)
  in_process = float(np.median(times))

  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  url = f"http://127.0.0.1:{port}"
  server = subprocess.Popen([sys.executable, "-m", "jaxdiar.serve", "--model", str(model_path),
                             "--port", str(port), "--workers", str(args.workers),
                             "--queue", "64"], stderr=subprocess.DEVNULL)
  try:
    deadline = time.time() + 300
    while True:
      try:
        if httpx.get(url + "/healthz", timeout=2).status_code == 200:
          break
      except httpx.TransportError:
        time.sleep(0.5)
      if time.time() > deadline or server.poll() is not None:
        raise RuntimeError("the server did not start")
    httpx.post(url + "/v1/diarize", content=data, timeout=300).raise_for_status()   # warm
    levels = {}
    for c in (int(x) for x in args.concurrency.split(",")):
      def one(_):
        t0 = time.perf_counter()
        r = httpx.post(url + "/v1/diarize", content=data, timeout=600)
        r.raise_for_status()
        return time.perf_counter() - t0
      t0 = time.perf_counter()
      with concurrent.futures.ThreadPoolExecutor(c) as pool:
        latencies = list(pool.map(one, range(args.requests)))
      wall = time.perf_counter() - t0
      levels[str(c)] = dict(requests=args.requests, requests_per_s=round(args.requests / wall, 3),
                            p50_s=round(float(np.percentile(latencies, 50)), 3),
                            p95_s=round(float(np.percentile(latencies, 95)), 3),
                            p50_over_in_process=round(float(np.percentile(latencies, 50))
                                                      / in_process, 2))
      print(f"concurrency {c}: {levels[str(c)]}", flush=True)
  finally:
    server.terminate()
    server.wait(30)
  result = dict(date=str(datetime.date.today()), model=str(args.model), upload_seconds=30.0,
                upload_bytes=len(data), channels=8, server_workers=args.workers,
                machine=dict(cpus=os.cpu_count(), platform=platform.platform()),
                baseline=dict(in_process_diarize_s=round(in_process, 3)), concurrency=levels)
  common.write("serve", result, args.out)
  return 0


if __name__ == "__main__":
  sys.exit(main())
