"""Spatial resegmentation: who talks in each frame, from the array as well as the model.

Talkers of a meeting rarely move. Once the windows are clustered into global speakers, each
speaker has a direction (the SRP-PHAT response of the frames where it alone is marked), and
every frame's own response says how much of its sound comes from there. A logistic model over
a few such numbers per frame and speaker -- the response toward the speaker (smoothed over
5, 15 and 45 frames; raw and relative to the best speaker), the model's stitched score (raw and
relative), the overlap head, the first decision and the number of speakers it marks -- gives
P(speaker talks); frames above `resegment_threshold` are marked. It adds the second talker of
an overlap the model missed and moves frames given to the wrong speaker.

Shares (the second feature set, `SHARES`): a frame's response is close to a non-negative
mix of the responses of the talkers in it (each time-frequency bin is dominated by one source,
and the PHAT-weighted response is a sum over bins), plus a flat part for diffuse sound. With
each speaker's mean response as a template, non-negative least squares over the frame's
response (smoothed over 5, 15 and 45 frames) gives each speaker's share of the frame: where
the peak toward a talker is partly the sidelobe of a louder one, its share stays near zero,
and a second talker in an overlap gets its part. The templates are refined once, from the
frames each speaker dominates.

The weights are fitted (`fit`; or `fit_mlp`, a one-layer tanh MLP over the same features,
which also learns their interactions) on simulated meetings kept apart from the dev and
held-out ones, and stored with the model's inference settings (`resegment`: one flat vector
whose length says which model and feature set, `layout`).
"""

import numpy as np
import scipy.ndimage
import scipy.optimize
import scipy.special

SMOOTH_FRAMES = (5, 15, 45)
# `apply` decides this many frames at a time (the features of a chunk, with the smoothing's
# margin either side, not of the whole recording: 2 h with 19 speakers took 4.5 GB at once).
CHUNK_FRAMES = 20000
NUM_FEATURES = 2 * len(SMOOTH_FRAMES) + 7            # the first feature set
SHARES = NUM_FEATURES + 3 * len(SMOOTH_FRAMES)       # with each speaker's share of the frame
FEATURE_SETS = (NUM_FEATURES, SHARES)


def alone(active: np.ndarray) -> np.ndarray:
  """[T, K] bool: where each speaker is the only one the decision `active` marks."""
  return active & (active.sum(axis=1, keepdims=True) == 1)


def nnls(templates: np.ndarray, response: np.ndarray, *, max_exact: int = 10) -> np.ndarray:
  """[T, K] non-negative x minimising |x @ templates - response[t]|^2 for every frame at once
  (templates [K, G], response [T, G]).

  Exact for K <= `max_exact`, over all frames together: the optimum is the least-squares
  solution on the support where it is positive, so every support's solution is computed
  (2^K - 1 small solves, each for all frames at once) and each frame keeps the feasible one
  of least residual. Beyond that, scipy's active-set solver frame by frame (exact too, about
  20 us a frame at K = 14: linear in the frames; the coordinate descent it replaced took
  minutes on long recordings with many talkers).
  """
  a = np.asarray(templates, np.float64)
  k = len(a)
  if k > max_exact:
    return np.stack([scipy.optimize.nnls(a.T, r)[0]
                     for r in np.asarray(response, np.float64)]).reshape(len(response), k)
  gram = a @ a.T
  b = np.asarray(response, np.float64) @ a.T                                         # [T, K]
  x = np.zeros_like(b)
  best = np.zeros(len(b))                 # residual less |response|^2: -b.x at a support's LS
  for mask in range(1, 2 ** k):
    support = [j for j in range(k) if mask >> j & 1]
    sub = np.linalg.pinv(gram[np.ix_(support, support)])
    xs = b[:, support] @ sub                                                         # [T, |S|]
    value = -np.sum(b[:, support] * xs, axis=1)
    better = np.all(xs >= 0, axis=1) & (value < best - 1e-12)
    if better.any():
      best[better] = value[better]
      x[better] = 0.0
      x[np.ix_(better, support)] = xs[better]
  return x


def shares(active: np.ndarray, response: np.ndarray, sizes=SMOOTH_FRAMES,
           templates: np.ndarray | None = None,
           refined: np.ndarray | None = None) -> list[np.ndarray]:
  """Each speaker's [T, K] share of every frame's response smoothed over each of `sizes`
  frames (see the module docstring): the templates are the speakers' mean responses where
  the first decision marks them alone, then where they dominate (frames weighted by the
  squared fraction of the 15-frame shares they take); or the given `templates` [K, G] as
  they are (a live stream's, from the frames decided so far); or `refined`, the templates
  `share_templates` made from the whole recording (when this is part of it)."""
  t, k = active.shape
  response = np.asarray(response[:t], np.float32)
  flat = np.full((1, response.shape[1]), 1.0 / np.sqrt(response.shape[1]), np.float32)
  smooth = {n: scipy.ndimage.uniform_filter1d(response, n, axis=0, mode="nearest")
            for n in sorted({15, *sizes})}
  if templates is not None:
    given = np.concatenate([np.asarray(templates, np.float32), flat])
  else:
    given = np.concatenate([refined if refined is not None
                            else share_templates(active, response, smooth[15]), flat])
  return [nnls(given, smooth[n])[:, :k] for n in sizes]


