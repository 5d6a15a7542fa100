"""jaxdiar.decoding.pieces: local speakers cut at their pauses, each piece's embedding, the
reassignment after the clustering, its fit; the exported forward's frame embeddings."""

import dataclasses

import hypothesis
from hypothesis import strategies as st
import numpy as np
import pytest

from jaxdiar import diarize
from jaxdiar.decoding import pieces
from jaxdiar.models import runtime
from tests.test_decode import OPTIONS
from tests.test_decode import frames
from tests.test_decode import inference

GAP, MIN = 10, 10


def test_partition_cuts_in_the_middle_of_long_pauses():
  active = np.zeros(120, bool)
  active[0:20] = active[25:45] = active[75:95] = True     # pauses of 5 and 30 frames
  assert pieces.partition(active, GAP, MIN) == [(0, 60), (60, 120)]   # (44 + 75 + 1) // 2
  active[110:113] = True                # 3 frames after a 15-frame pause: too few alone
  assert pieces.partition(active, GAP, MIN) == [(0, 60), (60, 120)]
  active[:] = False
  active[2:6] = True                    # a first piece too short joins the next
  active[40:60] = True
  assert pieces.partition(active, GAP, MIN) == [(0, 120)]


@hypothesis.settings(max_examples=60, deadline=None)
@hypothesis.given(st.lists(st.booleans(), min_size=1, max_size=200),
                  st.integers(0, 30), st.integers(1, 20))
def test_partition_covers_and_cuts_only_long_pauses(bits, gap, min_frames):
  active = np.array(bits)
  parts = pieces.partition(active, gap, min_frames)
  assert parts[0][0] == 0 and parts[-1][1] == len(active)
  assert all(a < b for a, b in parts)
  assert all(p[1] == q[0] for p, q in zip(parts, parts[1:]))
  idx = np.flatnonzero(active)
  for _, cut in parts[:-1]:       # between two active frames more than `gap` apart
    before, after = idx[idx < cut], idx[idx >= cut]
    assert len(before) and len(after) and after[0] - before[-1] > gap
  if active.sum() >= min_frames:
    assert all(active[a:b].sum() >= min_frames for a, b in parts)


def test_piece_embeddings_average_to_the_local_speakers():
  """Each piece's embedding is the probability-weighted mean of the frame embeddings over
  it, so the pieces' embeddings weighted by their probability mass give the slot's (what
  the model's spk_emb is)."""
  rng = np.random.default_rng(0)
  vad = rng.uniform(0.0, 0.3, (100, 2)).astype(np.float32)
  vad[5:30, 0] = vad[60:90, 0] = 0.9
  vad[40:70, 1] = 0.8
  emb = rng.standard_normal((100, 6)).astype(np.float32)
  got = pieces.of_window(vad, emb, 100, onset=0.5, gap_frames=GAP, min_frames=MIN)
  assert [(s, a, b) for s, a, b, _ in got] == [(0, 0, 45), (0, 45, 100), (1, 0, 100)]
  for s, a, b, e in got:
    np.testing.assert_allclose(e, vad[a:b, s] @ emb[a:b] / vad[a:b, s].sum(), rtol=1e-5)
  mass = [vad[a:b, s].sum() for s, a, b, _ in got[:2]]
  np.testing.assert_allclose(sum(m * e for m, (*_, e) in zip(mass, got)) / sum(mass),
                             vad[:, 0] @ emb / vad[:, 0].sum(), rtol=1e-5)
  # frames past the recording's end are not heard: the slot is one piece there
  assert [(s, a, b) for s, a, b, _ in pieces.of_window(
      vad, emb, 50, onset=0.5, gap_frames=GAP, min_frames=MIN)] == [(0, 0, 100), (1, 0, 100)]


def _two_voices_in_one_slot(both=False):
  """Three windows of 200 frames, no overlap between them. A talks in slot 0 of windows 0
  and 1 (embedding e0), B in slot 1 of window 0 (e1), and slot 0 of window 2 holds B on
  frames 0-80 then, after a pause, A on 120-200: its slot embedding is the mix. `both`: B
  also in window 2's slot 1 on frames 0-80, with the first piece of its slot 0."""
  vad = np.zeros((3, 200, 2), np.float32)
  vad[0, 0:80, 0] = vad[0, 120:200, 1] = 0.9
  vad[1, 0:200, 0] = 0.9
  vad[2, 0:80, 0] = vad[2, 120:200, 0] = 0.9
  e = np.eye(8, dtype=np.float32)
  emb = np.zeros((3, 2, 8), np.float32)
  emb[0, 0] = emb[1, 0] = e[0]
  emb[0, 1] = e[1]
  emb[2, 0] = 0.45 * e[0] + 0.55 * e[1]
  if both:
    vad[2, 0:80, 1] = 0.9
    emb[2, 1] = e[1]
  inf = inference(vad, emb=emb, step=200)
  frame_emb = np.zeros((3, 200, 8), np.float32)
  frame_emb[0, :, :] = np.where(np.arange(200)[:, None] < 100, e[0], e[1])
  frame_emb[1] = e[0]
  frame_emb[2, :100] = e[1]
  frame_emb[2, 100:] = e[0]
  if both:
    frame_emb[2, :80] = 0.5 * (e[1] + e[2])   # a frame embedding of the two together
  parts = [(w, *p) for w in range(3) for p in pieces.of_window(
      vad[w], frame_emb[w], 200, onset=0.5, gap_frames=GAP, min_frames=MIN)]
  return dataclasses.replace(inf, pieces=pieces.collect(parts, 0.5, GAP, MIN, 8))


