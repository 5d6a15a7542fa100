"""Clustering the local speakers of every window into the recording's speakers: average
linkage with cannot-link within a window, the speaker embeddings joined with directions and
d-vectors, an even subset clustered on long recordings and the rest assigned."""

import numpy as np
import scipy.cluster.hierarchy
import scipy.optimize
import scipy.spatial.distance




def cluster(embeddings: np.ndarray, window_index: np.ndarray, *, num_speakers=None,
            min_speakers=1, max_speakers=None, threshold: float = 0.6,
            max_embeddings: int = 2000, directions: np.ndarray | None = None,
            spatial_weight: float = 0.0, anchors: np.ndarray | None = None,
            refine: int = 0, min_cluster_size: int = 0, min_cluster_share: float = 0.0,
            heard: np.ndarray | None = None, found_seconds: float | None = None,
            found_total: float = 2.0, found_far: float | None = None,
            found_far_total: float | None = None, silhouette_anchors: int | None = None,
            silhouette_min: float = 0.2) -> np.ndarray:
  """Agglomerative (average-link, cosine) clustering of local-speaker embeddings.

  Two local speakers of one window are different people: their distance is set to the
  maximum so they merge last. With `directions` ([n, G] SRP-PHAT responses over azimuths)
  the distance is (1 - spatial_weight) * embedding distance + spatial_weight * direction
  distance, both cosine. Returns a cluster label per embedding (0..K-1).

  Only the `anchors` (a boolean mask, e.g. the local speakers heard long enough for a
  reliable embedding; default all) are clustered; every other embedding joins the nearest
  cluster centroid, the local speakers of one window going to distinct clusters (Hungarian
  assignment per window). `refine` rounds then reassign every embedding to the centroids of
  the previous round in the same way. Unless the count is given, a cluster of fewer than
  `min_cluster_size` anchors, or than `min_cluster_share` of all the anchors clustered, is
  dissolved (its members join the others in the same way): a few local speakers with odd
  embeddings (overlap, noise) do not become a speaker, however long the recording.

  Short talkers: a talker who speaks a few seconds in the whole meeting has no anchor. With
  `found_seconds` (and `heard`, each local speaker's seconds heard), the local speakers
  that are not anchors, heard at least `found_seconds`, farther than `threshold` from every
  cluster, are clustered among themselves (the same linkage and cut); each such group heard
  `found_total` seconds in all becomes a speaker of its own (unless the count is given). With
  `found_far`, a group whose centroid is farther than it (cosine distance) from every cluster's
  needs only `found_far_total` seconds: a distinct voice needs less support than a group of
  stray local speakers near a cluster.

  Many anchors (a long recording): with `silhouette_anchors`, where at least that many anchors
  are clustered and the count is not given, the tree is cut where its big clusters are the
  most distinct, not at `threshold` alone (`_silhouette_cut`): a long meeting's talkers can lie
  nearer each other than the cut, and enough anchors make the silhouette a steady measure.

  Average linkage needs the n x n distances; beyond `max_embeddings` anchors (about 2 h of
  audio at the default window step) an evenly spread subset of them is clustered and the
  rest assigned: memory stays bounded (32 MB of distances at 2000), whatever the length.
  """
  n = len(embeddings)
  if n <= 1:
    return np.zeros(n, int)
  x = embeddings / (np.linalg.norm(embeddings, axis=1, keepdims=True) + 1e-9)
  x = joint_vectors(x, directions, spatial_weight)
  picked = np.flatnonzero(anchors) if anchors is not None and np.sum(anchors) > 1 else np.arange(n)
  if len(picked) > max_embeddings:
    picked = picked[np.unique(np.linspace(0, len(picked) - 1, max_embeddings).round().astype(int))]
  labels = np.full(n, -1)
  if silhouette_anchors is not None and len(picked) >= silhouette_anchors and not num_speakers:
    labels[picked] = _silhouette_cut(x[picked], window_index[picked], threshold=threshold,
                                     min_silhouette=silhouette_min, min_speakers=min_speakers,
                                     max_speakers=max_speakers)
  else:
    labels[picked] = _average_link(x[picked], window_index[picked], num_speakers=num_speakers,
                                   min_speakers=min_speakers, max_speakers=max_speakers,
                                   threshold=threshold)
  least = max(min_cluster_size, int(np.ceil(min_cluster_share * len(picked))))
  if least > 1 and not num_speakers:
    ids, sizes = np.unique(labels[picked][labels[picked] >= 0], return_counts=True)
    keep = max(min_speakers or 1, int(np.sum(sizes >= least)))
    kept = ids[np.argsort(-sizes, kind="stable")[:keep]]
    labels[picked[~np.isin(labels[picked], kept)]] = -1
  if found_seconds is not None and heard is not None and not num_speakers:
    labels = _found(x, window_index, labels, heard, threshold=threshold,
                    min_seconds=found_seconds, min_total=found_total, far=found_far,
                    far_total=found_total if found_far_total is None else found_far_total,
                    room=(max_speakers or n) - len(np.unique(labels[labels >= 0])))
  labels = _assign(x, window_index, labels, labels)
  for _ in range(refine):
    labels = _assign(x, window_index, np.full(n, -1), labels)
  return np.unique(labels, return_inverse=True)[1]


