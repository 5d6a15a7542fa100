"""Multi-task diarization losses, pure functions on logits (SPEC section 4).

Everything is computed from logits with log-sigmoid identities, so nothing overflows for
large |logits|. Per-example losses are [B]; the caller averages over the (global) batch.
"""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np

MAX_PIT_SPEAKERS = 8


@functools.lru_cache(maxsize=None)
def permutations(num_speakers: int) -> np.ndarray:
  """All permutations of range(S) as an int array [S!, S] (lexicographic order)."""
  return np.asarray(list(itertools.permutations(range(num_speakers))), np.int32)


@functools.lru_cache(maxsize=None)
def permutation_matrices(num_speakers: int) -> np.ndarray:
  """One-hot permutations [S!, S, S]: P[k, i, j] = 1 iff permutation k maps output i to j."""
  perms = permutations(num_speakers)
  return np.eye(num_speakers, dtype=np.float32)[perms]


def bce_with_logits(logits, targets):
  """Elementwise binary cross-entropy, stable for any logit: softplus(x) - x y."""
  return jax.nn.softplus(logits) - logits * targets


def pit_bce(logits: jax.Array, targets: jax.Array, frame_weights: jax.Array | None = None):
  """Permutation-invariant BCE.

  Args:
    logits: [B, T, S] VAD logits of the S outputs.
    targets: [B, T, S] reference activity in [0, 1] of S reference speakers.
    frame_weights: optional [B, T] non-negative weights of the frames; the mean over T is
      then the weighted mean (`silence_frame_weights`). None: every frame weighs 1.
  Returns:
    loss: [B], the mean BCE over T and S under the best output-to-reference assignment.
    perm: [B, S] int32, perm[b, i] = the reference speaker assigned to output i.

  BCE(x, y) = softplus(x) - x y is linear in y, so the S x S cost matrix
  cost[b, i, j] = mean_t BCE(x_ti, y_tj) is one einsum; every permutation is then scored at
  once against a constant one-hot tensor [S!, S, S]. From S = 6 on, that tensor (10 MB at
  S = 8) costs more than it saves, and the assignment is found instead by dynamic
  programming over subsets of references, O(S^2 2^S) (`best_assignment`). Both are the
  exact brute-force minimum.
  """
  if logits.shape != targets.shape or logits.ndim != 3:
    raise ValueError(f"logits and targets must both be [B, T, S]; got {logits.shape} "
                     f"and {targets.shape}")
  num_speakers = logits.shape[-1]
  if not 1 <= num_speakers <= MAX_PIT_SPEAKERS:
    raise ValueError(f"pit_bce supports 1 to {MAX_PIT_SPEAKERS} speakers, got {num_speakers}")
  logits = logits.astype(jnp.float32)
  targets = targets.astype(jnp.float32)
  if frame_weights is None:
    weights = jnp.full(logits.shape[:2], 1.0 / logits.shape[1], jnp.float32)
  else:
    if frame_weights.shape != logits.shape[:2]:
      raise ValueError(f"frame_weights must be [B, T] = {logits.shape[:2]}, got "
                       f"{frame_weights.shape}")
    weights = frame_weights.astype(jnp.float32)
    weights = weights / jnp.maximum(jnp.sum(weights, axis=1, keepdims=True), 1e-12)
  cost = (jnp.einsum("bt,bti->bi", weights, jax.nn.softplus(logits))[:, :, None]
          - jnp.einsum("bt,bti,btj->bij", weights, logits, targets))   # [B, S, S]
  if num_speakers < _DP_FROM_SPEAKERS:
    onehot = jnp.asarray(permutation_matrices(num_speakers))
    scores = jnp.einsum("kij,bij->bk", onehot, cost) / num_speakers     # [B, S!]
    best = jnp.argmin(scores, axis=-1)
    loss = jnp.take_along_axis(scores, best[:, None], axis=-1)[:, 0]
    perm = jnp.asarray(permutations(num_speakers))[best]
    return loss, perm
  perm = best_assignment(jax.lax.stop_gradient(cost))
  loss = jnp.mean(jnp.take_along_axis(cost, perm[:, :, None], axis=-1)[..., 0], axis=-1)
  return loss, perm


