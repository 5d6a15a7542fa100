"""Spatial refinements of the decision: a speaker whose speech comes from two places is
split; two speakers marked together most of the time are merged."""

import numpy as np
import scipy.ndimage

from jaxdiar.core import resegment as resegment_lib
from jaxdiar.decoding.cluster import unit_responses


def split_by_direction(active: np.ndarray, score: np.ndarray, response: np.ndarray,
                       parents: list, *, max_cos: float, min_frames: int,
                       max_new: int, smooth_frames: int = 45):
  """Split a global speaker whose speech comes from two places: two talkers the clustering
  took for one (voices alike) but who sit apart. The frames where a speaker alone is marked
  are put in two groups by their responses' shapes (smoothed over `smooth_frames`; spherical
  2-means); if the groups' mean directions have cosine < `max_cos` and each holds at least
  `min_frames` frames, every frame of that speaker (decision and score) goes to the nearer
  group, the second as a new speaker (at most `max_new` of them). Returns (active, score,
  parents) with the new columns appended (a new speaker's parents are its source's)."""
  t, k = active.shape
  shape = unit_responses(scipy.ndimage.uniform_filter1d(
      np.asarray(response[:t], np.float32), smooth_frames, axis=0, mode="nearest"))
  alone = resegment_lib.alone(active)
  columns, scores, parents = list(active.T), list(score.T), list(parents)
  for spk in range(k):
    x = shape[alone[:, spk]]
    if len(columns) - k >= max_new or len(x) < 2 * min_frames:
      continue
    centres = _two_means(x)
    near = np.argmax(x @ centres.T, axis=1)
    if centres[0] @ centres[1] >= max_cos or np.bincount(near, minlength=2).min() < min_frames:
      continue
    second = np.argmax(shape @ centres.T, axis=1) == 1
    columns[spk], scores[spk] = active[:, spk] & ~second, score[:, spk] * ~second
    columns.append(active[:, spk] & second)
    scores.append(score[:, spk] * second)
    parents.append(list(parents[spk]))
  return np.stack(columns, axis=1), np.stack(scores, axis=1), parents


def _two_means(x: np.ndarray, rounds: int = 20) -> np.ndarray:
  """[2, G] spherical 2-means centres of unit rows `x`: from the most typical row and the row
  least like it."""
  first = x[np.argmax(x @ x.mean(axis=0))]
  centres = np.stack([first, x[np.argmin(x @ first)]])
  for _ in range(rounds):
    near = np.argmax(x @ centres.T, axis=1)
    centres = unit_responses(np.stack([x[near == j].mean(axis=0) if np.any(near == j)
                                        else centres[j] for j in range(2)]))
  return centres


def merge_groups(active: np.ndarray, min_overlap: float,
                 min_groups: int = 1) -> list[list[int]]:
  """Speakers (columns of `active`) to merge: one person split over two clusters is marked
  twice at once. While some pair is co-active on at least `min_overlap` of the frames of the
  less-heard one, that one joins the other (down to `min_groups` speakers). Returns the groups
  of columns, each group's first column the one kept."""
  groups = [[j] for j in range(active.shape[1])]
  act = active.astype(np.float64)
  while len(groups) > max(1, min_groups):
    heard = act.sum(axis=0)
    both = act.T @ act
    share = both / np.maximum(np.minimum(heard[:, None], heard[None, :]), 1.0)
    np.fill_diagonal(share, 0.0)
    i, j = np.unravel_index(np.argmax(share), share.shape)
    if share[i, j] < min_overlap:
      break
    keep, drop = (i, j) if heard[i] >= heard[j] else (j, i)
    act[:, keep] = np.maximum(act[:, keep], act[:, drop])
    groups[keep] += groups[drop]
    act = np.delete(act, drop, axis=1)
    del groups[drop]
  return groups
