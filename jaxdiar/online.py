"""Training on meetings simulated while it trains, for a wall-clock budget.

  python -m jaxdiar.online simulate --speech DIR --out POOL --workers 12 --seconds 600
  python -m jaxdiar.online import --config configs/mono.py --corpus CORPUS --out POOL
  python -m jaxdiar.online train --config configs/array8.py --pool POOL --out DIR --seconds 480

For machines with many cores and an accelerator (and no TFDS/grain): simulator processes
write finished meetings into a pool folder (each file written under a temporary name, then
renamed); the trainer keeps every meeting of the pool on the device in a fixed-capacity ring
and draws random windows from it inside the jitted step, with the augmentation (gain, white
noise, cyclic rotation of a circular array; a random channel for a one-channel model) on the
device too. The learning rate follows the config's one-cycle schedule over the *time* budget,
so runs of different speed are compared at equal compute. Every `--save-every` seconds the
variables are saved as `variables-NNN.npz` chunks (each under 15 MB; `load_variables` reads
them back for `jaxdiar.export`) and the whole train state as `state-NNN.bin` with
`progress.json`: the same command on the same `--out` resumes a killed run where its last
save left it, with the rest of its budget. `import` adds annotated real recordings (RTTM +
audio) to a pool folder beside simulated meetings (`import_corpus`).

The pure step functions are those of `jaxdiar.steps`; the orbax/grain loop of
`jaxdiar.trainer` is the one to use for corpora on disk and for multi-host runs.
"""

import argparse
import concurrent.futures
import functools
import json
import multiprocessing
import os
import pathlib
import sys
import time

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxdiar import atomic
from jaxdiar import build
from jaxdiar import configfile
from jaxdiar import features as features_lib
from jaxdiar import model as model_lib
from jaxdiar import steps

_CHUNK_BYTES = 15_000_000


# ------------------------------------------------------------------------ simulation


def save_meeting(path, audio: np.ndarray, activity: np.ndarray, speakers) -> None:
  """One pool meeting (what `DevicePool.refresh` reads): int16 audio [C, N], frame activity
  [T, K] and the K talkers' names, written under a temporary name then renamed."""
  with atomic.atomic_path(path) as tmp, open(tmp, "wb") as f:
    np.savez(f, audio=audio, activity=activity, speakers=np.array(speakers))


def _simulate_worker(args) -> int:
  from jaxdiar.data import corpus as corpus_lib        # the simulator stack, in workers only
  from jaxdiar.data import simulate as sim_lib
  (speech, out, seed, worker, workers, sim, geometry, duration, sample_rate, hop,
   deadline, parent) = args
  source = sim_lib.speech_source(speech)
  out = pathlib.Path(out)
  made = 0
  index = worker
  while made == 0 or time.time() < deadline:          # at least one meeting per worker
    if os.getppid() != parent:                          # the parent was killed: stop too
      break
    audio, turns, scene = sim_lib.simulate_meeting(source, index, seed, sim, geometry,
                                                   duration, sample_rate)
    names = [s["name"] for s in scene["speakers"]]
    activity = corpus_lib.frame_activity(turns, names, 1 + audio.shape[1] // hop, hop,
                                         sample_rate)
    save_meeting(out / f"meeting{index:06d}.npz", audio, activity, names)
    made += 1
    index += workers
  return made


def simulate_pool(speech: str, out, *, workers: int, seconds: float, seed: int, sim,
                  geometry, duration: float, sample_rate: int = 16000, hop: int = 256) -> int:
  """Simulate meetings into `out` with `workers` processes until `seconds` have passed (at
  least one meeting each); returns how many were made."""
  out = pathlib.Path(out)
  out.mkdir(parents=True, exist_ok=True)
  deadline = time.time() + seconds
  jobs = [(speech, str(out), seed, w, workers, sim, geometry, duration, sample_rate, hop,
           deadline, os.getpid()) for w in range(workers)]
  ctx = multiprocessing.get_context("spawn")
  with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
    return sum(pool.map(_simulate_worker, jobs))


