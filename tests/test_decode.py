"""diarize.decode (stitching by talker count, the overlap rule, directions, anchors) and the
clustering options, on synthetic window outputs."""

import numpy as np
import pytest

from jaxdiar import diarize
from jaxdiar.decoding import decode as decode_lib

HOP, SR = 256, 16000
FS = HOP / SR
OPTIONS = dict(onset=0.5, offset=0.4, median_frames=1, min_speech_seconds=0.0,
               min_silence_seconds=0.0, min_active_frames=5, cluster_threshold=0.5,
               stitch="count", count="expected", spatial_weight=0.0, osd_threshold=1.0,
               anchor_seconds=0.0, refine=0)


def inference(vad, osd=None, emb=None, direction=None, step=50):
  w, tw, s = vad.shape
  total = (w - 1) * step + tw
  rng = np.random.default_rng(0)
  return diarize.Inference(
      "u", np.arange(w) * step, vad.astype(np.float16),
      (np.zeros((w, tw)) if osd is None else osd).astype(np.float16),
      rng.standard_normal((w, s, 8)).astype(np.float32) if emb is None else emb, direction,
      total, total * HOP, SR, HOP)


def frames(turns, speaker, total):
  mask = np.zeros(total, bool)
  for t in turns:
    if t.speaker == speaker:
      mask[int(round(t.onset / FS)):int(round(t.offset / FS))] = True
  return mask


def test_count_stitching_keeps_a_voice_split_across_clusters():
  """Window 0 sees A on frames 0-100; window 1 (from frame 50) sees the same voice but its
  embedding lands in another cluster. Mean stitching halves both below the threshold on the
  shared frames; count stitching keeps one talker there."""
  vad = np.zeros((2, 100, 2))
  vad[0, :, 0] = 0.7
  vad[1, :50, 0] = 0.7
  emb = np.zeros((2, 2, 8), np.float32)
  emb[0, 0, 0] = emb[1, 0, 1] = 1.0        # orthogonal: two clusters
  emb[:, 1, 2] = 1.0
  inf = inference(vad, emb=emb)
  count = diarize.decode(inf, OPTIONS, num_speakers=2)
  mean = diarize.decode(inf, dict(OPTIONS, stitch="mean"), num_speakers=2)
  covered = lambda r: np.any([frames(r.turns, s, inf.total_frames)
                              for s in ("spk00", "spk01")], axis=0)
  assert covered(count)[:100].all() and not covered(count)[100:].any()
  assert not covered(mean)[50:100].any()        # the halving the count rule removes


def test_expected_count_and_overlap_rule():
  vad = np.zeros((1, 200, 3))
  vad[0, :100, 0] = 0.9                        # one talker ...
  vad[0, 60:100, 1] = 0.8                      # ... joined by a second on 60-100
  vad[0, 120:180, 2] = 0.9
  osd = np.zeros((1, 200))
  osd[0, 130:150] = 0.9                        # the OSD head hears a second talker here
  emb = np.eye(8, dtype=np.float32)[None, :3]
  inf = inference(vad, osd=osd, emb=emb)
  plain = diarize.decode(inf, OPTIONS, num_speakers=3)
  n = sum(frames(plain.turns, f"spk{k:02d}", 200).astype(int) for k in range(3))
  np.testing.assert_array_equal(n[:60], 1)
  np.testing.assert_array_equal(n[60:100], 2)
  np.testing.assert_array_equal(n[130:150], 1)
  with_osd = diarize.decode(inf, dict(OPTIONS, osd_threshold=0.5), num_speakers=3)
  n = sum(frames(with_osd.turns, f"spk{k:02d}", 200).astype(int) for k in range(3))
  np.testing.assert_array_equal(n[130:150], 2)
  np.testing.assert_array_equal(n[100:120], 0)


def test_no_speech_gives_no_turns():
  inf = inference(np.full((3, 100, 4), 0.01))
  assert diarize.decode(inf, OPTIONS).turns == []


def test_directions_separate_voices_the_embeddings_confuse():
  rng = np.random.default_rng(3)
  n = 40
  emb = rng.standard_normal(8) + 0.05 * rng.standard_normal((n, 8))     # one voice cloud
  truth = np.arange(n) % 2
  grid = np.arange(72)
  peaks = np.where(truth == 0, 10, 40)
  directions = np.exp(-0.5 * ((grid[None, :] - peaks[:, None]) / 3.0) ** 2)
  windows = np.arange(n)
  alone = diarize.cluster(emb, windows, num_speakers=2)
  both = diarize.cluster(emb, windows, num_speakers=2, directions=directions,
                         spatial_weight=0.5)
  assert len(set(zip(both, truth))) == 2                # the true partition
  assert len(set(zip(alone, truth))) > 2