def share_templates(active: np.ndarray, response: np.ndarray,
                    smooth15: np.ndarray | None = None) -> np.ndarray:
  """[K, G] the speakers' templates `shares` uses: their mean responses where the decision
  marks them alone, refined once from the frames each dominates (`smooth15`: the response
  smoothed over 15 frames, computed here if not given)."""
  k = active.shape[1]
  response = np.asarray(response[:len(active)], np.float32)
  if smooth15 is None:
    smooth15 = scipy.ndimage.uniform_filter1d(response, 15, axis=0, mode="nearest")
  flat = np.full((1, response.shape[1]), 1.0 / np.sqrt(response.shape[1]), np.float32)
  weight = alone(active).astype(np.float32)
  templates = (weight.T @ response) / np.maximum(weight.sum(axis=0), 1e-6)[:, None]
  s = nnls(np.concatenate([templates, flat]), smooth15)[:, :k]
  weight = active * (s / np.maximum(s.sum(axis=1, keepdims=True), 1e-6)) ** 2
  return (weight.T @ response) / np.maximum(weight.sum(axis=0), 1e-6)[:, None]


def direction_templates(active: np.ndarray, response: np.ndarray) -> np.ndarray:
  """[K, G] each speaker's mean response over the frames the decision marks it alone."""
  only = alone(active)
  response = np.asarray(response[:len(active)], np.float32)
  return (only.T.astype(np.float32) @ response) / np.maximum(only.sum(axis=0), 1)[:, None]


def features(active: np.ndarray, score: np.ndarray, osd: np.ndarray,
             response: np.ndarray, num: int = NUM_FEATURES,
             templates: np.ndarray | None = None,
             shares_from: np.ndarray | None = None) -> np.ndarray:
  """[T, K, num] per frame and speaker (see the module docstring): the first feature set
  (`NUM_FEATURES`), or with the speakers' shares of the frame (`SHARES`: per smoothing, the
  share, less the largest share, and its fraction of the frame's shares).

  Args:
    active: [T, K] bool, the first decision.
    score: [T, K] stitched speaker scores.
    osd: [T] stitched overlap probability.
    response: [T, G] SRP-PHAT response of every frame over G azimuths.
    templates: [K, G] the speakers' responses (default: their mean over the frames the first
      decision marks them alone; a live stream gives those of the frames decided so far).
    shares_from: [K, G] the shares' refined templates (`share_templates` of the whole
      recording, when `active`... are a part of it; default: `templates` where given, else
      refined here).
  """
  t, k = active.shape
  response = np.asarray(response[:t], np.float32)
  g = response.shape[1]
  direction = (direction_templates(active, response) if templates is None
               else np.asarray(templates, np.float32))                               # [K, G]
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
  if num not in FEATURE_SETS:
    raise ValueError(f"resegment: {num} features, expected one of {FEATURE_SETS}")
  if num == SHARES:
    for share in shares(active, response, templates=templates if shares_from is None else None,
                        refined=shares_from):
      columns += [share, share - share.max(axis=1, keepdims=True),
                  share / np.maximum(share.sum(axis=1, keepdims=True), 1e-3)]
  return np.stack(columns, axis=-1).astype(np.float32)


