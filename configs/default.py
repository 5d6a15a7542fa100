r"""Default jaxdiar recipe: 8-mic circular array, compact spatial features, TCN + attention.

Run it (on a fresh machine it simulates its own corpus first):

  python -m jaxdiar.train --config configs/default.py --workdir workdirs/default

Override any field on the command line, e.g. ``--config.model.use_attention=False``.
"""

import math

import ml_collections

from jaxdiar.decoding import settings


def circular_array(num_mics: int = 8, radius: float = 0.10) -> list[list[float]]:
  """Mic i at angle i * 360/num_mics degrees on a horizontal circle (AMI Array1 layout)."""
  return [[radius * math.cos(2 * math.pi * i / num_mics),
           radius * math.sin(2 * math.pi * i / num_mics), 0.0] for i in range(num_mics)]


def _tuples(x):
  """Lists -> tuples, nested: ml_collections overrides tuples from the command line
  (--config.model.channels="(64, 64)") but not lists."""
  return tuple(_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()

  # ---------------------------------------------------------------- features
  f = config.features = ml_collections.ConfigDict()
  f.sample_rate = 16000          # Hz; other rates are resampled on load.
  f.n_fft = 512                  # STFT size (257 bins); must be a multiple of hop.
  f.hop = 256                    # 16 ms hop, 62.5 frames/s; T = 1 + N // hop.
  f.kind = "compact"             # "compact" (771) | "full" (2313) | "lps" (257).
  f.mic_positions = _tuples(circular_array(8, 0.10))  # [C, 3] metres, channel c = mic c.
  f.mic_pairs = ((0, 4), (1, 5), (2, 6), (3, 7))  # IPD pairs (opposite mics).
  f.look_directions_deg = (0.0, 90.0, 180.0, 270.0)  # AF azimuths in the array plane.
  f.speed_of_sound = 343.0       # m/s, for the AF delays.

  # ------------------------------------------------------------------- model
  m = config.model = ml_collections.ConfigDict()
  m.channels = (256, 256, 256, 512, 512)  # TCN block widths; dilation of block i is 2**i.
  m.kernel_size = 3              # TCN kernel; receptive field 1 + 2*(k-1)*(2**5 - 1) = 125 frames.
  m.dropout = 0.2                # Dropout in the TCN blocks, embedding and MLP heads.
  m.head_dropout = 0.2           # Dropout in the VAD and OSD heads.
  m.use_attention = True         # 8-head self-attention after the TCN.
  m.num_heads = 8                # Attention heads (must divide channels[-1]).
  m.attention_window = 0         # 0: full attention; w > 0: each frame sees the w previous
                                 # frames (and itself) only - the streaming/local mask.
  m.bottleneck_dim = 256         # 1x1 conv after the TCN/attention.
  m.head_dim = 128               # Hidden width of the VAD and OSD heads.
  m.embedding_dim = 256          # E, speaker embedding size.
  m.classifier_dim = 512         # Hidden width of the speaker classifier.
  m.similarity_dim = 256         # Hidden width of the similarity head.
  m.num_speakers = 4             # S, local speakers per window (VAD outputs).
  m.num_speaker_classes = 4      # Speaker classifier classes; train sets it to the
                                 # number of training speakers when the corpus is known.
  m.causal = False               # True: every conv and head is causal (streaming).

  # -------------------------------------------------------------------- loss
  l = config.loss = ml_collections.ConfigDict()
  l.vad_weight = 1.0             # alpha: PIT BCE on VAD.
  l.osd_weight = 1.0             # beta: focal loss on OSD.
  l.consistency_weight = 0.1     # gamma: frame-to-frame smoothness of VAD probabilities.
  l.speaker_weight = 0.5         # delta: classifier CE on PIT-matched identities.
  l.similarity_weight = 0.1      # Pairwise same/different-speaker BCE across the batch.
  l.silence_weight = 1.0         # Weight of the frames without a talker in the VAD loss (its
                                 # mean over frames is then the weighted mean).
  l.focal_gamma = 2.0            # Focal exponent for OSD.
  l.focal_alpha = 0.75           # Weight of the positive (overlap) class; overlap is rare.

  # -------------------------------------------------------------------- data
  d = config.data = ml_collections.ConfigDict()
  d.corpus = "simulated"         # "simulated" (generated on first use) | "local".
  d.data_dir = "~/.cache/jaxdiar"  # Where generated corpora and TFDS files live.
  d.speech_dir = ""              # Source speech for the simulator ("" = built-in fallback,
                                 # or ../shared/data/speech/... when present).
  d.dev_speech_dir = ""          # Dev voices; "" = hold out 20 % of the speech_dir speakers.
  d.local_dir = ""               # For corpus="local": AMI/AliMeeting-style folder.
  d.window_seconds = 8.0         # Example length.
  d.hop_seconds = 4.0            # Window hop when cutting meetings into examples.
  d.num_train_meetings = 64      # Simulated meetings for training.
  d.num_dev_meetings = 8         # Simulated meetings for dev (held-out voices).
  d.meeting_seconds = 60.0       # Length of each simulated meeting.
  d.seed = 0                     # Simulator and shuffling seed.
  d.max_workers = 2              # Processes simulating meetings in parallel.
  d.sim = ml_collections.ConfigDict()  # Meeting simulator (pyroomacoustics shoebox rooms).
  d.sim.room_min = (4.0, 4.0, 2.5)     # Smallest room, metres (x, y, z).
  d.sim.room_max = (9.0, 7.0, 3.5)     # Largest room.
  d.sim.rt60 = (0.2, 0.6)              # Reverberation time range, seconds.
  d.sim.max_image_order = 20           # Cap on image-source order (speed; late tail approximated).
  d.sim.speakers = (1, 4)              # Speakers per meeting (inclusive range, <= num_speakers).
  d.sim.overlap_target = 0.15          # Target fraction of speech with >= 2 talkers (AMI ~15 %).
  d.sim.overlap_range = (0.03, 0.35)   # Accepted overlap ratio of a finished meeting.
  d.sim.pause_mean = 0.4               # Mean pause between turns, seconds (exponential).
  d.sim.backchannel_prob = 0.15        # Chance that a turn carries a short back-channel.
  d.sim.snr_db = (5.0, 30.0)           # Speech-to-noise ratio range (diffuse + point noise).
  d.sim.peak = (0.2, 0.9)              # Final peak level range (random gain).
  d.augment_gain_db = 6.0        # Random gain +/- dB.
  d.augment_noise_snr_db = 20.0  # Added white noise SNR lower bound (0 disables).
  d.augment_rotate = True        # Cyclic channel shift (exact for a uniform circular array).
  d.augment_silence_db = 0.0     # jaxdiar.online: attenuate frames without speech by U(0, x) dB
                                 # (quiet pauses, as in close-talk or quiet rooms; 0 disables).
  d.augment_pause_prob = 0.0     # jaxdiar.online: share of windows given a pause of 1 s up to
                                 # the whole window (coloured noise, no labels; 0 disables).
  d.augment_band_prob = 0.0      # jaxdiar.online: share of windows band-passed (edges U(0, 400)
                                 # Hz and U(3.4 kHz, Nyquist)): narrow front ends, files
                                 # resampled from 44.1/48 kHz (0 disables).

  # ------------------------------------------------------------------- train
  t = config.train = ml_collections.ConfigDict()
  t.batch_size = 8               # Global batch (all hosts, all devices).
  t.num_steps = 2000             # Optimizer steps.
  t.learning_rate = 1e-3         # Peak of the one-cycle schedule.
  t.pct_start = 0.3              # Warm-up fraction of the one-cycle schedule.
  t.weight_decay = 1e-2          # AdamW decay.
  t.grad_clip_norm = 1.0         # Global-norm clipping.
  t.grad_accum_steps = 1         # optax.MultiSteps; >1 accumulates micro-batches.
  t.lr_multipliers = ml_collections.ConfigDict(
      dict(tcn=0.5, attention=1.0, heads=2.0))  # Per-module learning rates.
  t.trainable = ()               # Top-level modules trained (e.g. ("vad_head",) to adapt the
                                 # speech detection alone); empty: all. The others are frozen:
                                 # no update, their BatchNorm statistics kept.
  t.compute_dtype = "auto"       # Activations: auto = bfloat16 on GPU/TPU, float32 on CPU;
                                 # parameters and optimizer state are float32 always.
  t.seed = 0                     # Parameter init and dropout RNG.
  t.log_every = 50               # Steps between metric logs.
  t.checkpoint_every = 500       # Steps between (async) checkpoints.
  t.keep_checkpoints = 2         # Latest checkpoints kept (plus the best by dev DER).
  t.mesh = "data:-1"             # Data-parallel mesh AXIS:SIZE; -1 = all devices.

  # -------------------------------------------------------------------- eval
  e = config.eval = ml_collections.ConfigDict()
  e.every = 500                  # Steps between dev evaluations.
  e.batch_size = 8               # Dev batch.
  e.vad_threshold = 0.5          # Speech probability threshold for frame DER.
  e.osd_threshold = 0.5          # Overlap probability threshold.

  # --------------------------------------------------------------- inference
  # Decoding settings (window sliding, stitching, clustering, the spatial stages), each
  # declared once with its meaning and valid range in jaxdiar/decoding/settings.py.
  config.inference = settings.config_block()

  return config
