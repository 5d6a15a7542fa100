"""The corpora a config trains and evaluates on, prepared once and cached.

`corpus="simulated"`: train and dev meetings are simulated (dev from held-out voices) under
`data_dir`, keyed by a hash of every setting that changes them, then cut into TFDS
ArrayRecord windows. `corpus="local"`: `local_dir/train` and `local_dir/dev` in the corpus
layout of `jaxdiar.data.corpus`.

Several processes: when they share the data disk, process 0 writes and the others read once
it is done; when each host has its own disk (a TPU pod's VMs, cloud GPU hosts), every host
prepares its own copy, the same bytes (simulation and windowing are seeded). Which case holds
is probed, not configured: process 0 writes a file the others look for.
"""

import dataclasses
import hashlib
import json
import logging
import os
import pathlib

import jax
from jax.experimental import multihost_utils
import numpy as np

from jaxdiar.data import corpus as corpus_lib
from jaxdiar.data import datasets
from jaxdiar.data import simulate as sim_lib
from jaxdiar.io import atomic

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Prepared:
  train: object          # random-access source of train windows
  dev: object            # random-access source of dev windows
  speakers: list[str]    # identity i of the examples; the first num_train_speakers train
  num_train_speakers: int
  root: pathlib.Path


def _key(obj) -> str:
  return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:10]


def _simulate(config, root: pathlib.Path):
  d = config.data
  source = sim_lib.speech_source(d.speech_dir, fallback_prefix="synth")
  if d.dev_speech_dir:
    train_src, dev_src = source, sim_lib.speech_source(d.dev_speech_dir, fallback_prefix="dev")
  elif source.procedural:
    # Procedural voices are parameterised by name: other names are unseen voices.
    train_src = source
    dev_src = sim_lib.speech_source("", num_fallback_speakers=6, fallback_prefix="heldout")
  else:
    train_src, dev_src = sim_lib.split_speakers(source, 0.2, d.seed)
  geometry = config.features.mic_positions
  for split, src, num, seed in (("train", train_src, d.num_train_meetings, d.seed),
                                ("dev", dev_src, d.num_dev_meetings, d.seed + 1)):
    if not (root / split / "corpus.json").exists():
      sim_lib.simulate_corpus(src, root / split, num, seed, d.sim, geometry, d.meeting_seconds,
                              config.features.sample_rate, max_workers=d.max_workers)
  return train_src.speakers, dev_src.speakers


def shared_disk(folder: pathlib.Path) -> bool:
  """Whether every process sees what process 0 writes in `folder` (True for one process)."""
  if jax.process_count() == 1:
    return True
  token = int(multihost_utils.broadcast_one_to_all(
      np.frombuffer(os.urandom(4), np.uint32)[0] & 0x7FFFFFFF))
  probe = folder / f".jaxdiar-shared-disk-probe-{token}"
  if jax.process_index() == 0:
    folder.mkdir(parents=True, exist_ok=True)
    probe.write_text("")
  multihost_utils.sync_global_devices("jaxdiar-probe-written")
  seen = multihost_utils.process_allgather(np.int32(probe.exists()))
  multihost_utils.sync_global_devices("jaxdiar-probe-read")
  if jax.process_index() == 0:
    probe.unlink()
  return bool(np.min(seen))


def prepare(config) -> Prepared:
  """Simulate / read and window the corpora of `config` (see the module docstring for
  several processes)."""
  d = config.data
  data_dir = pathlib.Path(d.data_dir).expanduser()
  if d.corpus == "simulated":
    root = data_dir / f"simulated-{_key([d.speech_dir, d.dev_speech_dir, d.sim.to_dict(), d.num_train_meetings, d.num_dev_meetings, d.meeting_seconds, d.seed, config.features.mic_positions])}"
    split_dirs = {"train": root / "train", "dev": root / "dev"}
  elif d.corpus == "local":
    root = pathlib.Path(d.local_dir).expanduser()
    split_dirs = {"train": root / "train", "dev": root / "dev"}
    for folder in split_dirs.values():
      if not folder.is_dir():
        raise FileNotFoundError(f"data.corpus='local' needs {folder} (corpus layout)")
  else:
    raise ValueError(f"data.corpus must be 'simulated' or 'local', got {d.corpus!r}")

  # Who writes: process 0 on a shared disk; every host on its own.
  shared = shared_disk(data_dir if d.corpus == "simulated" else root)   # every process calls
  writer = jax.process_index() == 0 or not shared
  barrier = jax.process_count() > 1
  if writer:
    if d.corpus == "simulated":
      train_spk, dev_spk = _simulate(config, root)
    speakers_file = root / "speakers.json"
    if d.corpus == "local":
      train_spk = sorted({s for m in corpus_lib.read_corpus(split_dirs["train"])
                          for s in m.speakers})
      dev_spk = sorted({s for m in corpus_lib.read_corpus(split_dirs["dev"])
                        for s in m.speakers} - set(train_spk))
    speakers = train_spk + [s for s in dev_spk if s not in set(train_spk)]
    atomic.write_text(speakers_file, json.dumps(dict(speakers=speakers,
                                                     num_train=len(train_spk))))
  if barrier:
    multihost_utils.sync_global_devices("jaxdiar-corpus-simulated")
  meta = json.loads((root / "speakers.json").read_text())
  name = "windows-" + _key([str(root), meta, d.window_seconds, d.hop_seconds,
                            config.model.num_speakers, config.features.hop])
  build = lambda: datasets.build(name, root / "tfds", {k: str(v) for k, v in split_dirs.items()},
                                 meta["speakers"], config.features, config.model.num_speakers,
                                 d.window_seconds, d.hop_seconds)
  # The writers write the windows; the others open them once they exist.
  if writer:
    builder = build()
  if barrier:
    multihost_utils.sync_global_devices("jaxdiar-corpus-windowed")
  if not writer:
    builder = build()
  log.info("jaxdiar: corpus %s (%d train / %d dev windows)", root,
           builder.info.splits['train'].num_examples, builder.info.splits['dev'].num_examples)
  return Prepared(builder.as_data_source("train"), builder.as_data_source("dev"),
                  meta["speakers"], meta["num_train"], root)
