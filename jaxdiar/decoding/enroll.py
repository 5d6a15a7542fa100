"""Enrolled speakers: one embedding per name, the model's local-speaker embeddings over the
speech of that person's clips (in each window, the local speaker heard longest, weighted by
the frames it is heard). `diarize --speakers bank.npz` and the service's `speakers=true` then
label each global speaker with an enrolled name when the cosine similarity of its centroid
clears the bank's threshold (one name per speaker, Hungarian over speakers x names),
otherwise it keeps its `spkNN` label. A bank belongs to the model that made it (its weights'
fingerprint is stored and checked).
"""

import pathlib

import numpy as np
import scipy.optimize

from jaxdiar.decoding import decode as decode_lib
from jaxdiar.decoding import local as local_lib
from jaxdiar.decoding import windows as windows_lib
from jaxdiar.io import atomic
from jaxdiar.io import rttm
from jaxdiar.models import runtime

# Cosine similarity a speaker's centroid must reach to take a name, chosen on the dev
# meetings (benchmarks/bench_naming.py, most right names less false ones): one-channel clips
# through a one-channel model match the meeting's embeddings more closely than clips copied
# to every channel of an array model. A model whose config sets inference.name_threshold
# uses that.
DEFAULT_THRESHOLD = {"one channel": 0.4, "array": 0.25}


def default_threshold(model: runtime.ExportedModel) -> float:
  inf = model.meta["inference"]
  if "name_threshold" in inf:
    return float(inf["name_threshold"])
  return DEFAULT_THRESHOLD["array" if model.num_channels > 1 else "one channel"]


class BankError(ValueError):
  """Not a usable speaker bank (message says why)."""


def clip_embedding(path, model: runtime.ExportedModel, replicate_channels: bool = True,
                   mics=None) -> tuple[np.ndarray, float]:
  """(sum of weighted unit embeddings [E], seconds of speech) of one clip; a one-channel clip
  is copied to every channel of an array model (`replicate_channels`). `mics`: the clip's
  microphone positions, checked as `diarize` checks them (one per channel; an array model's
  own), so that a bank is made from what the recordings will be diarized from."""
  inf = windows_lib.infer(path, model, progress=False, spatial=False,
                          replicate_channels=replicate_channels, mics=mics,
                          turned_view=bool(model.meta["inference"].get("turned_view", False)))
  heard = local_lib.heard_frames(inf, model.meta["inference"]["onset"])     # [W, S]
  slot = np.argmax(heard, axis=1)
  frames = heard[np.arange(len(slot)), slot].astype(np.float64)
  x = inf.emb[np.arange(len(slot)), slot].astype(np.float64)
  x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-9
  # Seconds of speech: each frame once (the windows overlap), where a window's chosen local
  # speaker is above the onset.
  spoken = np.zeros(inf.total_frames, bool)
  onset = model.meta["inference"]["onset"]
  for w, s in enumerate(slot):
    f0 = inf.window_frames[w]
    n = max(0, min(inf.vad.shape[1], inf.total_frames - f0))
    spoken[f0:f0 + n] |= inf.vad[w, :n, s].astype(np.float32) > onset
  return np.sum(x * frames[:, None], axis=0), float(spoken.sum()) * inf.hop / inf.sample_rate


def enroll(model: runtime.ExportedModel, clips: dict[str, list], mics=None) -> dict:
  """{name: [clip paths]} -> bank dict (names, embeddings [N, E] unit, seconds [N]);
  `mics`: the clips' microphone positions ([M, 3], see `clip_embedding`)."""
  names, embeddings, seconds = [], [], []
  for name, paths in clips.items():
    total, speech = 0.0, 0.0
    for path in paths:
      e, s = clip_embedding(path, model, mics=mics)
      total, speech = total + e, speech + s
    if speech == 0.0:
      raise windows_lib.InputError(f"{name}: no speech found in {', '.join(map(str, paths))}")
    names.append(name)
    embeddings.append(total / (np.linalg.norm(total) + 1e-9))
    seconds.append(speech)
  return dict(names=np.array(names), embeddings=np.stack(embeddings).astype(np.float32),
              seconds=np.array(seconds), fingerprint=np.array(model.fingerprint),
              threshold=np.array(default_threshold(model)))


def save_bank(path, bank: dict) -> None:
  path = pathlib.Path(path)
  with atomic.atomic_path(path) as tmp, open(tmp, "wb") as f:
    np.savez(f, **bank)


def load_bank(path, model: runtime.ExportedModel | None = None) -> dict:
  """A bank saved by `save_bank`; with `model`, checks that the bank was made by it."""
  try:
    with np.load(path, allow_pickle=False) as z:
      bank = {k: z[k] for k in z.files}
  except (OSError, ValueError) as e:
    raise BankError(f"{path}: not a speaker bank ({e})") from None
  if not {"names", "embeddings", "fingerprint"} <= bank.keys():
    raise BankError(f"{path}: not a speaker bank (python -m jaxdiar.enroll makes them)")
  if model is not None and str(bank["fingerprint"]) != model.fingerprint:
    raise BankError(f"{path}: enrolled with another model (weights {bank['fingerprint']}, "
                    f"this model's are {model.fingerprint}); enroll again with this model")
  if "threshold" not in bank:
    bank["threshold"] = np.array(default_threshold(model) if model is not None
                                 else DEFAULT_THRESHOLD["one channel"])
  return bank


def assign_names(centroids: np.ndarray | None, bank: dict,
                 threshold: float | None = None) -> dict[int, str]:
  """{global speaker index: enrolled name} for the speakers whose centroid clears the
  threshold, one name per speaker (Hungarian over speakers x names on cosine similarity)."""
  if centroids is None or not len(centroids):
    return {}
  threshold = float(bank["threshold"]) if threshold is None else threshold
  sim = centroids @ bank["embeddings"].T.astype(np.float64)             # [K, N]
  rows, cols = scipy.optimize.linear_sum_assignment(-sim)
  return {int(r): str(bank["names"][c]) for r, c in zip(rows, cols) if sim[r, c] >= threshold}


def name_turns(turns, result: decode_lib.Result, bank: dict,
               threshold: float | None = None) -> list[rttm.Turn]:
  """`turns` with each named speaker's `spkNN` label replaced by its enrolled name."""
  names = {f"spk{k:02d}": n for k, n in assign_names(result.centroids, bank, threshold).items()}
  return [rttm.Turn(t.uri, t.onset, t.offset, names.get(t.speaker, t.speaker)) for t in turns]
