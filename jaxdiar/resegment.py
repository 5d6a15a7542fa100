"""Spatial resegmentation: who talks in each frame, from the array as well as the model.

Talkers of a meeting rarely move. Once the windows are clustered into global speakers, each
speaker has a direction (the SRP-PHAT response of the frames where it alone is marked), and
every frame's own response says how much of its sound comes from there. A logistic model over
a few such numbers per frame and speaker -- the response toward the speaker (smoothed over
5, 15 and 45 frames; raw and relative to the best speaker), the model's stitched score (raw and
relative), the overlap head, the first decision and the number of speakers it marks -- gives
P(speaker talks); frames above `resegment_threshold` are marked. It adds the second talker of
an overlap the model missed and moves frames given to the wrong speaker.

The weights are fitted (`fit`) on simulated meetings kept apart from the dev and held-out
ones, and stored with the model's inference settings (`resegment`).
"""

import numpy as np
import scipy.ndimage
import scipy.optimize
import scipy.special

SMOOTH_FRAMES = (5, 15, 45)
NUM_FEATURES = 2 * len(SMOOTH_FRAMES) + 7


def features(active: np.ndarray, score: np.ndarray, osd: np.ndarray,
             response: np.ndarray) -> np.ndarray:
  """[T, K, NUM_FEATURES] per frame and speaker (see the module docstring).

  Args:
    active: [T, K] bool, the first decision.
    score: [T, K] stitched speaker scores.
    osd: [T] stitched overlap probability.
    response: [T, G] SRP-PHAT response of every frame over G azimuths.
  """
  t, k = active.shape
  response = np.asarray(response[:t], np.float32)
  g = response.shape[1]
  alone = active & (active.sum(axis=1, keepdims=True) == 1)
  mass = alone.sum(axis=0)
  direction = (alone.T.astype(np.float32) @ response) / np.maximum(mass, 1)[:, None]   # [K, G]
  peak = direction.argmax(axis=1)
  near = (peak[:, None] + np.array([-1, 0, 1])[None, :]) % g                         # [K, 3]
  count = np.repeat(active.sum(axis=1, keepdims=True), k, axis=1).astype(np.float32)
  columns, rel15 = [], None
  for size in SMOOTH_FRAMES:
    smooth = scipy.ndimage.uniform_filter1d(response, size, axis=0, mode="nearest")
    toward = smooth[:, near].max(axis=2)                                             # [T, K]
    rel = toward - np.median(smooth, axis=1, keepdims=True)
    columns += [rel, rel - rel.max(axis=1, keepdims=True)]
    if size == 15:
      rel15 = rel
  best = score - score.max(axis=1, keepdims=True)
  columns += [score, best, np.repeat(osd[:t, None], k, axis=1), active.astype(np.float32),
              count, rel15 * active, score * (rel15 - rel15.max(axis=1, keepdims=True))]
  return np.stack(columns, axis=-1).astype(np.float32)


def apply(active: np.ndarray, score: np.ndarray, osd: np.ndarray, response: np.ndarray,
          weights, threshold: float) -> np.ndarray:
  """The new [T, K] decision: P(talks) > threshold, and where no one is then marked but the
  first decision had speech, the most likely speaker."""
  w = np.asarray(weights, np.float32)
  if w.shape != (NUM_FEATURES + 1,):
    raise ValueError(f"resegment weights: {w.shape[0]} numbers, expected {NUM_FEATURES + 1} "
                     "(fitted for another feature set: refit with bench_accuracy --fit-resegment)")
  logit = features(active, score, osd, response) @ w[:-1] + w[-1]
  new = logit > np.log(threshold / (1.0 - threshold))
  top = logit.argmax(axis=1)
  lost = ~new.any(axis=1) & active.any(axis=1)
  new[np.flatnonzero(lost), top[lost]] = True
  return new


def frame_labels(active: np.ndarray, reference: np.ndarray) -> np.ndarray:
  """[T, K] target: each hypothesis speaker's reference speaker's activity, speakers paired to
  maximise the frames they share (Hungarian); an unpaired speaker's target is all 0."""
  shared = active.T.astype(np.float64) @ reference.astype(np.float64)
  rows, cols = scipy.optimize.linear_sum_assignment(-shared)
  target = np.zeros(active.shape, bool)
  target[:, rows] = reference[:, cols]
  return target


def fit(examples, l2: float = 1.0) -> list[float]:
  """Logistic-regression weights (+ intercept last) from (features [T, K, F], target [T, K])
  pairs; L2 penalty `l2` / 2 * |w|^2 on the weights (not the intercept), as scikit-learn's
  default (C = 1)."""
  x = np.concatenate([f.reshape(-1, f.shape[-1]) for f, _ in examples]).astype(np.float64)
  y = np.concatenate([t.reshape(-1) for _, t in examples]).astype(np.float64)
  x = np.concatenate([x, np.ones((len(x), 1))], axis=1)

  def loss(w):
    z = x @ w
    value = np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 * np.sum(w[:-1] ** 2)
    grad = x.T @ (scipy.special.expit(z) - y)
    grad[:-1] += l2 * w[:-1]
    return value, grad

  found = scipy.optimize.minimize(loss, np.zeros(x.shape[1]), jac=True, method="L-BFGS-B",
                                  options=dict(maxiter=2000))
  return [round(float(v), 6) for v in found.x]