def _found(x, window_index, labels, heard, *, threshold, min_seconds, min_total, room,
           far=None, far_total=None) -> np.ndarray:
  """`cluster`'s short talkers: unlabelled local speakers heard `min_seconds`, farther than
  `threshold` (cosine) from every cluster centroid, grouped by the same average linkage; a
  group heard `min_total` seconds founds a cluster, or `far_total` where its centroid is
  farther than `far` from every cluster's (the longest-heard first, `room` at most)."""
  ids = np.unique(labels[labels >= 0])
  if room <= 0 or not len(ids):
    return labels
  centroids = _unit_centroids(x, labels, ids)
  stray = np.flatnonzero((labels < 0) & (heard >= min_seconds))
  stray = stray[1.0 - np.max(x[stray] @ centroids.T, axis=1) > threshold] if len(stray) else stray
  if not len(stray):
    return labels
  groups = _average_link(x[stray], window_index[stray], num_speakers=None, min_speakers=1,
                         max_speakers=None, threshold=threshold)
  totals = np.bincount(groups, weights=heard[stray])
  need = np.full(len(totals), float(min_total))
  if far is not None:
    centres = _unit_centroids(x[stray], groups, np.arange(len(totals)))
    need[1.0 - np.max(centres @ centroids.T, axis=1) > far] = far_total
  labels = labels.copy()
  founded = 0
  for g in np.argsort(-totals, kind="stable"):
    if founded >= room:
      break
    if totals[g] >= need[g]:
      labels[stray[groups == g]] = ids.max() + 1 + founded
      founded += 1
  return labels


def _unit_centroids(x: np.ndarray, labels: np.ndarray, ids: np.ndarray) -> np.ndarray:
  """[len(ids), D] the unit mean of the rows of `x` labelled each of `ids`."""
  centroids = np.stack([x[labels == k].mean(axis=0) for k in ids])
  return centroids / (np.linalg.norm(centroids, axis=1, keepdims=True) + 1e-9)


def unit_responses(response: np.ndarray) -> np.ndarray:
  """Mean-removed unit rows (the direction's shape, whatever its level)."""
  r = response - response.mean(axis=-1, keepdims=True)
  return r / (np.linalg.norm(r, axis=-1, keepdims=True) + 1e-9)


def joint_vectors(x: np.ndarray, directions: np.ndarray | None,
                  spatial_weight: float) -> np.ndarray:
  """Unit embeddings `x` joined with SRP-PHAT `directions` ([n, G]) so that one cosine
  distance is (1 - a) * embedding distance + a * direction distance: the unit vectors
  [sqrt(1 - a) x, sqrt(a) d], d the mean-removed response. `x` as is without directions."""
  if directions is None or spatial_weight <= 0:
    return x
  return _weighted_join(x, unit_responses(directions), spatial_weight)


def _weighted_join(x: np.ndarray, y: np.ndarray, a: float) -> np.ndarray:
  """[sqrt(1 - a) x, sqrt(a) y] of unit vectors (last axis): one cosine between two such
  vectors is (1 - a) * that of the x parts + a * that of the y parts."""
  return np.concatenate([np.sqrt(1 - a) * x, np.sqrt(a) * y], axis=-1)


def _assign(x, window_index, labels, reference) -> np.ndarray:
  """Unlabelled (-1) embeddings join the centroids of `reference`'s clusters: nearest, distinct
  within a window and from the window's already labelled ones (Hungarian per window)."""
  labels = labels.copy()
  ids = np.unique(reference[reference >= 0])
  centroids = _unit_centroids(x, reference, ids)
  by_window = np.argsort(window_index, kind="stable")
  for group in np.split(by_window, np.flatnonzero(np.diff(window_index[by_window])) + 1):
    rest = group[labels[group] < 0]
    if not len(rest):
      continue
    cost = 1.0 - x[rest] @ centroids.T                      # [locals of one window, K]
    taken = labels[group][labels[group] >= 0]               # clusters already in this window
    cost[:, np.searchsorted(ids, taken)] += 4.0
    if len(rest) <= len(centroids):
      rows, cols = scipy.optimize.linear_sum_assignment(cost)
      labels[rest[rows]] = ids[cols]
    else:                                                   # more locals than clusters
      labels[rest] = ids[np.argmin(cost, axis=1)]
  return labels


# The silhouette cut's partitions: from the threshold's count up to this many more clusters;
# a big cluster holds at least this share of the anchors (and two of them).
SILHOUETTE_MORE = 8
SILHOUETTE_SHARE = 0.03


