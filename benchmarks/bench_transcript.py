"""Speaker attribution of transcripts: the share of words given to their true talker.

Each dev meeting's reference turns are cut into words (0.2-0.6 s, 50 ms apart; segments of 8
words whoever said them, as an ASR prints them: `transcript.words_of`, `as_whisper`). They are
attributed (`Pipeline.attribute`) with
- the reference itself as the diarization (exclusive: in overlap, the earlier talker): the
  ceiling the attribution rule allows;
- the bundled model's exclusive diarization (`pipeline(..., exclusive=True)`), its labels
  mapped to the reference's by pyannote.metrics' optimal mapping; a word given no talker
  counts as wrong.

    python benchmarks/bench_transcript.py --out benchmarks/results/transcript-DATE.json
"""

import argparse
import json
import pathlib
import sys
import time

import numpy as np
from pyannote.metrics.diarization import DiarizationErrorRate

from configs import default
from jaxdiar import pipeline as pipeline_lib
from jaxdiar.data import devmeetings
from jaxdiar.io import formats
from jaxdiar.io import rttm
from jaxdiar.io import transcript

DEV_SPEECH = "../shared/data/speech/libri-test-other"


def share(reference, hypothesis, words) -> float:
  """Words attributed (with `hypothesis`) to their true talker, after mapping labels."""
  attributed = pipeline_lib.Pipeline.attribute(transcript.as_whisper(words), hypothesis)
  mapping = DiarizationErrorRate().optimal_mapping(reference, hypothesis)
  return transcript.word_accuracy(attributed, [w[2] for w in words], mapping)


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--model", default="array8")
  p.add_argument("--speech", default=DEV_SPEECH)
  p.add_argument("--meetings", type=int, default=16)
  p.add_argument("--seed", type=int, default=2026)
  p.add_argument("--out", default=None)
  args = p.parse_args(argv)
  if not pathlib.Path(args.speech).is_dir():
    print(f"{args.speech}: dev speech not found", file=sys.stderr)
    return 2
  folder, meetings = devmeetings.cached(args.speech, num_meetings=args.meetings, seed=args.seed,
                                        geometry=default.circular_array())
  pipeline = pipeline_lib.Pipeline.from_pretrained(args.model)
  rows, t0 = [], time.time()
  for i, m in enumerate(meetings):
    uri = m["uri"]
    reference = formats.to_annotation(rttm.read_rttm(folder / f"{uri}.rttm")[uri], uri)
    words = transcript.words_of(reference, np.random.default_rng(i))
    hypothesis = pipeline(folder / f"{uri}.wav", exclusive=True)
    row = dict(uri=uri, words=len(words),
               reference=round(share(reference, reference, words), 4),
               model=round(share(reference, hypothesis, words), 4))
    rows.append(row)
    print(json.dumps(row), flush=True)
  pooled = lambda key: round(sum(r[key] * r["words"] for r in rows)
                             / sum(r["words"] for r in rows), 4)
  out = dict(benchmark="transcript attribution", model=args.model, meetings=len(rows),
             seed=args.seed, words=sum(r["words"] for r in rows),
             share_reference=pooled("reference"), share_model=pooled("model"),
             seconds=round(time.time() - t0, 1), rows=rows)
  print(json.dumps({k: v for k, v in out.items() if k != "rows"}))
  if args.out:
    pathlib.Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
  return 0


if __name__ == "__main__":
  sys.exit(main())
