"""Dereverberation by weighted prediction error (WPE; Nakatani et al. 2010, Yoshioka and
Nakatani 2012), the front end of the CHiME meeting baselines, through `nara_wpe` (Drude et al.
2018, MIT; https://github.com/fgnt/nara_wpe): each channel's late reverberation is predicted
from the delayed past of all the channels and subtracted, in the STFT domain.

jaxdiar uses it before the pretrained speech detector (`inference.speech_dereverb`): the
references mark where the dry speech is, a reverberant room stretches every turn by its tail,
and the detector hears the tail as speech.
"""

import numpy as np

N_FFT, HOP = 512, 128                # 32 / 8 ms at 16 kHz (nara_wpe's own example: 512 / 128)
TAPS, DELAY, ITERATIONS = 10, 3, 3   # nara_wpe's defaults


def channel_subset(channels: int, k: int, first: int = 0) -> list[int]:
  """`k` channels spread evenly over `channels` (all of them if fewer), `first` first."""
  k = min(k, channels)
  return [(first + int(round(i * channels / k))) % channels for i in range(k)]


def wpe(audio: np.ndarray) -> np.ndarray:
  """[C, N] float audio -> [C, N] with its late reverberation removed (the statistics from
  this piece alone: call it on pieces of some seconds or more)."""
  from nara_wpe import utils as wpe_utils          # imported here: only this stage needs it
  from nara_wpe import wpe as wpe_lib
  audio = np.asarray(audio, np.float64)
  if audio.ndim != 2:
    raise ValueError(f"wpe takes [channels, samples] audio, got shape {audio.shape}")
  n = audio.shape[1]
  if n < N_FFT:
    return audio.astype(np.float32)
  y = wpe_utils.stft(audio, size=N_FFT, shift=HOP)                  # [C, T, F]
  x = wpe_lib.wpe(y.transpose(2, 0, 1), taps=TAPS, delay=DELAY, iterations=ITERATIONS)
  out = wpe_utils.istft(x.transpose(1, 2, 0), size=N_FFT, shift=HOP)
  return out[:, :n].astype(np.float32)