def test_anchors_and_exact_cluster_count():
  rng = np.random.default_rng(4)
  centres = rng.standard_normal((3, 16)) * 5
  truth = np.repeat(np.arange(3), 10)
  emb = centres[truth] + 0.3 * rng.standard_normal((30, 16))
  windows = np.arange(30)
  anchors = np.arange(30) % 10 < 5                      # half of each speaker clustered
  labels = diarize.cluster(emb, windows, threshold=0.5, anchors=anchors, refine=1)
  assert len(set(zip(labels, truth))) == 3 and len(set(labels)) == 3
  # Two windows of four locals each (cannot-link ties at the top): still exactly k clusters.
  emb4 = centres[rng.integers(0, 3, 8)] + 0.3 * rng.standard_normal((8, 16))
  for k in (2, 3, 4):
    assert len(set(diarize.cluster(emb4, np.repeat([0, 1], 4), num_speakers=k))) == k


def _beam(b, g=72, width=6.0):
  d = np.minimum(np.abs(np.arange(g) - b), g - np.abs(np.arange(g) - b))
  return np.exp(-0.5 * (d / width) ** 2)


def test_a_speaker_heard_from_two_places_is_split():
  """One window, one local speaker (one embedding) that is really two talkers: frames 0-1500
  come from azimuth bin 10, 1500-3000 from bin 40. With the frame responses, the speaker is
  split at the change of direction; a count given by the caller is kept."""
  total = 3000
  vad = np.zeros((1, total, 1))
  vad[0, :, 0] = 0.9
  inf = inference(vad, step=total)
  rng = np.random.default_rng(1)
  response = rng.normal(0.0, 0.02, (total, 72)) + 0.3 * np.where(
      (np.arange(total) < 1500)[:, None], _beam(10)[None], _beam(40)[None])
  inf.response = response.astype(np.float16)
  opts = dict(OPTIONS, split_cos=0.55, split_seconds=15.0)
  plain = diarize.decode(inf, OPTIONS)
  split = diarize.decode(inf, opts)
  assert len({t.speaker for t in plain.turns}) == 1
  a, b = frames(split.turns, "spk00", total), frames(split.turns, "spk01", total)
  assert a[:1480].all() and not a[1520:].any() and b[1520:].all() and not b[:1480].any()
  assert split.centroids.shape[0] == 2
  np.testing.assert_allclose(split.centroids[0], split.centroids[1])   # one embedding
  assert len({t.speaker for t in diarize.decode(inf, opts, num_speakers=1).turns}) == 1
  assert len({t.speaker for t in diarize.decode(inf, opts, max_speakers=1).turns}) == 1
  # One place (the same beam throughout): no split, nor for parts heard under 15 s.
  inf.response = (rng.normal(0.0, 0.02, (total, 72)) + 0.3 * _beam(10)[None]).astype(np.float16)
  assert len({t.speaker for t in diarize.decode(inf, opts).turns}) == 1
  inf.response = response.astype(np.float16)
  assert len({t.speaker for t in diarize.decode(
      inf, dict(opts, split_seconds=30.0)).turns}) == 1
  # The support scaled to the recording (48 s): 40 s a minute asks 32 s a side (no split);
  # 10 s a minute asks 8 s, under split_seconds (split).
  assert len({t.speaker for t in diarize.decode(
      inf, dict(opts, split_per_minute=40.0)).turns}) == 1
  assert len({t.speaker for t in diarize.decode(
      inf, dict(opts, split_per_minute=10.0)).turns}) == 2


def test_count_support_is_the_larger_of_the_seconds_and_the_rate():
  inf = inference(np.zeros((1, 3000, 1)), step=3000)            # 48 s: 0.8 minute
  o = dict(diarize.DEFAULT_DECODE, found_total=2.0, split_seconds=8.0)
  assert decode_lib.count_support(o, inf) == dict(found_total=2.0, split_seconds=8.0)
  scaled = decode_lib.count_support(dict(o, found_per_minute=5.0, split_per_minute=20.0), inf)
  assert scaled["found_total"] == pytest.approx(4.0)
  assert scaled["split_seconds"] == pytest.approx(16.0)
  assert decode_lib.count_support(dict(o, found_per_minute=1.0), inf)["found_total"] == 2.0


