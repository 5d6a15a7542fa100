"""The frame overlap classifier (jaxdiar.decoding.talkers, the `overlap_classifier` settings):
the windows' local evidence, its features, its decision, its fit, and `decode` applying it after
the speech classifier."""

import numpy as np
import pytest

from jaxdiar import diarize
from jaxdiar.decoding import frames
from jaxdiar.decoding import settings
from jaxdiar.decoding import speech
from jaxdiar.decoding import talkers

SPEECH_FEATURES = speech.NUM_FEATURES + speech.NUM_LEVEL_FEATURES + speech.NUM_NET_FEATURES


def test_local_evidence_is_the_brute_force_over_covering_windows():
  rng = np.random.default_rng(0)
  vad = rng.random((4, 10, 3)).astype(np.float32)
  starts = [0, 5, 10, 15]
  total = 24                                      # the last window runs past the end
  out = talkers.local_evidence(vad, starts, total)
  assert out.shape == (total, 3)
  for t in range(total):
    covering = [(w, t - s) for w, s in enumerate(starts) if 0 <= t - s < 10]
    seconds = [np.sort(vad[w, i])[-2] for w, i in covering]
    np.testing.assert_allclose(out[t, 0], np.mean([vad[w, i].sum() for w, i in covering]),
                               rtol=1e-5)
    np.testing.assert_allclose(out[t, 1], np.mean(seconds), rtol=1e-5)
    np.testing.assert_allclose(out[t, 2], np.max(seconds), rtol=1e-5)


def _inputs(t=300, k=3, seed=0):
  rng = np.random.default_rng(seed)
  active = rng.random((t, k)) < 0.5
  score = rng.random((t, k))
  osd = rng.random(t)
  local = rng.random((t, 3)).astype(np.float32)
  return rng.random((t, SPEECH_FEATURES)).astype(np.float32), active, score, osd, local


def test_features_are_the_documented_columns():
  sf, active, score, osd, local = _inputs()
  f = talkers.features(sf, active, score, osd, local)
  assert f.shape == (300, talkers.NUM_FEATURES) and f.dtype == np.float32
  block = 1 + 2 * len(talkers.RADII)
  np.testing.assert_array_equal(f[:, :SPEECH_FEATURES], sf)
  for i in range(3):
    np.testing.assert_allclose(f[:, SPEECH_FEATURES + i * block], local[:, i], rtol=1e-6)
  np.testing.assert_allclose(f[:, SPEECH_FEATURES + 3 * block], np.sort(score, 1)[:, -2],
                             rtol=1e-6)
  np.testing.assert_allclose(f[:, SPEECH_FEATURES + 4 * block], osd, rtol=1e-6)
  r = talkers.RADII[0]                                                 # max / min within 3
  np.testing.assert_allclose(f[50, SPEECH_FEATURES + 4 * block + 1], osd[50 - r:51 + r].max(),
                             rtol=1e-6)
  np.testing.assert_allclose(f[50, SPEECH_FEATURES + 4 * block + 2], osd[50 - r:51 + r].min(),
                             rtol=1e-6)
  np.testing.assert_array_equal(f[:, -1], np.minimum(active.sum(1), 3))
  with pytest.raises(ValueError, match="frame levels and the speech network"):
    talkers.features(sf[:, :speech.NUM_FEATURES], active, score, osd, local)


def test_decide_keeps_the_top_speaker_where_overlap_is_doubted():
  t = 30
  active = np.zeros((t, 3), bool)
  active[0:20, 0] = True
  active[5:30, 1] = True
  score = np.zeros((t, 3))
  score[:, 0], score[:, 1], score[:, 2] = 0.6, 0.5, 0.9        # speaker 2 unmarked: not taken
  p = np.full(t, 0.9)
  p[10:15] = 0.1                                 # two marked, overlap doubted: speaker 0 stays
  out = talkers.decide(active, score, p, threshold=0.3, min_speech=0, min_silence=0)
  assert out[:, 0].nonzero()[0].tolist() == list(range(20))
  assert out[:, 1].nonzero()[0].tolist() == list(range(5, 10)) + list(range(15, 30))
  assert not out[:, 2].any() and active[10:15, 1].all()               # the input is kept
  one = np.zeros((t, 3), bool)
  one[:, 1] = True
  np.testing.assert_array_equal(talkers.decide(one, score, np.zeros(t), threshold=0.3,
                                               min_speech=0, min_silence=0), one)
  short = talkers.decide(active, score, p, threshold=0.3, min_speech=0, min_silence=6)
  np.testing.assert_array_equal(short[:, 1], frames.fill_and_drop(out[:, 1], 0, 6))
  assert short[10:15, 1].all()                   # the gap of 5 it left is filled again


