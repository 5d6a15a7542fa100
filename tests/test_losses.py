"""Losses against brute force and closed forms."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default
from jaxdiar.core import losses


def _brute_force_pit(logits, targets):
  """min over every permutation of the mean BCE, in float64 numpy."""
  x, y = np.asarray(logits, np.float64), np.asarray(targets, np.float64)
  b, _, s = x.shape
  best_loss, best_perm = np.full(b, np.inf), np.zeros((b, s), int)
  for perm in itertools.permutations(range(s)):
    yp = y[:, :, list(perm)]
    bce = np.logaddexp(0, x) - x * yp
    loss = bce.mean(axis=(1, 2))
    better = loss < best_loss
    best_loss[better], best_perm[better] = loss[better], perm
  return best_loss, best_perm


@pytest.mark.parametrize("num_speakers", [1, 2, 3, 4, 5, 6, 7, 8])
def test_pit_bce_equals_brute_force(num_speakers):
  rng = np.random.default_rng(num_speakers)
  b, t = 3, 25
  targets = (rng.random((b, t, num_speakers)) < 0.4).astype(np.float32)
  # Logits correlated with a hidden permutation of the targets, so the optimum is unique.
  hidden = np.stack([rng.permutation(num_speakers) for _ in range(b)])
  logits = 4.0 * (np.take_along_axis(targets, hidden[:, None, :], axis=2) - 0.5)
  logits = (logits + rng.normal(size=logits.shape)).astype(np.float32)
  loss, perm = jax.jit(losses.pit_bce)(logits, targets)
  ref_loss, ref_perm = _brute_force_pit(logits, targets)
  np.testing.assert_allclose(loss, ref_loss, rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(perm, ref_perm)
  np.testing.assert_array_equal(perm, hidden)
  # perm[b, i] is the reference of output i: permuting the references reproduces the loss.
  matched = losses.permute_speakers(jnp.asarray(targets), perm)
  direct = jnp.mean(losses.bce_with_logits(jnp.asarray(logits), matched), axis=(1, 2))
  np.testing.assert_allclose(direct, loss, rtol=1e-5)


@pytest.mark.parametrize("num_speakers", [1, 2, 5, 6, 8])
def test_best_assignment_dp_equals_brute_force_on_random_costs(num_speakers):
  cost = np.random.default_rng(num_speakers).standard_normal((16, num_speakers, num_speakers))
  perm = np.asarray(jax.jit(losses.best_assignment)(jnp.asarray(cost, jnp.float32)))
  all_perms = np.asarray(list(itertools.permutations(range(num_speakers))))
  totals = cost[:, np.arange(num_speakers), all_perms].sum(-1)        # [B, S!]
  np.testing.assert_array_equal(perm, all_perms[np.argmin(totals, axis=1)])


@pytest.mark.parametrize("s", [2, 8])
def test_pit_bce_gradients_are_finite_for_extreme_logits(s):
  logits = jnp.tile(jnp.array([[[80.0, -80.0], [-1e4, 1e4], [0.0, 3.0]]]), (1, 1, s // 2))
  targets = jnp.tile(jnp.array([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]]), (1, 1, s // 2))
  loss, _ = losses.pit_bce(logits, targets)
  grad = jax.grad(lambda x: losses.pit_bce(x, targets)[0].sum())(logits)
  assert bool(jnp.isfinite(loss).all()) and bool(jnp.isfinite(grad).all())
  assert float(jnp.abs(grad).sum()) > 0


def test_pit_bce_rejects_bad_shapes():
  with pytest.raises(ValueError, match="speakers"):
    losses.pit_bce(jnp.zeros((1, 4, 9)), jnp.zeros((1, 4, 9)))
  with pytest.raises(ValueError, match=r"\[B, T, S\]"):
    losses.pit_bce(jnp.zeros((1, 4, 3)), jnp.zeros((1, 4, 2)))


def test_focal_reduces_to_bce_and_downweights_easy_examples():
  x = jnp.array([[-3.0, -0.5, 0.5, 4.0]])
  y = jnp.array([[0.0, 1.0, 0.0, 1.0]])
  bce = losses.bce_with_logits(x, y)
  np.testing.assert_allclose(losses.focal_bce(x, y, gamma=0.0, alpha=-1), bce.mean(axis=-1),
                             rtol=1e-6)
  p = jax.nn.sigmoid(x)
  p_t = jnp.where(y == 1, p, 1 - p)
  alpha_t = jnp.where(y == 1, 0.75, 0.25)
  expected = jnp.mean(alpha_t * (1 - p_t) ** 2 * bce, axis=-1)
  np.testing.assert_allclose(losses.focal_bce(x, y, 2.0, 0.75), expected, rtol=1e-5)
  assert np.isfinite(float(losses.focal_bce(jnp.array([[1e4]]), jnp.array([[0.0]]))[0]))


def test_temporal_consistency():
  logits = jnp.array([[[0.0], [0.0], [100.0]]])      # p = 0.5, 0.5, 1.0
  np.testing.assert_allclose(losses.temporal_consistency(logits), [0.125], rtol=1e-5)


def test_speaker_cross_entropy_uses_active_speakers_only():
  logits = jnp.log(jnp.array([[[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]]))
  ids = jnp.array([[0, 2]])
  np.testing.assert_allclose(losses.speaker_cross_entropy(logits, ids, jnp.array([[1, 1]])),
                             [-(np.log(0.7) + np.log(0.8)) / 2], rtol=1e-5)
  np.testing.assert_allclose(losses.speaker_cross_entropy(logits, ids, jnp.array([[1, 0]])),
                             [-np.log(0.7)], rtol=1e-5)
  np.testing.assert_allclose(losses.speaker_cross_entropy(logits, ids, jnp.array([[0, 0]])),
                             [0.0])


def test_similarity_bce_targets_are_identity_equality():
  ids = jnp.array([[3, 5], [3, -1]])
  active = jnp.array([[1, 1], [1, 0]])
  # Logits: +10 for every pair -> only the (3, 3) pairs are right.
  loss = losses.similarity_bce(jnp.full((4, 4), 10.0), ids, active)
  # Active pairs: (0,1) diff, (0,2) same, (1,0) diff, (1,2) diff, (2,0) same, (2,1) diff.
  expected = (4 * np.logaddexp(0, 10.0) - 4 * 0 + 2 * np.logaddexp(0, -10.0)) / 6
  np.testing.assert_allclose(loss, (4 * np.logaddexp(0, 10) + 2 * np.logaddexp(0, -10)) / 6,
                             rtol=1e-5)
  assert np.isclose(expected, float(loss), rtol=1e-5)


def test_multitask_loss_weights_and_permutation():
  cfg = default.get_config().loss
  rng = np.random.default_rng(0)
  b, t, s, k = 2, 30, 4, 6
  activity = (rng.random((b, t, s)) < 0.3).astype(np.float32)
  batch = dict(activity=activity, overlap=(activity.sum(-1) >= 2).astype(np.float32),
               speaker_ids=np.array([[0, 1, 2, -1], [3, 4, 5, 1]]))
  outputs = dict(vad=jnp.asarray(rng.normal(size=(b, t, s)), jnp.float32),
                 osd=jnp.asarray(rng.normal(size=(b, t)), jnp.float32),
                 spk_logits=jnp.asarray(rng.normal(size=(b, s, k)), jnp.float32))
  pair_logits = jnp.asarray(rng.normal(size=(b * s, b * s)), jnp.float32)
  total, terms, perm = jax.jit(lambda o, bt, p: losses.multitask_loss(o, bt, cfg, p))(
      outputs, batch, pair_logits)
  expected = (terms["vad"] + terms["osd"] + 0.1 * terms["consistency"]
              + 0.5 * terms["speaker"] + 0.1 * terms["similarity"])
  np.testing.assert_allclose(total, expected, rtol=1e-6)
  vad, ref_perm = losses.pit_bce(outputs["vad"], activity)
  np.testing.assert_array_equal(perm, ref_perm)
  np.testing.assert_allclose(terms["vad"], vad.mean(), rtol=1e-6)
  grads = jax.grad(lambda o: losses.multitask_loss(o, batch, cfg)[0])(outputs)
  assert all(bool(jnp.isfinite(g).all()) for g in jax.tree.leaves(grads))


@pytest.mark.parametrize("num_speakers", [2, 6])
def test_pit_bce_frame_weights_equal_weighted_brute_force(num_speakers):
  """Weighted PIT BCE against the brute force over permutations with the weighted mean over
  frames; weights of ones give the unweighted loss (both the one-hot and the DP path)."""
  rng = np.random.default_rng(10 + num_speakers)
  b, t = 4, 30
  targets = (rng.random((b, t, num_speakers)) < 0.4).astype(np.float32)
  logits = rng.normal(size=(b, t, num_speakers)).astype(np.float32)
  weights = losses.silence_frame_weights(jnp.asarray(targets), 3.0)
  silent = targets.sum(-1) == 0
  np.testing.assert_array_equal(np.asarray(weights), np.where(silent, 3.0, 1.0))
  loss, perm = jax.jit(losses.pit_bce)(logits, targets, weights)
  w = np.asarray(weights) / np.asarray(weights).sum(1, keepdims=True)
  best = np.full(b, np.inf)
  for p in itertools.permutations(range(num_speakers)):
    bce = np.logaddexp(0, logits) - logits * targets[:, :, list(p)]
    best = np.minimum(best, np.einsum("bt,bts->b", w, bce) / num_speakers)
  np.testing.assert_allclose(loss, best, rtol=1e-5, atol=1e-6)
  ones, _ = losses.pit_bce(logits, targets, jnp.ones((b, t)))
  plain, _ = losses.pit_bce(logits, targets)
  np.testing.assert_allclose(ones, plain, rtol=1e-6)
  assert not np.allclose(loss, plain)
  with pytest.raises(ValueError, match="frame_weights"):
    losses.pit_bce(logits, targets, jnp.ones((b, t + 1)))
