"""How many talk at each frame, as a classifier (`overlap_classifier`): where the decision
marks two or more speakers, is there really more than one talker?

The decoded overlaps mostly come from the stitching and the spatial resegmentation, not from
two local speakers of one window: a talker whose local speakers went to two clusters is marked
twice where the windows overlap, and a turn's end is marked beside the next one's start. On
the fit meetings 5.3 % of the reference's speech was such a false second talker
(docs/accuracy.md). The classifier weighs, per frame (`features`, NUM_FEATURES of them):

- everything the frame speech classifier reads (`jaxdiar.decoding.speech.features`, with the
  frame levels and the frame speech network);
- the windows' own evidence of a second talker: the expected number of local talkers (the sum
  of their probabilities), the second-highest local probability averaged over the covering
  windows and its highest over them (`local_evidence`);
- the second-highest stitched score, the overlap head; each of these raw and its running max /
  min over RADII frames either side; and how many speakers the decision marks (at most 3).

A logistic model of "two or more talk in the reference" over them (`fit`, fitted on the frames
where someone is marked, on meetings of their own seeds: `bench_accuracy
--fit-overlap-classifier`) gives P(overlap); where two or more are marked and it is under
`overlap_classifier_threshold`, only the speaker with the highest stitched score stays; then
each speaker's short gaps are filled and short segments dropped. The weights (NUM_FEATURES + 1,
intercept last) live in the model's inference settings.
"""

import numpy as np

from jaxdiar.core import resegment as resegment_lib
from jaxdiar.decoding import speech as speech_lib
from jaxdiar.decoding.frames import fill_and_drop

RADII = (3, 12, 25)
# The speech classifier's features it reads first (with the frame levels and the network).
SPEECH_FEATURES = (speech_lib.NUM_FEATURES + speech_lib.NUM_LEVEL_FEATURES
                   + speech_lib.NUM_NET_FEATURES)
NUM_FEATURES = SPEECH_FEATURES + 5 * (1 + 2 * len(RADII)) + 1


def local_evidence(vad: np.ndarray, window_frames, total: int) -> np.ndarray:
  """[total, 3] of the windows' local probabilities `vad` [W, frames, S] placed at
  `window_frames`: the expected number of talkers and the second-highest probability, each
  averaged over the covering windows, and the second-highest's highest over them."""
  num_windows, tw, slots = vad.shape
  cover, expected, second, highest = (np.zeros(total) for _ in range(4))
  for w in range(num_windows):
    f0 = int(window_frames[w])
    n = max(0, min(tw, total - f0))
    v = np.sort(np.asarray(vad[w, :n], np.float64), axis=1)
    cover[f0:f0 + n] += 1
    expected[f0:f0 + n] += v.sum(axis=1)
    if slots > 1:
      second[f0:f0 + n] += v[:, -2]
      highest[f0:f0 + n] = np.maximum(highest[f0:f0 + n], v[:, -2])
  cover = np.maximum(cover, 1)
  return np.stack([expected / cover, second / cover, highest], axis=1).astype(np.float32)


def features(speech_features: np.ndarray, active: np.ndarray, score: np.ndarray,
             osd: np.ndarray, local: np.ndarray) -> np.ndarray:
  """[T, NUM_FEATURES] float32 of each frame of a decision `active` [T, K]: the speech
  classifier's features of it (`speech_features`, with levels and network), its stitched
  scores `score` [T, K], the overlap head `osd` [T] and `local_evidence` [T, 3]."""
  t = len(active)
  if speech_features.shape != (t, SPEECH_FEATURES):
    raise ValueError(f"overlap_classifier reads the speech classifier's features with the frame "
                     f"levels and the speech network: {speech_features.shape[1]} given")
  s = np.sort(np.clip(np.asarray(score[:t], np.float32), 0.0, 1.0), axis=1)
  second = s[:, -2] if s.shape[1] > 1 else np.zeros(t, np.float32)
  cols = [speech_features]
  for x in (local[:t, 0], local[:t, 1], local[:t, 2], second, np.asarray(osd[:t], np.float32)):
    cols.append(np.stack(speech_lib._with_extremes(np.asarray(x, np.float32), RADII), axis=1))
  cols.append(np.minimum(active.sum(axis=1), 3)[:, None].astype(np.float32))
  return np.concatenate(cols, axis=1).astype(np.float32)


def evidence(inference, active: np.ndarray, score: np.ndarray, osd: np.ndarray,
             fs: float) -> np.ndarray:
  """`features` of a decision `active` [T, K] (after the speech classifier) with its stitched
  scores and overlap head, from what `inference` (a `jaxdiar.decoding.windows.Inference` with
  the detector on every channel, the frame levels and the speech network) holds."""
  inf = inference
  return features(speech_lib.features(active, score, osd, inf.speech, inf.speech_max,
                                      inf.response, fs, inf.level, inf.speech_net),
                  active, score, osd, local_evidence(inf.vad, inf.window_frames, len(active)))


def probability(features_: np.ndarray, weights) -> np.ndarray:
  """[T] P(two or more talk) of features [T, NUM_FEATURES] under logistic `weights`."""
  w = np.asarray(weights, np.float64)
  if w.shape != (NUM_FEATURES + 1,) or features_.shape[1] != NUM_FEATURES:
    raise ValueError(f"overlap_classifier: {w.size} numbers, expected {NUM_FEATURES + 1} (one "
                     f"per feature, then the intercept): refit with bench_accuracy "
                     f"--fit-overlap-classifier")
  return 1.0 / (1.0 + np.exp(-(features_.astype(np.float64) @ w[:-1] + w[-1])))


def decide(active: np.ndarray, score: np.ndarray, p: np.ndarray, *, threshold: float,
           min_speech: int, min_silence: int) -> np.ndarray:
  """The new [T, K] decision: where two or more are marked and P(overlap) `p` < `threshold`,
  the one with the highest stitched score alone; then each speaker's short gaps filled and
  short segments dropped (frames)."""
  active = active.copy()
  many = np.flatnonzero((active.sum(axis=1) >= 2) & (p < threshold))
  if len(many):
    masked = np.where(active[many], score[many], -np.inf)
    top = np.argmax(masked, axis=1)
    active[many] = False
    active[many, top] = True
  for k in range(active.shape[1]):
    active[:, k] = fill_and_drop(active[:, k], min_speech, min_silence)
  return active


def fit(examples, l2: float = 1.0) -> list[float]:
  """Logistic weights (NUM_FEATURES + 1, intercept last) for raw features, from (features
  [T, F], target [T] bool: two or more talk in the reference) pairs: fitted on standardised
  features (`jaxdiar.core.resegment.fit`'s solver, L2 on the standardised weights), the
  standardisation then folded into the weights."""
  x = np.concatenate([f for f, _ in examples]).astype(np.float64)
  mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
  w = np.asarray(resegment_lib.fit([(((f - mean) / scale)[:, None, :], y[:, None])
                                    for f, y in examples], l2=l2))
  raw = w[:-1] / scale
  return [round(float(v), 6) for v in np.concatenate([raw, [w[-1] - np.sum(raw * mean)]])]