def layout(weights) -> tuple[str, int, int]:
  """(kind, features, hidden) of a weight vector, read from its length: "logistic" (one
  weight per feature, then the intercept: F + 1 numbers) or "mlp" (one tanh layer of H units:
  W1 [F, H] row-major, b1 [H], w2 [H], b2: (F + 2) H + 1 numbers), F one of FEATURE_SETS.
  A length that two of them share is refused (`fit_mlp` never writes one)."""
  n = int(np.size(weights))
  found = [("logistic", f, 0) for f in FEATURE_SETS if n == f + 1]
  found += [("mlp", f, (n - 1) // (f + 2)) for f in FEATURE_SETS
            if (n - 1) % (f + 2) == 0 and (n - 1) // (f + 2) >= 2]
  if len(found) != 1:
    raise ValueError(f"resegment weights: {n} numbers, expected F + 1 (logistic) or (F + 2) H + 1 "
                     f"(MLP) for F in {list(FEATURE_SETS)}"
                     + (" (ambiguous: " + ", ".join(map(str, found)) + ")" if found else "")
                     + ": refit with bench_accuracy --fit-resegment")
  return found[0]


def logits(features_: np.ndarray, weights) -> np.ndarray:
  """[T, K] logit of P(talks) from features [T, K, F] and a weight vector (see `layout`)."""
  kind, f, h = layout(weights)
  w = np.asarray(weights, np.float32)
  if kind == "logistic":
    return features_ @ w[:-1] + w[-1]
  w1 = w[:f * h].reshape(f, h)
  b1, w2, b2 = w[f * h:f * h + h], w[f * h + h:f * h + 2 * h], w[-1]
  return np.tanh(features_ @ w1 + b1) @ w2 + b2


def apply(active: np.ndarray, score: np.ndarray, osd: np.ndarray, response: np.ndarray,
          weights, threshold: float, templates: np.ndarray | None = None,
          chunk: int = CHUNK_FRAMES) -> np.ndarray:
  """The new [T, K] decision: P(talks) > threshold, and where no one is then marked but the
  first decision had speech, the most likely speaker. Decided CHUNK_FRAMES at a time (the
  templates from the whole recording, the smoothing with its margin): memory is bounded by
  the chunk, not the recording (tested equal to deciding at once)."""
  t = len(active)
  num = layout(weights)[1]
  response = np.asarray(response[:t], np.float32)
  direction = (direction_templates(active, response) if templates is None
               else np.asarray(templates, np.float32))
  from_shares = share_templates(active, response) if num == SHARES and templates is None else None
  margin = max(SMOOTH_FRAMES + (15,))
  logit = np.empty(active.shape, np.float32)
  for a in range(0, t, chunk):
    b = min(t, a + chunk)
    lo, hi = max(0, a - margin), min(t, b + margin)
    part = features(active[lo:hi], score[lo:hi], osd[lo:hi], response[lo:hi], num, direction,
                    from_shares)
    logit[a:b] = logits(part, weights)[a - lo:b - lo]
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


def fit_mlp(examples, hidden: int = 32, l2: float = 1e-3, seed: int = 0,
            max_iter: int = 1500) -> list[float]:
  """Weights of a one-layer tanh MLP (see `layout`) from (features [T, K, F], target [T, K])
  pairs: mean log-loss + `l2` / 2 * |weights|^2 (not the biases), full-batch L-BFGS from a
  seeded start, on standardised features (the standardisation is folded into the first layer,
  so the weights take the raw features)."""
  x = np.concatenate([f.reshape(-1, f.shape[-1]) for f, _ in examples]).astype(np.float64)
  y = np.concatenate([t.reshape(-1) for _, t in examples]).astype(np.float64)
  mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
  z = (x - mean) / scale
  n, f = z.shape
  try:
    readable = layout(np.zeros((f + 2) * hidden + 1)) == ("mlp", f, hidden)
  except ValueError:                                                    # ambiguous length
    readable = False
  if not readable:
    raise ValueError(f"fit_mlp: {hidden} units over {f} features cannot be told from another "
                     "layout by the weights' length; choose another number of units")
  rng = np.random.default_rng(seed)
  sizes = (f * hidden, hidden, hidden, 1)
  start = np.concatenate([rng.normal(0.0, 1.0 / np.sqrt(f), f * hidden), np.zeros(hidden),
                          rng.normal(0.0, 1.0 / np.sqrt(hidden), hidden), np.zeros(1)])

  def unpack(theta):
    w1, b1, w2, b2 = np.split(theta, np.cumsum(sizes)[:-1])
    return w1.reshape(f, hidden), b1, w2, b2[0]

  def loss(theta):
    w1, b1, w2, b2 = unpack(theta)
    h = np.tanh(z @ w1 + b1)
    logit = h @ w2 + b2
    value = np.mean(np.logaddexp(0.0, logit) - y * logit) + 0.5 * l2 * (
        np.sum(w1 ** 2) + np.sum(w2 ** 2))
    g = (scipy.special.expit(logit) - y) / n                                        # [N]
    gh = np.outer(g, w2) * (1.0 - h ** 2)                                          # [N, H]
    grad = [z.T @ gh + l2 * w1, gh.sum(axis=0), h.T @ g + l2 * w2, np.array([g.sum()])]
    return value, np.concatenate([v.ravel() for v in grad])

  found = scipy.optimize.minimize(loss, start, jac=True, method="L-BFGS-B",
                                  options=dict(maxiter=max_iter))
  w1, b1, w2, b2 = unpack(found.x)
  raw_w1 = w1 / scale[:, None]                               # the raw features' first layer
  raw_b1 = b1 - (mean / scale) @ w1
  return [round(float(v), 6) for v in np.concatenate([raw_w1.ravel(), raw_b1, w2, [b2]])]
