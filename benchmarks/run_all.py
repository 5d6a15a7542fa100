"""Run every benchmark in turn: python -m benchmarks.run_all [--quick]

Results merge into benchmarks/results/<machine>-<date>.json; `python -m
benchmarks.report` turns the latest file into the README's Performance table.
"""

import argparse

from benchmarks import bench_data
from benchmarks import bench_diarize
from benchmarks import bench_features
from benchmarks import bench_pit
from benchmarks import bench_stream
from benchmarks import bench_train_step


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--quick", action="store_true", help="short diarize lengths, no torch.compile")
  args = p.parse_args()
  bench_pit.main()
  bench_features.main([])
  bench_data.main(["--meetings", "2"] if args.quick else [])
  bench_train_step.main(["--skip-compile"] if args.quick else [])
  bench_stream.main()
  bench_diarize.main(["--minutes", "1,3"] if args.quick else [])


if __name__ == "__main__":
  main()
