"""A pretrained speaker encoder (d-vectors), ported to JAX: Resemblyzer's voice encoder.

Resemblyzer (Resemble AI, Apache-2.0; https://github.com/resemble-ai/Resemblyzer) is the GE2E
speaker encoder of Wan et al. 2018 ("Generalized end-to-end loss for speaker verification"):
40 mel bands (power, not log) every 10 ms, three LSTM layers of 256, a linear layer, ReLU, unit
norm. An utterance's embedding is the unit mean of those of its 1.6 s partials (rate 1.3 a
second). It was trained on thousands of voices (LibriSpeech, VoxCeleb 1 and 2), where
jaxdiar's own models hear 200: `diarize` can cluster its local speakers with these d-vectors
(decoding setting `voice_weight`), which separate unseen voices better on one microphone.

The weights ship in the package (`jaxdiar/models/voice_encoder.npz`, float16, 2.6 MB, their
licence in `voice_encoder.LICENSE`), made from the `pretrained.pt` of the PyPI package
`resemblyzer` 0.1.4 with

  python -m jaxdiar.voice port PATH/TO/resemblyzer/pretrained.pt --out jaxdiar/models/voice_encoder.npz

(needs torch, only for that). Nothing is downloaded at run time. The forward pass here is the
same computation as `resemblyzer.VoiceEncoder.embed_utterance` on a volume-normalised waveform
(tests/test_voice.py checks it against a numpy LSTM and librosa's mel spectrogram, and against
the reference embedding that Resemblyzer itself computed for one shared utterance).
"""

import functools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from jaxdiar.models import ported

SAMPLE_RATE = 16000
N_FFT = 400                 # 25 ms
HOP = 160                   # 10 ms
N_MELS = 40
PARTIAL_FRAMES = 160        # 1.6 s
PARTIAL_RATE = 1.3          # partials a second
MIN_COVERAGE = 0.75         # the last partial is kept when this much of it is audio
TARGET_DBFS = -30.0
LAYERS = 3                  # of 256 units
EMBEDDING_DIM = 256
_CHUNK = 256                # partials per forward call at most (a power of two)


def weights_path() -> pathlib.Path:
  return ported.package_weights("voice_encoder.npz")


def load(path: str | None = None) -> dict:
  """The encoder's weights (float32 arrays): lstm_{ih,hh,b}_{layer}, linear_w, linear_b."""
  return ported.load_npz(str(path or weights_path()), "the voice encoder's",
                         "jaxdiar/models/voice.py")


_WINDOW = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)      # periodic Hann


@functools.lru_cache(maxsize=1)
def _mel_basis() -> np.ndarray:
  import librosa
  return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS).astype(np.float32)


