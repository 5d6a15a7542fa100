"""jaxdiar.core.resegment: the per-frame spatial features, the speakers' shares (non-negative
least squares against scipy's), the logistic fit (against scikit-learn's), the decision rule,
and decode with it on a synthetic two-talker scene."""

import numpy as np
import pytest
import scipy.optimize

from jaxdiar import diarize
from jaxdiar.core import resegment
from tests.test_decode import OPTIONS, frames, inference

G = 72


def scene(total=600):
  """Two talkers at azimuth bins 10 and 40: A on 0-400, B on 300-600 (overlap 300-400).
  The frame responses peak at each talker's bin while it talks."""
  truth = np.zeros((total, 2), bool)
  truth[:400, 0] = truth[300:, 1] = True
  rng = np.random.default_rng(0)
  response = rng.normal(0.0, 0.01, (total, G))
  for k, b in enumerate((10, 40)):
    response[truth[:, k], b] += 0.2
  return truth, response.astype(np.float32)


def test_features_point_at_the_talker():
  truth, response = scene()
  active = truth.copy()
  active[300:400, 1] = False                       # the first decision misses B in the overlap
  score = active * 0.8
  f = resegment.features(active, score, np.zeros(len(active)), response)
  assert f.shape == (len(active), 2, resegment.NUM_FEATURES)
  rel15 = f[..., 2]                                # response toward each talker, 15 frames
  assert rel15[320:380, 1].min() > 0.1             # B is heard in the overlap
  assert rel15[100:250, 1].max() < 0.05            # and not while A talks alone
  assert rel15[450:550, 0].max() < 0.05


def test_nnls_matches_scipy():
  rng = np.random.default_rng(3)
  for k in (1, 2, 5, 12, 16):                      # 12, 16: beyond max_exact, active set
    templates = np.abs(rng.normal(size=(k, G))) + rng.normal(size=(1, G))
    response = rng.normal(size=(300, G)) + rng.random((300, k)) @ templates
    response[:50] *= -1                            # frames whose optimum is partly or all 0
    x = resegment.nnls(templates, response)
    ref = np.stack([scipy.optimize.nnls(templates.T, r)[0] for r in response])
    np.testing.assert_allclose(x, ref, atol=1e-6)
    assert (x >= 0).all() and (x == 0).any()


def beam_scene(total=600, bins=(10, 22), width=8.0):
  """Like `scene`, but each talker's response is a broad beam (the array's small aperture):
  talker A's beam still reaches B's bin at a third of its height."""
  truth = np.zeros((total, 2), bool)
  truth[:400, 0] = truth[300:, 1] = True
  d = lambda b: np.minimum(np.abs(np.arange(G) - b), G - np.abs(np.arange(G) - b))
  rng = np.random.default_rng(0)
  response = rng.normal(0.0, 0.02, (total, G)) + 0.05
  for k, b in enumerate(bins):
    response += 0.3 * truth[:, k:k + 1] * np.exp(-0.5 * (d(b) / width) ** 2)[None]
  return truth, response.astype(np.float32)


def test_shares_explain_away_a_louder_talkers_beam():
  truth, response = beam_scene()
  active = truth.copy()
  active[300:400, 1] = False                       # the first decision misses B in the overlap
  f = resegment.features(active, active * 0.8, np.zeros(len(active)), response,
                         resegment.SHARES)
  assert f.shape == (len(active), 2, resegment.SHARES)
  np.testing.assert_array_equal(f[..., :resegment.NUM_FEATURES], resegment.features(
      active, active * 0.8, np.zeros(len(active)), response))
  toward, share = f[..., 2], f[..., resegment.NUM_FEATURES + 3]      # both over 15 frames
  assert toward[100:250, 1].mean() > 0.25 * toward[450:550, 1].mean()   # A's beam reaches B
  assert share[100:250, 1].max() < 0.02            # but B's share while A talks alone is ~0
  assert share[320:380, 1].min() > 0.5 and share[320:380, 0].min() > 0.5   # both in overlap
  assert share[450:550, 1].min() > 0.9 and share[450:550, 0].max() < 0.02