# Measured on 2 CPU cores at B x T = 8 x 500 (benchmarks/bench_pit.py): the one-hot scoring
# is faster up to S = 5, the subset DP from S = 6.
_DP_FROM_SPEAKERS = 6


@functools.lru_cache(maxsize=None)
def _subset_tables(num_speakers: int):
  masks = np.arange(2 ** num_speakers)[:, None]
  bit = 1 << np.arange(num_speakers)[None, :]
  return (masks & bit) != 0, masks ^ bit          # [M, S] j in m, [M, S] m without j


def best_assignment(cost: jax.Array) -> jax.Array:
  """argmin over permutations of sum_i cost[b, i, perm[b, i]], [B, S, S] -> [B, S] int32.

  Held-Karp-style DP: after output i, best[m] is the least cost of giving outputs 0..i
  the reference set m (|m| = i + 1); best[m] = min_{j in m} best[m - j] + cost[i, j].
  The argmins are kept and walked back from the full set. Sets of the wrong size hold
  values never read. Ties go to the lowest j at the last output, which may differ from the
  lexicographic order of the brute force (same cost).
  """
  batch, num_speakers = cost.shape[0], cost.shape[-1]
  member, without = _subset_tables(num_speakers)
  best = jnp.full((batch, 2 ** num_speakers), jnp.inf, cost.dtype).at[:, 0].set(0.0)
  choices = []
  for i in range(num_speakers):
    cand = jnp.where(member, best[:, without] + cost[:, i, None, :], jnp.inf)   # [B, M, S]
    choices.append(jnp.argmin(cand, axis=-1).astype(jnp.int32))
    best = jnp.min(cand, axis=-1)
  subset = jnp.full((batch,), 2 ** num_speakers - 1, jnp.int32)
  perm = [None] * num_speakers
  for i in reversed(range(num_speakers)):
    perm[i] = jnp.take_along_axis(choices[i], subset[:, None], axis=1)[:, 0]
    subset = subset ^ (1 << perm[i])
  return jnp.stack(perm, axis=1)


def permute_speakers(x: jax.Array, perm: jax.Array) -> jax.Array:
  """Reorder the speaker axis of references to the outputs: x [B, T, S] or [B, S] -> same."""
  if x.ndim == 2:
    return jnp.take_along_axis(x, perm, axis=1)
  return jnp.take_along_axis(x, perm[:, None, :], axis=2)


def focal_bce(logits: jax.Array, targets: jax.Array, gamma: float = 2.0,
              alpha: float = 0.75) -> jax.Array:
  """Focal loss on logits, mean over all but the first axis -> [B].

  FL = alpha_t (1 - p_t)^gamma BCE, alpha_t = alpha for positives, 1 - alpha for
  negatives (alpha < 0: no class weighting). p_t = exp(-BCE) is the model's probability of
  the true class.
  """
  logits = logits.astype(jnp.float32)
  targets = targets.astype(jnp.float32)
  bce = bce_with_logits(logits, targets)
  p_t = jnp.exp(-bce)
  loss = (1.0 - p_t) ** gamma * bce
  if alpha >= 0:
    loss = (alpha * targets + (1.0 - alpha) * (1.0 - targets)) * loss
  return jnp.mean(loss.reshape(loss.shape[0], -1), axis=-1)


def silence_frame_weights(activity: jax.Array, weight: float) -> jax.Array:
  """[B, T, S] reference activity -> [B, T] frame weights: `weight` where nobody talks, 1
  elsewhere (`loss.silence_weight`: the speech decision on pauses, where a reverberant room's
  tails sit, counts more)."""
  silent = jnp.sum(activity, axis=-1) <= 0
  return jnp.where(silent, jnp.float32(weight), jnp.float32(1.0))


def temporal_consistency(logits: jax.Array) -> jax.Array:
  """Mean squared frame-to-frame change of the VAD probabilities, [B, T, S] -> [B]."""
  probs = jax.nn.sigmoid(logits.astype(jnp.float32))
  diff = probs[:, 1:] - probs[:, :-1]
  return jnp.mean((diff ** 2).reshape(diff.shape[0], -1), axis=-1)


