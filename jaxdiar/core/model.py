"""DiarizationTCN: the seed design's multi-task diarization network, in Flax Linen.

Layout is time-major inside the network ([B, T, C], what XLA convolutions prefer); the
public input is the feature layout [B, D, T] of `jaxdiar.core.features.extract`.

Outputs (a dict, all float32):
  vad        [B, T, S]  per-local-speaker activity logits
  osd        [B, T]     overlap logits
  frame_emb  [B, T, E]  frame embeddings
  chunk_emb  [B, E]     their time average
  spk_emb    [B, S, E]  frame embeddings averaged with each output's VAD probability
  spk_logits [B, S, K]  speaker classifier logits of each local speaker
"""

from collections.abc import Sequence
import math

import flax.linen as nn
import jax
import jax.numpy as jnp


_BN_MOMENTUM = 0.9   # PyTorch momentum 0.1.
_BN_EPSILON = 1e-5


class Dropout(nn.Module):
  """Inverted dropout whose keep mask comes from random bytes, four per 32-bit draw.

  nn.Dropout draws one 32-bit threefry value per element; here one 32-bit value gives the
  bytes of four elements, bit-cast (measured 14.6 -> 3.6 ms for [8, 501, 512] on 2 CPU
  cores; the TCN has ten such layers). The rate is rounded to a multiple of 1/256 (0.2 ->
  51/256 = 0.199) and the kept values are scaled by 1 / (1 - that rate), so the layer stays
  unbiased. Falls back to nn.Dropout when the last axis is not a multiple of 4 or the rate
  is below 1/512.
  """
  rate: float
  deterministic: bool

  @nn.compact
  def __call__(self, x):
    if self.deterministic or self.rate == 0.0:
      return x
    if not 0.0 <= self.rate < 1.0:
      raise ValueError(f"dropout rate must be in [0, 1), got {self.rate}")
    threshold = min(255, round(self.rate * 256))
    if x.shape[-1] % 4 or threshold == 0:
      return nn.Dropout(self.rate, deterministic=False)(x)
    words = jax.random.bits(self.make_rng("dropout"), (*x.shape[:-1], x.shape[-1] // 4),
                            jnp.uint32)
    byte = jax.lax.bitcast_convert_type(words, jnp.uint8).reshape(x.shape)
    scale = jnp.asarray(256 / (256 - threshold), x.dtype)
    return jnp.where(byte >= threshold, x * scale, jnp.zeros_like(x))


class WeightNormConv(nn.Module):
  """1-D convolution with weight normalisation, w = g * v / ||v|| per output channel.

  Init follows torch.nn.utils.weight_norm: g = ||v||, so the initial weight is v.
  `causal` pads (k - 1) * dilation frames on the left only (the seed's "chomp");
  otherwise the padding is symmetric ("same").
  """
  features: int
  kernel_size: int
  dilation: int = 1
  causal: bool = True
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, cache=None):  # x: [B, T, Cin]
    in_features = x.shape[-1]
    fan_in = in_features * self.kernel_size
    v = self.param("v", nn.initializers.variance_scaling(1.0 / 3, "fan_in", "uniform"),
                   (self.kernel_size, in_features, self.features))
    g = self.param("g", lambda _, shape: jnp.linalg.norm(v.reshape(-1, shape[0]), axis=0),
                   (self.features,))
    b = _torch_bias(self, "b", fan_in, self.features)
    norm = jnp.sqrt(jnp.sum(v * v, axis=(0, 1)))
    kernel = (v * (g / norm)).astype(self.dtype)
    return _conv1d(x.astype(self.dtype), kernel, self.dilation, self.causal, b.astype(self.dtype),
                   cache)


class Conv1D(nn.Module):
  """Plain 1-D convolution with causal or symmetric padding (PyTorch Conv1d init)."""
  features: int
  kernel_size: int = 1
  causal: bool = False
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, cache=None):  # x: [B, T, Cin]
    fan_in = x.shape[-1] * self.kernel_size
    kernel = self.param("kernel", nn.initializers.variance_scaling(1.0 / 3, "fan_in", "uniform"),
                        (self.kernel_size, x.shape[-1], self.features))
    b = _torch_bias(self, "bias", fan_in, self.features)
    return _conv1d(x.astype(self.dtype), kernel.astype(self.dtype), 1, self.causal,
                   b.astype(self.dtype), cache)


