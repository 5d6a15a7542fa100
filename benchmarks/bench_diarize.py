"""diarize: real-time factor and peak memory vs recording length (8 channels).

python -m benchmarks.bench_diarize [--minutes 1,10,60] [--model FILE]
python -m benchmarks.bench_diarize --breakdown [--minutes 10] [--model array8]
python -m benchmarks.bench_diarize --meetings 1,10,60,120 [--bundled array8,mono]

The recordings are generated here (a temporary folder): 8-channel noise with bursts, written
in blocks. Each length runs `jaxdiar.diarize.diarize` in a fresh process; peak memory is
that process's VmHWM (not ru_maxrss, which Linux carries over from the parent across
fork + exec). Without --model, a randomly initialised default model is
exported (clustering then sees arbitrary embeddings; the time and memory are what count).

--breakdown: where the time goes, compile excluded, in this process (default model: the
bundled array8): reading the windows, features + network, the talker directions (SRP-PHAT)
and decoding, each timed apart, and the real-time factor of the whole.

--meetings MINUTES[,MINUTES...]: the bundled models as a user runs them, on recordings of many
voices:
the dev meetings and the shift suite's meetings (`fit`, then the suite's sets; cached under
~/.cache/jaxdiar, simulated on first use) end to end until MINUTES, 8 channels for array8 and
channel 0 for mono. Each model runs in a fresh process (`infer` + `decode` with the model's
own settings, its estimated speaker count capped at diarize.MAX_SPEAKERS); reported: every
stage's seconds (`diarize.Stages`), the real-time factor and the peak RSS (VmHWM).
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
from jaxdiar.core import features as features_lib
from jaxdiar.core import model as model_lib
from jaxdiar.models import bundled
from jaxdiar.models import export
from jaxdiar.models import runtime


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
  starts = diarize.window_starts(frames, window, step, hop)     # the windows infer reads
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


LONG_RUN = """
import json, sys, time
from jaxdiar import diarize
from jaxdiar.models import bundled, runtime
model = runtime.load(bundled.resolve(sys.argv[1]))
o = diarize.decoding_settings(model, {})
stages = diarize.Stages()
inference = diarize.infer(sys.argv[2], model, progress=False, stages=stages,
                          **diarize.infer_options(o))
result = diarize.decode(inference, o, stages=stages)
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
print(json.dumps(dict(stages=stages.seconds, turns=len(result.turns),
                      speakers=len({t.speaker for t in result.turns}),
                      rss=int(hwm.split()[1]))))
"""


def meetings_recording(path, minutes: float, channels: int) -> dict:
  """Dev and shift-suite meetings end to end (16 kHz, 16-bit) until `minutes`, written in
  blocks; `channels` 1 keeps channel 0. Returns what went in."""
  from jaxdiar.data import devmeetings
  from jaxdiar.data import audio as audio_lib
  from jaxdiar.data import shift
  speech = "../shared/data/speech/libri-test-other"
  geometry = default.circular_array()
  sources = [devmeetings.cached(speech, num_meetings=16, seed=2026, geometry=geometry)]
  sources += [shift.cached(speech, name, num_meetings=32 if name == shift.FIT else 16,
                           seed=3100 if name == shift.FIT else 4100, geometry=geometry)
              for name in (shift.FIT,) + shift.SUITE if name != "long"]   # 1-2 min each
  target, written, used = int(minutes * 60 * 16000), 0, []
  with sf.SoundFile(path, "w", 16000, channels, subtype="PCM_16") as f:
    for folder, meetings in sources:
      for m in meetings:
        if written >= target:
          break
        x = audio_lib.read(folder / f"{m['uri']}.wav", 16000)[:channels, :target - written]
        f.write(audio_lib.to_int16(x).T)
        written += x.shape[1]
        used.append(f"{folder.name}/{m['uri']}")
  return dict(seconds=written / 16000, meetings=len(used), first=used[0], last=used[-1])


def long_meetings(minutes: float, names, tmp: pathlib.Path) -> list[dict]:
  rows = []
  for name in names:
    channels = runtime.load(bundled.resolve(name)).num_channels   # a name or a file's path
    wav = tmp / f"meetings-{minutes:g}min-{channels}ch.wav"
    made = meetings_recording(wav, minutes, channels)
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", LONG_RUN, name, str(wav)],
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    wav.unlink()
    if done.returncode:
      raise RuntimeError(done.stderr[-3000:])
    out = json.loads(done.stdout.strip().splitlines()[-1])
    # `voice` and `directions` are parts of `windows`, timed apart.
    total = sum(v for k, v in out["stages"].items() if k not in ("voice", "directions"))
    rows.append(dict(model=name, channels=channels, minutes=made["seconds"] / 60,
                     meetings=made["meetings"], seconds=total, rtf=total / made["seconds"],
                     process_s=wall, peak_rss_mib=out["rss"] / 1024, turns=out["turns"],
                     speakers=out["speakers"],
                     stages={k: round(v, 2) for k, v in out["stages"].items()}))
    print(json.dumps(rows[-1]), flush=True)
  return rows


def main(argv=None):
  p = argparse.ArgumentParser()
  p.add_argument("--minutes", default="1,10,60")
  p.add_argument("--model", default=None)
  p.add_argument("--breakdown", action="store_true", help="time per stage (see above)")
  p.add_argument("--meetings", default=None,
                 help="minutes (comma-separated lengths) of dev + shift meetings end to end, "
                      "bundled models (see above)")
  p.add_argument("--bundled", default="array8,mono",
                 help="with --meetings: which models (bundled names or .jaxdiar paths)")
  args = p.parse_args(argv)
  if args.meetings:
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="jaxdiar-bench-"))
    rows = [row for minutes in args.meetings.split(",")
            for row in long_meetings(float(minutes), args.bundled.split(","), tmp)]
    out = common.RESULTS / (f"diarize-meetings-{common.machine_name()}-"
                            f"{datetime.date.today().isoformat()}.json")
    print(f"-> {common.record('diarize_meetings', dict(rows=rows), out)}")
    return
  if args.breakdown:
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
