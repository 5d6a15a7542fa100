"""The frame speech network (jaxdiar.models.speech_net): its features against librosa and the
whole recording's STFT, chunked inference against one pass, training, the shipped weights, and
the classifier that reads it (jaxdiar.decoding.speech, `infer(..., speech_net=True)`)."""

import pathlib

import librosa
import numpy as np
import pytest
import soundfile as sf

from jaxdiar import diarize
from jaxdiar.core import spatial
from jaxdiar.decoding import speech
from jaxdiar.decoding import windows
from jaxdiar.models import speech_net

SPEECH = pathlib.Path(__file__).parents[2] / "shared" / "data" / "speech"


def test_log_mel_is_librosas_mel_power_in_db():
  rng = np.random.default_rng(0)
  x = rng.normal(0, 0.1, 16000).astype(np.float32)
  spec = spatial.stft(x[None], speech_net.N_FFT, speech_net.HOP)[0]
  expect = librosa.feature.melspectrogram(S=np.abs(spec) ** 2, sr=16000, n_fft=512, n_mels=64)
  np.testing.assert_allclose(speech_net.log_mel(spec), 10 * np.log10(expect.T + 1e-8),
                             atol=1e-3)


@pytest.mark.parametrize("rate", [16000, 48000])
def test_file_log_mel_read_in_blocks_is_the_whole_channels(tmp_path, monkeypatch, rate):
  """Read block by block (here 40 frames a block), with the frames either side each needs: the
  log-mels of the whole channel's STFT (resampled as a whole at another rate)."""
  monkeypatch.setattr(speech_net, "BLOCK_FRAMES", 40)
  rng = np.random.default_rng(1)
  audio = (rng.normal(0, 0.1, (2, int(2.3 * rate))) * np.hanning(int(2.3 * rate))).T
  path = tmp_path / "x.wav"
  sf.write(path, audio.astype(np.float32), rate, subtype="FLOAT")
  x = windows.read_block(path, rate, 16000, 0, int(2.3 * 16000))
  n = x.shape[1]
  got = speech_net.file_log_mel(path, rate, n, 1, windows.read_block)
  whole = speech_net.log_mel(spatial.stft(x[1:2], 512, 256)[0])
  assert got.shape == whole.shape == (1 + n // 256, 64)
  np.testing.assert_allclose(got, whole, atol=1e-3)


def test_chunked_probability_is_one_pass(monkeypatch):
  params = speech_net.init(3)
  mel = np.random.default_rng(2).normal(-40, 10, (450, 64)).astype(np.float32)
  m = speech_net.MARGIN                     # the recording between frames at its noise floor
  x = np.pad(speech_net.normalise(mel), ((m, m), (0, 0)))
  whole = np.asarray(speech_net.forward(params, x[None]))[0, m:-m]
  monkeypatch.setattr(speech_net, "CHUNK", 100)
  chunked = speech_net.probability(mel, params)
  assert chunked.shape == (450,) and ((chunked > 0) & (chunked < 1)).all()
  np.testing.assert_allclose(chunked, whole, atol=1e-5)


def _pool(tmp_path, n=3, seconds=12.0):
  """Pool npz files of tone bursts (the target) over a low noise."""
  rng = np.random.default_rng(4)
  for i in range(n):
    samples = int(seconds * 16000)
    t = 1 + samples // 256
    on = np.repeat(rng.random(int(np.ceil(t / 40))) < 0.5, 40)[:t]
    gate = np.repeat(on, 256)[:samples]
    tone = np.sin(2 * np.pi * rng.uniform(200, 800) * np.arange(samples) / 16000)
    x = 0.3 * tone * np.pad(gate, (0, samples - len(gate))) + rng.normal(0, 0.003, samples)
    np.savez(tmp_path / f"meeting{i:06d}.npz", audio=(x[None] * 32767).astype(np.int16),
             activity=on[:, None].astype(np.uint8))
  return sorted(tmp_path.glob("meeting*.npz"))


def test_training_learns_the_targets(tmp_path):
  files = _pool(tmp_path)
  params, losses = speech_net.train(files, 60, batch=4, frames=200, lr=3e-3, log_every=20,
                                    log=lambda line: None)
  assert len(losses) == 3 and losses[-1] < 0.5 * losses[0]
  x, y, _ = speech_net.pool_frames(files[:1])
  p = np.asarray(speech_net.forward(params, x[None].astype(np.float32)))[0]
  assert np.mean((p > 0.5) == y) > 0.9


def test_train_command_writes_float16_weights_and_refuses_an_empty_pool(tmp_path):
  _pool(tmp_path, n=2)
  out = tmp_path / "w.npz"
  assert speech_net.main(["train", "--pool", str(tmp_path), "--steps", "2", "--out", str(out)]) == 0
  with np.load(out) as z:
    assert z["in/kernel"].dtype == np.float16 and z["conv5/kernel"].shape == (3, 64, 64)
  loaded = speech_net.load(str(out))
  assert set(loaded) == set(speech_net.init())
  assert speech_net.main(["train", "--pool", str(tmp_path), "--steps", "2", "--width", "16",
                          "--out", str(tmp_path / "narrow.npz")]) == 0
  narrow = speech_net.load(str(tmp_path / "narrow.npz"))
  assert narrow["conv5/kernel"].shape == (3, 16, 16)     # forward reads the width off them
  x = np.zeros((1, 10, speech_net.NUM_MELS), np.float32)
  assert speech_net.forward(narrow, x).shape == (1, 10)
  assert speech_net.main(["train", "--pool", str(tmp_path / "none"), "--steps", "2",
                          "--out", str(out)]) == 2
  assert speech_net.main(["train", "--pool", str(tmp_path), "--pool", str(tmp_path / "none"),
                          "--steps", "2", "--out", str(out)]) == 2   # every folder must hold some


@pytest.mark.skipif(not SPEECH.is_dir(), reason="../shared/data/speech not present")
def test_shipped_network_hears_speech_over_silence():
  """The shipped weights: two utterances between three-second pauses, in a white noise 20 dB
  under the speech."""
  flacs = sorted(SPEECH.rglob("*.flac"))[:2]
  x, y = (sf.read(f, dtype="float32")[0][:64000] for f in flacs)
  gap = np.zeros(48000, np.float32)
  clean = np.concatenate([gap, x, gap, y, gap])
  rng = np.random.default_rng(5)
  noisy = clean + rng.normal(0, np.sqrt(np.mean(x ** 2)) / 10, len(clean)).astype(np.float32)
  p = speech_net.probability(speech_net.log_mel(spatial.stft(noisy[None], 512, 256)[0]))
  second = 1 / 0.016
  speech_frames = np.r_[int(3.5 * second):int(6.5 * second), int(10.5 * second):int(13 * second)]
  pause_frames = np.r_[int(0.5 * second):int(2.5 * second), int(7.5 * second):int(9.5 * second)]
  assert p[speech_frames].mean() > 0.8 and p[pause_frames].mean() < 0.4


def test_network_features_follow_the_levels_and_need_them():
  rng = np.random.default_rng(6)
  t = 400
  active, score, osd = rng.random((t, 2)) < 0.4, rng.random((t, 2)), rng.random(t)
  chunks = int(np.ceil(t * 0.016 / 0.032))
  first, highest, response = rng.random(chunks), rng.random(chunks), rng.random((t + 5, 12))
  level = rng.normal(-40, 10, (t + 5, 2))
  net = rng.random(t + 5)
  f = speech.features(active, score, osd, first, highest, response, 0.016, level, net)
  n = speech.NUM_FEATURES + speech.NUM_LEVEL_FEATURES
  assert f.shape == (t, n + speech.NUM_NET_FEATURES) == (t, 64)
  np.testing.assert_allclose(f[:, n], net[:t], rtol=1e-6)
  np.testing.assert_allclose(f[50, n + 2], net[47:54].min(), rtol=1e-6)     # min within 3
  weights = [0.0] * (n + speech.NUM_NET_FEATURES + 1)
  assert speech.reads_net(weights) and speech.reads_levels(weights)
  assert not speech.reads_net([0.0] * (n + 1))
  assert speech.probability(f, weights).shape == (t,)
  with pytest.raises(ValueError, match="after the frame levels"):
    speech.features(active, score, osd, first, highest, response, 0.016, None, net)
  assert diarize.needs({"speech_classifier": weights})["speech_net"]
  assert not diarize.needs({"speech_classifier": [0.0] * (n + 1)})["speech_net"]


def test_infer_scores_the_read_channel_with_the_network(exported, meeting):
  """`infer(..., speech_net=True)`: the shipped network over the whole read channel's
  log-mels; a classifier that reads it refuses an inference without it."""
  from jaxdiar.data import audio as audio_lib
  from jaxdiar.models import runtime
  path, _ = exported
  model = runtime.load(path)
  inf = diarize.infer(meeting, model, progress=False, spatial=True, speech_net=True)
  audio = audio_lib.read(meeting, model.sample_rate)
  expect = speech_net.probability(speech_net.log_mel(spatial.stft(audio[:1], 512, 256)[0]))
  assert inf.speech_net.shape == (inf.total_frames,) and inf.speech_net.dtype == np.float16
  np.testing.assert_allclose(inf.speech_net.astype(np.float32), expect[:inf.total_frames],
                             atol=2e-3)
  inf.speech_net = None
  inf.speech = inf.speech_max = np.full(int(np.ceil(inf.num_samples / 512)), 0.9, np.float16)
  weights = [0.0] * (speech.NUM_FEATURES + speech.NUM_LEVEL_FEATURES
                     + speech.NUM_NET_FEATURES + 1)
  with pytest.raises(ValueError, match="speech_net=True"):
    diarize.decode(inf, {**diarize.DEFAULT_DECODE, **model.meta["inference"],
                         "speech_gate": None, "speech_fill": None, "speech_classifier": weights})
