"""Data: simulator meetings per minute, and loader examples per second against what the
default train step consumes (measured in the same run).

python -m benchmarks.bench_data [--speech DIR] [--meetings 3]
"""

import argparse
import pathlib
import tempfile
import time

from benchmarks import bench_train_step
from benchmarks import common
from configs import default
from jaxdiar.data import corpus as corpus_lib
from jaxdiar.data import datasets
from jaxdiar.data import pipeline
from jaxdiar.data import simulate as sim_lib

SHARED_SPEECH = pathlib.Path(__file__).resolve().parents[2] / "shared/data/speech/libri-test-other"


def main(argv=None):
  p = argparse.ArgumentParser()
  p.add_argument("--speech", default=str(SHARED_SPEECH) if SHARED_SPEECH.exists() else "")
  p.add_argument("--meetings", type=int, default=4)
  p.add_argument("--batches", type=int, default=20)
  args = p.parse_args(argv)
  config = default.get_config()
  tmp = pathlib.Path(tempfile.mkdtemp(prefix="jaxdiar-bench-data-"))
  source = sim_lib.speech_source(args.speech)
  t0 = time.perf_counter()
  sim_lib.simulate_corpus(source, tmp / "train", args.meetings, 0, config.data.sim,
                          config.features.mic_positions, config.data.meeting_seconds,
                          max_workers=config.data.max_workers, progress=False)
  sim_s = time.perf_counter() - t0
  speakers = sorted({s for m in corpus_lib.read_corpus(tmp / "train") for s in m.speakers})
  t0 = time.perf_counter()
  builder = datasets.build("bench", tmp / "tfds", {"train": str(tmp / "train")}, speakers,
                           config.features, config.model.num_speakers,
                           config.data.window_seconds, config.data.hop_seconds)
  window_s = time.perf_counter() - t0
  src = builder.as_data_source("train")
  loader = pipeline.make_loader(src, global_batch_size=config.train.batch_size, seed=0,
                                augment=pipeline.augment_from_config(config.data, config.features),
                                shard_index=0, shard_count=1)
  it = iter(loader)
  next(it)
  t0 = time.perf_counter()
  for _ in range(args.batches):
    next(it)
  load_s = (time.perf_counter() - t0) / args.batches
  run_step, *_ = bench_train_step.jax_step(config.train.batch_size, config.data.window_seconds)
  step_s = common.timeit(run_step, warmup=1, repeat=3)
  loader_eps = config.train.batch_size / load_s
  step_eps = config.train.batch_size / step_s
  row = dict(speech="real" if args.speech else "procedural",
             meetings_per_minute=args.meetings / sim_s * 60,
             windows_per_s_written=len(src) / window_s, loader_examples_per_s=loader_eps,
             train_step_examples_per_s=step_eps, loader_headroom=loader_eps / step_eps)
  print(common.table([row]))
  print(f"-> {common.record('data', dict(meeting_seconds=config.data.meeting_seconds, **row))}")


if __name__ == "__main__":
  main()