def test_merge_groups_join_a_voice_marked_twice():
  active = np.zeros((100, 3), bool)
  active[:60, 0] = True
  active[10:40, 1] = True                 # marked with speaker 0 on all its frames
  active[50:100, 2] = True                # with speaker 0 on 10 of its 50 frames
  assert diarize.merge_groups(active, 0.5) == [[0, 1], [2]]
  assert diarize.merge_groups(active, 0.1) == [[0, 1, 2]]
  assert diarize.merge_groups(active, 0.1, min_groups=2) == [[0, 1], [2]]
  assert diarize.merge_groups(active, 1.01) == [[0], [1], [2]]


def test_decode_merges_two_clusters_of_one_voice():
  """Two windows hear the same talker throughout, but the second window's embedding lands in
  another cluster; both clusters are then marked on the frames the windows share (mean
  stitching halves each there, still above the onset), and merge_overlap joins them into one
  speaker."""
  vad = np.zeros((2, 100, 1))
  vad[:, :, 0] = 0.9
  emb = np.zeros((2, 1, 8), np.float32)
  emb[0, 0, 0] = emb[1, 0, 1] = 1.0
  inf = inference(vad, emb=emb)
  opts = dict(OPTIONS, stitch="mean", cluster_threshold=0.5, onset=0.4, offset=0.3)
  assert len({t.speaker for t in diarize.decode(inf, opts).turns}) == 2
  assert len({t.speaker for t in diarize.decode(inf, dict(opts, merge_overlap=0.6)).turns}) == 2
  merged = diarize.decode(inf, dict(opts, merge_overlap=0.4))
  assert [t.speaker for t in merged.turns] == ["spk00"]
  assert frames(merged.turns, "spk00", inf.total_frames).all()
  assert len({t.speaker for t in diarize.decode(inf, dict(opts, merge_overlap=0.4),
                                                num_speakers=2).turns}) == 2


def test_alone_weights_are_each_probability_times_the_others_silence():
  vad = np.array([[0.9, 0.0, 0.0], [0.9, 1.0, 0.0], [0.5, 0.5, 0.5]], np.float16)
  w = diarize.alone_weights(vad)
  assert w.dtype == np.float32 and w.shape == (3, 3)
  np.testing.assert_allclose(w[0], [0.9, 0.0, 0.0], rtol=1e-3)   # alone: its own probability
  np.testing.assert_allclose(w[1], [0.0, 0.1, 0.0], atol=1e-3)   # the other surely talks: none
  np.testing.assert_allclose(w[2], [0.125] * 3, rtol=1e-6)
  assert diarize.alone_weights(vad.astype(np.float64)).dtype == np.float64


def test_count_finds_a_five_second_talker_in_ten_minutes():
  """Ten minutes of 8 s windows every 4 s: three talkers heard in every window, a fourth
  heard 2.5 s in two windows (5 s in all: no anchor at 2.7 s). The threshold clustering of
  the anchors misses it; founding short talkers finds it, and only it."""
  rng = np.random.default_rng(0)
  centres = np.linalg.qr(rng.standard_normal((32, 4)))[0].T           # 4 orthonormal voices
  emb, windows, heard, who = [], [], [], []
  for w in range(150):
    talkers = [0, 1, 2] + ([3] if w in (70, 71) else [])
    for k in talkers:
      emb.append(centres[k] + 0.25 * rng.standard_normal(32) / np.sqrt(32))
      windows.append(w)
      heard.append(2.5 if k == 3 else rng.uniform(3.0, 6.0))
      who.append(k)
  emb, windows, heard, who = map(np.asarray, (emb, windows, heard, who))
  anchors = heard >= 2.7
  plain = diarize.cluster(emb, windows, threshold=0.5, anchors=anchors)
  assert len(np.unique(plain)) == 3
  found = diarize.cluster(emb, windows, threshold=0.5, anchors=anchors, heard=heard,
                          found_seconds=1.0, found_total=2.0)
  assert len(np.unique(found)) == 4
  for k in range(4):                                    # one label per talker, and back
    assert len(np.unique(found[who == k])) == 1
  assert len(np.unique([found[who == k][0] for k in range(4)])) == 4
  # A short group heard under found_total, or the count given, founds nothing.
  assert len(np.unique(diarize.cluster(emb, windows, threshold=0.5, anchors=anchors,
                                       heard=heard, found_seconds=1.0,
                                       found_total=6.0))) == 3
  assert len(np.unique(diarize.cluster(emb, windows, num_speakers=3, anchors=anchors,
                                       heard=heard, found_seconds=1.0))) == 3
  # A distinct voice (its group's centroid farther than found_far from every cluster) founds
  # at found_far_total, whatever found_total asks (a long recording's); a group nearer not.
  distinct = diarize.cluster(emb, windows, threshold=0.5, anchors=anchors, heard=heard,
                             found_seconds=1.0, found_total=6.0, found_far=0.6,
                             found_far_total=2.0)
  np.testing.assert_array_equal(distinct, found)
  assert len(np.unique(diarize.cluster(emb, windows, threshold=0.5, anchors=anchors,
                                       heard=heard, found_seconds=1.0, found_total=6.0,
                                       found_far=1.5, found_far_total=2.0))) == 3


