"""A pretrained voice activity detector, ported to JAX: Silero VAD (16 kHz).

Silero VAD (Silero Team, MIT; https://github.com/snakers4/silero-vad) gives the probability
that someone speaks in each 32 ms chunk (512 samples, with the 64 samples before it as
context): the magnitude of a 256-point STFT (periodic Hann, hop 128, the chunk reflect-padded
by 64 at its end: 4 frames), four 1-D convolutions with ReLU (129 -> 128 -> 64 -> 64 -> 128
channels, strides 1, 2, 2, 1: one vector a chunk), an LSTM cell of 128 carried from chunk to
chunk, ReLU, a linear layer and a sigmoid. It was trained on far more (and more varied) audio
than jaxdiar's own models; on one distant microphone its speech decision is the cleaner one,
and `diarize` can keep only the frames it calls speech (decoding setting `speech_gate`).

The weights ship in the package (`jaxdiar/models/silero_vad.npz`, float16, 0.46 MB, their
licence in `silero_vad.LICENSE`), made from the `silero_vad.jit` of the PyPI package
`silero-vad` 6.2.3 with

  python -m jaxdiar.vad port PATH/TO/silero_vad/data/silero_vad.jit --out jaxdiar/models/silero_vad.npz

(needs torch, only for that). Nothing is downloaded at run time. `speech_probability` is the
same computation as calling the packaged model chunk by chunk from a reset state
(tests/test_vad.py checks it against the probabilities Silero itself gave two shared
recordings, and against a numpy forward pass).
"""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from jaxdiar.models import ported

SAMPLE_RATE = 16000
CHUNK = 512                  # samples a probability: 32 ms
CONTEXT = 64                 # samples of the previous chunk each chunk sees
N_FFT = 256
HOP = 128
FRAME_SECONDS = CHUNK / SAMPLE_RATE
STRIDES = (1, 2, 2, 1)
HIDDEN = 128
SEGMENT = 1024               # chunks a forward call (one compiled shape; the state carries over)

_WINDOW = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)      # periodic Hann


def weights_path() -> pathlib.Path:
  return ported.package_weights("silero_vad.npz")


def load(path: str | None = None) -> dict:
  """The detector's weights (float32 arrays): conv_{w,b}_{0..3}, lstm_{ih,hh,b}, out_{w,b}."""
  return ported.load_npz(str(path or weights_path()), "the speech detector's",
                         "jaxdiar/models/vad.py")


def _chunks(wav: np.ndarray, context: np.ndarray) -> np.ndarray:
  """[n, CONTEXT + CHUNK] inputs of a whole number of chunks, each with the samples before it
  (`context` for the first)."""
  x = np.concatenate([context, wav])
  n = len(wav) // CHUNK
  index = np.arange(n)[:, None] * CHUNK + np.arange(CONTEXT + CHUNK)
  return x[index]