# A classifier that moves a piece when it is nearer the other cluster (feature 0 > 0).
NEARER = [50.0] + [0.0] * (pieces.NUM_FEATURES - 1) + [0.0]
PIECES = dict(OPTIONS, piece_gap_seconds=GAP * 256 / 16000, min_active_frames=MIN)


def test_reassignment_gives_a_piece_to_the_talker_it_sounds_like():
  inf = _two_voices_in_one_slot()
  plain = diarize.decode(inf, PIECES, num_speakers=2)
  moved = diarize.decode(inf, dict(PIECES, reassign_classifier=NEARER), num_speakers=2)
  total = inf.total_frames
  owner = lambda r, f: [s for s in ("spk00", "spk01") if frames(r.turns, s, total)[f]]
  # without the pieces window 2's slot is one talker throughout (the cluster it joins)
  assert owner(plain, 400 + 40) == owner(plain, 400 + 160)
  # with them its first piece is B's (window 0's slot 1), its second A's
  assert owner(moved, 400 + 40) == owner(moved, 160) != owner(moved, 400 + 160)
  assert owner(moved, 400 + 160) == owner(moved, 40)
  never = dict(PIECES, reassign_classifier=NEARER, reassign_threshold=1.0)
  assert diarize.decode(inf, never, num_speakers=2).turns == plain.turns


def test_pieces_active_together_keep_their_local_speakers():
  """A move that would put two pieces of one window that talk together in one cluster is
  undone."""
  inf = _two_voices_in_one_slot(both=True)
  o = {**diarize.DEFAULT_DECODE, **PIECES}
  from jaxdiar.decoding import decode as decode_lib
  windows, slots, labels, heard = decode_lib.cluster_locals(inf, o, num_speakers=2)
  cands = pieces.candidates(inf, windows, slots, labels, heard[windows, slots], o)
  got = pieces.reassign(inf, cands, NEARER, 0.5, 0.5)
  first = [j for j, i in enumerate(cands.index)
           if inf.pieces.window[i] == 2 and inf.pieces.slot[i] == 0 and inf.pieces.start[i] == 0]
  assert len(first) == 1 and cands.other[first[0]] != cands.current[first[0]]
  assert got[first[0]] == cands.current[first[0]]                 # kept: it talks with B
  alone = _two_voices_in_one_slot()
  windows, slots, labels, heard = decode_lib.cluster_locals(alone, o, num_speakers=2)
  cands = pieces.candidates(alone, windows, slots, labels, heard[windows, slots], o)
  got = pieces.reassign(alone, cands, NEARER, 0.5, 0.5)       # alone, B's piece may move
  window_2 = [j for j, i in enumerate(cands.index) if alone.pieces.window[i] == 2]
  assert len(window_2) == 2 and got[window_2[0]] != got[window_2[1]]


def test_reassignment_refuses_what_it_cannot_do():
  inf = _two_voices_in_one_slot()
  with pytest.raises(ValueError, match="pieces"):
    diarize.decode(dataclasses.replace(inf, pieces=None),
                   dict(PIECES, reassign_classifier=NEARER), num_speakers=2)
  with pytest.raises(ValueError, match="pieces"):
    diarize.decode(dataclasses.replace(inf, pieces=None), dict(PIECES, piece_split_cos=0.5),
                   num_speakers=2)
  assert diarize.needs(dict(PIECES, piece_split_cos=0.5))["pieces"] == (0.5, 0.16, MIN)
  with pytest.raises(ValueError, match="infer again"):
    diarize.decode(inf, dict(PIECES, reassign_classifier=NEARER, onset=0.6), num_speakers=2)
  with pytest.raises(ValueError, match="numbers"):
    diarize.decode(inf, dict(PIECES, reassign_classifier=[1.0, 2.0]), num_speakers=2)
  assert diarize.needs(dict(PIECES, reassign_classifier=NEARER))["pieces"] == (0.5, 0.16, MIN)
  with pytest.raises(ValueError, match="several ways"):
    diarize.needs_of_all([dict(PIECES, reassign_classifier=NEARER),
                          dict(PIECES, reassign_classifier=NEARER, onset=0.6)])


