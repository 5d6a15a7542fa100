"""The speech decision as a classifier (`speech_classifier`): where anyone talks, from all the
evidence a decoding holds, in place of the speech detector's gate (`decode.gate_speech`).

The gate reads one number per frame, the pretrained detector's probability. A reverberant room
stretches every turn by its tail and the detector hears the tail as speech; so does the model.
The classifier weighs, per frame (`features`, NUM_FEATURES of them):

- the detector on every channel (its highest) and on the read channel: each raw and its
  running max / min over DETECTOR_RADII frames either side (the tail's decay is slow, speech's
  onsets are not);
- the model's stitched evidence: P(anyone) from the speakers' scores and the top score, raw
  and their running max / min over SCORE_RADII; the overlap head; the decision before the gate;
- the array: the SRP-PHAT response's peak and its height over the median, smoothed over
  RESPONSE_FRAMES (a direct path is a sharp peak, a diffuse tail a flat response);
- with more weights, the read channel's frame levels (LEVEL_RADII) and then the project's own
  frame speech network (`jaxdiar.models.speech_net`, trained on the reference's speech;
  NET_RADII).

A logistic model of "someone in the reference talks" over them (`fit`, on meetings of their
own seeds: `bench_accuracy --fit-speech-classifier`) gives P(speech); frames under
`speech_classifier_threshold` lose every speaker, frames at or above `speech_classifier_fill`
where no one is marked get the likeliest speaker, then each speaker's gaps under
min_silence_seconds are filled and segments under min_speech_seconds dropped. The weights
(NUM_FEATURES + 1 numbers, intercept last) live in the model's inference settings.
"""

import numpy as np
import scipy.ndimage

from jaxdiar.core import resegment as resegment_lib
from jaxdiar.decoding.frames import fill_and_drop
from jaxdiar.models import vad as vad_lib

DETECTOR_RADII = (3, 6, 12, 25)          # model frames either side (16 ms each at 16 kHz)
SCORE_RADII = (6, 25)
RESPONSE_FRAMES = (1, 5, 15)
NUM_FEATURES = (2 * (1 + 2 * len(DETECTOR_RADII)) + 2 * (1 + 2 * len(SCORE_RADII)) + 2
                + 2 * len(RESPONSE_FRAMES))
# The frame levels' features (a classifier of NUM_FEATURES + NUM_LEVEL_FEATURES + 1 weights reads
# them): the read channel's energy over the recording's 5th and 95th percentiles, its speech
# band's over the 5th, each raw and its running max / min over LEVEL_RADII frames.
LEVEL_RADII = (3, 12, 25)
NUM_LEVEL_FEATURES = 3 * (1 + 2 * len(LEVEL_RADII))
# The frame speech network's (`jaxdiar.models.speech_net`; a classifier of NUM_FEATURES +
# NUM_LEVEL_FEATURES + NUM_NET_FEATURES + 1 weights reads it, after the levels): its
# probability raw and its running max / min over NET_RADII frames.
NET_RADII = (3, 12, 25)
NUM_NET_FEATURES = 1 + 2 * len(NET_RADII)
# The classifier's lengths (weights + intercept) and what each reads: levels, the network.
SIZES = {NUM_FEATURES + 1: (False, False),
         NUM_FEATURES + NUM_LEVEL_FEATURES + 1: (True, False),
         NUM_FEATURES + NUM_LEVEL_FEATURES + NUM_NET_FEATURES + 1: (True, True)}


def _with_extremes(x: np.ndarray, radii) -> list[np.ndarray]:
  cols = [x]
  for r in radii:
    cols.append(scipy.ndimage.maximum_filter1d(x, 2 * r + 1, mode="nearest"))
    cols.append(scipy.ndimage.minimum_filter1d(x, 2 * r + 1, mode="nearest"))
  return cols


def on_frames(speech: np.ndarray, num_frames: int, fs: float) -> np.ndarray:
  """[num_frames] float32: the detector's probability (every 32 ms) at each frame of `fs`
  seconds (its last value past its end)."""
  chunk = ((np.arange(num_frames) + 0.5) * fs / vad_lib.FRAME_SECONDS).astype(int)
  return np.asarray(speech, np.float32)[np.minimum(chunk, len(speech) - 1)]


def clear_and_fill(active: np.ndarray, score: np.ndarray, p: np.ndarray, *,
                   threshold: float | None, fill: float | None) -> np.ndarray:
  """A copy of the [T, K] decision with no speaker where the frame's P(speech) `p` [T] is
  under `threshold`, and the top-scoring one where p is at least `fill` and no one is marked
  (None: that half off)."""
  active = active.copy()
  if threshold is not None:
    active[p < threshold] = False
  if fill is not None and active.shape[1]:
    empty = (p >= fill) & ~active.any(axis=1)
    active[np.flatnonzero(empty), np.argmax(score[:len(active)][empty], axis=1)] = True
  return active


