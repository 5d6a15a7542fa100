"""benchmarks.bench_bounds: the AUC against counting pairs by brute force, and the oracle speech
decision (no speaker without reference speech, one at least where there is)."""

import itertools

import numpy as np
import pytest

from benchmarks import bench_bounds


def test_auc_is_the_share_of_ordered_pairs():
  rng = np.random.default_rng(0)
  positive = rng.random(60) < 0.3
  score = np.round(rng.standard_normal(60) + positive, 1)          # ties on purpose
  wins = [1.0 if a > b else 0.5 if a == b else 0.0
          for a, b in itertools.product(score[positive], score[~positive])]
  assert bench_bounds.auc(positive, score) == pytest.approx(np.mean(wins), abs=1e-12)
  assert bench_bounds.auc(positive, positive.astype(float)) == 1.0
  with pytest.raises(ValueError, match="positives and negatives"):
    bench_bounds.auc(np.ones(3, bool), np.zeros(3))


def test_oracle_speech_follows_the_reference():
  active = np.zeros((100, 2), bool)
  active[0:60, 0] = True                   # speaker 0 runs into the reference's pause
  score = np.zeros((100, 2))
  score[:, 1] = 0.3
  score[0:60, 0] = 0.9
  reference = np.zeros(100, bool)
  reference[0:40] = True                   # speech, a pause, speech no one is marked on
  reference[70:100] = True
  out = bench_bounds.oracle_speech(active, score, reference, {"min_speech_seconds": 0.0,
                                                              "min_silence_seconds": 0.0}, 0.016)
  assert not out[~reference].any()
  assert out[reference].any(axis=1).all()
  assert out[0:40, 0].all() and out[70:100, 1].all() and not out[70:100, 0].any()


def test_oracle_speech_then_the_overlap_classifier():
  """Where two are marked and P(overlap) is under the threshold, the top-scoring one alone;
  where it reaches the threshold, both."""
  active = np.zeros((100, 2), bool)
  active[:, 0] = True
  active[20:80, 1] = True
  score = np.full((100, 2), 0.6)
  score[:, 0] = 0.9
  reference = np.ones(100, bool)
  p = np.where(np.arange(100) < 50, 0.1, 0.9)
  seen = []
  overlap = lambda a: seen.append(a.copy()) or p
  options = {"min_speech_seconds": 0.0, "min_silence_seconds": 0.0,
             "overlap_classifier_threshold": 0.3}
  out = bench_bounds.oracle_speech(active, score, reference, options, 0.016, overlap)
  assert np.array_equal(seen[0], active)        # the classifier reads the oracle decision
  assert out[:, 0].all()
  assert not out[20:50, 1].any() and out[50:80, 1].all() and not out[80:, 1].any()
