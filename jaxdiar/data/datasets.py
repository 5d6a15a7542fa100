"""TFDS builders (ArrayRecord, no TensorFlow) for simulated and local corpora.

Examples are fixed windows of int16 multi-channel audio with frame activity [T, S], the
OSD target [T] and the global speaker identities [S] (see `corpus.windows`). Build with
`build(...)`; read back with random access through `tfds.data_source`.
"""

import importlib.util
import pathlib

import numpy as np
import psutil
import tensorflow_datasets as tfds
from tensorflow_datasets.core import shuffle as tfds_shuffle

from jaxdiar.data import corpus as corpus_lib


class MeetingWindows(tfds.core.GeneratorBasedBuilder):
  """Windows of meetings from corpus folders (one folder per split)."""

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {"1.0.0": "First release.", "1.1.0": "Audio stored as raw bytes."}

  def __init__(self, *, split_dirs: dict[str, str], speakers: list[str], num_channels: int,
               num_speakers: int, window_seconds: float, hop_seconds: float,
               sample_rate: int, frame_hop: int, **kwargs):
    self._split_dirs = split_dirs
    self._speakers = list(speakers)
    self._shape = dict(num_channels=num_channels, num_speakers=num_speakers,
                       window_seconds=window_seconds, hop_seconds=hop_seconds,
                       sample_rate=sample_rate, frame_hop=frame_hop)
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    s = self._shape
    n = int(round(s["window_seconds"] * s["sample_rate"]))
    t = 1 + n // s["frame_hop"]
    return tfds.core.DatasetInfo(
        builder=self,
        description="Fixed windows of multi-channel meetings with frame-level speaker activity.",
        features=tfds.features.FeaturesDict({
            # Raw bytes: 130x faster to write and 3x smaller than the default int64 list.
            "audio": tfds.features.Tensor(shape=(s["num_channels"], n), dtype=np.int16,
                                          encoding=tfds.features.Encoding.BYTES),
            "activity": tfds.features.Tensor(shape=(t, s["num_speakers"]), dtype=np.uint8),
            "overlap": tfds.features.Tensor(shape=(t,), dtype=np.uint8),
            "speaker_ids": tfds.features.Tensor(shape=(s["num_speakers"],), dtype=np.int32),
            "uri": tfds.features.Text(),
            "start": tfds.features.Scalar(dtype=np.int64),
        }),
        metadata=tfds.core.MetadataDict(speakers=self._speakers, **s),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # nothing is downloaded, ever
    return {split: self._generate_examples(folder) for split, folder in self._split_dirs.items()}

  def _generate_examples(self, folder):
    ids = {s: i for i, s in enumerate(self._speakers)}
    s = self._shape
    for meeting in corpus_lib.read_corpus(folder):
      for ex in corpus_lib.windows(meeting, ids, s["num_speakers"], s["window_seconds"],
                                   s["hop_seconds"], s["sample_rate"], s["frame_hop"],
                                   s["num_channels"]):
        yield f"{ex['uri']}-{int(ex['start'])}", ex


def build(name: str, data_dir, split_dirs: dict[str, str], speakers: list[str], features_cfg,
          num_speakers: int, window_seconds: float, hop_seconds: float) -> MeetingWindows:
  """Prepare (once) the ArrayRecord files of `split_dirs` under data_dir/name."""
  if importlib.util.find_spec("tensorflow") is None:
    # TFDS's writer spills a split larger than 1 GB to disk through tf.io.gfile, which needs
    # TensorFlow. Without it, keep the split in memory (up to half of the free RAM); grain
    # shuffles at read time anyway.
    tfds_shuffle.MAX_MEM_BUFFER_SIZE = max(tfds_shuffle.MAX_MEM_BUFFER_SIZE,
                                                psutil.virtual_memory().available // 2)
  builder = MeetingWindows(
      split_dirs={k: str(v) for k, v in split_dirs.items()}, speakers=speakers,
      num_channels=len(features_cfg.mic_positions), num_speakers=num_speakers,
      window_seconds=window_seconds, hop_seconds=hop_seconds,
      sample_rate=features_cfg.sample_rate, frame_hop=features_cfg.hop,
      data_dir=str(pathlib.Path(data_dir).expanduser() / name),
      file_format="array_record")
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(try_download_gcs=False))
  return builder
