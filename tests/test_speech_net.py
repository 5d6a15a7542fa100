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
def test_file_features_read_in_blocks_are_the_whole_recordings(tmp_path, monkeypatch, rate):
  """Read block by block (here 40 frames a block), with the frames either side each needs: the
  log-mels of the whole channel's STFT and the coherence of the whole recording's (resampled as
  a whole at another rate)."""
  monkeypatch.setattr(speech_net, "BLOCK_FRAMES", 40)
  rng = np.random.default_rng(1)
  voice = rng.normal(0, 0.1, int(2.3 * rate))
  audio = (0.5 * voice[:, None] + rng.normal(0, 0.05, (int(2.3 * rate), 3))) \
      * np.hanning(int(2.3 * rate))[:, None]
  path = tmp_path / "x.wav"
  sf.write(path, audio.astype(np.float32), rate, subtype="FLOAT")
  x = windows.read_block(path, rate, 16000, 0, int(2.3 * 16000))
  n = x.shape[1]
  got = speech_net.file_log_mel(path, rate, n, 1, windows.read_block)
  whole = speech_net.log_mel(spatial.stft(x[1:2], 512, 256)[0])
  assert got.shape == whole.shape == (1 + n // 256, 64)
  np.testing.assert_allclose(got, whole, atol=1e-3)
  mel, coh = speech_net.file_features(path, rate, n, 1, windows.read_block, with_coherence=True)
  np.testing.assert_allclose(mel, whole, atol=1e-3)
  np.testing.assert_allclose(coh, speech_net.coherence(spatial.stft(x, 512, 256)), atol=1e-4)


def test_coherence_is_one_for_one_source_and_low_for_diffuse_noise():
  """Against a brute-force loop over the pairs: a source delayed to each microphone (a plane
  wave) is coherent (near 1 in every band), independent noise on each is not (about the mean
  length of COHERENCE_SMOOTH random unit phasors' average, ~0.4)."""
  rng = np.random.default_rng(5)
  source = rng.normal(0, 0.1, 16000 + 8)
  wave = np.stack([source[d:d + 16000] for d in (0, 2, 5, 8)])
  noise = rng.normal(0, 0.1, (4, 16000))
  for audio, low, high in ((wave, 0.97, 1.0), (noise, 0.25, 0.6)):
    spec = spatial.stft(audio, 512, 256)
    got = speech_net.coherence(spec)
    k = speech_net.COHERENCE_SMOOTH

    def avg(z):                              # over k frames, where all k are inside
      out = np.full(z.shape, np.nan, z.dtype)
      for t in range(k // 2, z.shape[-1] - k // 2):
        out[..., t] = z[..., t - k // 2:t + k // 2 + 1].mean(-1)
      return out

    pairs = [np.abs(avg(spec[i] * np.conj(spec[j])))
             / np.sqrt(avg(np.abs(spec[i]) ** 2) * avg(np.abs(spec[j]) ** 2))
             for i in range(4) for j in range(i + 1, 4)]
    basis = speech_net._mel_basis() / speech_net._mel_basis().sum(1, keepdims=True)
    brute = (basis @ np.mean(pairs, axis=0)).T
    inner = slice(k, -k)                     # away from both ends (`nearest` padding there)
    np.testing.assert_allclose(got[inner], brute[inner], atol=2e-3)
    assert low < np.median(got[inner, 2:]) < high
  with pytest.raises(ValueError, match="two or more microphones"):
    speech_net.coherence(spatial.stft(noise[:1], 512, 256))


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


def test_a_network_that_reads_the_coherence_needs_it():
  params = speech_net.init(0, 16, 2 * speech_net.NUM_MELS)
  mel = np.random.default_rng(2).normal(-40, 10, (50, 64)).astype(np.float32)
  assert speech_net.reads_coherence(params) and not speech_net.reads_coherence(speech_net.init())
  with pytest.raises(ValueError, match="reads the array's coherence"):
    speech_net.probability(mel, params)
  with pytest.raises(ValueError, match="log-mels alone"):
    speech_net.probability(mel, speech_net.init(), np.zeros_like(mel))
  p = speech_net.probability(mel, params, np.zeros_like(mel))
  assert p.shape == (50,) and np.isfinite(p).all()


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


def test_training_with_the_coherence_reads_two_inputs_a_band(tmp_path):
  """Two-channel pool meetings (the second microphone the first's tone, delayed, in its own
  noise): the inputs carry the coherence; a network trained on them (and the train command's
`--coherence`) reads it and learns the bursts."""
  for i, f in enumerate(_pool(tmp_path, n=2)):
    with np.load(f) as z:
      one, activity = z["audio"][0], z["activity"]
    noise = np.random.default_rng(i).normal(0, 600, len(one))
    two = np.stack([one, np.roll(one, 3) + noise]).astype(np.int16)
    np.savez(f, audio=two, activity=activity)
  files = sorted(tmp_path.glob("meeting*.npz"))
  x, y, _ = speech_net.pool_frames(files[:1], with_coherence=True)
  assert x.shape[1] == 2 * speech_net.NUM_MELS
  top = x[:, 64:].astype(np.float32).max(axis=1)            # the tone's band is coherent
  assert top[y].mean() > top[~y].mean() + 0.2
  params, _ = speech_net.train(files, 60, batch=4, frames=200, lr=3e-3, with_coherence=True,
                               log=lambda line: None)
  p = np.asarray(speech_net.forward(params, x[None].astype(np.float32)))[0]
  assert speech_net.reads_coherence(params) and np.mean((p > 0.5) == y) > 0.9
  out = tmp_path / "coh.npz"
  assert speech_net.main(["train", "--pool", str(tmp_path), "--steps", "2", "--coherence",
                          "--width", "16", "--out", str(out)]) == 0
  assert speech_net.reads_coherence(speech_net.load(str(out)))


def _shipped_probability(spec: np.ndarray) -> np.ndarray:
  """The shipped network's P(speech) of a whole recording's STFT [C, F, T]: channel 0's
  log-mels, and the coherence of all the channels if it reads them."""
  params = speech_net.load()
  return speech_net.probability(speech_net.log_mel(spec[0]), params,
                                speech_net.coherence(spec) if speech_net.reads_coherence(params)
                                else None)


@pytest.mark.skipif(not SPEECH.is_dir(), reason="../shared/data/speech not present")
def test_shipped_network_hears_speech_over_silence():
  """The shipped weights: two utterances between three-second pauses reaching four microphones
  a few samples apart, in a white noise of their own 20 dB under the speech."""
  flacs = sorted(SPEECH.rglob("*.flac"))[:2]
  x, y = (sf.read(f, dtype="float32")[0][:64000] for f in flacs)
  gap = np.zeros(48000, np.float32)
  clean = np.concatenate([gap, x, gap, y, gap, np.zeros(4, np.float32)])
  rng = np.random.default_rng(5)
  level = np.sqrt(np.mean(x ** 2)) / 10
  noisy = np.stack([clean[d:d + len(clean) - 4] for d in (0, 1, 3, 4)])
  noisy = noisy + rng.normal(0, level, noisy.shape).astype(np.float32)
  p = _shipped_probability(spatial.stft(noisy, 512, 256))
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
  log-mels (and the whole array's coherence); a classifier that reads it refuses an inference without it."""
  from jaxdiar.data import audio as audio_lib
  from jaxdiar.models import runtime
  path, _ = exported
  model = runtime.load(path)
  inf = diarize.infer(meeting, model, progress=False, spatial=True, speech_net=True)
  audio = audio_lib.read(meeting, model.sample_rate)
  expect = _shipped_probability(spatial.stft(audio, 512, 256))
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
