"""The live diarizer (`jaxdiar.stream`) against offline `diarize` on the dev meetings.

  python -m benchmarks.bench_live [--model array8] [--step 0.5] [--latency 0.5,2,4]
                                  [--option cluster_threshold=0.65] [--cache DIR]
  python -m benchmarks.bench_live --model causal.jaxdiar --causal --latency 0.128,0.5,2

For each latency: meeting-level DER (collar 0, overlap scored, estimated count) of the
streamed segments on the 16 dev meetings of the accuracy benchmark, beside the offline
pipeline's DER with the same model on the same meetings (the baseline, computed in the same
run); per-update compute p50/p95, the real-time factor, and the latency of every decided frame
(arrival to decision on a real-time clock: the configured latency, up to one step of waiting,
plus the update's compute) p50/p95. With --causal the model's streaming step runs once per
128 ms block (a causal model; the offline baseline is the same model through `diarize`).
JSON in benchmarks/results/live[-causal][-seedN]-<date>.json.
"""

import argparse
import datetime
import json
import os
import pathlib
import sys

import numpy as np

from benchmarks import bench_accuracy
from benchmarks import common
from configs import default
from jaxdiar import diarize as diarize_lib
from jaxdiar import stream
from jaxdiar.data import audio as audio_lib
from jaxdiar.data import devmeetings
from jaxdiar.io import rttm
from jaxdiar.models import bundled

def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--model", default="array8", help="bundled name or .jaxdiar path")
  p.add_argument("--step", type=float, default=0.5)
  p.add_argument("--latency", default="0.5,2,4")
  p.add_argument("--causal", action="store_true", help="the model's streaming step per block")
  p.add_argument("--option", action="append", default=[], help="key=value streamer option")
  p.add_argument("--meetings", type=int, default=16)
  p.add_argument("--seed", type=int, default=2026)
  p.add_argument("--cache", default=None, help="offline window outputs (bench_accuracy)")
  p.add_argument("--out", default=None)
  args = p.parse_args(argv)
  if not pathlib.Path(bench_accuracy.DEV_SPEECH).is_dir():
    print(f"{bench_accuracy.DEV_SPEECH}: dev speech not found", file=sys.stderr)
    return 2
  name = f"{args.model} (bundled)" if args.model in bundled.MODELS else args.model
  model = bench_accuracy.load_model(str(bundled.resolve(args.model)))
  options = {k: json.loads(v) for k, v in (o.split("=", 1) for o in args.option)}
  folder, meetings = devmeetings.cached(bench_accuracy.DEV_SPEECH, num_meetings=args.meetings,
                                        seed=args.seed, geometry=default.circular_array())
  refs = {m["uri"]: rttm.read_rttm(folder / f"{m['uri']}.rttm")[m["uri"]] for m in meetings}
  offline_options = {**diarize_lib.DEFAULT_DECODE, **model.meta["inference"]}
  inferences = bench_accuracy.infer_all(
      model, folder, meetings,
      cache=args.cache and pathlib.Path(args.cache) / folder.name / pathlib.Path(name).name,
      **diarize_lib.needs(offline_options))
  offline = bench_accuracy.summarise(refs, {u: diarize_lib.decode(inf, offline_options).turns
                                            for u, inf in inferences.items()})
  print(f"offline: DER {offline['der']:.1%}", flush=True)
  rows = {}
  for latency in (float(x) for x in args.latency.split(",")):
    hyps, finals, steps, lat, audio_s, confirmed, dropped = {}, {}, [], [], 0.0, {}, {}
    for m in meetings:
      uri = m["uri"]
      s = stream.Streamer(model, step_seconds=args.step, latency_seconds=latency,
                          num_channels=audio_lib.info(folder / f"{uri}.wav")[1],
                          causal=args.causal, **options)
      for x in stream.file_blocks(folder / f"{uri}.wav", model.sample_rate, s.step):
        s.push(x)
      s.finish()
      hyps[uri] = [rttm.Turn(uri, g.start, g.end, g.speaker) for g in s.segments]
      finals[uri] = [rttm.Turn(uri, g.start, g.end, g.speaker) for g in s.final_segments()]
      confirmed[uri], dropped[uri] = s.num_speakers, s.num_dropped
      steps += s.step_seconds
      lat.append(s.frame_latencies())
      audio_s += s.samples_in / model.sample_rate
    lat = np.concatenate(lat)
    scores = bench_accuracy.summarise(refs, hyps)
    final = bench_accuracy.summarise(refs, finals)
    rows[f"{latency:g}"] = dict(
        der=scores["der"], missed=scores["missed"], false_alarm=scores["false_alarm"],
        confusion=scores["confusion"], count_right=scores["count_right"],
        der_minus_offline=round(scores["der"] - offline["der"], 4),
        # under the final labels (dropped provisional speakers relabelled): what --out writes
        der_final=final["der"], count_right_final=final["count_right"],
        der_final_minus_offline=round(final["der"] - offline["der"], 4),
        update_ms_p50=round(1e3 * float(np.median(steps)), 1),
        update_ms_p95=round(1e3 * float(np.percentile(steps, 95)), 1),
        rtf=round(float(np.sum(steps)) / audio_s, 4),
        latency_s_p50=round(float(np.median(lat)), 3),
        latency_s_p95=round(float(np.percentile(lat, 95)), 3),
        per_meeting=scores["per_meeting"],
        speakers_found={u: len({t.speaker for t in h}) for u, h in hyps.items()},
        # the speakers the stream ends with, less the provisional ones it dropped (whose
        # labels stay on the frames they were given, so `speakers_found` counts them)
        speakers_confirmed=confirmed, provisional_dropped=dropped,
        count_right_confirmed=sum(confirmed[u] == len({t.speaker for t in refs[u]})
                                  for u in refs))
    print(f"latency {latency:g} s: " + str({k: v for k, v in rows[f"{latency:g}"].items()
                                          if k not in ("per_meeting", "speakers_found",
                                                       "speakers_confirmed",
                                                       "provisional_dropped")}),
          flush=True)
  step = model.stream_block_samples / model.sample_rate if args.causal else args.step
  result = dict(date=str(datetime.date.today()), model=name, causal=args.causal, step_seconds=step,
                options=options, meetings=folder.name, cpus=os.cpu_count(),
                offline=dict(der=offline["der"], missed=offline["missed"],
                             false_alarm=offline["false_alarm"], confusion=offline["confusion"],
                             per_meeting=offline["per_meeting"]),
                speakers_true={u: len({t.speaker for t in r}) for u, r in refs.items()},
                latencies=rows)
  which = ("live-causal" if args.causal else "live") + ("" if args.seed == 2026 else
                                                         f"-seed{args.seed}")
  common.write(which, result, args.out)
  return 0


if __name__ == "__main__":
  sys.exit(main())