def test_silhouette_matches_its_definition():
  """cluster.silhouette against the definition written out point by point (Rousseeuw 1987)."""
  from jaxdiar.decoding import cluster as cluster_lib
  rng = np.random.default_rng(1)
  x = rng.standard_normal((40, 5))
  dist = np.linalg.norm(x[:, None] - x[None], axis=-1)
  labels = rng.integers(0, 4, 40)
  labels[7] = 9                                          # a cluster of one point
  want = []
  for i in range(40):
    own = (labels == labels[i]) & (np.arange(40) != i)
    if not own.any():
      want.append(0.0)
      continue
    a = dist[i, own].mean()
    b = min(dist[i, labels == k].mean() for k in set(labels.tolist()) - {labels[i]})
    want.append((b - a) / max(a, b))
  assert cluster_lib.silhouette(dist, labels) == pytest.approx(np.mean(want), abs=1e-12)
  assert cluster_lib.silhouette(dist, np.zeros(40, int)) == -1.0


def test_long_recording_counts_talkers_nearer_than_the_cut():
  """150 windows of one talker each, three talkers whose voices lie 0.25 apart (cosine), under
  the cut 0.4: the threshold's cut finds one talker; with silhouette_anchors (150 anchors at
  least 100) the silhouette finds the three, each whole. Fewer anchors than it asks, or one
  talker throughout, keep the threshold's count; a given count is kept."""
  rng = np.random.default_rng(0)
  basis = np.linalg.qr(rng.standard_normal((32, 4)))[0].T
  centres = basis[0] + np.sqrt(1 / 3) * basis[1:]                   # cosine distance 0.25
  centres /= np.linalg.norm(centres, axis=1, keepdims=True)
  who = np.arange(150) % 3
  emb = centres[who] + 0.1 * rng.standard_normal((150, 32)) / np.sqrt(32)
  windows = np.arange(150)
  assert len(np.unique(diarize.cluster(emb, windows, threshold=0.4))) == 1
  found = diarize.cluster(emb, windows, threshold=0.4, silhouette_anchors=100)
  assert len(np.unique(found)) == 3
  for k in range(3):
    assert len(np.unique(found[who == k])) == 1
  assert len(np.unique(diarize.cluster(emb[:60], windows[:60], threshold=0.4,
                                       silhouette_anchors=100))) == 1
  alone = centres[0] + 0.1 * rng.standard_normal((150, 32)) / np.sqrt(32)
  assert len(np.unique(diarize.cluster(alone, windows, threshold=0.4,
                                       silhouette_anchors=100))) == 1
  assert len(np.unique(diarize.cluster(emb, windows, num_speakers=2,
                                       silhouette_anchors=100))) == 2


def test_estimated_count_is_capped_with_a_warning(caplog):
  """25 talkers, one per window, each its own direction in the embedding space: the estimated
  count stops at diarize.MAX_SPEAKERS (20) with a warning; max_speakers lifts the cap."""
  n = 25
  vad = np.zeros((n, 100, 2))
  vad[:, 10:90, 0] = 0.9
  emb = np.zeros((n, 2, 32), np.float32)
  emb[np.arange(n), 0, np.arange(n)] = 1.0
  emb[:, 1, 31] = 1.0
  inf = inference(vad, emb=emb, step=100)
  with caplog.at_level("WARNING", logger="jaxdiar.diarize"):
    capped = diarize.decode(inf, OPTIONS)
  assert len({t.speaker for t in capped.turns}) == diarize.MAX_SPEAKERS
  assert "reached the cap of 20" in caplog.text
  caplog.clear()
  free = diarize.decode(inf, OPTIONS, max_speakers=30)
  assert len({t.speaker for t in free.turns}) == n and not caplog.text