def test_fit_matches_scikit_learn():
  sklearn = pytest.importorskip("sklearn.linear_model")
  rng = np.random.default_rng(1)
  x = rng.normal(size=(3000, 4, resegment.NUM_FEATURES)).astype(np.float32)
  w = rng.normal(size=resegment.NUM_FEATURES)
  y = rng.random((3000, 4)) < 1 / (1 + np.exp(-(x @ w - 0.5)))
  ours = np.array(resegment.fit([(x[:1000], y[:1000]), (x[1000:], y[1000:])]))
  ref = sklearn.LogisticRegression(C=1.0, tol=1e-8, max_iter=5000).fit(
      x.reshape(-1, x.shape[-1]), y.reshape(-1))
  np.testing.assert_allclose(ours[:-1], ref.coef_[0], atol=2e-3)
  assert abs(ours[-1] - ref.intercept_[0]) < 2e-3
  assert np.corrcoef(ours[:-1], w)[0, 1] > 0.99    # and it recovers the generating weights


def test_apply_threshold_and_nobody_lost():
  truth, response = scene(200)
  active = truth.copy()
  score = active * 0.8
  w = np.zeros(resegment.NUM_FEATURES + 1)
  w[-1] = -5.0                                     # P(talks) = 0.007 everywhere ...
  new = resegment.apply(active, score, np.zeros(200), response, w, 0.5)
  assert (new.sum(axis=1) == 1).all()              # ... but speech keeps its likeliest talker
  w[-1] = 5.0
  assert resegment.apply(active, score, np.zeros(200), response, w, 0.5).all()
  assert not resegment.apply(active, score, np.zeros(200), response, w, 0.999).all()
  with pytest.raises(ValueError, match="refit"):
    resegment.apply(active, score, np.zeros(200), response, w[:-1], 0.5)
  shares = np.zeros(resegment.SHARES + 1)          # the second feature set, by its length
  shares[-1] = 5.0
  assert resegment.apply(active, score, np.zeros(200), response, shares, 0.5).all()


def test_frame_labels_pair_speakers():
  ref = np.zeros((10, 3), bool)
  ref[:5, 2] = ref[5:, 0] = True
  active = np.zeros((10, 2), bool)
  active[:5, 0] = active[5:, 1] = True
  target = resegment.frame_labels(active, ref)
  np.testing.assert_array_equal(target, ref[:, [2, 0]])


def test_decode_resegments_the_missed_overlap():
  """The windows mark B only where it talks alone; weights that follow the response toward
  each speaker (relative to the best one) give B its overlap frames back."""
  total = 600
  truth, response = scene(total)
  vad = np.zeros((1, total, 2))
  vad[0, :400, 0] = 0.9
  vad[0, 400:, 1] = 0.9
  emb = np.zeros((1, 2, 8), np.float32)
  emb[0, 0, 0] = emb[0, 1, 1] = 1.0
  inf = inference(vad, emb=emb, step=total)
  inf.response = response.astype(np.float16)
  w = np.zeros(resegment.NUM_FEATURES + 1)
  w[2], w[-1] = 40.0, -2.0                         # response toward the speaker, 15 frames
  plain = diarize.decode(inf, OPTIONS)
  redone = diarize.decode(inf, dict(OPTIONS, resegment=list(w), resegment_threshold=0.5))
  b = lambda r: frames(r.turns, "spk01", total)
  assert not b(plain)[300:400].any()
  assert b(redone)[310:390].all() and not b(redone)[:290].any()
  assert frames(redone.turns, "spk00", total)[:400].all()
  np.testing.assert_array_equal(redone.active, np.stack(
      [frames(redone.turns, f"spk0{k}", total) for k in range(2)], axis=1))


def test_layout_reads_the_kind_from_the_length():
  assert resegment.layout(np.zeros(resegment.NUM_FEATURES + 1)) == (
      "logistic", resegment.NUM_FEATURES, 0)
  assert resegment.layout(np.zeros(resegment.SHARES + 1)) == ("logistic", resegment.SHARES, 0)
  assert resegment.layout(np.zeros((resegment.SHARES + 2) * 32 + 1)) == (
      "mlp", resegment.SHARES, 32)
  with pytest.raises(ValueError, match="refit"):
    resegment.layout(np.zeros(7))
  # 15 x 8 + 1 = 24 x 5 + 1: an MLP of 8 units over the first set or of 5 over the shares
  with pytest.raises(ValueError, match="ambiguous"):
    resegment.layout(np.zeros((resegment.NUM_FEATURES + 2) * 8 + 1))
  x = np.zeros((50, 2, resegment.NUM_FEATURES), np.float32)
  with pytest.raises(ValueError, match="another number of units"):
    resegment.fit_mlp([(x, x[..., 0] > 0)], hidden=8)


