"""The corpora a config trains and evaluates on, prepared once and cached.

`corpus="simulated"`: train and dev meetings are simulated (dev from held-out voices) under
`data_dir`, keyed by a hash of every setting that changes them, then cut into TFDS
ArrayRecord windows. `corpus="local"`: `local_dir/train` and `local_dir/dev` in the corpus
layout of `jaxdiar.data.corpus`.
"""

import dataclasses
import hashlib
import json
import pathlib
import sys

import jax
from jax.experimental import multihost_utils

from jaxdiar import atomic
from jaxdiar.data import corpus as corpus_lib
from jaxdiar.data import datasets
from jaxdiar.data import simulate as sim_lib


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


def prepare(config) -> Prepared:
  """Simulate / read and window the corpora of `config` (process 0 writes, all read)."""
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

  if jax.process_index() == 0:
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
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices("jaxdiar-corpus-simulated")
  meta = json.loads((root / "speakers.json").read_text())
  name = "windows-" + _key([str(root), meta, d.window_seconds, d.hop_seconds,
                            config.model.num_speakers, config.features.hop])
  build = lambda: datasets.build(name, root / "tfds", {k: str(v) for k, v in split_dirs.items()},
                                 meta["speakers"], config.features, config.model.num_speakers,
                                 d.window_seconds, d.hop_seconds)
  # Process 0 writes the windows; the others open them once they exist.
  if jax.process_index() == 0:
    builder = build()
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices("jaxdiar-corpus-windowed")
  if jax.process_index() != 0:
    builder = build()
  print(f"jaxdiar: corpus {root} ({builder.info.splits['train'].num_examples} train / "
        f"{builder.info.splits['dev'].num_examples} dev windows)", file=sys.stderr)
  return Prepared(builder.as_data_source("train"), builder.as_data_source("dev"),
                  meta["speakers"], meta["num_train"], root)