def speaker_cross_entropy(spk_logits: jax.Array, speaker_ids: jax.Array,
                          active: jax.Array) -> jax.Array:
  """Classifier CE over the active local speakers, [B, S, K], [B, S], [B, S] -> [B].

  `speaker_ids` and `active` must already be in output order (see permute_speakers). An
  example without active speakers contributes 0.
  """
  logp = jax.nn.log_softmax(spk_logits.astype(jnp.float32), axis=-1)
  safe_ids = jnp.clip(speaker_ids, 0, spk_logits.shape[-1] - 1)
  nll = -jnp.take_along_axis(logp, safe_ids[..., None], axis=-1)[..., 0]   # [B, S]
  weight = active.astype(jnp.float32)
  return jnp.sum(nll * weight, axis=-1) / jnp.maximum(jnp.sum(weight, axis=-1), 1.0)


def similarity_bce(pair_logits: jax.Array, speaker_ids: jax.Array,
                   active: jax.Array) -> jax.Array:
  """Same-speaker BCE over all pairs of active local speakers of the batch.

  Args:
    pair_logits: [B*S, B*S] similarity logits of every pair of local embeddings.
    speaker_ids: [B, S] global identities, output order.
    active: [B, S] which local speakers are real.
  Returns:
    scalar, mean BCE over the distinct pairs of active speakers (0 if none).
  """
  ids = speaker_ids.reshape(-1)
  valid = active.reshape(-1).astype(bool)
  n = ids.shape[0]
  same = (ids[:, None] == ids[None, :]).astype(jnp.float32)
  mask = (valid[:, None] & valid[None, :] & ~jnp.eye(n, dtype=bool)).astype(jnp.float32)
  bce = bce_with_logits(pair_logits.astype(jnp.float32), same)
  return jnp.sum(bce * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def multitask_loss(outputs, batch, cfg, pair_logits=None):
  """Weighted total of the SPEC losses.

  Args:
    outputs: the model's dict (vad [B, T, S], osd [B, T], spk_logits [B, S, K]).
    batch: dict with `activity` [B, T, S] in {0, 1}, `overlap` [B, T] and `speaker_ids`
      [B, S] int (-1 for an empty slot).
    cfg: the `loss` config section.
    pair_logits: optional [B*S, B*S] similarity logits of every pair of the local
      embeddings `spk_emb` (output order, flattened over B and S); the similarity term is
      used only when given.
  Returns:
    total: scalar float32; terms: dict of scalar terms and `perm` [B, S].
  """
  activity = batch["activity"].astype(jnp.float32)
  silence_weight = cfg.get("silence_weight", 1.0)
  vad, perm = pit_bce(outputs["vad"], activity,
                      None if silence_weight == 1.0
                      else silence_frame_weights(activity, silence_weight))
  osd = focal_bce(outputs["osd"], batch["overlap"], cfg.focal_gamma, cfg.focal_alpha)
  consistency = temporal_consistency(outputs["vad"])
  ids = permute_speakers(batch["speaker_ids"], perm)
  # Identities outside the classifier (dev voices, empty slots) take no classifier loss.
  known = (ids >= 0) & (ids < outputs["spk_logits"].shape[-1])
  active = (jnp.sum(permute_speakers(activity, perm), axis=1) > 0) & known
  speaker = speaker_cross_entropy(outputs["spk_logits"], ids, active)
  terms = dict(vad=jnp.mean(vad), osd=jnp.mean(osd), consistency=jnp.mean(consistency),
               speaker=jnp.mean(speaker))
  total = (cfg.vad_weight * terms["vad"] + cfg.osd_weight * terms["osd"]
           + cfg.consistency_weight * terms["consistency"]
           + cfg.speaker_weight * terms["speaker"])
  if pair_logits is not None:
    terms["similarity"] = similarity_bce(pair_logits, ids, active)
    total = total + cfg.similarity_weight * terms["similarity"]
  terms["total"] = total
  return total, terms, perm