def _tree(x, window_index, plain: bool = False):
  """The average-linkage tree of unit vectors `x` (cosine; local speakers of one window at the
  largest distance) and, with `plain`, the distances [n, n] without that (else None: one n x n
  array at a time)."""
  dist = np.clip(1.0 - x @ x.T, 0.0, 2.0)
  kept = dist.copy() if plain else None
  dist[window_index[:, None] == window_index[None, :]] = 2.0
  np.fill_diagonal(dist, 0.0)
  tree = scipy.cluster.hierarchy.linkage(
      scipy.spatial.distance.squareform(dist, checks=False), method="average")
  return tree, kept


def silhouette(dist: np.ndarray, labels: np.ndarray) -> float:
  """The mean silhouette (Rousseeuw 1987) of `labels` under the distances `dist` [n, n]: per
  point (b - a) / max(a, b), a its mean distance to its own cluster's other points, b to the
  nearest other cluster's; 0 for a point alone; -1 with fewer than two clusters."""
  ids, index, sizes = np.unique(labels, return_inverse=True, return_counts=True)
  if len(ids) < 2:
    return -1.0
  rows = np.arange(len(labels))
  sums = np.stack([dist[:, index == k].sum(axis=1) for k in range(len(ids))], axis=1)
  own = sizes[index]
  a = sums[rows, index] / np.maximum(own - 1, 1)
  mean_to = sums / sizes[None, :]
  mean_to[rows, index] = np.inf
  b = mean_to.min(axis=1)
  s = np.where(own > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-12), 0.0)
  return float(s.mean())


def _silhouette_cut(x, window_index, *, threshold, min_silhouette, min_speakers,
                    max_speakers) -> np.ndarray:
  """Labels of the anchors `x` from their average-link tree: the threshold's cut, or a finer
  one where its big clusters (SILHOUETTE_SHARE of the anchors) are more distinct. Over the cuts
  of the threshold's count k0 to k0 + SILHOUETTE_MORE clusters, the one whose big clusters
  have the highest silhouette (on the anchors they hold) replaces the threshold's if it has
  more big clusters and a silhouette at least the threshold cut's (`min_silhouette` where that
  has fewer than two big clusters); its small clusters are then unlabelled (-1: they join the
  others after). Where none does, the threshold's cut as `_average_link` gives it."""
  n = len(x)
  tree, dist = _tree(x, window_index, plain=True)
  k0 = _threshold_count(tree, threshold, min_speakers, max_speakers, n)
  least = max(2, int(np.ceil(SILHOUETTE_SHARE * n)))
  cuts = scipy.cluster.hierarchy.cut_tree(
      tree, n_clusters=list(range(k0, min(n, k0 + SILHOUETTE_MORE) + 1)))   # [n, cuts]

  def scored(labels):
    ids, sizes = np.unique(labels, return_counts=True)
    big = np.isin(labels, ids[sizes >= least])
    count = int(np.sum(sizes >= least))
    score = silhouette(dist[np.ix_(big, big)], labels[big]) if count >= 2 else -1.0
    return labels, big, count, score

  base_labels, _, base_count, base_score = scored(cuts[:, 0])
  need = base_score if base_count >= 2 else min_silhouette
  best = None
  for column in cuts.T[1:]:
    labels, big, count, score = scored(column)
    if max_speakers and count > max_speakers:
      break
    if count > base_count and score >= need and (best is None or score > best[2]):
      best = (labels, big, score)
  if best is None:
    return base_labels
  labels, big, _ = best
  return np.where(big, labels, -1)


def _threshold_count(tree, threshold, min_speakers, max_speakers, n) -> int:
  """How many clusters the tree's cut at `threshold` gives, within min..max_speakers and n."""
  k = len(np.unique(scipy.cluster.hierarchy.fcluster(tree, threshold, "distance")))
  return min(max(min_speakers or 1, min(k, max_speakers or n)), n)


def _average_link(x, window_index, *, num_speakers, min_speakers, max_speakers,
                  threshold) -> np.ndarray:
  """`cluster` of unit embeddings by average linkage over all n x n distances."""
  n = len(x)
  if n <= 1:
    return np.zeros(n, int)
  tree, _ = _tree(x, window_index)
  k = min(num_speakers, n) if num_speakers else _threshold_count(tree, threshold, min_speakers,
                                                                  max_speakers, n)
  # cut_tree gives exactly k clusters; fcluster's maxclust gives fewer when merges tie (the
  # cannot-link pairs all merge at the same maximal height).
  return scipy.cluster.hierarchy.cut_tree(tree, n_clusters=k)[:, 0]


def voice_joined(emb: np.ndarray, voice: np.ndarray, weight: float) -> np.ndarray:
  """What is clustered: the model's embeddings (weight 0), the d-vectors (1), or between
  the unit vectors [sqrt(1 - w) e, sqrt(w) v] (one cosine distance = (1 - w) * the model's
  distance + w * the d-vectors')."""
  if weight >= 1:
    return voice
  unit = lambda v: v / (np.linalg.norm(v, axis=-1, keepdims=True) + 1e-9)
  return _weighted_join(unit(emb), unit(voice), weight)
