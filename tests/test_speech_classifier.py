"""The frame speech classifier (jaxdiar.decoding.speech, the `speech_classifier` settings): its
features, its decision, its fit, and `decode` applying it in place of the detector's gate."""

import numpy as np
import pytest

from jaxdiar import diarize
from jaxdiar.decoding import frames
from jaxdiar.decoding import settings
from jaxdiar.decoding import speech
from jaxdiar.models import vad


def _evidence(t=400, k=2, g=12, seed=0):
  rng = np.random.default_rng(seed)
  active = rng.random((t, k)) < 0.4
  score = rng.random((t, k))
  osd = rng.random(t)
  chunks = int(np.ceil(t * 0.016 / vad.FRAME_SECONDS))
  first, highest = rng.random(chunks), rng.random(chunks)
  response = rng.random((t + 5, g))
  return active, score, osd, first, highest, response


def test_features_are_the_documented_columns():
  active, score, osd, first, highest, response = _evidence()
  f = speech.features(active, score, osd, first, highest, response, 0.016)
  assert f.shape == (400, speech.NUM_FEATURES) == (400, 36) and f.dtype == np.float32
  chunk = ((np.arange(400) + 0.5) * 0.016 / vad.FRAME_SECONDS).astype(int)
  np.testing.assert_allclose(f[:, 0], highest[chunk], rtol=1e-6)          # every channel's
  np.testing.assert_allclose(f[:, 9], first[chunk], rtol=1e-6)            # the read channel
  r = 3                                                                   # max / min within 3
  np.testing.assert_allclose(f[50, 1], highest[chunk[50 - r:50 + r + 1]].max(), rtol=1e-6)
  np.testing.assert_allclose(f[50, 2], highest[chunk[50 - r:50 + r + 1]].min(), rtol=1e-6)
  np.testing.assert_allclose(f[:, 18], 1 - np.prod(1 - score, axis=1), rtol=1e-5)
  np.testing.assert_allclose(f[:, 23], score.max(axis=1), rtol=1e-6)
  np.testing.assert_allclose(f[:, 28], osd, rtol=1e-6)
  np.testing.assert_array_equal(f[:, 29], active.any(axis=1))
  np.testing.assert_allclose(f[:, 30], response[:400].max(1) - np.median(response[:400], 1),
                             rtol=1e-5)
  np.testing.assert_allclose(f[:, 31], response[:400].max(1), rtol=1e-6)
  with pytest.raises(ValueError, match="frame responses"):
    speech.features(active, score, osd, first, highest, None, 0.016)


def test_decide_clears_fills_and_keeps_the_minimum_durations():
  t = 40
  active = np.zeros((t, 2), bool)
  active[0:20, 0] = True
  score = np.zeros((t, 2))
  score[:, 1] = 1.0
  p = np.full(t, 0.9)
  p[5:15] = 0.1                     # no speech: speaker 0 cleared there
  p[25:30] = 0.6                    # speech, no one marked: filled at fill 0.5 only
  out = speech.decide(active, score, p, threshold=0.5, fill=None, min_speech=0, min_silence=0)
  assert out[:, 0].nonzero()[0].tolist() == list(range(5)) + list(range(15, 20))
  assert not out[:, 1].any() and active[5:15, 0].all()                   # the input is kept
  filled = speech.decide(active, score, p, threshold=0.5, fill=0.5, min_speech=0, min_silence=0)
  assert filled[:, 1].nonzero()[0].tolist() == list(range(20, 40))
  short = speech.decide(active, score, p, threshold=0.5, fill=None, min_speech=6, min_silence=0)
  assert short[:, 0].nonzero()[0].tolist() == []                          # runs of 5 dropped
  bridged = speech.decide(active, score, p, threshold=0.5, fill=None, min_speech=0,
                          min_silence=11)
  assert bridged[:, 0].nonzero()[0].tolist() == list(range(20))           # gap of 10 filled
  assert np.array_equal(bridged[:, 0], frames.fill_and_drop(out[:, 0], 0, 11))


def test_fit_learns_a_separable_speech_rule_and_probability_checks_its_weights():
  examples = []
  for seed in range(3):
    f = speech.features(*_evidence(seed=seed), 0.016)
    examples.append((f, f[:, 0] > 0.5))                   # speech: the detector says so
  w = speech.fit(examples)
  assert len(w) == speech.NUM_FEATURES + 1
  f, y = examples[0]
  assert np.mean((speech.probability(f, w) >= 0.5) == y) > 0.97
  with pytest.raises(ValueError, match="--fit-speech-classifier"):
    speech.probability(f, w[:-1])


