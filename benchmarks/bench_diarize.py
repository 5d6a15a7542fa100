"""diarize: real-time factor and peak memory vs recording length (8 channels).

python -m benchmarks.bench_diarize [--minutes 1,10,60] [--model FILE]
python -m benchmarks.bench_diarize --breakdown [--minutes 10] [--model array8]

The recordings are generated here (a temporary folder): 8-channel noise with bursts, written
in blocks. Each length runs `jaxdiar.diarize.diarize` in a fresh process; peak memory is
that process's VmHWM (not ru_maxrss, which Linux carries over from the parent across
fork + exec). Without --model, a randomly initialised default model is
exported (clustering then sees arbitrary embeddings; the time and memory are what count).

--breakdown: where the time goes, compile excluded, in this process (default model: the
bundled array8): reading the windows, features + network, the talker directions (SRP-PHAT)
and decoding, each timed apart, and the real-time factor of the whole.
"""

import argparse
import datetime
import json
import pathlib
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np
import soundfile as sf

from benchmarks import common
from configs import default
from jaxdiar import export
from jaxdiar import features as features_lib
from jaxdiar import model as model_lib


def write_recording(path, minutes: float, channels: int = 8, sr: int = 16000):
  rng = np.random.default_rng(0)
  block = 60 * sr
  with sf.SoundFile(path, "w", sr, channels, subtype="PCM_16") as f:
    for _ in range(int(np.ceil(minutes))):
      x = 0.01 * rng.standard_normal((block, channels))
      env = np.repeat(rng.random(block // 4000) < 0.5, 4000)[:, None]
      f.write((x + env * 0.1 * rng.standard_normal((block, channels))).astype(np.float32))


def breakdown(model_path, minutes: float, tmp: pathlib.Path) -> dict:
  """Seconds per stage of `diarize` on a `minutes`-long 8-channel recording."""
  from jaxdiar import diarize, runtime
  from jaxdiar.data import audio as audio_lib
  wav = tmp / f"{minutes:g}min.wav"
  write_recording(wav, minutes)
  model = runtime.load(model_path)
  o = {**diarize.DEFAULT_DECODE, **model.meta["inference"]}
  diarize.infer(wav, model, progress=False, spatial=False)          # compile
  rate, _, frames = audio_lib.info(wav)
  hop = model.hop
  window, step = (int(round(o[k] * model.sample_rate / hop)) * hop
                  for k in ("window_seconds", "step_seconds"))
  t = time.perf_counter()
  starts = diarize._window_starts(frames, window, step, hop)     # the windows infer reads
  for s in starts:
    diarize.read_block(wav, rate, model.sample_rate, s, window)
  read = time.perf_counter() - t
  t = time.perf_counter()
  diarize.infer(wav, model, progress=False, spatial=False)
  without = time.perf_counter() - t
  t = time.perf_counter()
  inference = diarize.infer(wav, model, progress=False, spatial=True)
  full = time.perf_counter() - t
  t = time.perf_counter()
  diarize.decode(inference, o)
  decode = time.perf_counter() - t
  wav.unlink()
  seconds = frames / rate
  return dict(minutes=minutes, windows=len(starts), read_s=read, model_s=without - read,
              directions_s=full - without, decode_s=decode, total_s=full + decode,
              rtf=(full + decode) / seconds)


def main(argv=None):
  p = argparse.ArgumentParser()
  p.add_argument("--minutes", default="1,10,60")
  p.add_argument("--model", default=None)
  p.add_argument("--breakdown", action="store_true", help="time per stage (see above)")
  args = p.parse_args(argv)
  if args.breakdown:
    from jaxdiar import bundled
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="jaxdiar-bench-"))
    model = args.model or "array8"
    path = bundled.resolve(model)
    rows = [breakdown(path, float(m), tmp) for m in args.minutes.split(",")]
    print(common.table(rows))
    # Its own file: a machine's full results file (`run_all`) is what `report` renders.
    out = common.RESULTS / (f"diarize-breakdown-{common.machine_name()}-"
                            f"{datetime.date.today().isoformat()}.json")
    print(f"-> {common.record('diarize_breakdown', dict(channels=8, model=model, rows=rows), out)}")
    return
  tmp = pathlib.Path(tempfile.mkdtemp(prefix="jaxdiar-bench-"))
  model_path = args.model
  if model_path is None:
    config = default.get_config()
    model = model_lib.from_config(config.model)
    variables = model_lib.init_variables(model, jax.random.key(0),
                                         features_lib.feature_dim(config.features))
    model_path = tmp / "default.jaxdiar"
    export.export(config, variables, model_path, platforms=("cpu",))
  rows = []
  for minutes in [float(m) for m in args.minutes.split(",")]:
    wav = tmp / f"{minutes:g}min.wav"
    write_recording(wav, minutes)
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", (
        "import sys, time, json\n"
        "from jaxdiar import diarize, runtime\n"
        "m = runtime.load(sys.argv[1]); t = time.perf_counter()\n"
        "r = diarize.diarize(sys.argv[2], m, progress=False)\n"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
        "print(json.dumps(dict(seconds=time.perf_counter() - t, turns=len(r.turns),"
        " rss=int(hwm.split()[1]))))"),
        str(model_path), str(wav)], capture_output=True, text=True)
    if done.returncode:
      raise RuntimeError(done.stderr[-2000:])
    out = json.loads(done.stdout.strip().splitlines()[-1])
    wall = time.perf_counter() - t0
    rows.append(dict(minutes=minutes, diarize_s=out["seconds"], rtf=out["seconds"] / (60 * minutes),
                     process_s=wall, peak_rss_mib=out["rss"] / 1024, turns=out["turns"]))
    wav.unlink()
    print(common.table(rows[-1:]))
  print(common.table(rows))
  print(f"-> {common.record('diarize', dict(channels=8, model=str(args.model or 'default (random init)'), rows=rows))}")


if __name__ == "__main__":
  main()