def import_corpus(corpus, out, *, channels: int, meeting_seconds: float, max_speakers: int,
                  uris=None, copies: int = 1, sample_rate: int = 16000, hop: int = 256) -> int:
  """Annotated recordings (a `jaxdiar.data.corpus` folder: RTTM, audio, optional UEM) as pool
  meetings, so that real meetings train beside (or instead of) simulated ones.

  Each recording is cut into pieces of `meeting_seconds` inside its UEM (the whole file without
  one); a region shorter than that is repeated end to end until it is long enough (a real
  excerpt of 30 s still fills a 60 s pool slot). One-channel audio is copied to every one of the
  pool's `channels` (a one-channel model draws one of them); other channel counts must match.
  A piece with more talkers than `max_speakers` is skipped. Each piece is written `copies`
  times (weight against the simulated meetings). Returns how many files were written."""
  from jaxdiar.data import audio as audio_lib
  from jaxdiar.data import corpus as corpus_lib
  out = pathlib.Path(out)
  out.mkdir(parents=True, exist_ok=True)
  length = int(round(meeting_seconds * sample_rate))
  written = skipped = 0
  for meeting in corpus_lib.read_corpus(corpus, uris):
    audio = audio_lib.read(meeting.audio_path, sample_rate)
    if audio.shape[0] == 1:
      audio = np.repeat(audio, channels, axis=0)
    elif audio.shape[0] != channels:
      raise ValueError(f"{meeting.audio_path}: {audio.shape[0]} channels, the pool has "
                       f"{channels} (one-channel recordings are copied to all)")
    regions = meeting.uem or ((0.0, audio.shape[1] / sample_rate),)
    for r, (begin, end) in enumerate(regions):
      a = int(round(begin * sample_rate))
      b = min(int(round(end * sample_rate)), audio.shape[1])
      if b - a < hop:
        continue
      starts = list(range(a, b - length + 1, length)) or [a]
      for k, s in enumerate(starts):
        piece = audio[:, s:min(s + length, b)]
        frames = 1 + piece.shape[1] // hop
        activity = corpus_lib.frame_activity(meeting.turns, meeting.speakers, frames, hop,
                                             sample_rate, start_sample=s)
        present = activity.any(axis=0)                 # the talkers heard in this piece
        names, activity = np.array(meeting.speakers)[present], activity[:, present]
        if len(names) > max_speakers:
          skipped += 1
          continue
        repeats = -(-length // piece.shape[1])       # tile a short region to the slot length
        if repeats > 1:                              # frame t of the tiled piece sits at
          source = np.arange(1 + length // hop) * hop % piece.shape[1] // hop   # t * hop
          activity = activity[np.minimum(source, frames - 1)]
          piece = np.tile(piece, (1, repeats))[:, :length]
        for c in range(copies):
          save_meeting(out / f"meeting-{meeting.uri}-{r:02d}{k:03d}-{c:02d}.npz",
                       audio_lib.to_int16(piece), activity, names)
          written += 1
  if skipped:
    print(f"jaxdiar.online import: skipped {skipped} pieces with more than {max_speakers} "
          "talkers", file=sys.stderr)
  return written


# ---------------------------------------------------------------------------- pool


def device_memory_bytes(device=None) -> int | None:
  """What the device can hold: an accelerator's allocator limit, the host's RAM for the CPU."""
  device = device or jax.devices()[0]
  stats = device.memory_stats() if device.platform != "cpu" else None
  if stats and stats.get("bytes_limit"):
    return int(stats["bytes_limit"])
  try:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
  except (ValueError, OSError, AttributeError):
    return None


def check_capacity(capacity: int, num_channels: int, num_samples: int,
                   limit: int | None = None, share: float | None = None) -> None:
  """Refuse a pool ring (int16 audio of `capacity` meetings) over `share` of the device's
  memory (half of the host's RAM on the CPU, 80 % of an accelerator's allocator limit), before
  it is allocated: the ring is held whole from the start."""
  need = capacity * num_channels * num_samples * 2
  if share is None:
    share = 0.5 if jax.devices()[0].platform == "cpu" else 0.8
  limit = device_memory_bytes() if limit is None else limit
  if limit and need > share * limit:
    fits = max(1, int(share * limit) // (num_channels * num_samples * 2))
    raise SystemExit(f"jaxdiar.online: a pool ring of {capacity} meetings needs "
                     f"{need / 2**30:.1f} GiB, over {share:.0%} of the device's "
                     f"{limit / 2**30:.1f} GiB: pass --capacity {fits} or less (it need not "
                     f"exceed the meetings of the pool; the oldest are replaced as new ones "
                     f"arrive)")


class DevicePool:
  """Meetings of a pool folder held on the device in a ring of `capacity` slots."""

  def __init__(self, folder, capacity: int, num_channels: int, num_samples: int,
               num_frames: int, num_speakers: int, speaker_ids: dict[str, int]):
    self.folder = pathlib.Path(folder)
    self.capacity, self.filled, self.next_slot = capacity, 0, 0
    self.speaker_ids = speaker_ids
    self.seen: set[str] = set()
    self.audio = jnp.zeros((capacity, num_channels, num_samples), jnp.int16)
    self.activity = jnp.zeros((capacity, num_frames, num_speakers), jnp.uint8)
    self.ids = jnp.full((capacity, num_speakers), -1, jnp.int32)
    self.loaded = 0
    self._put = jax.jit(lambda buf, i, x: buf.at[i].set(x), donate_argnums=0)

  def refresh(self, limit: int = 64) -> int:
    """Load up to `limit` new meetings; returns how many were loaded."""
    new = sorted(p for p in self.folder.glob("meeting*.npz") if p.name not in self.seen)
    count = 0
    for path in new[:limit]:
      self.seen.add(path.name)
      with np.load(path) as z:
        audio, activity, names = z["audio"], z["activity"], list(z["speakers"])
      c, n = self.audio.shape[1:]
      t, s = self.activity.shape[1:]
      if audio.shape[1] < n or len(names) > s:
        continue
      act = np.zeros((t, s), np.uint8)
      act[:, :len(names)] = activity[:t]
      ids = np.full(s, -1, np.int32)
      ids[:len(names)] = [self.speaker_ids.get(str(x), -1) for x in names]
      i = self.next_slot
      self.audio = self._put(self.audio, i, jnp.asarray(audio[:c, :n]))
      self.activity = self._put(self.activity, i, jnp.asarray(act))
      self.ids = self._put(self.ids, i, jnp.asarray(ids))
      self.next_slot = (i + 1) % self.capacity
      self.filled = min(self.filled + 1, self.capacity)
      self.loaded += 1
      count += 1
    return count


def window_batch(pool_audio, pool_activity, pool_ids, index, frame_start, rng, *,
                 window_samples: int, hop: int, model_channels: int, gain_db: float,
                 noise_snr_db: float, rotate: bool, silence_db: float = 0.0,
                 pause_prob: float = 0.0, sample_rate: int = 16000) -> dict:
  """Training batch from the device pool: windows at (index[b], frame_start[b] * hop).

  `pause_prob`: the share of windows in which a stretch of 1 s up to the whole window is
  replaced by coloured noise 10-50 dB under the window's level, its labels cleared (simulated
  meetings have no pause longer than a few seconds; real ones do)."""
  num_frames = 1 + window_samples // hop
  num_channels = pool_audio.shape[1]

  def one(i, f):
    audio = jax.lax.dynamic_slice(pool_audio[i], (0, f * hop), (num_channels, window_samples))
    act = jax.lax.dynamic_slice(pool_activity[i], (f, 0),
                                (num_frames, pool_activity.shape[-1]))
    return audio, act

  audio, activity = jax.vmap(one)(index, frame_start)
  audio = audio.astype(jnp.float32) / 32768.0
  b = audio.shape[0]
  k_rot, k_gain, k_snr, k_noise, k_quiet, k_pause = jax.random.split(rng, 6)
  shift = jax.random.randint(k_rot, (b,), 0, num_channels)
  if model_channels == 1:                      # one random channel of the array
    audio = jnp.take_along_axis(audio, shift[:, None, None], axis=1)
  elif rotate:                                 # cyclic rotation of a uniform circular array
    order = (jnp.arange(num_channels)[None, :] + shift[:, None]) % num_channels
    audio = jnp.take_along_axis(audio, order[:, :, None], axis=1)
  if pause_prob:
    audio, activity = _splice_pauses(audio, activity, k_pause, pause_prob, hop, sample_rate)
  if silence_db:              # pauses quieter than the meeting's noise floor, by U(0, x) dB
    speech = jnp.any(activity > 0, axis=-1).astype(jnp.float32)            # [B, T]
    kernel = jnp.ones(9) / 4.5          # a 4-frame ramp outside each turn; speech untouched
    speech = jax.vmap(lambda a: jnp.convolve(a, kernel, mode="same"))(speech)
    speech = jnp.minimum(jnp.repeat(speech, hop, axis=1)[:, :window_samples], 1.0)
    depth = jax.random.uniform(k_quiet, (b, 1), maxval=silence_db)
    scale = 10.0 ** (-depth * (1.0 - speech) / 20.0)
    audio = audio * scale[:, None, :]
  if gain_db:
    gain = jax.random.uniform(k_gain, (b, 1, 1), minval=-gain_db, maxval=gain_db)
    audio = audio * 10.0 ** (gain / 20.0)
  if noise_snr_db:
    snr = jax.random.uniform(k_snr, (b, 1, 1), minval=noise_snr_db, maxval=noise_snr_db + 20)
    power = jnp.mean(audio ** 2, axis=(1, 2), keepdims=True) / 10.0 ** (snr / 10.0)
    audio = audio + jnp.sqrt(power) * jax.random.normal(k_noise, audio.shape)
  present = jnp.any(activity > 0, axis=1)                                  # [B, S]
  ids = jnp.where(present, pool_ids[index], -1)
  overlap = (jnp.sum(activity, axis=-1) >= 2).astype(jnp.uint8)
  return dict(audio=jnp.clip(audio, -1.0, 1.0), activity=activity, overlap=overlap,
              speaker_ids=ids)


def _splice_pauses(audio, activity, rng, prob: float, hop: int, sample_rate: int):
  """Replace [a, a + L) of a `prob` share of the windows by coloured noise (AR(1) spectrum,
  coefficient U(0, 0.98), independent per channel) 10-50 dB under the window's power, and
  clear the labels of the frames centred there."""
  b, c, n = audio.shape
  k_on, k_len, k_start, k_coef, k_level, k_noise = jax.random.split(rng, 6)
  on = jax.random.uniform(k_on, (b,)) < prob
  length = jnp.minimum(jax.random.uniform(k_len, (b,), minval=sample_rate, maxval=1.2 * n), n)
  start = jax.random.uniform(k_start, (b,)) * (n - length)
  end = jnp.where(on, start + length, start)                     # empty when not chosen
  t = jnp.arange(n)[None, :]
  inside = (t >= start[:, None]) & (t < end[:, None])            # [B, N]
  centre = jnp.arange(activity.shape[1])[None, :] * hop
  frames = (centre >= start[:, None]) & (centre < end[:, None])  # [B, T]
  coef = jax.random.uniform(k_coef, (b, 1, 1), maxval=0.98)
  w = jnp.linspace(0.0, jnp.pi, n // 2 + 1)[None, None, :]
  shape = 1.0 / jnp.abs(1.0 - coef * jnp.exp(-1j * w))
  noise = jnp.fft.irfft(jnp.fft.rfft(jax.random.normal(k_noise, (b, c, n))) * shape, n=n)
  noise /= jnp.sqrt(jnp.mean(noise ** 2, axis=(1, 2), keepdims=True)) + 1e-9
  level = jax.random.uniform(k_level, (b, 1, 1), minval=10.0, maxval=50.0)
  power = jnp.mean(audio ** 2, axis=(1, 2), keepdims=True) + 1e-10
  noise *= jnp.sqrt(power / 10.0 ** (level / 10.0))
  audio = jnp.where(inside[:, None, :], noise, audio)
  activity = jnp.where(frames[:, :, None], jnp.zeros_like(activity), activity)
  return audio, activity


# --------------------------------------------------------------------------- train


def make_optimizer(tcfg) -> optax.GradientTransformation:
  """`steps.make_optimizer` with the base learning rate as an injected hyper-parameter,
  set each step from the fraction of the time budget spent."""
  return optax.inject_hyperparams(lambda learning_rate: steps.make_optimizer(
      tcfg, learning_rate))(learning_rate=tcfg.learning_rate)


def time_learning_rate(tcfg, fraction: float) -> float:
  """One-cycle learning rate at `fraction` of the budget (the trainer's schedule over time)."""
  schedule = optax.cosine_onecycle_schedule(10_000, tcfg.learning_rate, pct_start=tcfg.pct_start)
  return float(schedule(int(min(max(fraction, 0.0), 1.0) * 10_000)))


def save_variables(out, variables) -> list[pathlib.Path]:
  """Variables as `variables-NNN.npz` chunks of at most ~15 MB (flattened '/' keys)."""
  out = pathlib.Path(out)
  flat = {"/".join(k): np.asarray(v) for k, v in
          flax.traverse_util.flatten_dict(flax.core.unfreeze(variables)).items()}
  chunks, current, size = [], {}, 0
  for key in sorted(flat):
    if current and size + flat[key].nbytes > _CHUNK_BYTES:
      chunks.append(current)
      current, size = {}, 0
    current[key] = flat[key]
    size += flat[key].nbytes
  chunks.append(current)
  paths = []
  for old in out.glob("variables-*.npz"):
    old.unlink()
  for i, chunk in enumerate(chunks):
    path = out / f"variables-{i:03d}.npz"
    with atomic.atomic_path(path) as tmp, open(tmp, "wb") as f:
      np.savez(f, **chunk)
    paths.append(path)
  return paths


def load_variables(folder):
  """(config, variables) saved by `train`."""
  folder = pathlib.Path(folder)
  files = sorted(folder.glob("variables-*.npz"))
  if not files or not (folder / "config.json").exists():
    raise FileNotFoundError(f"{folder}: no config.json and variables-*.npz (jaxdiar.online)")
  flat = {}
  for path in files:
    with np.load(path) as z:
      flat.update({tuple(k.split("/")): z[k] for k in z.files})
  config = ml_collections.ConfigDict(json.loads((folder / "config.json").read_text()))
  return config, flax.traverse_util.unflatten_dict(flat)


def save_state(out, state, progress: dict) -> None:
  """The whole train state (flax msgpack, in <15 MB chunks) and `progress.json` (training
  seconds spent, steps, budget, the chunk names): what `train` resumes from. The chunks of a
  save get new names and `progress.json` is replaced last, so a run killed mid-save resumes
  from the previous complete one."""
  out = pathlib.Path(out)
  blob = flax.serialization.to_bytes(state)
  names = []
  for i in range(0, max(len(blob), 1), _CHUNK_BYTES):
    names.append(f"state-{progress['steps']:09d}-{i // _CHUNK_BYTES:03d}.bin")
    atomic.write_bytes(out / names[-1], blob[i:i + _CHUNK_BYTES])
  atomic.write_text(out / "progress.json", json.dumps(dict(progress, files=names)))
  for old in out.glob("state-*.bin"):
    if old.name not in names:
      old.unlink()


def load_state(out, template):
  """(state, progress) saved by `save_state`, or (template, None) when there is none."""
  path = pathlib.Path(out) / "progress.json"
  if not path.exists():
    return template, None
  progress = json.loads(path.read_text())
  blob = b"".join((path.parent / name).read_bytes() for name in progress["files"])
  return flax.serialization.from_bytes(template, blob), progress


def train(config, pool_dir, out, *, seconds: float, capacity: int = 1024, min_meetings: int = 8,
          save_every: float = 60.0, log_every: int = 100, speakers: list[str] | None = None,
          meeting_seconds: float | None = None, max_steps: int | None = None,
          init=None) -> dict:
  """Train `config` for `seconds` of wall clock on the meetings appearing in `pool_dir`;
  with `init` (a folder saved by `train`, or an exported .jaxdiar file such as a bundled
  model), start from its variables (fine-tuning)."""
  start_time = time.time()
  out = pathlib.Path(out)
  out.mkdir(parents=True, exist_ok=True)
  speakers = sorted(speakers or [])
  config = build.resolve(config, num_speaker_classes=len(speakers))
  fcfg, tcfg, d = config.features, config.train, config.data
  model = model_lib.from_config(config.model, dtype=tcfg.compute_dtype)
  tx = make_optimizer(tcfg)
  sr, hop = fcfg.sample_rate, fcfg.hop
  window = int(round(d.window_seconds * sr))
  meeting_samples = int(round((meeting_seconds or d.meeting_seconds) * sr))
  model_channels = len(fcfg.mic_positions)
  pool_channels = len(_pool_geometry(config))
  check_capacity(capacity, pool_channels, meeting_samples)
  pool = DevicePool(pool_dir, capacity, pool_channels, meeting_samples,
                    1 + meeting_samples // hop,
                    config.model.num_speakers, {s: i for i, s in enumerate(speakers)})
  atomic.write_text(out / "config.json", config.to_json(indent=1))
  state = steps.init_state(jax.random.key(tcfg.seed), model=model, tx=tx,
                           num_features=features_lib.feature_dim(fcfg))
  if init is not None:
    if pathlib.Path(init).is_file():
      from jaxdiar import runtime
      variables = runtime.load(init).variables
    else:
      _, variables = load_variables(init)
    try:
      state = state.replace(params=jax.tree.map(_like, state.params, variables["params"]),
                            batch_stats=jax.tree.map(_like, state.batch_stats,
                                                     variables.get("batch_stats", {})))
    except (KeyError, ValueError) as e:
      raise SystemExit(f"jaxdiar.online: {init} does not fit {out}'s config: {e}") from None
  state, progress = load_state(out, state)      # a killed run continues where it stopped
  rotate = bool(d.augment_rotate) and features_lib.is_uniform_circular(fcfg.mic_positions)
  batcher = functools.partial(window_batch, window_samples=window, hop=hop,
                              model_channels=model_channels, gain_db=d.augment_gain_db,
                              noise_snr_db=d.augment_noise_snr_db, rotate=rotate,
                              silence_db=d.get("augment_silence_db", 0.0),
                              pause_prob=d.get("augment_pause_prob", 0.0), sample_rate=sr)

  @functools.partial(jax.jit, donate_argnums=0)
  def step(state, pool_audio, pool_activity, pool_ids, index, frame_start, rng, lr):
    k_batch, k_step = jax.random.split(jax.random.fold_in(rng, state.step))
    batch = batcher(pool_audio, pool_activity, pool_ids, index, frame_start, k_batch)
    hyper = dict(state.opt_state.hyperparams, learning_rate=lr)
    state = state.replace(opt_state=state.opt_state._replace(hyperparams=hyper))
    return steps.train_step(state, batch, k_step, model=model, tx=tx, config=config)

  while pool.filled < min_meetings:
    pool.refresh()
    if pool.filled < min_meetings:
      if time.time() - start_time > seconds:
        raise RuntimeError(f"{pool_dir}: fewer than {min_meetings} meetings after {seconds} s")
      time.sleep(1.0)
  rng = jax.random.key(tcfg.seed + 1)
  max_start = (meeting_samples - window) // hop
  train_start = time.time()
  if progress:                # resumed: the same budget, less what was already spent
    budget, spent, step_count = progress["budget"], progress["seconds"], progress["steps"]
    print(f"jaxdiar.online: resuming {out} at step {step_count} ({spent:.0f} of "
          f"{budget:.0f} s spent)", file=sys.stderr)
  else:
    budget, spent, step_count = seconds - (train_start - start_time), 0.0, 0
    if budget < 0.25 * seconds:
      raise RuntimeError(f"{pool_dir}: the pool took {train_start - start_time:.0f} s of the "
                         f"{seconds:.0f} s budget to reach {min_meetings} meetings")
  host_rng = np.random.default_rng([tcfg.seed, step_count])
  log = open(out / "metrics.jsonl", "a")
  last_save, last_refresh, sums = train_start, train_start, {}
  elapsed = lambda: spent + time.time() - train_start

  def checkpoint():
    save_variables(out, {"params": state.params, "batch_stats": state.batch_stats})
    save_state(out, state, dict(budget=budget, seconds=elapsed(), steps=step_count))
  print(f"jaxdiar.online: training {out} for {budget:.0f} s on {jax.devices()[0]} "
        f"({tcfg.compute_dtype}), {pool.filled} meetings in the pool", file=sys.stderr, flush=True)
  while True:
    now = time.time()
    fraction = elapsed() / budget
    if fraction >= 1.0 or (max_steps is not None and step_count >= max_steps):
      break
    if now - last_refresh > 5.0:
      pool.refresh()
      last_refresh = now
    index = host_rng.integers(0, pool.filled, tcfg.batch_size).astype(np.int32)
    frame_start = host_rng.integers(0, max_start + 1, tcfg.batch_size).astype(np.int32)
    lr = time_learning_rate(tcfg, fraction)
    state, metrics = step(state, pool.audio, pool.activity, pool.ids, index, frame_start, rng,
                          jnp.float32(lr))
    step_count += 1
    for k, v in metrics.items():
      sums[k] = sums.get(k, 0.0) + v
    if step_count % log_every == 0:
      row = {k: float(v) / log_every for k, v in sums.items()}
      row.update(step=step_count, seconds=round(elapsed(), 1), lr=lr,
                 pool=pool.loaded)
      if not row.get("finite", 1.0) > 0.99:
        print(f"jaxdiar.online: non-finite steps at {step_count}", file=sys.stderr)
      log.write(json.dumps(row) + "\n")
      log.flush()
      print(f"step {step_count} loss {row['loss/total']:.4f} vad {row['loss/vad']:.4f} "
            f"lr {lr:.2e} pool {pool.loaded} {row['seconds']} s", file=sys.stderr, flush=True)
      sums = {}
    if time.time() - last_save > save_every:
      checkpoint()
      last_save = time.time()
  checkpoint()
  summary = dict(steps=step_count, seconds=round(elapsed(), 1),
                 meetings=pool.loaded, device=str(jax.devices()[0]), dtype=tcfg.compute_dtype,
                 batch_size=tcfg.batch_size)
  atomic.write_text(out / "summary.json", json.dumps(summary, indent=1))
  log.close()
  return summary


def _like(template, value):
  value = jnp.asarray(value, template.dtype)
  if value.shape != template.shape:
    raise ValueError(f"shape {value.shape}, expected {template.shape}")
  return value


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog="python -m jaxdiar.online", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  sub = p.add_subparsers(dest="command", required=True)
  s = sub.add_parser("simulate", help="fill a pool folder with simulated meetings")
  s.add_argument("--config", required=True, help="config file (its data.sim, array, length)")
  s.add_argument("--speech", required=True, help="speech folder(s), comma-separated")
  s.add_argument("--out", required=True)
  s.add_argument("--workers", type=int, default=os.cpu_count())
  s.add_argument("--seconds", type=float, required=True)
  s.add_argument("--seed", type=int, default=1000)
  m = sub.add_parser("import", help="add annotated recordings (RTTM + audio) to a pool folder")
  m.add_argument("--config", required=True, help="config file (its pool array, length)")
  m.add_argument("--corpus", required=True, help="folder of RTTM, audio and optional UEM")
  m.add_argument("--out", required=True)
  m.add_argument("--uris", default=None, help="comma-separated recordings (default: all)")
  m.add_argument("--copies", type=int, default=1, help="write each piece this many times")
  t = sub.add_parser("train", help="train on a pool folder for a time budget")
  t.add_argument("--config", required=True)
  t.add_argument("--pool", required=True)
  t.add_argument("--out", required=True)
  t.add_argument("--seconds", type=float, required=True)
  t.add_argument("--speech", required=True, help="training speech (speaker ids of the classifier)")
  t.add_argument("--capacity", type=int, default=1024)
  t.add_argument("--save-every", type=float, default=60.0)
  t.add_argument("--max-steps", type=int, default=None)
  t.add_argument("--init", default=None,
                 help="start from the variables of this train --out folder or .jaxdiar "
                      "file, e.g. jaxdiar/models/array8.jaxdiar (fine-tuning)")
  args, overrides = p.parse_known_args(argv)
  config = load_config(args.config, overrides)
  if args.command == "simulate":
    n = simulate_pool(args.speech, args.out, workers=args.workers, seconds=args.seconds,
                      seed=args.seed, sim=config.data.sim,
                      geometry=_pool_geometry(config), duration=config.data.meeting_seconds,
                      sample_rate=config.features.sample_rate, hop=config.features.hop)
    print(f"simulated {n} meetings into {args.out}")
    return 0
  if args.command == "import":
    n = import_corpus(args.corpus, args.out, channels=len(_pool_geometry(config)),
                      meeting_seconds=config.data.meeting_seconds,
                      max_speakers=config.model.num_speakers,
                      uris=args.uris.split(",") if args.uris else None, copies=args.copies,
                      sample_rate=config.features.sample_rate, hop=config.features.hop)
    print(f"imported {n} meetings into {args.out}")
    return 0
  from jaxdiar.data import simulate as sim_lib
  speakers = sim_lib.speech_source(args.speech).speakers
  summary = train(config, args.pool, args.out, seconds=args.seconds, capacity=args.capacity,
                  save_every=args.save_every, speakers=speakers, max_steps=args.max_steps,
                  init=args.init)
  print(json.dumps(summary))
  return 0


def _pool_geometry(config):
  """The array the pool is simulated with: the config's, or data.pool_geometry for a
  one-channel model trained on array recordings."""
  return config.data.get("pool_geometry", None) or config.features.mic_positions


def load_config(path, overrides=()):
  """A config file by path with `--config.a.b=value` overrides (`jaxdiar.configfile`)."""
  try:
    return configfile.load(path, overrides, prog="jaxdiar.online")
  except configfile.ConfigError as e:
    raise SystemExit(f"jaxdiar.online: {e}") from None


if __name__ == "__main__":
  sys.exit(main())