def test_fit_folds_the_standardisation_into_raw_weights():
  examples = []
  for seed in range(3):
    f = talkers.features(*_inputs(seed=seed))
    f[:, 3] *= 1000.0                             # features of very different scales
    f[:, 7] = f[:, 7] * 0.01 + 40.0
    examples.append((f, f[:, 3] + 1000.0 * (f[:, 7] - 40.0) * 100 > 1000.0))
  w = talkers.fit(examples)
  assert len(w) == talkers.NUM_FEATURES + 1
  for f, y in examples:
    assert np.mean((talkers.probability(f, w) >= 0.5) == y) > 0.97
  with pytest.raises(ValueError, match="--fit-overlap-classifier"):
    talkers.probability(examples[0][0], w[:-1])


def test_settings_and_the_speech_classifier_it_needs(exported, meeting):
  from jaxdiar.models import runtime
  settings.validate({"overlap_classifier": [0.0] * (talkers.NUM_FEATURES + 1),
                     "overlap_classifier_threshold": 0.2})
  with pytest.raises(ValueError, match="overlap_classifier_threshold"):
    settings.validate({"overlap_classifier_threshold": -0.1})
  path, _ = exported
  model = runtime.load(path)
  o = {**diarize.DEFAULT_DECODE, **model.meta["inference"], "speech_gate": None,
       "speech_fill": None, "speech_classifier": [0.0] * (SPEECH_FEATURES + 1),
       "speech_classifier_threshold": 0.0, "overlap_classifier_threshold": 0.5}
  inf = diarize.infer(meeting, model, progress=False, **diarize.infer_options(o))
  before = diarize.decode(inf, o, num_speakers=2)
  assert before.active.shape[1] >= 2 and (before.active.sum(1) >= 2).any()
  fs = before.frame_seconds
  x = talkers.features(
      speech.features(before.active, before.speech, before.overlap, inf.speech, inf.speech_max,
                      inf.response, fs, inf.level, inf.speech_net),
      before.active, before.speech, before.overlap,
      talkers.local_evidence(inf.vad, inf.window_frames, len(before.active)))
  weights = [0.0] * (talkers.NUM_FEATURES + 1)   # overlap: the second stitched score is high
  column = SPEECH_FEATURES + 3 * (1 + 2 * len(talkers.RADII))
  weights[column], weights[-1] = 50.0, -50.0 * float(np.median(x[:, column]))
  p = talkers.probability(x, weights)
  assert 0.2 < np.mean(p < 0.5) < 0.8
  expect = talkers.decide(before.active, before.speech, p, threshold=0.5,
                          min_speech=frames.min_durations(o, fs)[0],
                          min_silence=frames.min_durations(o, fs)[1])
  result = diarize.decode(inf, {**o, "overlap_classifier": weights}, num_speakers=2)
  np.testing.assert_array_equal(result.active, expect)
  assert (result.active.sum(1) >= 2).sum() < (before.active.sum(1) >= 2).sum()
  with pytest.raises(ValueError, match="after the speech classifier"):
    diarize.decode(inf, {**o, "speech_classifier": None, "overlap_classifier": weights})
  with pytest.raises(ValueError, match="frame levels and the speech network"):
    diarize.decode(inf, {**o, "speech_classifier": [0.0] * (speech.NUM_FEATURES + 1),
                         "overlap_classifier": weights})
