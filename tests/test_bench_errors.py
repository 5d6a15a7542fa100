"""benchmarks.bench_errors: frame errors under the best mapping, binned by boundary distance and
reference talkers; the frame-level DER equals pyannote.metrics' on frame-aligned turns."""

import numpy as np

from benchmarks import bench_errors
from jaxdiar import diarize
from jaxdiar.core import scoring as evaluate
from jaxdiar.io import rttm

FS = 0.016


def test_a_late_end_is_false_alarm_at_the_boundary():
  ref = np.zeros((200, 2), bool)
  ref[0:100, 0] = True
  ref[100:200, 1] = True
  hyp = ref[:, ::-1].copy()                  # other labels: the mapping undoes them
  hyp[100:110, 1] = True                     # speaker 0 (hyp 1) runs 10 frames too long
  e = bench_errors.frame_errors(ref, hyp)
  assert e["false_alarm"].sum() == 10 and e["missed"].sum() == 0 and e["confusion"].sum() == 0
  np.testing.assert_array_equal(np.flatnonzero(e["false_alarm"]), np.arange(100, 110))
  r = bench_errors.breakdown([(ref, hyp)])
  d = r["by_boundary_distance"]
  # Frames 100..109 lie 0.5..9.5 frames after the change: 4 + 4 + 2 of 200 talker-frames.
  assert d["false_alarm"] == [2.0, 2.0, 1.0, 0.0, 0.0, 0.0]
  assert r["der"] == 5.0 and sum(d["frames"]) == 200
  assert r["by_reference_talkers"]["false_alarm"] == [0.0, 5.0, 0.0, 0.0]


def test_boundary_distance_is_to_the_nearest_change():
  ref = np.zeros((10, 1), bool)
  ref[3:7] = True
  np.testing.assert_array_equal(bench_errors.boundary_distance(ref),
                                [2.5, 1.5, 0.5, 0.5, 1.5, 1.5, 0.5, 0.5, 1.5, 2.5])
  assert np.isinf(bench_errors.boundary_distance(np.ones((5, 1), bool))).all()


def test_frame_der_matches_pyannote_on_frame_aligned_turns():
  rng = np.random.default_rng(0)
  for seed in range(3):
    ref = rng.random((600, 3)) < 0.02
    ref = np.cumsum(ref, axis=0) % 2 == 1                 # random turns per talker
    hyp = ref[:, [2, 0, 1]].copy()
    hyp[rng.random(600) < 0.1, 0] ^= True                 # some frames flipped
    hyp = np.concatenate([hyp, (rng.random((600, 1)) < 0.05)], axis=1)  # an extra speaker
    to_turns = lambda act, who: [rttm.Turn("m", a * FS, b * FS, f"{who}{k}")
                                 for k in range(act.shape[1])
                                 for a, b in diarize.runs(act[:, k])]
    expected = evaluate.score({"m": to_turns(ref, "r")}, {"m": to_turns(hyp, "h")},
                              collar=0.0)["total"]["der"]
    assert abs(bench_errors.breakdown([(ref, hyp)])["der"] - 100 * expected) < 1e-3
