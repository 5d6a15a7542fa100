"""The ported speech detector (jaxdiar.vad) against its oracles: a numpy forward pass, and the
probabilities Silero VAD itself gave two shared recordings; and how `diarize` uses it
(detect_speech, gate_speech, the speech_gate / speech_fill / speech_pad settings)."""

import numpy as np
import pytest

from jaxdiar import diarize
from jaxdiar.cli import vad as cli_vad
from jaxdiar.data import audio as audio_lib
from jaxdiar.models import vad
from tests.conftest import REPO
from tests.conftest import shared_data

REFERENCE = REPO / "tests" / "data" / "silero-vad-6.2.3.npz"


def _numpy_probability(params, wav):
  """Silero's 16 kHz model by hand, chunk by chunk from a zero state: 64 samples of context,
  reflect padding, its STFT as a convolution with the Hann-windowed DFT basis (cos, -sin),
  four convolutions (padding 1) with ReLU, an LSTM cell (gates i, f, g, o), ReLU, linear,
  sigmoid."""
  p = {k: v.astype(np.float64) for k, v in params.items()}
  n, k = np.arange(256), np.arange(129)[:, None]
  hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / 256)
  basis = np.concatenate([np.cos(2 * np.pi * k * n / 256), -np.sin(2 * np.pi * k * n / 256)]) * hann
  sig = lambda z: 1 / (1 + np.exp(-z))
  wav = np.pad(wav.astype(np.float64), (0, -len(wav) % 512))
  context, h, c, out = np.zeros(64), np.zeros(128), np.zeros(128), []
  for s in range(0, len(wav), 512):
    x = np.concatenate([context, wav[s:s + 512]])
    context = x[-64:]
    x = np.concatenate([x, x[-2:-66:-1]])                        # torch's reflect padding
    frames = np.stack([x[i:i + 256] for i in range(0, len(x) - 255, 128)])   # [4, 256]
    z = basis @ frames.T                                         # [258, 4]
    y = np.sqrt(z[:129] ** 2 + z[129:] ** 2)                     # [channels, time]
    for i, stride in enumerate(vad.STRIDES):
      w, b = p[f"conv_w_{i}"], p[f"conv_b_{i}"]                  # [out, in, 3]
      yp = np.pad(y, ((0, 0), (1, 1)))
      t_out = (yp.shape[1] - 3) // stride + 1
      y = np.stack([np.einsum("oik,ik->o", w, yp[:, t * stride:t * stride + 3]) + b
                    for t in range(t_out)], axis=1)
      y = np.maximum(y, 0)
    gi, gf, gg, go = np.split(p["lstm_ih"] @ y[:, 0] + p["lstm_hh"] @ h + p["lstm_b"], 4)
    c = sig(gf) * c + sig(gi) * np.tanh(gg)
    h = sig(go) * np.tanh(c)
    out.append(sig(np.maximum(h, 0) @ p["out_w"] + p["out_b"]))
  return np.array(out)


def test_forward_is_the_numpy_model():
  params = vad.load()
  assert sum(v.size for v in params.values()) == 243073        # Silero's 16 kHz branch
  rng = np.random.default_rng(0)
  t = np.arange(5000) / 16000
  wav = (0.3 * np.sin(2 * np.pi * 220 * t) * (t > 0.1) + 0.01 * rng.normal(size=len(t)))
  np.testing.assert_allclose(vad.speech_probability(wav.astype(np.float32), params),
                             _numpy_probability(params, wav), atol=2e-5)


@pytest.mark.parametrize("name,path", [
    ("ami_trn05", ("ami-excerpts", "trn05.wav")),
    ("libri_1688_142285_0000", ("speech", "libri-test-other", "1688", "1688-142285-0000.flac"))])
