"""python -m jaxdiar.diarize INPUT... (--out FILE | --out-dir DIR) [--model M] [--format F]

Long-recording diarization with an exported model (the command line: `jaxdiar.cli.diarize`;
the Python API: `jaxdiar.Pipeline`). The decoding lives in `jaxdiar.decoding` (windows,
cluster, frames, refine, decode); this module keeps all of its names, as existing code and
benchmarks read them (`diarize.decode`, `diarize.infer`, `diarize.DEFAULT_DECODE`, ...).
"""

import sys

from jaxdiar.cli.diarize import main
from jaxdiar.decoding.cluster import cluster
from jaxdiar.decoding.cluster import joint_vectors
from jaxdiar.decoding.cluster import unit_responses
from jaxdiar.decoding.cluster import voice_joined
from jaxdiar.decoding.decode import DEFAULT_DECODE
from jaxdiar.decoding.decode import MAX_SPEAKERS
from jaxdiar.decoding.decode import Result
from jaxdiar.decoding.decode import check_counts
from jaxdiar.decoding.decode import decode
from jaxdiar.decoding.decode import decoding_settings
from jaxdiar.decoding.decode import diarize
from jaxdiar.decoding.decode import gate_speech
from jaxdiar.decoding.decode import infer_options
from jaxdiar.decoding.decode import needs
from jaxdiar.decoding.decode import needs_of_all
from jaxdiar.decoding.frames import binarize
from jaxdiar.decoding.frames import binarize_each
from jaxdiar.decoding.frames import exclusive_active
from jaxdiar.decoding.frames import fill_and_drop
from jaxdiar.decoding.frames import min_durations
from jaxdiar.decoding.frames import runs
from jaxdiar.decoding.frames import talker_count
from jaxdiar.decoding.frames import top_speakers
from jaxdiar.decoding.frames import turns_of
from jaxdiar.decoding.local import VOICE_ONSET
from jaxdiar.decoding.local import alone_weights
from jaxdiar.decoding.local import heard_frames
from jaxdiar.decoding.local import local_directions
from jaxdiar.decoding.local import voice_segments
from jaxdiar.decoding.refine import merge_groups
from jaxdiar.decoding.refine import split_by_direction
from jaxdiar.decoding.windows import Inference
from jaxdiar.decoding.windows import InputError
from jaxdiar.decoding.windows import Stages
from jaxdiar.decoding.windows import check_input
from jaxdiar.decoding.windows import infer
from jaxdiar.decoding.windows import read_block
from jaxdiar.decoding.windows import window_starts

__all__ = [
    "DEFAULT_DECODE", "MAX_SPEAKERS", "VOICE_ONSET", "Inference", "InputError", "Result",
    "Stages", "alone_weights", "binarize", "binarize_each", "check_counts", "check_input",
    "cluster", "decode", "decoding_settings", "diarize", "exclusive_active", "fill_and_drop",
    "gate_speech", "heard_frames", "infer", "infer_options", "joint_vectors", "local_directions",
    "main", "merge_groups", "min_durations", "needs", "needs_of_all", "read_block", "runs",
    "split_by_direction", "talker_count", "top_speakers", "turns_of", "unit_responses",
    "voice_joined", "voice_segments", "window_starts",
]

if __name__ == "__main__":
  sys.exit(main())