def _spectrum(chunks: jax.Array) -> jax.Array:
  """[n, 4, 129] STFT magnitudes of [n, CONTEXT + CHUNK] inputs."""
  padded = jnp.concatenate([chunks, chunks[:, -2:-CONTEXT - 2:-1]], axis=1)   # reflect, 64
  starts = np.arange((padded.shape[1] - N_FFT) // HOP + 1) * HOP
  frames = padded[:, starts[:, None] + np.arange(N_FFT)] * _WINDOW.astype(np.float32)
  return jnp.abs(jnp.fft.rfft(frames, axis=-1)).astype(np.float32)


@jax.jit
def forward(params: dict, chunks: jax.Array, state: tuple, valid: jax.Array) -> tuple:
  """[n, CONTEXT + CHUNK] chunk inputs, LSTM (h, c) [128] each, the number of real chunks
  (those after are padding: the state returned is that after chunk `valid`)
  -> ([n] probabilities, state)."""
  x = _spectrum(chunks)
  for i, stride in enumerate(STRIDES):
    w = jnp.transpose(params[f"conv_w_{i}"], (2, 1, 0))           # [out, in, k] -> [k, in, out]
    x = jax.lax.conv_general_dilated(x, w, (stride,), [(1, 1)],
                                     dimension_numbers=("NWC", "WIO", "NWC"))
    x = jax.nn.relu(x + params[f"conv_b_{i}"])
  inputs = x[:, 0] @ params["lstm_ih"].T + params["lstm_b"]               # [n, 4 * 128]

  def step(carry, xs):
    gates_x, t = xs
    h, c = carry
    i, f, g, o = jnp.split(gates_x + h @ params["lstm_hh"].T, 4, axis=-1)
    c_new = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h_new = jax.nn.sigmoid(o) * jnp.tanh(c_new)
    real = t < valid
    return (jnp.where(real, h_new, h), jnp.where(real, c_new, c)), h_new

  state, hs = jax.lax.scan(step, state, (inputs, jnp.arange(len(chunks))))
  logit = jax.nn.relu(hs) @ params["out_w"] + params["out_b"]
  return jax.nn.sigmoid(logit), state


class Detector:
  """Speech probabilities of one stream fed in pieces of any length (the LSTM state and the
  context carry over): `push(samples) -> probabilities of the chunks it completed`."""

  def __init__(self, params: dict | None = None, segment: int = SEGMENT):
    """`segment`: chunks a forward call (one compiled shape); a live stream's blocks want a
    small one (8: 256 ms)."""
    self.params = params if params is not None else load()
    self.segment = segment
    self.state = (np.zeros(HIDDEN, np.float32), np.zeros(HIDDEN, np.float32))
    self.context = np.zeros(CONTEXT, np.float32)
    self.pending = np.zeros(0, np.float32)

  def push(self, samples: np.ndarray, final: bool = False) -> np.ndarray:
    """`final`: the stream ends here; a last partial chunk is zero-padded and scored."""
    wav = np.concatenate([self.pending, np.asarray(samples, np.float32).ravel()])
    if final and len(wav) % CHUNK:
      wav = np.pad(wav, (0, CHUNK - len(wav) % CHUNK))
    n = len(wav) // CHUNK
    self.pending = wav[n * CHUNK:]
    out = []
    for s in range(0, n, self.segment):
      chunks = _chunks(wav[s * CHUNK:min(n, s + self.segment) * CHUNK], self.context)
      m = len(chunks)
      self.context = chunks[-1, -CONTEXT:].copy()
      padded = np.concatenate([chunks, np.zeros((self.segment - m, chunks.shape[1]),
                                                np.float32)])
      prob, state = forward(self.params, padded, self.state, m)
      self.state = tuple(np.asarray(v) for v in state)
      out.append(np.asarray(prob)[:m])
    return np.concatenate(out) if out else np.zeros(0, np.float32)


class ChannelDetectors:
  """One `Detector` per channel of a multi-channel stream, the weights loaded once:
  `push(block [C, n], final) -> [C, chunks it completed]`."""

  def __init__(self, channels: int, params: dict | None = None, segment: int = SEGMENT):
    params = params if params is not None else load()
    self.detectors = [Detector(params, segment) for _ in range(channels)]

  def push(self, block: np.ndarray, final: bool = False) -> np.ndarray:
    return np.stack([d.push(x, final=final) for d, x in zip(self.detectors, block)])


def speech_probability(wav: np.ndarray, params: dict | None = None) -> np.ndarray:
  """[ceil(len / 512)] probability of speech in each 32 ms chunk of a 16 kHz waveform (the
  last chunk zero-padded), from a reset state: Silero's `model(chunk, 16000)` chunk by chunk."""
  return Detector(params).push(wav, final=True)


def port(jit_file, out) -> dict:
  """Silero's `silero_vad.jit` (its 16 kHz model) -> the npz this module reads (float16)."""
  import torch
  model = torch.jit.load(str(jit_file), map_location="cpu")
  w = {k: v.numpy() for k, v in model._model.state_dict().items()}
  params = {}
  for i in range(len(STRIDES)):
    params[f"conv_w_{i}"] = w[f"encoder.{i}.reparam_conv.weight"]
    params[f"conv_b_{i}"] = w[f"encoder.{i}.reparam_conv.bias"]
  params["lstm_ih"], params["lstm_hh"] = w["decoder.rnn.weight_ih"], w["decoder.rnn.weight_hh"]
  params["lstm_b"] = w["decoder.rnn.bias_ih"] + w["decoder.rnn.bias_hh"]
  params["out_w"] = w["decoder.decoder.2.weight"][0, :, 0]
  params["out_b"] = w["decoder.decoder.2.bias"][0]
  basis = w.get("stft.forward_basis_buffer")
  if basis is not None:                  # the STFT here is computed, not read: check it is that
    n, k = np.arange(N_FFT), np.arange(N_FFT // 2 + 1)[:, None]
    dft = np.concatenate([np.cos(2 * np.pi * k * n / N_FFT), -np.sin(2 * np.pi * k * n / N_FFT)])
    if not np.allclose(basis[:, 0], dft * _WINDOW, atol=1e-5):
      raise ValueError("the model's STFT basis is not the Hann-windowed DFT this port computes")
  return ported.save_float16(out, params)