def _torch_bias(module: nn.Module, name: str, fan_in: int, features: int):
  """PyTorch's conv bias init, U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
  bound = 1.0 / math.sqrt(fan_in)
  return module.param(name, nn.initializers.uniform(2 * bound), (features,)) - bound


def _conv1d(x, kernel, dilation: int, causal: bool, bias, cache=None):
  """Dilated 1-D conv. With `cache` ([B, span, Cin], the previous inputs; zeros at the start
  of a stream) the conv runs on [cache, x] without padding and returns (y, new cache):
  exactly the causal conv's output on those frames."""
  k = kernel.shape[0]
  span = (k - 1) * dilation
  if cache is not None:
    if not causal:
      raise ValueError("streaming needs causal convolutions")
    x = jnp.concatenate([cache.astype(x.dtype), x], axis=1)
    padding = [(0, 0)]
  else:
    padding = [(span, 0)] if causal else [(span // 2, span - span // 2)]
  y = jax.lax.conv_general_dilated(
      x, kernel, window_strides=(1,), padding=padding, rhs_dilation=(dilation,),
      dimension_numbers=("NWC", "WIO", "NWC")) + bias
  if cache is None:
    return y
  return y, x[:, x.shape[1] - span:]


def _batch_norm(dtype, name):
  """BatchNorm with PyTorch's defaults; `use_running_average` is given at call time."""
  return nn.BatchNorm(momentum=_BN_MOMENTUM, epsilon=_BN_EPSILON, dtype=dtype,
                      param_dtype=jnp.float32, name=name)


class TemporalBlock(nn.Module):
  """Two causal dilated weight-norm convs with ReLU + dropout, and a residual."""
  features: int
  kernel_size: int
  dilation: int
  dropout: float
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool, cache=None):
    y, new_cache = x, {}
    for name in ("conv1", "conv2"):
      conv = WeightNormConv(self.features, self.kernel_size, self.dilation, causal=True,
                            dtype=self.dtype, name=name)
      if cache is None:
        y = conv(y)
      else:
        y, new_cache[name] = conv(y, cache[name])
      y = nn.relu(y)
      y = Dropout(self.dropout, deterministic=not train)(y)
    residual = x if x.shape[-1] == self.features else Conv1D(
        self.features, 1, dtype=self.dtype, name="downsample")(x)
    out = nn.relu(y + residual)
    return out if cache is None else (out, new_cache)


class ConvHead(nn.Module):
  """conv k3 -> ReLU -> BatchNorm -> dropout -> conv k1 (the seed's VAD/OSD/embedding heads)."""
  hidden: int
  out: int
  dropout: float
  causal: bool
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool, cache=None):
    conv = Conv1D(self.hidden, 3, causal=self.causal, dtype=self.dtype, name="conv")
    x, new_cache = (conv(x), None) if cache is None else conv(x, cache)
    x = _batch_norm(self.dtype, "norm")(nn.relu(x), use_running_average=not train)
    x = Dropout(self.dropout, deterministic=not train)(x)
    out = Conv1D(self.out, 1, dtype=self.dtype, name="proj")(x)
    return out if cache is None else (out, new_cache)


class Mlp(nn.Module):
  """Linear -> ReLU -> dropout -> Linear (classifier and similarity heads)."""
  hidden: int
  out: int
  dropout: float
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    dense = lambda n, name: nn.Dense(n, dtype=self.dtype, param_dtype=jnp.float32,
                                     kernel_init=_torch_linear_init, name=name)
    x = nn.relu(dense(self.hidden, "fc1")(x))
    x = Dropout(self.dropout, deterministic=not train)(x)
    return dense(self.out, "fc2")(x)


_torch_linear_init = nn.initializers.variance_scaling(1.0 / 3, "fan_in", "uniform")


def attention_mask(num_frames: int, causal: bool, window: int):
  """[1, 1, T, T] boolean mask, or None for full attention."""
  if not causal and window <= 0:
    return None
  q = jnp.arange(num_frames)[:, None]
  k = jnp.arange(num_frames)[None, :]
  mask = jnp.ones((num_frames, num_frames), bool)
  if causal:
    mask &= k <= q
  if window > 0:
    mask &= (q - k) <= window if causal else jnp.abs(q - k) <= window
  return mask[None, None]


