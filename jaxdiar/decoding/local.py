"""A window's local speakers (its output slots): where each talks alone, its direction, how
long it is heard, its audio for a d-vector. What `infer`, the clustering, the pieces and the
live modes share."""

import numpy as np

from jaxdiar.core import spatial as spatial_lib

# A local speaker's audio for its d-vector: its frames more likely talking than not (whatever
# the decoding's onset, which is chosen for the turns).
VOICE_ONSET = 0.5


def voice_segments(audio: np.ndarray, vad: np.ndarray, hop: int, onset: float,
                   min_alone_seconds: float = 0.5, sample_rate: int = 16000) -> list:
  """The audio of each local speaker of one window ([S] arrays from one channel's
  `audio`): its frames above `onset` where no other local speaker is, or all its frames above
  `onset` when those alone last under `min_alone_seconds`; empty when it has fewer than 5."""
  vad = np.asarray(vad, np.float32)
  out = []
  for s in range(vad.shape[1]):
    active = vad[:, s] > onset
    if active.sum() < 5:
      out.append(np.zeros(0, np.float32))
      continue
    others = np.delete(vad, s, axis=1).max(axis=1) if vad.shape[1] > 1 else np.zeros(len(vad))
    alone = active & (others < onset)
    frames = np.flatnonzero(alone if alone.sum() * hop >= min_alone_seconds * sample_rate
                            else active)
    samples = (frames[:, None] * hop + np.arange(hop)).ravel()
    out.append(audio[samples[samples < len(audio)]])
  return out


def alone_weights(vad: np.ndarray) -> np.ndarray:
  """[T, S] how much each local speaker talks alone at each frame (vad [T, S]): its
  probability times the others' silence."""
  p = vad.astype(np.result_type(vad.dtype, np.float32))          # float16 -> 32, 64 kept
  return p * np.prod(1.0 - p[:, None, :] * (1.0 - np.eye(p.shape[1], dtype=p.dtype))[None], axis=2)


def local_directions(vad: np.ndarray, response: np.ndarray) -> np.ndarray:
  """[S, G] SRP-PHAT response of each local speaker of one window (vad [Tw, S]; response
  [Tw, G], the window's `spatial.frame_response`), from the frames where it talks alone."""
  return spatial_lib.weighted_response(alone_weights(vad).T, response)


def heard_frames(inference, onset: float) -> np.ndarray:
  """[W, S] frames each local speaker of each window of an `Inference` is above `onset`
  (inside the recording)."""
  total, tw = inference.total_frames, inference.vad.shape[1]
  inside = np.arange(tw)[None, :] < (total - inference.window_frames)[:, None]    # [W, Tw]
  return np.sum((inference.vad.astype(np.float32) > onset) & inside[:, :, None], axis=1)