def test_settings_and_needs():
  settings.validate({"speech_classifier": [0.0] * 37, "speech_classifier_threshold": 0.4,
                     "speech_classifier_fill": None})
  with pytest.raises(ValueError, match="speech_classifier_threshold"):
    settings.validate({"speech_classifier_threshold": 1.5})
  need = diarize.needs({"speech_classifier": [0.0] * 37})
  assert need["detect_speech"] and need["speech_channels"] == "all"
  assert not diarize.needs({"speech_classifier": None})["detect_speech"]


def test_decode_applies_the_classifier_in_place_of_the_gate(exported, trained_smoke):
  import pathlib
  from jaxdiar.models import runtime
  path, _ = exported
  config, _ = trained_smoke
  wav = sorted(pathlib.Path(config.data.data_dir).glob("simulated-*/dev"))[0] / "meeting00000.wav"
  model = runtime.load(path)
  o = {**model.meta["inference"], "speech_gate": None, "speech_fill": None,
       "speech_classifier": [0.0] * (speech.NUM_FEATURES + 1), "speech_classifier_fill": 0.9,
       "min_speech_seconds": 0.1}
  inf = diarize.infer(wav, model, progress=False, **diarize.needs(o))
  assert inf.speech_max is not None and inf.response is not None
  before = diarize.decode(inf, {**o, "speech_classifier": None})
  assert before.active.shape[1] >= 1
  fs = before.frame_seconds
  f = speech.features(before.active, before.speech, before.overlap, inf.speech, inf.speech_max,
                      inf.response, fs)
  weights = [0.0] * (speech.NUM_FEATURES + 1)      # speech: a response peak above its median
  weights[31], weights[-1] = 50.0, -50.0 * float(np.median(f[:, 31]))
  o["speech_classifier"] = weights
  p = speech.probability(f, weights)
  assert 0.3 < np.mean(p < 0.5) < 0.7
  expect = speech.decide(before.active, before.speech, p, threshold=0.5, fill=0.9,
                         min_speech=int(round(0.1 / fs)),
                         min_silence=frames.min_durations(o, fs)[1])
  result = diarize.decode(inf, o)
  np.testing.assert_array_equal(result.active, expect)
  assert not np.array_equal(result.active, before.active)
  with pytest.raises(ValueError, match="in place of the speech detector's gate"):
    diarize.decode(inf, {**o, "speech_gate": 0.5})


def test_level_features_and_the_weights_that_read_them():
  active, score, osd, first, highest, response = _evidence()
  rng = np.random.default_rng(1)
  level = np.stack([rng.normal(-40, 10, 405), rng.normal(-45, 10, 405)], axis=1)
  f = speech.features(active, score, osd, first, highest, response, 0.016, level)
  n = speech.NUM_FEATURES
  assert f.shape == (400, n + speech.NUM_LEVEL_FEATURES) == (400, 57)
  np.testing.assert_array_equal(f[:, :n], speech.features(active, score, osd, first, highest,
                                                          response, 0.016))
  energy = level[:400, 0]
  np.testing.assert_allclose(f[:, n], energy - np.percentile(energy, 5), atol=1e-4)
  np.testing.assert_allclose(f[:, n + 7], energy - np.percentile(energy, 95), atol=1e-4)
  np.testing.assert_allclose(f[50, n + 1], f[47:54, n].max(), rtol=1e-6)    # max within 3
  assert speech.reads_levels([0.0] * (n + speech.NUM_LEVEL_FEATURES + 1))
  assert not speech.reads_levels([0.0] * (n + 1))
  with pytest.raises(ValueError, match="with the frame levels"):
    speech.probability(f, [0.0] * (n + 1))                 # 37 weights, 57 features
  with pytest.raises(ValueError, match="frame levels for 300 frames"):
    speech.features(active, score, osd, first, highest, response, 0.016, level[:300])


def test_infer_keeps_each_frame_level_of_the_read_channel(exported, meeting):
  """The levels `infer` keeps, window by window, are those of the whole recording's STFT."""
  from jaxdiar.core import spatial
  from jaxdiar.data import audio as audio_lib
  from jaxdiar.models import runtime
  path, _ = exported
  model = runtime.load(path)
  inf = diarize.infer(meeting, model, progress=False, spatial=True)
  audio = audio_lib.read(meeting, model.sample_rate)
  spec = spatial.stft(audio[:1], model.meta["n_fft"], model.hop)[0]
  power = np.abs(spec) ** 2
  freqs = np.arange(len(power)) * model.sample_rate / model.meta["n_fft"]
  band = (freqs >= 300) & (freqs <= 3500)
  expect = 10 * np.log10(np.stack([power.sum(0), power[band].sum(0)], 1) + 1e-10)
  assert inf.level.shape == (inf.total_frames, 2)
  np.testing.assert_allclose(inf.level, expect[:inf.total_frames], atol=1e-3)