def mel_spectrogram(wav: np.ndarray) -> np.ndarray:
  """[frames, 40] mel power spectrogram: librosa.feature.melspectrogram's defaults (centred
  frames with zero padding, periodic Hann window, Slaney mel filters) at 25 ms / 10 ms."""
  wav = np.asarray(wav, np.float32)
  padded = np.pad(wav, N_FFT // 2)
  frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
  power = np.abs(np.fft.rfft(frames * _WINDOW, axis=-1)) ** 2
  return (power.astype(np.float32) @ _mel_basis().T).astype(np.float32)


def normalize_volume(wav: np.ndarray, target_dbfs: float = TARGET_DBFS) -> np.ndarray:
  """Raised (never lowered) to `target_dbfs` RMS, as Resemblyzer prepares its input."""
  rms = np.sqrt(np.mean(np.square(wav, dtype=np.float64)))
  if rms <= 0:
    return wav
  change = target_dbfs - 20 * np.log10(rms)
  return wav if change < 0 else (wav * 10 ** (change / 20)).astype(np.float32)


def partial_slices(num_samples: int) -> list[slice]:
  """The mel-frame ranges of an utterance's partials (resemblyzer's compute_partial_slices)."""
  n_frames = int(np.ceil((num_samples + 1) / HOP))
  step = int(np.round((SAMPLE_RATE / PARTIAL_RATE) / HOP))
  slices = [slice(i, i + PARTIAL_FRAMES)
            for i in range(0, max(1, n_frames - PARTIAL_FRAMES + step + 1), step)]
  last = slices[-1]
  coverage = (num_samples - last.start * HOP) / ((last.stop - last.start) * HOP)
  if coverage < MIN_COVERAGE and len(slices) > 1:
    slices = slices[:-1]
  return slices


def _lstm_layer(x, w_ih, w_hh, b):
  """One LSTM layer over [B, T, D] (PyTorch's gate order i, f, g, o)."""
  batch = x.shape[0]
  inputs = jnp.einsum("btd,gd->tbg", x, w_ih) + b

  def step(carry, gates_x):
    h, c = carry
    i, f, g, o = jnp.split(gates_x + h @ w_hh.T, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return (h, c), h

  zeros = jnp.zeros((batch, w_hh.shape[1]), x.dtype)
  (h, _), hs = jax.lax.scan(step, (zeros, zeros), inputs)
  return jnp.swapaxes(hs, 0, 1), h


@jax.jit
def forward(params: dict, mels: jax.Array) -> jax.Array:
  """[B, T, 40] mel partials -> [B, 256] unit embeddings (non-negative)."""
  x, h = mels, None
  for layer in range(LAYERS):
    x, h = _lstm_layer(x, params[f"lstm_ih_{layer}"], params[f"lstm_hh_{layer}"],
                       params[f"lstm_b_{layer}"])
  e = jax.nn.relu(h @ params["linear_w"].T + params["linear_b"])
  return e / (jnp.linalg.norm(e, axis=-1, keepdims=True) + 1e-12)


def embed(segments, params: dict | None = None) -> np.ndarray:
  """[n, 256] unit d-vectors of n waveforms (16 kHz float arrays), all their partials in
  batched forward calls; an empty or silent segment gets a zero row."""
  params = params if params is not None else load()
  mels, owner = [], []
  for i, wav in enumerate(segments):
    wav = np.asarray(wav, np.float32)
    if wav.size == 0 or not np.any(wav):
      continue
    wav = normalize_volume(wav)
    slices = partial_slices(len(wav))
    need = slices[-1].stop * HOP
    if need >= len(wav):
      wav = np.pad(wav, (0, need - len(wav)))
    mel = mel_spectrogram(wav)
    mels.extend(mel[s] for s in slices)
    owner.extend([i] * len(slices))
  out = np.zeros((len(segments), EMBEDDING_DIM), np.float32)
  if not mels:
    return out
  partials = []
  for c in range(0, len(mels), _CHUNK):
    chunk = np.stack(mels[c:c + _CHUNK])
    size = max(16, 1 << (len(chunk) - 1).bit_length())      # few shapes: few compilations
    chunk = np.concatenate([chunk, np.zeros((size - len(chunk),) + chunk.shape[1:], np.float32)])
    partials.append(np.asarray(forward(params, chunk))[:min(_CHUNK, len(mels) - c)])
  partials = np.concatenate(partials)
  owner = np.array(owner)
  np.add.at(out, owner, partials)
  norm = np.linalg.norm(out, axis=1, keepdims=True)
  return np.where(norm > 0, out / np.maximum(norm, 1e-12), 0.0).astype(np.float32)


def port(pretrained, out) -> dict:
  """Resemblyzer's `pretrained.pt` -> the npz this module reads (float16)."""
  import torch
  state = torch.load(pretrained, map_location="cpu", weights_only=False)["model_state"]
  w = {k: v.numpy() for k, v in state.items()}
  params = {}
  for layer in range(LAYERS):
    params[f"lstm_ih_{layer}"] = w[f"lstm.weight_ih_l{layer}"]
    params[f"lstm_hh_{layer}"] = w[f"lstm.weight_hh_l{layer}"]
    params[f"lstm_b_{layer}"] = w[f"lstm.bias_ih_l{layer}"] + w[f"lstm.bias_hh_l{layer}"]
  params["linear_w"], params["linear_b"] = w["linear.weight"], w["linear.bias"]
  return ported.save_float16(out, params)
