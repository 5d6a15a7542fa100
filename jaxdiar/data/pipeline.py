"""grain input pipeline: per-host shard, per-epoch shuffle, label-preserving augmentation,
batching, prefetch, and a checkpointable iterator state."""

import dataclasses

import grain
import jax
import numpy as np

from jaxdiar.core.features import is_uniform_circular


@dataclasses.dataclass(frozen=True)
class Augment(grain.transforms.RandomMap):
  """Gain, white noise and cyclic channel rotation; int16 audio -> float32 [-1, 1].

  Rotating a uniform circular array by one mic spacing is a cyclic shift of its channels:
  the talkers move, the labels do not.
  """
  gain_db: float = 0.0
  noise_snr_db: float = 0.0
  rotate: bool = False

  def random_map(self, example, rng: np.random.Generator):
    audio = example["audio"].astype(np.float32) / 32768.0
    if self.rotate:
      audio = np.roll(audio, int(rng.integers(audio.shape[0])), axis=0)
    if self.gain_db:
      audio = audio * np.float32(10 ** (rng.uniform(-self.gain_db, self.gain_db) / 20))
    if self.noise_snr_db:
      snr = rng.uniform(self.noise_snr_db, self.noise_snr_db + 20)
      power = np.mean(audio ** 2) / 10 ** (snr / 10)
      audio = audio + np.sqrt(power) * rng.standard_normal(audio.shape).astype(np.float32)
    return _to_train_example(example, audio)


@dataclasses.dataclass(frozen=True)
class ToFloat(grain.transforms.Map):
  """int16 audio -> float32 [-1, 1], no augmentation (evaluation)."""

  def map(self, example):
    return _to_train_example(example, example["audio"].astype(np.float32) / 32768.0)


def _to_train_example(example, audio):
  return dict(audio=np.clip(audio, -1.0, 1.0).astype(np.float32),
              activity=example["activity"], overlap=example["overlap"],
              speaker_ids=example["speaker_ids"])


def make_loader(source, *, global_batch_size: int, seed: int, shuffle: bool = True,
                num_epochs: int | None = None, augment: Augment | None = None,
                shard_index: int | None = None, shard_count: int | None = None,
                drop_remainder: bool = True, prefetch: int = 2):
  """A grain DataLoader over a random-access source, yielding this host's share of batches.

  Each process reads only its shard (by jax.process_index() unless shard_index/shard_count
  are given) and batches global_batch_size / shard_count examples.
  """
  if shard_count is None:
    shard_index, shard_count = jax.process_index(), jax.process_count()
  if global_batch_size % shard_count:
    raise ValueError(f"global batch {global_batch_size} is not divisible by the "
                     f"{shard_count} hosts")
  per_host = global_batch_size // shard_count
  if len(source) < shard_count * per_host and drop_remainder:
    raise ValueError(f"dataset has {len(source)} examples, fewer than one global batch "
                     f"({global_batch_size})")
  sampler = grain.samplers.IndexSampler(
      num_records=len(source),
      shard_options=grain.sharding.ShardOptions(shard_index, shard_count,
                                                drop_remainder=True),
      shuffle=shuffle, num_epochs=num_epochs, seed=seed)
  operations = [augment if augment is not None else ToFloat(),
                grain.transforms.Batch(per_host, drop_remainder=drop_remainder)]
  return grain.DataLoader(data_source=source, sampler=sampler, operations=operations,
                          worker_count=0,
                          read_options=grain.ReadOptions(num_threads=2,
                                                         prefetch_buffer_size=prefetch * per_host))


def augment_from_config(data_cfg, features_cfg) -> Augment:
  return Augment(gain_db=data_cfg.augment_gain_db, noise_snr_db=data_cfg.augment_noise_snr_db,
                 rotate=bool(data_cfg.augment_rotate)
                 and is_uniform_circular(features_cfg.mic_positions))