def test_probabilities_are_silero_vads(name, path):
  """The references were computed by silero-vad 6.2.3 itself (torch, float32 weights):
  model(chunk, 16000) on each 512-sample chunk in turn after reset_states()."""
  wav = audio_lib.read(shared_data(*path), 16000)[0]
  ref = np.load(REFERENCE)[name]
  ours = vad.speech_probability(wav)
  assert ours.shape == ref.shape == (-(-len(wav) // vad.CHUNK),)
  assert np.abs(ours - ref).max() < 0.01                # float16 weights in the package
  assert np.mean((ours >= 0.5) == (ref >= 0.5)) > 0.995
  assert 0.05 < np.mean(ref >= 0.5) < 0.95              # the recording has speech and pauses


def test_detector_fed_in_pieces_is_the_whole():
  """The state and context carry over between pushes and across the 1024-chunk segments."""
  rng = np.random.default_rng(1)
  wav = (0.05 * rng.normal(size=(vad.SEGMENT + 37) * vad.CHUNK + 100)).astype(np.float32)
  whole = vad.speech_probability(wav)
  assert whole.shape == (vad.SEGMENT + 38,)
  d = vad.Detector()
  cuts = [0, 1000, 1001, 300_000, 600_000, len(wav)]
  pieces = [d.push(wav[a:b]) for a, b in zip(cuts, cuts[1:])]
  assert sum(len(x) for x in pieces) == vad.SEGMENT + 37      # the partial chunk waits
  pieces.append(d.push(np.zeros(0, np.float32), final=True))
  np.testing.assert_allclose(np.concatenate(pieces), whole, atol=1e-6)
  assert len(vad.speech_probability(np.zeros(0, np.float32))) == 0


def test_gate_speech():
  fs = 0.016                                   # two frames a detector chunk
  active = np.zeros((20, 2), bool)
  active[0:8, 0] = True
  active[12:16, 1] = True
  score = np.zeros((20, 2))
  score[:, 1] = 0.3                            # speaker 1 the likelier where no one is marked
  speech = np.array([0.9, 0.9, 0.1, 0.1, 0.1, 0.1, 0.9, 0.9, 0.9, 0.9], np.float16)
  gated = diarize.gate_speech(active, score, speech, fs, gate=0.5, fill=None)
  assert gated[:, 0].nonzero()[0].tolist() == [0, 1, 2, 3]        # chunks 2-5 are not speech
  assert gated[:, 1].nonzero()[0].tolist() == [12, 13, 14, 15]
  filled = diarize.gate_speech(active, score, speech, fs, gate=0.5, fill=0.5)
  assert filled[:, 1].nonzero()[0].tolist() == list(range(12, 20))   # speech, no one marked
  assert filled[:, 0].nonzero()[0].tolist() == [0, 1, 2, 3]
  padded = diarize.gate_speech(active, score, speech, fs, gate=0.5, fill=None, pad=0.032)
  assert padded[:, 0].nonzero()[0].tolist() == [0, 1, 2, 3, 4, 5]   # speech widened 2 frames
  assert not active[8:12].any() and active[:8, 0].all()             # the input is kept


def test_decode_needs_the_detector_and_diarize_runs_it(exported, trained_smoke):
  import pathlib
  from jaxdiar.models import runtime
  path, _ = exported
  config, _ = trained_smoke
  wav = sorted(pathlib.Path(config.data.data_dir).glob("simulated-*/dev"))[0] / "meeting00000.wav"
  model = runtime.load(path)
  plain = diarize.infer(wav, model, progress=False)
  assert plain.speech is None
  with pytest.raises(ValueError, match="detect_speech=True"):
    diarize.decode(plain, {**model.meta["inference"], "speech_gate": 0.5})
  inf = diarize.infer(wav, model, progress=False, detect_speech=True)
  np.testing.assert_allclose(inf.speech.astype(np.float32),
                             vad.speech_probability(audio_lib.read(wav, 16000)[0]), atol=1e-3)
  o = {**model.meta["inference"], "speech_gate": 0.5, "speech_fill": 0.5, "speech_pad": 0.1}
  result = diarize.diarize(wav, model, progress=False, **o)
  base = diarize.decode(inf, model.meta["inference"])
  expect = diarize.gate_speech(base.active, base.speech, inf.speech, base.frame_seconds,
                               gate=0.5, fill=0.5, pad=0.1) if base.active.shape[1] else base.active
  np.testing.assert_array_equal(result.active, expect)


def test_speech_channels_all_keeps_the_highest_channel(exported, trained_smoke, tmp_path):
  """speech_channels="all": the detector scores each channel on its own and the gate reads
  the highest; the first channel's probabilities stay in `speech`."""
  import pathlib
  from jaxdiar.models import runtime
  path, _ = exported
  config, _ = trained_smoke
  src = sorted(pathlib.Path(config.data.data_dir).glob("simulated-*/dev"))[0] / "meeting00000.wav"
  audio = audio_lib.read(src, 16000)
  audio[0] *= 0.0                            # channel 0 silent: only the others hear speech
  wav = tmp_path / "first-dead.wav"
  audio_lib.write_wav(wav, audio, 16000)
  model = runtime.load(path)
  o = {**model.meta["inference"], "speech_gate": 0.5, "speech_pad": 0.1}
  first = diarize.infer(wav, model, progress=False, detect_speech=True)
  assert first.speech_max is None
  with pytest.raises(ValueError, match='speech_channels="all"'):
    diarize.decode(first, {**o, "speech_channels": "all"})
  need = diarize.needs_of_all([o, {**o, "speech_channels": "all"}])
  assert need["detect_speech"] and need["speech_channels"] == "all"
  inf = diarize.infer(wav, model, progress=False, **need)
  expect = np.max([vad.speech_probability(ch) for ch in audio], axis=0)
  np.testing.assert_allclose(inf.speech_max.astype(np.float32), expect, atol=1e-3)
  np.testing.assert_allclose(inf.speech.astype(np.float32), first.speech.astype(np.float32))
  assert expect.max() > 0.5 > inf.speech.max()   # the dead channel alone would gate all out
  base = diarize.decode(inf, model.meta["inference"])
  assert base.active.any()
  gated = diarize.decode(inf, {**o, "speech_channels": "all"})
  np.testing.assert_array_equal(gated.active, diarize.gate_speech(
      base.active, base.speech, inf.speech_max, base.frame_seconds, gate=0.5, fill=None, pad=0.1))
  assert not diarize.decode(inf, o).active.any()


def test_cli_detects_and_refuses_bad_inputs(tmp_path, capsys):
  t = np.arange(48000) / 16000
  wav = tmp_path / "a.wav"
  tone = (0.3 * np.sin(2 * np.pi * 200 * t) * ((t > 1) & (t < 2))).astype(np.float32)
  audio_lib.write_wav(wav, tone[None], 16000)
  prob = vad.speech_probability(tone)
  threshold = float(prob.min() + prob.max()) / 2       # some chunks above it, some below
  assert cli_vad.main(["detect", str(wav), "--threshold", repr(threshold)]) == 0
  lines = capsys.readouterr().out.splitlines()
  p = prob >= threshold
  assert 1 <= len(lines) == len(diarize.runs(p))
  for line, (a, b) in zip(lines, diarize.runs(p)):
    name, start, end = line.split()
    assert name == str(wav) and float(start) == pytest.approx(a * 0.032, abs=1e-3)
    assert float(end) == pytest.approx(b * 0.032, abs=1e-3)
  assert cli_vad.main(["detect", str(tmp_path / "missing.wav")]) == 2
  err = capsys.readouterr().err
  assert err.startswith("error:") and "missing.wav" in err and "Traceback" not in err
  (tmp_path / "bad.jit").write_text("not a model")
  assert cli_vad.main(["port", str(tmp_path / "bad.jit"), "--out", str(tmp_path / "w.npz")]) == 2
  assert not (tmp_path / "w.npz").exists()