def features(active: np.ndarray, score: np.ndarray, osd: np.ndarray, speech_first: np.ndarray,
             speech_max: np.ndarray, response: np.ndarray, fs: float,
             level: np.ndarray | None = None, net: np.ndarray | None = None) -> np.ndarray:
  """[T, NUM_FEATURES] float32 of each frame (`fs` seconds) of a decision `active` [T, K] with
  its stitched scores `score` [T, K], overlap `osd` [T], the detector's probabilities every
  32 ms on the read channel and the highest over the channels, and the frame responses
  `response` [>= T, G] (see the module docstring)."""
  t = len(active)
  if response is None or len(response) < t:
    raise ValueError("speech_classifier needs the frame responses of an array (a model with "
                     "the spatial stages, or a one-channel model given --mics)")
  cols = []
  for p in (speech_max, speech_first):
    cols += _with_extremes(on_frames(p, t, fs), DETECTOR_RADII)
  s = np.clip(np.asarray(score[:t], np.float32), 0.0, 1.0)
  anyone = 1.0 - np.prod(1.0 - s, axis=1) if s.shape[1] else np.zeros(t, np.float32)
  top = s.max(axis=1) if s.shape[1] else np.zeros(t, np.float32)
  for q in (anyone, top):
    cols += _with_extremes(q.astype(np.float32), SCORE_RADII)
  cols += [np.asarray(osd[:t], np.float32), active.any(axis=1).astype(np.float32)]
  resp = np.asarray(response[:t], np.float32)
  for size in RESPONSE_FRAMES:
    r = scipy.ndimage.uniform_filter1d(resp, size, axis=0, mode="nearest") if size > 1 else resp
    peak = r.max(axis=1)
    cols += [peak - np.median(r, axis=1), peak]
  if level is not None:
    if len(level) < t:
      raise ValueError(f"frame levels for {len(level)} frames, the decision has {t}")
    energy, band = (np.asarray(level[:t, i], np.float32) for i in (0, 1))
    for x in (energy - np.percentile(energy, 5), energy - np.percentile(energy, 95),
              band - np.percentile(band, 5)):
      cols += _with_extremes(x, LEVEL_RADII)
  if net is not None:
    if level is None:
      raise ValueError("the speech network's features come after the frame levels: give both")
    if len(net) < t:
      raise ValueError(f"speech network probabilities for {len(net)} frames, the decision has {t}")
    cols += _with_extremes(np.asarray(net[:t], np.float32), NET_RADII)
  return np.stack(cols, axis=1).astype(np.float32)


def reads_levels(weights) -> bool:
  """Whether a classifier of these weights reads the frame levels (by their count)."""
  return SIZES.get(len(weights), (False, False))[0]


def reads_net(weights) -> bool:
  """Whether a classifier of these weights reads the frame speech network (by their count)."""
  return SIZES.get(len(weights), (False, False))[1]


def probability(features_: np.ndarray, weights) -> np.ndarray:
  """[T] P(anyone talks) of features [T, NUM_FEATURES] under logistic `weights`."""
  w = np.asarray(weights, np.float64)
  if w.shape != (features_.shape[1] + 1,) or w.size not in SIZES:
    raise ValueError(f"speech_classifier: {w.size} numbers, expected {NUM_FEATURES + 1}, with "
                     f"the frame levels {NUM_FEATURES + NUM_LEVEL_FEATURES + 1}, with them and "
                     f"the speech network {max(SIZES)} (one per feature, then the intercept), "
                     f"for {features_.shape[1]} features: refit with bench_accuracy "
                     f"--fit-speech-classifier")
  return 1.0 / (1.0 + np.exp(-(features_.astype(np.float64) @ w[:-1] + w[-1])))


def decide(active: np.ndarray, score: np.ndarray, p: np.ndarray, *, threshold: float,
           fill: float | None, min_speech: int, min_silence: int) -> np.ndarray:
  """The new [T, K] decision: no speaker where P(speech) `p` < `threshold`; the top-scoring
  one where p >= `fill` (None: off) and no one is marked; then each speaker's short gaps
  filled and short segments dropped (frames)."""
  active = clear_and_fill(active, score, p, threshold=threshold, fill=fill)
  for k in range(active.shape[1]):
    active[:, k] = fill_and_drop(active[:, k], min_speech, min_silence)
  return active


def fit(examples, l2: float = 1.0) -> list[float]:
  """Logistic weights (NUM_FEATURES + 1, intercept last) from (features [T, F], target [T]
  bool: someone in the reference talks) pairs (`jaxdiar.core.resegment.fit`'s solver)."""
  return resegment_lib.fit([(f[:, None, :], y[:, None]) for f, y in examples], l2=l2)
