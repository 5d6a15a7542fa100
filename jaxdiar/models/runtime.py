"""Run an exported `.jaxdiar` file: features + model as StableHLO, no flax, no model code.

A `.jaxdiar` file is a zip with `meta.json` (sample rate, hop, channels, geometry, feature
kind, window, thresholds, ...), `variables.npz` (the weights), `forward.jaxexport`
((variables, audio [b, C, n]) -> probabilities and local-speaker embeddings, symbolic b and
n) and, for causal models, `stream.jaxexport` ((variables, one block of audio, the carried
state) -> the block's frame probabilities and the new state).
This module imports only jax, numpy and `jaxdiar.core.features` (its table of feature kinds;
it imports the numpy `jaxdiar.core.spatial`).
"""

import hashlib
import io
import json
import pathlib
import zipfile

import jax
from jax import export as jax_export
import numpy as np

from jaxdiar.core import features
from jaxdiar.models import bundled

FORMAT_VERSION = 1


class ModelFileError(ValueError):
  """Not a readable .jaxdiar file."""


class ExportedModel:
  """A loaded `.jaxdiar` file.

  model(audio [B, C, N] float32) -> dict(vad [B, T, S], osd [B, T], spk_emb [B, S, E], and
  in files exported since 2026-12-07 frame_emb [B, T, E]), probabilities in [0, 1],
  T = 1 + N // hop.
  """

  def __init__(self, path):
    path = pathlib.Path(path)
    try:
      with zipfile.ZipFile(path) as z:
        self.meta = json.loads(z.read("meta.json"))
        self._forward = jax_export.deserialize(bytearray(z.read("forward.jaxexport")))
        raw = z.read("variables.npz")
        self.fingerprint = hashlib.sha256(raw).hexdigest()[:16]   # which weights these are
        with np.load(io.BytesIO(raw)) as weights:
          leaves = [weights[f"arr_{i}"] for i in range(len(weights.files))]
        names = set(z.namelist())
        self._stream = (jax_export.deserialize(bytearray(z.read("stream.jaxexport")))
                        if "stream.jaxexport" in names else None)
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as e:
      raise ModelFileError(f"{path}: not a .jaxdiar model file ({e})") from e
    if self.meta.get("format_version") != FORMAT_VERSION:
      raise ModelFileError(f"{path}: format version {self.meta.get('format_version')}, this "
                           f"jaxdiar reads {FORMAT_VERSION}")
    (var_avals, *_), _ = jax.tree.unflatten(self._forward.in_tree, self._forward.in_avals)
    # Weights stored in half precision (export --float16) compute in the exported dtype.
    leaves = [w.astype(a.dtype) for w, a in zip(leaves, jax.tree.leaves(var_avals))]
    self._variables = jax.device_put(jax.tree.unflatten(jax.tree.structure(var_avals), leaves))
    self._forward_jit = jax.jit(self._forward.call)
    self._stream_jit = jax.jit(self._stream.call) if self._stream else None

  @property
  def sample_rate(self) -> int:
    return self.meta["sample_rate"]

  @property
  def num_channels(self) -> int:
    return self.meta["num_channels"]

  @property
  def hop(self) -> int:
    return self.meta["hop"]

  @property
  def needs_array(self) -> bool:
    """Whether its features need the array it was trained for (IPD / angle features): then
    no other channel count is accepted."""
    return features.kind(self.meta["feature_kind"]).needs_array

  @property
  def takes_geometry(self) -> bool:
    """Whether the geometry is an input (`srp` features: any array of up to num_channels
    microphones, or one channel)."""
    return features.kind(self.meta["feature_kind"]).takes_positions

  def __call__(self, audio, mics=None) -> dict:
    """audio [B, C, N]; for a model that takes the geometry, `mics` [C, 3] are the
    microphones' positions (None: one channel, no directions) and C may be fewer than
    num_channels (the rest are zero-padded and masked)."""
    audio = np.asarray(audio, np.float32)
    if not self.takes_geometry:
      return self._forward_jit(self._variables, audio)
    return self._forward_jit(self._variables, *geometry_input(audio, mics, self.num_channels))

  @property
  def variables(self) -> dict:
    """The model's weights ({params, batch_stats}, numpy): e.g. to fine-tune from."""
    return jax.tree.map(np.asarray, self._variables)

  @property
  def outputs(self) -> tuple[str, ...]:
    """Names of the model's outputs (files exported since 2026-12-07 also give `frame_emb`
    [B, T, E], the frame embeddings the local speakers' are averaged from)."""
    outputs = jax.tree.unflatten(self._forward.out_tree, self._forward.out_avals)
    return tuple(sorted(outputs))

  # -- streaming
  @property
  def can_stream(self) -> bool:
    return self._stream is not None

  def stream_init(self, batch_size: int = 1):
    """The zero state of a new stream."""
    if not self.can_stream:
      raise ModelFileError("this model was not exported with a streaming step (only models "
                           "for which jaxdiar.core.model.streamable holds get one)")
    (_, _, state_avals), _ = jax.tree.unflatten(self._stream.in_tree, self._stream.in_avals)
    return jax.tree.map(
        lambda a: np.zeros((batch_size,) + tuple(int(d) for d in a.shape[1:]), np.float32),
        state_avals)

  @property
  def stream_outputs(self) -> tuple[str, ...]:
    """Names of the streaming step's outputs (empty without a streaming step)."""
    if not self.can_stream:
      return ()
    outputs, _ = jax.tree.unflatten(self._stream.out_tree, self._stream.out_avals)
    return tuple(sorted(outputs))

  @property
  def stream_block_samples(self) -> int:
    return self.meta["stream_block_frames"] * self.meta["hop"]

  def stream_step(self, block, state):
    """block [B, C, stream_block_samples] -> (dict(vad [B, m, S], osd [B, m], frame_emb
    [B, m, E]), new state): probabilities and frame embeddings of the block's m frames."""
    if not self.can_stream:
      self.stream_init()
    return self._stream_jit(self._variables, np.asarray(block, np.float32), state)


def geometry_input(audio: np.ndarray, mics, num_channels: int):
  """(audio [B, num_channels, N], mics [num_channels, 3], mask [num_channels]) for a model
  that takes the geometry: the recording's C channels first, zeros after; without `mics`,
  the first channel alone."""
  c = audio.shape[1]
  if mics is None:
    audio, c, mics = audio[:, :1], 1, np.zeros((1, 3))
  mics = np.asarray(mics, np.float32)
  if c > num_channels or len(mics) != c:
    raise ValueError(f"{c} channels and {len(mics)} microphone positions: the model takes up "
                     f"to {num_channels} channels, one position per channel")
  pad = num_channels - c
  audio = np.pad(audio, ((0, 0), (0, pad), (0, 0)))
  mask = np.r_[np.ones(c), np.zeros(pad)].astype(np.float32)
  return audio, np.pad(mics, ((0, pad), (0, 0))), mask


def load(path) -> ExportedModel:
  """The model of a .jaxdiar file, or of a bundled model's name ("array8", "mono")."""
  return ExportedModel(bundled.resolve(path))
