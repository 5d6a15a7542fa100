"""A second view of every window for a model of a uniform circular array (`turned_view`).

Turning such an array by one microphone (channel c reads what channel c + 1 heard) is the
same room seen from an azimuth one step away: talkers sit everywhere in the training meetings,
so the model should say the same of both views, up to the order of its local speakers. Run on
both, its local speakers matched between the two (the assignment of largest agreement of their
probabilities, window by window) and the outputs averaged -- the local speakers' and overlap
probabilities, their embeddings as unit vectors, the frame embeddings -- the decisions rest on
two looks instead of one (test-time augmentation by the array's symmetry). The model runs
twice. The bundled `array8` reads compact features (mean cosine of opposite pairs, the best of
four look directions 90 degrees apart), unchanged by a quarter turn or a mirror image: one step
of 45 degrees is the one view that differs (docs/accuracy.md, 2026-12-07, session 28).
"""

import numpy as np
import scipy.optimize

from jaxdiar.core import features as features_lib

REFUSAL = ("turned_view needs a model of a uniform circular array reading the recording's own "
           "channels in that order (the bundled array8, no --mics, no single channel)")


def turn(num_channels: int) -> np.ndarray:
  """The channel order of the turned view: channel c reads channel (c + 1) mod C."""
  return (np.arange(num_channels) + 1) % num_channels


def applies(model) -> bool:
  """Whether `model` reads a uniform circular array of its own (and no geometry input)."""
  positions = model.meta.get("mic_positions")
  return (model.num_channels > 2 and not model.takes_geometry and positions is not None
          and len(positions) == model.num_channels
          and features_lib.is_uniform_circular(positions))


def _unit(x: np.ndarray) -> np.ndarray:
  return x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-9)


def average(out: dict, turned: dict) -> dict:
  """The mean of two views' outputs (numpy dicts: vad [B, T, S], osd [B, T], spk_emb
  [B, S, E], and frame_emb [B, T, E] where given), the turned view's local speakers put in
  the order of the first's, window by window (Hungarian assignment maximising the agreement
  of their probabilities over the window's frames). The embeddings are averaged as unit
  vectors (their norms say nothing the decoding reads)."""
  vad = np.asarray(out["vad"], np.float32)
  other = np.asarray(turned["vad"], np.float32)
  order = np.stack([scipy.optimize.linear_sum_assignment(-(a.T @ b))[1]
                    for a, b in zip(vad, other)])                                 # [B, S]
  emb = np.asarray(turned["spk_emb"], np.float32)
  result = dict(out)
  result["vad"] = (vad + np.take_along_axis(other, order[:, None, :], axis=2)) / 2
  result["osd"] = (np.asarray(out["osd"], np.float32)
                   + np.asarray(turned["osd"], np.float32)) / 2
  result["spk_emb"] = (_unit(np.asarray(out["spk_emb"], np.float32))
                       + _unit(np.take_along_axis(emb, order[:, :, None], axis=1))) / 2
  if "frame_emb" in out and "frame_emb" in turned:
    result["frame_emb"] = (np.asarray(out["frame_emb"], np.float32)
                           + np.asarray(turned["frame_emb"], np.float32)) / 2
  return result