class DiarizationTCN(nn.Module):
  """The jaxdiar model. Build it with `from_config(cfg.model, num_features)`."""
  channels: Sequence[int] = (256, 256, 256, 512, 512)
  kernel_size: int = 3
  dropout: float = 0.2
  head_dropout: float = 0.2          # the VAD and OSD heads'
  use_attention: bool = True
  num_heads: int = 8
  attention_window: int = 0
  bottleneck_dim: int = 256
  head_dim: int = 128
  embedding_dim: int = 256
  classifier_dim: int = 512
  similarity_dim: int = 256
  num_speakers: int = 4
  num_speaker_classes: int = 4
  causal: bool = False
  dtype: jnp.dtype = jnp.float32

  def setup(self):
    dt = self.dtype
    self.input_bn = _batch_norm(dt, "input_norm")
    self.tcn = [TemporalBlock(c, self.kernel_size, 2 ** i, self.dropout, dt, name=f"tcn_{i}")
                for i, c in enumerate(self.channels)]
    if self.use_attention:
      self.attention = nn.MultiHeadDotProductAttention(
          num_heads=self.num_heads, dtype=dt, param_dtype=jnp.float32,
          kernel_init=nn.initializers.xavier_uniform(), name="attention")
      self.attention_norm = nn.LayerNorm(epsilon=1e-5, dtype=dt, param_dtype=jnp.float32,
                                         name="attention_norm")
    self.bottleneck = Conv1D(self.bottleneck_dim, 1, dtype=dt, name="bottleneck")
    self.vad_head = ConvHead(self.head_dim, self.num_speakers, self.head_dropout, self.causal, dt,
                             name="vad_head")
    self.osd_head = ConvHead(self.head_dim, 1, self.head_dropout, self.causal, dt,
                             name="osd_head")
    self.embedding_head = ConvHead(self.embedding_dim, self.embedding_dim, self.dropout,
                                   self.causal, dt, name="embedding_head")
    self.classifier = Mlp(self.classifier_dim, self.num_speaker_classes, self.dropout, dt,
                          name="classifier")
    self.similarity_head = Mlp(self.similarity_dim, 1, self.dropout, dt,
                               name="similarity_head")
    self.bottleneck_bn = _batch_norm(dt, "bottleneck_norm")

  def __call__(self, feats, train: bool = False):
    """feats: [B, D, T] features -> dict of outputs (module docstring)."""
    x = jnp.swapaxes(feats, 1, 2)                                  # [B, T, D]
    x = self.input_bn(x, use_running_average=not train)
    for block in self.tcn:
      x = block(x, train)
    if self.use_attention:
      mask = attention_mask(x.shape[1], self.causal, self.attention_window)
      x = self.attention_norm(x + self.attention(x, mask=mask, deterministic=not train))
    x = self.bottleneck(x)
    x = nn.relu(self.bottleneck_bn(x, use_running_average=not train))

    vad = self.vad_head(x, train).astype(jnp.float32)              # [B, T, S]
    osd = self.osd_head(x, train)[..., 0].astype(jnp.float32)     # [B, T]
    frame_emb = self.embedding_head(x, train).astype(jnp.float32) # [B, T, E]
    chunk_emb = jnp.mean(frame_emb, axis=1)
    weights = jax.nn.sigmoid(vad)                                  # [B, T, S]
    spk_emb = jnp.einsum("bts,bte->bse", weights, frame_emb) / (
        jnp.sum(weights, axis=1)[..., None] + 1e-6)
    spk_logits = self.classifier(spk_emb, train).astype(jnp.float32)
    if self.is_initializing():
      self.similarity(spk_emb[:, 0], spk_emb[:, 1 % self.num_speakers], train)
    return dict(vad=vad, osd=osd, frame_emb=frame_emb, chunk_emb=chunk_emb, spk_emb=spk_emb,
                spk_logits=spk_logits)

  def stream(self, feats, cache):
    """One streaming step of the causal model (inference only).

    feats: [B, D, t] the next t feature frames; cache: from `stream_cache` (zeros at the
    start of a stream), then the returned one. Returns ({vad [B, t, S], osd [B, t],
    frame_emb [B, t, E]}, new cache): the offline causal model's outputs for those frames.
    """
    if not streamable(self):
      raise ValueError(STREAMABLE_NEEDS)
    new = {}
    x = self.input_bn(jnp.swapaxes(feats, 1, 2), use_running_average=True)
    for i, block in enumerate(self.tcn):
      x, new[f"tcn_{i}"] = block(x, False, cache[f"tcn_{i}"])
    if self.use_attention:
      x, new["attention"] = self._attend_stream(x, cache["attention"])
    x = nn.relu(self.bottleneck_bn(self.bottleneck(x), use_running_average=True))
    vad, new["vad_head"] = self.vad_head(x, False, cache["vad_head"])
    osd, new["osd_head"] = self.osd_head(x, False, cache["osd_head"])
    emb, new["embedding_head"] = self.embedding_head(x, False, cache["embedding_head"])
    return dict(vad=vad.astype(jnp.float32), osd=osd[..., 0].astype(jnp.float32),
                frame_emb=emb.astype(jnp.float32)), new

  def _attend_stream(self, x, state):
    """Windowed causal attention over a block x [B, t, C]: each frame attends to itself and
    the `attention_window` frames before it, as `attention_mask` does offline. The state
    holds the last w inputs of the attention (keys and values are their projections) and
    how many frames the stream has had, up to w (keys from before its start are masked)."""
    w = self.attention_window
    past, seen = state["inputs"], state["seen"]                       # [B, w, C], [B]
    t = x.shape[1]
    kv = jnp.concatenate([past.astype(x.dtype), x], axis=1)           # [B, w + t, C]
    q = jnp.arange(t)[:, None] + w                                    # positions in kv
    k = jnp.arange(w + t)[None, :]
    mask = (k <= q) & (q - k <= w)                                    # [t, w + t]
    started = (seen[:, None] - w + k) >= 0                            # [B, w + t]
    mask = mask[None, None] & started[:, None, None, :]
    x = self.attention_norm(x + self.attention(x, kv, mask=mask, deterministic=True))
    return x, dict(inputs=kv[:, t:].astype(jnp.float32), seen=jnp.minimum(seen + t, w))

  def stream_cache(self, batch_size: int, num_features: int):
    """Zero streaming state: the last (k-1)*dilation inputs of every causal conv (and of the
    windowed attention, see `_attend_stream`)."""
    zeros = lambda span, ch: jnp.zeros((batch_size, span, ch), jnp.float32)
    cache, width = {}, num_features
    for i, c in enumerate(self.channels):
      span = (self.kernel_size - 1) * 2 ** i
      cache[f"tcn_{i}"] = dict(conv1=zeros(span, width), conv2=zeros(span, c))
      width = c
    for head in ("vad_head", "osd_head", "embedding_head"):
      cache[head] = zeros(2, self.bottleneck_dim)
    if self.use_attention:
      cache["attention"] = dict(inputs=zeros(self.attention_window, width),
                                seen=jnp.zeros((batch_size,), jnp.float32))
    return cache

  def similarity(self, emb_a, emb_b, train: bool = False):
    """Same-speaker logit of embedding pairs, [..., E] x [..., E] -> [...]."""
    pair = jnp.concatenate([emb_a, emb_b], axis=-1)
    return self.similarity_head(pair, train)[..., 0].astype(jnp.float32)


