"""WPE dereverberation before the speech detector (jaxdiar.core.dereverb, the
`speech_dereverb` setting): it removes a synthetic room's tail and keeps the speech, and
`infer` feeds the detector what it says."""

import numpy as np
import pytest

from jaxdiar import diarize
from jaxdiar.core import dereverb
from jaxdiar.data import audio as audio_lib
from jaxdiar.models import vad


def test_channel_subset_spreads_and_starts_at_the_read_channel():
  assert dereverb.channel_subset(8, 4) == [0, 2, 4, 6]
  assert dereverb.channel_subset(8, 4, first=3) == [3, 5, 7, 1]
  assert dereverb.channel_subset(6, 4) == [0, 2, 3, 4]
  assert dereverb.channel_subset(2, 4) == [0, 1]


def test_wpe_removes_a_rooms_tail_and_keeps_the_direct_sound():
  """Noise bursts (a syllable-like on/off at 3 Hz for 4 s) through four exponentially decaying
  random responses (RT60 0.8 s, the reverberation 3.6 dB above the direct sound): after WPE the
  pauses between the bursts, where only the tails are, are at least 6 dB weaker (9 measured),
  the bursts within 2 dB."""
  rng = np.random.default_rng(0)
  sr, rt60 = 16000, 0.8
  t = np.arange(int(0.8 * sr)) / sr
  rirs = rng.standard_normal((4, len(t))) * np.exp(-6.9 * t / rt60) * 0.05   # -60 dB at rt60
  rirs[:, 0] = 1.0                                                 # the direct path
  n = 6 * sr
  tt = np.arange(n) / sr
  on = (np.sin(2 * np.pi * 3 * tt) > 0.3) & (tt > 0.5) & (tt < 4.5)
  src = rng.standard_normal(n) * on
  mics = np.stack([np.convolve(src, h)[:n] for h in rirs]) + 1e-4 * rng.standard_normal((4, n))
  out = dereverb.wpe(mics)
  assert out.shape == mics.shape and out.dtype == np.float32
  db = lambda x: 10 * np.log10(np.mean(x ** 2))
  pauses = ~on & (tt > 0.6) & (tt < 4.5)
  assert db(out[0, pauses]) < db(mics[0, pauses]) - 6.0, (db(out[0, pauses]), db(mics[0, pauses]))
  assert abs(db(out[0, on]) - db(mics[0, on])) < 2.0
  with pytest.raises(ValueError, match="channels, samples"):
    dereverb.wpe(mics[0])


@pytest.mark.parametrize("channels,iterations,tolerance", [(4, 3, 2e-3), (2, 1, 2e-3),
                                                         (1, 2, 2e-2)])
def test_wpe_stft_equals_nara_wpe(channels, iterations, tolerance):
  """The single-precision, frequency-chunked WPE against nara_wpe's batched `wpe_v7` in double
  precision (the oracle) on a reverberant STFT, with a silent bin (the least-squares path).
  One channel: the 10 x 10 statistics summed in single precision depart by 1.1 % of the peak on
  two bins of 257 (the same algorithm in double precision: 1e-11)."""
  from nara_wpe import utils as wpe_utils
  from nara_wpe import wpe as wpe_lib
  rng = np.random.default_rng(channels)
  sr, n = 16000, 3 * 16000
  t = np.arange(int(0.4 * sr)) / sr
  src = rng.standard_normal(n) * (np.sin(2 * np.pi * 2 * np.arange(n) / sr) > 0)
  rirs = rng.standard_normal((channels, len(t))) * np.exp(-6.9 * t / 0.5) * 0.05
  rirs[:, 0] = 1.0
  mics = np.stack([np.convolve(src, h)[:n] for h in rirs])
  mics += 1e-3 * rng.standard_normal(mics.shape)                 # a noise floor, as rooms have
  y = wpe_utils.stft(mics, size=dereverb.N_FFT, shift=dereverb.HOP).transpose(2, 0, 1)
  y[5] = 0.0                                                       # a silent frequency bin
  ref = wpe_lib.wpe_v7(y, taps=dereverb.TAPS, delay=dereverb.DELAY, iterations=iterations)
  out = dereverb.wpe_stft(y, iterations=iterations, bins_at_once=7)
  assert out.dtype == np.complex64 and out.shape == y.shape
  np.testing.assert_allclose(out, ref, atol=tolerance * np.abs(ref).max())
  assert np.abs(out - y).max() > 0.05 * np.abs(y).max()           # it did change the signal


def test_infer_dereverberates_what_the_detector_reads(exported, trained_smoke):
  import pathlib
  from jaxdiar.models import runtime
  path, _ = exported
  config, _ = trained_smoke
  wav = sorted(pathlib.Path(config.data.data_dir).glob("simulated-*/dev"))[0] / "meeting00000.wav"
  audio = audio_lib.read(wav, 16000)
  assert audio.shape[0] >= 2 and audio.shape[1] < vad.SEGMENT * vad.CHUNK    # one block
  model = runtime.load(path)
  o = {**model.meta["inference"], "speech_gate": 0.5, "speech_dereverb": 2,
       "speech_channels": "all"}
  need = diarize.needs_of_all([o])
  assert need["speech_dereverb"] == 2
  inf = diarize.infer(wav, model, progress=False, **need)
  assert inf.speech_dereverb == 2
  subset = dereverb.channel_subset(audio.shape[0], 2)
  clean = dereverb.wpe(audio[subset])
  np.testing.assert_allclose(inf.speech.astype(np.float32),
                             vad.speech_probability(clean[0]), atol=2e-3)
  np.testing.assert_allclose(inf.speech_max.astype(np.float32),
                             np.max([vad.speech_probability(c) for c in clean], axis=0), atol=2e-3)
  diarize.decode(inf, o)
  with pytest.raises(ValueError, match="speech_dereverb=2"):
    diarize.decode(inf, {**o, "speech_dereverb": 0})
  with pytest.raises(ValueError, match="speech_dereverb"):
    diarize.needs_of_all([o, {**o, "speech_dereverb": 0}])