def test_mlp_learns_what_a_line_cannot():
  """Target: a feature's magnitude (|x0| > 1), which no logistic weight vector can follow;
  the MLP's log-loss on held-out rows is far below the logistic model's, and its weights take
  the raw (unstandardised) features."""
  rng = np.random.default_rng(2)
  f = resegment.NUM_FEATURES
  x = rng.normal(size=(4000, 2, f)).astype(np.float32)
  x[..., 1] = 100.0 + 50.0 * x[..., 1]           # a feature on another scale
  y = np.abs(x[..., 0]) > 1.0
  train, test = [(x[:3000], y[:3000])], (x[3000:], y[3000:])
  logloss = lambda z, t: float(np.mean(np.logaddexp(0.0, z) - t * z))
  mlp = resegment.fit_mlp(train, hidden=6, l2=1e-4)
  assert resegment.layout(mlp) == ("mlp", f, 6)
  line = resegment.fit(train)
  mlp_loss = logloss(resegment.logits(test[0], mlp), test[1])
  line_loss = logloss(resegment.logits(test[0], line), test[1])
  assert mlp_loss < 0.5 * line_loss, (mlp_loss, line_loss)
  assert np.mean((resegment.logits(test[0], mlp) > 0) == test[1]) > 0.95


def test_given_templates_replace_the_meetings_own():
  """features(templates=T) with T the speakers' alone means is the offline first feature set
  exactly; the shares then come from T as given (a live stream has no later frames to refine
  them with)."""
  rng = np.random.default_rng(3)
  t, k, g = 300, 3, 36
  active = rng.random((t, k)) < 0.4
  score = rng.random((t, k))
  osd = rng.random(t)
  response = rng.random((t, g)).astype(np.float32)
  only = resegment.alone(active)
  means = (only.T.astype(np.float32) @ response) / only.sum(axis=0)[:, None]
  np.testing.assert_array_equal(
      resegment.features(active, score, osd, response, templates=means),
      resegment.features(active, score, osd, response))
  given = resegment.shares(active, response, templates=means)
  flat = np.full((1, g), 1.0 / np.sqrt(g), np.float32)
  import scipy.ndimage
  for n, share in zip(resegment.SMOOTH_FRAMES, given):
    smooth = scipy.ndimage.uniform_filter1d(response, n, axis=0, mode="nearest")
    np.testing.assert_allclose(share, resegment.nnls(np.concatenate([means, flat]), smooth)[:, :k],
                               rtol=1e-5, atol=1e-6)
  refined = resegment.shares(active, response)
  assert not all(np.allclose(a, b) for a, b in zip(given, refined))


@pytest.mark.parametrize("num", [resegment.NUM_FEATURES, resegment.SHARES])
def test_apply_in_chunks_equals_apply_at_once(num):
  """Memory bounded by the chunk: the decision of a recording cut into chunks (with the
  smoothing's margin, the templates of the whole) is the decision made at once."""
  rng = np.random.default_rng(5)
  t, k, g = 1500, 4, 36
  active = rng.random((t, k)) < 0.35
  score = rng.random((t, k))
  osd = rng.random(t)
  response = rng.random((t, g)).astype(np.float32)
  hidden = 6 if num == resegment.NUM_FEATURES else 8
  weights = rng.normal(0, 0.5, (num + 2) * hidden + 1)
  at_once = resegment.apply(active, score, osd, response, weights, 0.5, chunk=10 ** 9)
  for chunk in (100, 333, 1499):
    np.testing.assert_array_equal(
        resegment.apply(active, score, osd, response, weights, 0.5, chunk=chunk), at_once)
  assert 0 < at_once.mean() < 1
  # ... and the decision from the whole recording's features, as before the chunks.
  logit = resegment.logits(resegment.features(active, score, osd, response, num), weights)
  before = logit > 0
  lost = ~before.any(axis=1) & active.any(axis=1)
  before[np.flatnonzero(lost), logit.argmax(axis=1)[lost]] = True
  np.testing.assert_array_equal(at_once, before)
