"""WPE before the speech detector (`speech_dereverb`): seconds per 33 s block (the detector's
block) of jaxdiar's own WPE (`jaxdiar.core.dereverb.wpe_stft`, single precision, frequencies in
chunks) against nara_wpe's `wpe_v7` (double precision, the implementation used until
2026-12-06), both measured in this run on the same STFT, with the speech detector's own time on
the same channels for scale.

  python -m benchmarks.bench_dereverb [--channels 4,2] [--iterations 3,1] [--repeat 2]

The audio: the first 33 s of a meeting of the shift suite's `heavy` set (RT60 0.7-1.1 s),
simulated under ~/.cache/jaxdiar on first use. Results: benchmarks/results/dereverb-speed-
<machine>-<date>.json; each row's `ratio` is nara_wpe's seconds over jaxdiar's at the same iterations,
`ratio_to_nara_default` nara_wpe's at its default (3) over jaxdiar's.
"""

import argparse
import datetime
import time

import numpy as np

from benchmarks import common
from configs import default
from jaxdiar.core import dereverb
from jaxdiar.data import audio as audio_lib
from jaxdiar.data import shift
from jaxdiar.models import vad as vad_lib

SPEECH = "../shared/data/speech/libri-test-other"
NARA_DEFAULT_ITERATIONS = 3


def seconds(fn, repeat: int) -> float:
  best = np.inf
  for _ in range(repeat):
    t = time.perf_counter()
    fn()
    best = min(best, time.perf_counter() - t)
  return best


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--channels", default="4,2")
  p.add_argument("--iterations", default="3,1")
  p.add_argument("--repeat", type=int, default=2)
  args = p.parse_args(argv)
  from nara_wpe import utils as wpe_utils
  from nara_wpe import wpe as wpe_lib
  folder, meetings = shift.cached(SPEECH, "heavy", num_meetings=16, seed=4100,
                                  geometry=default.circular_array())
  block = vad_lib.SEGMENT * vad_lib.CHUNK
  audio = audio_lib.read(folder / f"{meetings[0]['uri']}.wav", 16000)[:, :block]
  rows = []
  for c in [int(x) for x in args.channels.split(",")]:
    x = audio[dereverb.channel_subset(audio.shape[0], c)]
    y = wpe_utils.stft(x.astype(np.float64), size=dereverb.N_FFT,
                       shift=dereverb.HOP).transpose(2, 0, 1)
    ref = {}
    for it in [int(i) for i in args.iterations.split(",")]:
      nara = seconds(lambda: ref.__setitem__(it, wpe_lib.wpe_v7(
          y, taps=dereverb.TAPS, delay=dereverb.DELAY, iterations=it)), args.repeat)
      out = {}
      own = seconds(lambda: out.__setitem__(0, dereverb.wpe_stft(y, iterations=it)),
                    args.repeat)
      err = float(np.abs(out[0] - ref[it]).max() / np.abs(ref[it]).max())
      rows.append(dict(channels=c, iterations=it, block_seconds=block / 16000,
                       nara_wpe_s=round(nara, 3), jaxdiar_s=round(own, 3),
                       ratio=round(nara / own, 2), max_error_of_peak=err))
      print(rows[-1], flush=True)
    vad_lib.ChannelDetectors(c).push(x.astype(np.float32), final=True)   # compiled here
    detector = seconds(lambda: vad_lib.ChannelDetectors(c).push(x.astype(np.float32),
                                                                final=True), args.repeat)
    for r in rows:
      if r["channels"] == c:
        r["detector_s"] = round(detector, 3)
  for r in rows:      # what replacing nara_wpe's default (3 iterations) gains, per channels
    base = [q["nara_wpe_s"] for q in rows if q["channels"] == r["channels"]
            and q["iterations"] == NARA_DEFAULT_ITERATIONS]
    if base:
      r["ratio_to_nara_default"] = round(base[0] / r["jaxdiar_s"], 2)
  out = common.RESULTS / (f"dereverb-speed-{common.machine_name()}-"
                          f"{datetime.date.today().isoformat()}.json")
  print(common.table(rows))
  print(f"-> {common.record('dereverb_speed', dict(rows=rows, meeting=str(meetings[0]['uri'])), out)}")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
