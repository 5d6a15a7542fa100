"""A frame speech network trained on the project's own meetings: P(someone talks) every model
frame (16 ms) of one channel, one more voice in the speech classifier (`jaxdiar.decoding.speech`).

The pretrained detector (`jaxdiar.models.vad`, Silero) was trained on other people's data: it
hears a reverberant tail and a babble noise as speech, and its "speech" is not the reference's.
This one learns the reference: 64 log-mel bands of the read channel (the model's STFT: 512
points, hop 256, periodic Hann), each band less its 5th percentile over the recording (its noise
floor) and over 20 dB, through a dense layer and six residual dilated convolutions (64 channels,
kernel 3, dilations 1-32: about one second either side), a sigmoid per frame. A network whose
first layer takes twice as many inputs (`reads_coherence`) also reads the array: per frame and
mel band, the magnitude of each microphone pair's normalised cross-spectrum (averaged over
COHERENCE_SMOOTH frames, then over the pairs; `coherence`) less its recording's 5th percentile.
A voice's direct path is coherent across the array, a reverberant tail and diffuse noise are
not; the measure needs no geometry, so any array of two or more microphones gives it (measured,
not shipped: coherent noise is heard as speech; docs/accuracy.md). Trained
(`python -m jaxdiar.models.speech_net train`) on the frames of a training pool
(`python -m jaxdiar.data.shift pool`, the online pool's npz files: channel 0 and "anyone in the
reference talks"); the weights ship in the package (`speech_net.npz`, float16, about 0.16 MB),
made by the command in their recipe (docs/models.md).
"""

import argparse
import functools
import pathlib
import sys
import time
import zlib

import jax
import jax.numpy as jnp
import librosa
import numpy as np
import scipy.ndimage

from jaxdiar.core import spatial as spatial_lib
from jaxdiar.models import ported

SAMPLE_RATE = 16000
N_FFT = 512
HOP = 256
NUM_MELS = 64
DILATIONS = (1, 2, 4, 8, 16, 32)
WIDTH = 64
COHERENCE_SMOOTH = 5          # frames each pair's cross- and auto-spectra are averaged over
SUBSETS = (4, 6, 8)           # training: microphones kept of a pool meeting's (channel 0 one)
MARGIN = 64                   # frames either side a chunk needs (the receptive field: 63)
CHUNK = 4096                  # frames a forward call (one compiled shape)
BLOCK_FRAMES = 4096           # frames of audio read at a time from a file
WEIGHTS = "speech_net.npz"


@functools.cache
def _mel_basis() -> np.ndarray:
  return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=NUM_MELS).astype(np.float32)


def log_mel(spec: np.ndarray) -> np.ndarray:
  """[T, NUM_MELS] float32 dB of an STFT [F, T] (the model's: N_FFT, HOP)."""
  return (10.0 * np.log10(_mel_basis() @ (np.abs(spec) ** 2) + 1e-8)).T.astype(np.float32)


def normalise(mel: np.ndarray) -> np.ndarray:
  """The network's input: each band less its recording's 5th percentile, over 20 dB."""
  mel = np.asarray(mel, np.float32)
  return (mel - np.percentile(mel, 5, axis=0, keepdims=True)) / 20.0


def coherence(spec: np.ndarray) -> np.ndarray:
  """[T, NUM_MELS] float32 of an array's STFT [C >= 2, F, T]: per frame and mel band (each
  band's bins weighted by its filter, normalised to sum 1), the mean over the C (C - 1) / 2
  microphone pairs of |<X_i X_j*>| / sqrt(<|X_i|^2> <|X_j|^2>), <.> an average over
  COHERENCE_SMOOTH frames (1 for one source, small for diffuse sound)."""
  if spec.shape[0] < 2:
    raise ValueError("the speech network's coherence needs two or more microphones, got "
                     f"{spec.shape[0]}")
  smooth = lambda z: scipy.ndimage.uniform_filter1d(z, COHERENCE_SMOOTH, axis=-1, mode="nearest")
  power = smooth((np.abs(spec) ** 2).astype(np.float32)) + 1e-10
  total = np.zeros(spec.shape[1:], np.float32)
  pairs = 0
  for i in range(spec.shape[0]):
    for j in range(i + 1, spec.shape[0]):
      cross = spec[i] * np.conj(spec[j])
      magnitude = np.hypot(smooth(cross.real.astype(np.float32)),
                           smooth(cross.imag.astype(np.float32)))
      total += magnitude / np.sqrt(power[i] * power[j])
      pairs += 1
  basis = _mel_basis() / _mel_basis().sum(axis=1, keepdims=True)
  return (basis @ (total / pairs)).T.astype(np.float32)