def test_fit_recovers_a_separable_rule():
  rng = np.random.default_rng(1)
  x = rng.standard_normal((400, pieces.NUM_FEATURES))
  y = x[:, 0] + 0.5 * x[:, 3] > 0.3
  w = pieces.fit([(x[:200], y[:200]), (x[200:], y[200:])])
  p = pieces.probability(x, w)
  assert np.mean((p > 0.5) == y) > 0.95


def test_infer_keeps_the_pieces_of_the_model_frame_embeddings(exported, meeting):
  """The smoke model's file gives its frame embeddings; the pieces of every local speaker
  average back to its embedding (the model's spk_emb, mass-weighted)."""
  path, _ = exported
  model = runtime.load(path)
  assert "frame_emb" in model.outputs
  inf = diarize.infer(meeting, model, progress=False, spatial=False, pieces=(0.5, 0.16, 10))
  p = inf.pieces
  assert len(p.window) and p.emb.shape[1] == inf.emb.shape[2]
  vad = inf.vad.astype(np.float32)
  heard = diarize.heard_frames(inf, 0.5)
  for w, s in zip(*np.nonzero(heard >= 10)):
    rows = np.flatnonzero((p.window == w) & (p.slot == s))
    assert p.start[rows[0]] == 0 and p.stop[rows[-1]] == vad.shape[1]
    mass = np.array([vad[w, p.start[i]:p.stop[i], s].sum() for i in rows])
    np.testing.assert_allclose(mass @ p.emb[rows] / mass.sum(), inf.emb[w, s],
                               rtol=2e-3, atol=2e-3)


def test_a_model_file_without_frame_embeddings_is_refused_naming_the_export(meeting):
  model = runtime.load("jaxdiar/models/mono.jaxdiar")     # exported before they were given
  assert "frame_emb" not in model.outputs
  with pytest.raises(diarize.InputError, match="jaxdiar.export --model"):
    diarize.infer(meeting, model, progress=False, spatial=False, channel=0,
                  pieces=(0.5, 0.16, 10))


def test_a_local_speaker_of_two_voices_is_cut_in_two_before_the_clustering():
  inf = _two_voices_in_one_slot()
  o = {**diarize.DEFAULT_DECODE, **PIECES, "piece_split_cos": 0.5, "piece_split_seconds": 1.0}
  cut, count = pieces.split_locals(inf, o)
  assert count == 1 and cut.vad.shape == (3, 200, 4)
  vad = inf.vad.astype(np.float32)
  np.testing.assert_array_equal(cut.vad[:, :, :2].astype(np.float32)
                                + cut.vad[:, :, 2:].astype(np.float32), vad)
  moved = cut.vad[2, :, 2].astype(np.float32) > 0       # the smaller group: one of the pieces
  assert moved[:80].all() != moved[120:].all() and moved.sum() == 80
  e = np.eye(8, dtype=np.float32)
  np.testing.assert_allclose(sorted([cut.emb[2, 0].argmax(), cut.emb[2, 2].argmax()]), [0, 1])
  for s in (0, 2):                           # each half: its frames' embeddings' mean
    v = cut.vad[2, :, s].astype(np.float32)
    want = e[1] if v[:100].sum() > 0 else e[0]
    np.testing.assert_allclose(cut.emb[2, s], want, atol=1e-6)
  assert sorted(cut.pieces.slot[cut.pieces.window == 2].tolist()) == [0, 2]
  voiced = dataclasses.replace(inf, voice=np.arange(3 * 2 * 4, dtype=np.float32).reshape(3, 2, 4))
  halves = pieces.split_locals(voiced, o)[0].voice          # the d-vectors: the local speaker's
  np.testing.assert_array_equal(halves[:, 2:], voiced.voice)
  np.testing.assert_array_equal(halves[:, :2], voiced.voice)
  # the halves are far apart (cosine 0), so no cut under a cosine of 0
  assert pieces.split_locals(inf, dict(o, piece_split_cos=0.0))[1] == 0
  assert pieces.split_locals(inf, dict(o, piece_split_seconds=2.0))[1] == 0
  total = inf.total_frames
  split = diarize.decode(inf, dict(o, reassign_classifier=None), num_speakers=2)
  owner = lambda r, f: [s for s in ("spk00", "spk01") if frames(r.turns, s, total)[f]]
  assert owner(split, 400 + 40) == owner(split, 160) != owner(split, 400 + 160)
  assert owner(split, 400 + 160) == owner(split, 40)


def test_silence_and_one_talker_decode_with_the_pieces_on():
  o = dict(PIECES, reassign_classifier=NEARER, piece_split_cos=0.8)
  quiet = inference(np.full((3, 100, 2), 0.01))
  quiet = dataclasses.replace(quiet, pieces=pieces.collect([], 0.5, GAP, MIN, 8))
  assert diarize.decode(quiet, o).turns == []
  inf = _two_voices_in_one_slot()
  one = diarize.decode(inf, o, num_speakers=1)            # a given count of one: nothing moves
  assert {t.speaker for t in one.turns} == {"spk00"}