STREAMABLE_NEEDS = ("streaming needs model.causal=True and no attention or a windowed one "
                    "(model.attention_window > 0)")


def streamable(cfg) -> bool:
  """Whether a model (or its `model` config section) has a streaming step: causal convs and
  heads, and no attention or windowed causal attention (a bounded state: the last
  `attention_window` frames); full causal attention would need the whole past."""
  return bool(cfg.causal) and (not cfg.use_attention or cfg.attention_window > 0)


def from_config(cfg, dtype: str = "float32") -> DiarizationTCN:
  """The model of a `model` config section, computing in `dtype` (parameters stay float32;
  training picks it with `build.compute_dtype`)."""
  return DiarizationTCN(
      channels=tuple(cfg.channels), kernel_size=cfg.kernel_size, dropout=cfg.dropout,
      head_dropout=cfg.get("head_dropout", 0.2),
      use_attention=cfg.use_attention, num_heads=cfg.num_heads,
      attention_window=cfg.attention_window, bottleneck_dim=cfg.bottleneck_dim,
      head_dim=cfg.head_dim, embedding_dim=cfg.embedding_dim,
      classifier_dim=cfg.classifier_dim, similarity_dim=cfg.similarity_dim,
      num_speakers=cfg.num_speakers, num_speaker_classes=cfg.num_speaker_classes,
      causal=cfg.causal, dtype=jnp.dtype(dtype))


def init_variables(model: DiarizationTCN, rng, num_features: int, num_frames: int = 64):
  """Parameters and BatchNorm statistics for inputs [1, num_features, num_frames]."""
  dummy = jnp.zeros((1, num_features, num_frames), jnp.float32)
  return model.init({"params": rng}, dummy, train=False)


def receptive_field(kernel_size: int, num_blocks: int) -> int:
  """Frames seen by the TCN: each block has two convs of span (k - 1) * 2**i."""
  return 1 + 2 * (kernel_size - 1) * (2 ** num_blocks - 1)


def count_params(params) -> int:
  return sum(int(p.size) for p in jax.tree.leaves(params))