def inputs(mel: np.ndarray, coherence_: np.ndarray | None = None) -> np.ndarray:
  """The network's input [T, NUM_MELS or 2 NUM_MELS]: `normalise`d log-mels, then (where
  given) the coherence less each band's 5th percentile over the recording."""
  x = normalise(mel)
  if coherence_ is None:
    return x
  c = np.asarray(coherence_, np.float32)
  return np.concatenate([x, c - np.percentile(c, 5, axis=0, keepdims=True)], axis=1)


def file_features(path, rate: int, num_samples: int, channel: int, read_block, *,
                  with_coherence: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
  """(`log_mel` [1 + num_samples // HOP, NUM_MELS] of one channel of a recording, and with
  `with_coherence` the `coherence` of all its channels, else None): `rate` its sample rate,
  `num_samples` at 16 kHz, read in blocks by `read_block(path, rate, 16000, start, length)`
  (`jaxdiar.decoding.windows.read_block`) with the frames either side each block needs:
  equal to those of the whole recording's `spatial.stft`."""
  total = 1 + num_samples // HOP
  mel = np.zeros((total, NUM_MELS), np.float32)
  coh = np.zeros((total, NUM_MELS), np.float32) if with_coherence else None
  half = N_FFT // 2
  side = COHERENCE_SMOOTH // 2 if with_coherence else 0
  for k0 in range(0, total, BLOCK_FRAMES):
    t = min(BLOCK_FRAMES, total - k0)
    a0, a1 = max(0, k0 - side), min(total, k0 + t + side)      # the frames computed
    start = a0 * HOP - half                        # the first frame's first sample
    length = (a1 - a0 - 1) * HOP + N_FFT
    lead = max(0, -start)
    x = read_block(path, rate, SAMPLE_RATE, start + lead, length - lead)
    x = x if with_coherence else x[channel:channel + 1]
    x = np.concatenate([np.zeros((len(x), lead), np.float32), x.astype(np.float32)], axis=1)
    x[:, max(0, num_samples - start):] = 0.0       # past the end: the whole STFT's zero pad
    spec = spatial_lib.frames_stft(x, a1 - a0, N_FFT, HOP)
    mel[k0:k0 + t] = log_mel(spec[channel if with_coherence else 0])[k0 - a0:k0 - a0 + t]
    if with_coherence:
      coh[k0:k0 + t] = coherence(spec)[k0 - a0:k0 - a0 + t]
  return mel, coh


def file_log_mel(path, rate: int, num_samples: int, channel: int, read_block) -> np.ndarray:
  """[1 + num_samples // HOP, NUM_MELS] `log_mel` of one channel of a recording
  (`file_features` without the coherence)."""
  return file_features(path, rate, num_samples, channel, read_block)[0]


def forward(params: dict, x: jax.Array) -> jax.Array:
  """[B, T] P(speech) of normalised log-mels [B, T, NUM_MELS] (zero padding at both ends)."""
  return jax.nn.sigmoid(logits(params, x))


def logits(params: dict, x: jax.Array) -> jax.Array:
  """[B, T] the logits of `forward`."""
  def layer_norm(h, name):
    mu = h.mean(-1, keepdims=True)
    var = ((h - mu) ** 2).mean(-1, keepdims=True)
    return (h - mu) / jnp.sqrt(var + 1e-6) * params[f"{name}/scale"] + params[f"{name}/bias"]

  h = x @ params["in/kernel"] + params["in/bias"]
  for i, d in enumerate(DILATIONS):
    r = jax.nn.gelu(layer_norm(h, f"norm{i}"))
    r = jax.lax.conv_general_dilated(r, params[f"conv{i}/kernel"], (1,), "SAME",
                                     rhs_dilation=(d,), dimension_numbers=("NWC", "WIO", "NWC"))
    h = h + r + params[f"conv{i}/bias"]
  h = jax.nn.gelu(layer_norm(h, "norm_out"))
  return (h @ params["out/kernel"] + params["out/bias"])[..., 0]


def init(seed: int = 0, width: int = WIDTH, num_inputs: int = NUM_MELS) -> dict:
  """Fresh weights (the shapes `forward` reads; `width` channels and `num_inputs` features a
  frame, which `forward` reads off them)."""
  rng = np.random.default_rng(seed)
  p = {"in/kernel": rng.normal(0, num_inputs ** -0.5, (num_inputs, width)),
       "in/bias": np.zeros(width), "out/kernel": rng.normal(0, width ** -0.5, (width, 1)),
       "out/bias": np.zeros(1)}
  for name in [f"norm{i}" for i in range(len(DILATIONS))] + ["norm_out"]:
    p[f"{name}/scale"], p[f"{name}/bias"] = np.ones(width), np.zeros(width)
  for i in range(len(DILATIONS)):
    p[f"conv{i}/kernel"] = rng.normal(0, (3 * width) ** -0.5, (3, width, width))
    p[f"conv{i}/bias"] = np.zeros(width)
  return {k: jnp.asarray(v, jnp.float32) for k, v in p.items()}


_forward = jax.jit(forward)


def reads_coherence(params: dict) -> bool:
  """Whether a network of these weights reads the array's coherence besides the log-mels."""
  return params["in/kernel"].shape[0] == 2 * NUM_MELS


def probability(mel: np.ndarray, params: dict | None = None,
                coherence_: np.ndarray | None = None) -> np.ndarray:
  """[T] float32 P(speech) of a recording's log-mels [T, NUM_MELS] (`log_mel`, not normalised)
  and, for a network that reads it, its `coherence` [T, NUM_MELS]: one pass over the recording
  between MARGIN frames at its noise floor (normalised 0) either side, computed in chunks of
  CHUNK frames with MARGIN frames of context either side."""
  params = params if params is not None else load()
  if reads_coherence(params) != (coherence_ is not None):
    raise ValueError("this speech network reads the array's coherence: give it" if
                     reads_coherence(params) else "this speech network reads log-mels alone")
  x = inputs(mel, coherence_)
  t = len(x)
  padded = np.pad(x, ((MARGIN, MARGIN + CHUNK), (0, 0)))
  out = np.zeros(t, np.float32)
  for c0 in range(0, t, CHUNK):
    p = np.asarray(_forward(params, jnp.asarray(padded[None, c0:c0 + CHUNK + 2 * MARGIN])))[0]
    n = min(CHUNK, t - c0)
    out[c0:c0 + n] = p[MARGIN:MARGIN + n]
  return out


def file_probability(path, rate: int, num_samples: int, channel: int, read_block,
                     params: dict | None = None) -> np.ndarray:
  """[1 + num_samples // HOP] float16 `probability` of one channel of a recording (and of all
  its channels' coherence, for a network that reads it), read as `file_features` reads."""
  params = params if params is not None else load()
  mel, coh = file_features(path, rate, num_samples, channel, read_block,
                           with_coherence=reads_coherence(params))
  return probability(mel, params, coh).astype(np.float16)


def weights_path() -> pathlib.Path:
  return ported.package_weights(WEIGHTS)


def load(path: str | None = None) -> dict:
  """The network's weights (float32 arrays; the shipped file unless `path`)."""
  raw = ported.load_npz(str(path or weights_path()), "the speech network's",
                        "jaxdiar/models/speech_net.py")
  return {k: jnp.asarray(v) for k, v in raw.items()}


# ---------------------------------------------------------------------------- training

def pool_frames(files, with_coherence: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(network inputs [N, NUM_MELS] float16, targets [N] bool, lengths per meeting) of channel 0
  of each pool npz (`audio` [C, samples] int16 at 16 kHz, `activity` [T, K]); `with_coherence`,
  [N, 2 NUM_MELS] with the `coherence` of channel 0 and a subset of the others (SUBSETS
  microphones in all, drawn from the file's name: arrays of other sizes and spacings)."""
  xs, ys = [], []
  for f in files:
    with np.load(f) as z:
      audio = z["audio"] if with_coherence else z["audio"][:1]
      target = z["activity"].any(axis=1)
    audio = audio.astype(np.float32) / 32768.0
    if with_coherence:
      rng = np.random.default_rng(zlib.crc32(pathlib.Path(f).stem.encode()))
      keep = min(int(rng.choice(SUBSETS)), len(audio))
      audio = audio[np.concatenate([[0], np.sort(1 + rng.permutation(len(audio) - 1)[:keep - 1])])]
    spec = spatial_lib.stft(audio, N_FFT, HOP)
    mel = inputs(log_mel(spec[0]), coherence(spec) if with_coherence else None)
    n = min(len(mel), len(target))
    xs.append(mel[:n].astype(np.float16))
    ys.append(target[:n])
  return np.concatenate(xs), np.concatenate(ys), np.array([len(x) for x in xs])


def train(files, steps: int, *, batch: int = 32, frames: int = 500, lr: float = 1e-3,
          seed: int = 0, width: int = WIDTH, with_coherence: bool = False, log_every: int = 100,
          log=print) -> tuple[dict, list]:
  """Weights trained on random `frames`-frame crops of the pool `files` (AdamW, warm-up then
  cosine decay, binary cross-entropy; each crop's log-mel bands shifted by one random offset,
  N(0, 2 dB)), with the array's coherence as input too where `with_coherence`, and the mean loss
  of every `log_every` steps."""
  import optax
  x, y, lengths = pool_frames(files, with_coherence)
  if lengths.min() <= frames:
    raise ValueError(f"pool meetings of {lengths.min()} frames: crops of {frames} need longer ones")
  starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
  rng = np.random.default_rng(seed)
  params = init(seed, width, x.shape[1])
  opt = optax.adamw(optax.warmup_cosine_decay_schedule(0.0, lr, min(100, steps // 10 + 1), steps,
                                                       lr * 0.01), weight_decay=1e-4)
  state = opt.init(params)

  @jax.jit
  def step(params, state, xb, yb):
    def loss(p):
      return optax.sigmoid_binary_cross_entropy(logits(p, xb), yb).mean()
    value, grads = jax.value_and_grad(loss)(params)
    updates, state = opt.update(grads, state, params)
    return optax.apply_updates(params, updates), state, value

  losses, recent, t0 = [], [], time.time()
  for i in range(steps):
    m = rng.integers(len(lengths), size=batch)
    index = (starts[m] + rng.integers(0, lengths[m] - frames))[:, None] + np.arange(frames)
    xb = x[index].astype(np.float32)
    xb[:, :, :NUM_MELS] += rng.normal(0.0, 0.1, (batch, 1, NUM_MELS)).astype(np.float32)
    params, state, value = step(params, state, xb, y[index].astype(np.float32))
    recent.append(float(value))
    if (i + 1) % log_every == 0 or i + 1 == steps:
      losses.append(float(np.mean(recent)))
      recent = []
      log(f"speech_net step {i + 1}/{steps}: loss {losses[-1]:.4f} ({time.time() - t0:.0f} s)")
  return params, losses


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog="python -m jaxdiar.models.speech_net", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  sub = p.add_subparsers(dest="command", required=True)
  t = sub.add_parser("train", help="train the network on a pool's meetings")
  t.add_argument("--pool", required=True, action="append",
                 help="folder of pool npz files (again for more folders)")
  t.add_argument("--glob", default="meeting*.npz", help="which of its files")
  t.add_argument("--steps", type=int, default=3000)
  t.add_argument("--seed", type=int, default=0)
  t.add_argument("--width", type=int, default=WIDTH, help="channels of the layers")
  t.add_argument("--coherence", action="store_true",
                 help="the array's coherence as input too (recordings of 2+ microphones)")
  t.add_argument("--out", required=True, help="the weights' npz (float16)")
  args = p.parse_args(argv)
  files = []
  for folder in args.pool:
    found = sorted(pathlib.Path(folder).glob(args.glob))
    if not found:
      print(f"{folder}: no {args.glob} pool files", file=sys.stderr)
      return 2
    files += found
  print(f"speech_net: {len(files)} pool meetings, {args.steps} steps", file=sys.stderr)
  params, _ = train(files, args.steps, seed=args.seed, width=args.width,
                    with_coherence=args.coherence,
                    log=lambda line: print(line, file=sys.stderr, flush=True))
  ported.save_float16(args.out, {k: np.asarray(v) for k, v in params.items()})
  print(f"-> {args.out}", file=sys.stderr)
  return 0


if __name__ == "__main__":
  sys.exit(main())
