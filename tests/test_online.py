"""jaxdiar.online: windows drawn on the device, the time schedule, variable files, and a
whole simulate -> train -> export run on tiny settings."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import array8
from configs import mono
from configs import smoke
from jaxdiar import online
from jaxdiar.models import export
from jaxdiar.models import runtime


def pool(rng, m=3, c=8, n=4000, t=None, s=4):
  t = t or 1 + n // 100
  audio = rng.integers(-3000, 3000, (m, c, n)).astype(np.int16)
  activity = (rng.random((m, t, s)) < 0.4).astype(np.uint8)
  activity[:, :, 3] = 0                                  # an empty slot
  ids = np.array([[5, 6, 7, -1]] * m, np.int32)
  return audio, activity, ids


@pytest.mark.parametrize("channels", [8, 1])
def test_window_batch_equals_numpy_slicing(channels):
  rng = np.random.default_rng(0)
  audio, activity, ids = pool(rng)
  index, start = np.array([0, 2, 1, 2]), np.array([0, 7, 13, 20])
  out = online.window_batch(jnp.asarray(audio), jnp.asarray(activity), jnp.asarray(ids),
                            jnp.asarray(index), jnp.asarray(start), jax.random.key(0),
                            window_samples=1000, hop=100, model_channels=channels, gain_db=0.0,
                            noise_snr_db=0.0, rotate=True)
  for b, (i, f) in enumerate(zip(index, start)):
    want = audio[i, :, f * 100:f * 100 + 1000].astype(np.float32) / 32768
    got = np.asarray(out["audio"][b])
    if channels == 1:     # one channel of the array
      assert got.shape == (1, 1000)
      assert any(np.allclose(got[0], want[c]) for c in range(8))
    else:                 # a cyclic rotation of the channels
      assert any(np.allclose(got, np.roll(want, -k, axis=0)) for k in range(8))
    act = activity[i, f:f + 11]
    np.testing.assert_array_equal(out["activity"][b], act)
    np.testing.assert_array_equal(out["overlap"][b], act.sum(axis=1) >= 2)
    np.testing.assert_array_equal(out["speaker_ids"][b],
                                  np.where(act.any(axis=0), ids[i], -1))


def test_silence_augmentation_quietens_pauses_only():
  rng = np.random.default_rng(2)
  audio, activity, ids = pool(rng, m=1, n=6000, t=61)
  activity[0] = 0
  activity[0, 20:40, 0] = 1                         # one turn, frames 20-39
  kw = dict(window_samples=6000, hop=100, model_channels=8, gain_db=0.0, noise_snr_db=0.0,
            rotate=False)
  args = [jnp.asarray(x) for x in (audio, activity, ids, np.array([0]), np.array([0]))]
  plain = np.asarray(online.window_batch(*args, jax.random.key(3), **kw)["audio"][0])
  quiet = np.asarray(online.window_batch(*args, jax.random.key(3), silence_db=40.0,
                                         **kw)["audio"][0])
  ratio = np.abs(quiet).sum(axis=0) / (np.abs(plain).sum(axis=0) + 1e-9)      # per sample
  np.testing.assert_allclose(ratio[2000:4000], 1.0, rtol=1e-5)   # speech untouched
  far = np.concatenate([ratio[:1500], ratio[4500:]])             # beyond the 4-frame ramps
  assert np.allclose(far, far[0], rtol=1e-4) and 10 ** (-40 / 20) <= far[0] < 1.0
  ramp = ratio[1600:2000]                                        # rises towards the turn
  assert np.all(np.diff(ramp[::100]) >= 0) and ramp[-1] > ramp[0]


def test_pause_splicing_clears_the_labels_where_the_audio_is_replaced():
  rng = np.random.default_rng(4)
  audio, activity, ids = pool(rng, m=2, n=48000, t=481)
  activity[:, :, 0] = 1                              # speaker 0 talks throughout
  kw = dict(window_samples=32000, hop=100, model_channels=8, gain_db=0.0, noise_snr_db=0.0,
            rotate=False, sample_rate=16000)
  index, start = np.array([0, 1] * 8), np.zeros(16, np.int32)
  args = [jnp.asarray(x) for x in (audio, activity, ids, index, start)]
  plain = online.window_batch(*args, jax.random.key(5), **kw)
  out = online.window_batch(*args, jax.random.key(5), pause_prob=0.5, **kw)
  changed = np.any(np.asarray(out["audio"]) != np.asarray(plain["audio"]), axis=1)   # [B, N]
  cleared = np.asarray(out["activity"])[:, :, 0] == 0                                 # [B, T]
  spliced = changed.any(axis=1)
  assert 2 <= spliced.sum() <= 14                   # about half of the 16 windows
  for b in range(16):
    if not spliced[b]:
      np.testing.assert_array_equal(out["activity"][b], plain["activity"][b])
      continue
    where = np.flatnonzero(changed[b])
    a, e = where[0], where[-1] + 1                  # one contiguous stretch, >= 1 s
    assert e - a >= 16000 and changed[b, a:e].all()
    centres = np.arange(cleared.shape[1]) * 100
    np.testing.assert_array_equal(cleared[b], (centres >= a) & (centres < e))
    level = np.mean(np.asarray(out["audio"])[b][:, a:e] ** 2)
    assert level < np.mean(np.asarray(plain["audio"])[b] ** 2) / 5   # >= 10 dB under
    assert not out["speaker_ids"][b][0] == -1 or cleared[b].all()


def test_band_limit_passes_the_band_and_removes_the_rest():
  """band_prob 1: every window keeps 0.5-3.3 kHz as it was (all channels alike) and loses what
  lies past its random edges; band_prob 0 leaves the batch as it was."""
  rng = np.random.default_rng(6)
  audio, activity, ids = pool(rng, m=2, n=24000)
  kw = dict(window_samples=16000, hop=100, model_channels=8, gain_db=0.0, noise_snr_db=0.0,
            rotate=False, sample_rate=16000)
  index, start = np.array([0, 1] * 8), np.zeros(16, np.int32)
  args = [jnp.asarray(x) for x in (audio, activity, ids, index, start)]
  plain = np.asarray(online.window_batch(*args, jax.random.key(8), **kw)["audio"])
  same = np.asarray(online.window_batch(*args, jax.random.key(8), band_prob=0.0, **kw)["audio"])
  np.testing.assert_array_equal(same, plain)
  out = np.asarray(online.window_batch(*args, jax.random.key(8), band_prob=1.0, **kw)["audio"])
  f = np.fft.rfftfreq(16000, 1 / 16000)
  ratio = np.abs(np.fft.rfft(out)) / (np.abs(np.fft.rfft(plain)) + 1e-9)       # [B, C, F]
  np.testing.assert_allclose(ratio[..., (f >= 500) & (f <= 3300)], 1.0, rtol=1e-3)
  assert ratio.max() < 1.0 + 1e-3
  assert np.all(ratio[..., f < 1] < 0.51)                          # DC: low edge >= 0 Hz
  np.testing.assert_allclose(ratio, np.broadcast_to(ratio[:, :1], ratio.shape), atol=1e-3)
  top = ratio[:, 0, f >= 7900].max(axis=1)                         # [B]
  assert (top < 1e-3).sum() >= 8 and np.all(np.diff(ratio[:, 0, f > 3500], axis=-1) < 1e-3)


def test_time_schedule_is_the_one_cycle_over_the_budget():
  tcfg = array8.get_config().train
  ref = optax.cosine_onecycle_schedule(10_000, tcfg.learning_rate, pct_start=tcfg.pct_start)
  for f in (0.0, 0.1, 0.3, 0.5, 0.99):
    assert online.time_learning_rate(tcfg, f) == pytest.approx(float(ref(int(f * 10_000))))
  assert online.time_learning_rate(tcfg, 0.3) == pytest.approx(tcfg.learning_rate)
  assert online.time_learning_rate(tcfg, 2.0) == online.time_learning_rate(tcfg, 1.0)


def test_variables_round_trip_in_chunks(tmp_path, monkeypatch):
  monkeypatch.setattr(online.checkpoints, "CHUNK_BYTES", 1000)
  rng = np.random.default_rng(1)
  variables = {"params": {"a": {"kernel": rng.standard_normal((20, 20)).astype(np.float32)},
                          "b": rng.standard_normal(300).astype(np.float32)},
               "batch_stats": {"n": {"mean": np.arange(5, dtype=np.float32)}}}
  paths = online.save_variables(tmp_path, variables)
  assert len(paths) >= 3
  (tmp_path / "config.json").write_text(smoke.get_config().to_json())
  _, back = online.load_variables(tmp_path)
  for key in ("a", "b"):
    np.testing.assert_array_equal(jax.tree.leaves(back["params"][key]),
                                  jax.tree.leaves(variables["params"][key]))
  np.testing.assert_array_equal(back["batch_stats"]["n"]["mean"], np.arange(5))
  with pytest.raises(FileNotFoundError, match="variables"):
    online.load_variables(tmp_path / "nothing")


def test_config_overrides_are_typed_and_checked():
  config = online.load_config("configs/array8.py", ["--config.model.use_attention=False",
                                                    "--config.features.kind=full",
                                                    "--config.train.learning_rate=0.002"])
  assert config.model.use_attention is False and config.features.kind == "full"
  assert config.train.learning_rate == 0.002
  with pytest.raises(SystemExit, match="nope"):
    online.load_config("configs/array8.py", ["--config.nope=1"])
  with pytest.raises(SystemExit, match="bogus"):
    online.load_config("configs/array8.py", ["--bogus"])


def test_mono_recipe_trains_on_one_channel_of_the_array():
  config = mono.get_config()
  assert len(config.features.mic_positions) == 1 and config.features.kind == "lps"
  assert len(online.pool_geometry(config)) == 8


def test_import_cuts_tiles_and_labels_real_recordings(tmp_path):
  """Annotated recordings become pool meetings: a long one cut into slot-long pieces, a short
  one repeated to the slot length with its labels repeated in step, one channel copied to all
  of the pool's, too many talkers skipped, a channel count that fits nothing refused."""
  import soundfile as sf
  sr, hop = 1000, 10
  corpus = tmp_path / "corpus"
  corpus.mkdir()
  rng = np.random.default_rng(0)
  sf.write(corpus / "long.wav", rng.uniform(-0.5, 0.5, 25 * sr).astype(np.float32), sr)
  sf.write(corpus / "short.wav", rng.uniform(-0.5, 0.5, 4 * sr).astype(np.float32), sr)
  sf.write(corpus / "crowd.wav", rng.uniform(-0.5, 0.5, (10 * sr, 2)).astype(np.float32), sr)
  lines = ["long 1 2.0 3.0 a", "long 1 12.0 1.0 b", "short 1 1.0 1.0 c", "short 1 2.5 0.5 d"]
  lines += [f"crowd 1 {k}.0 1.0 s{k}" for k in range(6)]
  (corpus / "ref.rttm").write_text("".join(
      f"SPEAKER {l.split()[0]} 1 {l.split()[2]} {l.split()[3]} <NA> <NA> {l.split()[4]} "
      "<NA> <NA>\n" for l in lines))
  kw = dict(channels=3, meeting_seconds=10.0, max_speakers=4, sample_rate=sr, hop=hop)
  n = online.import_corpus(corpus, tmp_path / "pool", uris=["long", "short"], copies=2, **kw)
  files = sorted((tmp_path / "pool").glob("meeting*.npz"))
  assert n == len(files) == 2 * (2 + 1)           # 25 s -> two 10 s pieces; 4 s -> one
  long0, long1 = (np.load(f) for f in files[:4:2])
  assert long0["audio"].shape == (3, 10 * sr) and long0["activity"].shape == (1 + 10 * sr // hop, 1)
  np.testing.assert_array_equal(long0["audio"][0], long0["audio"][2])     # one channel to all
  assert list(long0["speakers"]) == ["a"] and list(long1["speakers"]) == ["b"]
  np.testing.assert_array_equal(np.flatnonzero(long0["activity"][:, 0])[[0, -1]], [200, 499])
  np.testing.assert_array_equal(np.flatnonzero(long1["activity"][:, 0])[[0, -1]], [200, 299])
  short = np.load(files[4])
  assert short["audio"].shape == (3, 10 * sr) and list(short["speakers"]) == ["c", "d"]
  np.testing.assert_array_equal(short["audio"][:, :4 * sr], short["audio"][:, 4 * sr:8 * sr])
  period = 4 * sr // hop                                      # the labels repeat with the audio
  np.testing.assert_array_equal(short["activity"][:period], short["activity"][period:2 * period])
  assert short["activity"][100:200, 0].all() and not short["activity"][:100].any()
  assert short["activity"][100 + period:200 + period, 0].all()
  assert online.import_corpus(corpus, tmp_path / "crowd", uris=["crowd"], **dict(kw, channels=2)) == 0
  with pytest.raises(ValueError, match="2 channels, the pool has 3"):
    online.import_corpus(corpus, tmp_path / "bad", uris=["crowd"], **kw)


SPEAKERS = [f"synth{i:03d}" for i in range(16)]     # the procedural fallback's voices


def tiny_pool(folder, seed: int):
  """(smoke config with 2 s windows, meetings made) for a pool of 6 s procedural meetings."""
  config = smoke.get_config()
  config.data.meeting_seconds = 6.0
  config.data.window_seconds = 2.0
  config.train.batch_size = 2
  config.train.compute_dtype = "auto"
  made = online.simulate_pool("", folder, workers=1, seconds=1.0, seed=seed,
                              sim=config.data.sim, geometry=config.features.mic_positions,
                              duration=6.0)
  return config, made


def test_pool_ring_over_half_the_device_memory_is_refused():
  online.check_capacity(160, 8, 960000, limit=24 * 2**30, share=0.5)  # 2.3 GiB of 24: fine
  with pytest.raises(SystemExit, match=r"1024 meetings needs 14.6 GiB, over 50% of the "
                                       r"device's 24.0 GiB: pass --capacity 838 or less"):
    online.check_capacity(1024, 8, 960000, limit=24 * 2**30, share=0.5)
  online.check_capacity(1024, 8, 960000, limit=24 * 2**30, share=0.8)  # an accelerator's share
  assert online.device_memory_bytes() > 2**20                    # this host's RAM


@pytest.mark.slow
def test_simulate_train_export(tmp_path):
  config, made = tiny_pool(tmp_path / "pool", 3)
  assert made >= 1 and len(list((tmp_path / "pool").glob("meeting*.npz"))) == made
  summary = online.train(config, tmp_path / "pool", tmp_path / "run", seconds=600, capacity=4,
                         min_meetings=1, max_steps=3, log_every=1, speakers=SPEAKERS)
  assert summary["steps"] == 3 and summary["dtype"] == "float32"
  rows = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
  assert len(rows) == 3 and all(np.isfinite(r["loss/total"]) and r["finite"] == 1 for r in rows)
  assert rows[0]["lr"] < rows[-1]["lr"] or rows[0]["lr"] > 0     # the schedule was applied
  cfg, variables = online.load_variables(tmp_path / "run")
  assert cfg.model.num_speaker_classes == 16
  # Fine-tuning starts from those variables: with no step taken they come back unchanged.
  online.train(config, tmp_path / "pool", tmp_path / "tuned", seconds=600, capacity=4,
               min_meetings=1, max_steps=0, speakers=SPEAKERS, init=tmp_path / "run")
  _, tuned = online.load_variables(tmp_path / "tuned")
  for a, b in zip(jax.tree.leaves(variables), jax.tree.leaves(tuned)):
    np.testing.assert_array_equal(a, b)
  wide = config.copy_and_resolve_references()
  wide.model.embedding_dim = 2 * config.model.embedding_dim
  with pytest.raises(SystemExit, match="does not fit"):
    online.train(wide, tmp_path / "pool", tmp_path / "wide", seconds=600, capacity=4,
                 min_meetings=1, max_steps=0, speakers=SPEAKERS, init=tmp_path / "run")
  export.export(cfg, variables, tmp_path / "m.jaxdiar", platforms=("cpu",))
  model = runtime.load(tmp_path / "m.jaxdiar")
  out = model(np.zeros((1, 8, 32000), np.float32) + 0.01)
  assert np.asarray(out["vad"]).shape == (1, 126, config.model.num_speakers)
  # ... and from an exported file (e.g. a bundled model): the same variables.
  online.train(config, tmp_path / "pool", tmp_path / "from-file", seconds=600, capacity=4,
               min_meetings=1, max_steps=0, speakers=SPEAKERS, init=tmp_path / "m.jaxdiar")
  _, again = online.load_variables(tmp_path / "from-file")
  for a, b in zip(jax.tree.leaves(variables), jax.tree.leaves(again)):
    np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_killed_run_resumes_from_its_last_save(tmp_path):
  """Three steps, then a second sitting of two more: the state, steps and schedule carry on;
  the second sitting's first row (step 4, one step summed) is its mean, not a share of it."""
  config, _ = tiny_pool(tmp_path / "pool", 4)
  kwargs = dict(seconds=600, capacity=4, min_meetings=1, log_every=2, speakers=SPEAKERS)
  online.train(config, tmp_path / "pool", tmp_path / "run", max_steps=3, **kwargs)
  first = json.loads((tmp_path / "run" / "progress.json").read_text())
  _, saved = online.load_variables(tmp_path / "run")
  summary = online.train(config, tmp_path / "pool", tmp_path / "run", max_steps=5, **kwargs)
  assert first["steps"] == 3 and summary["steps"] == 5
  second = json.loads((tmp_path / "run" / "progress.json").read_text())
  assert second["budget"] == first["budget"] and second["seconds"] > first["seconds"]
  assert len(list((tmp_path / "run").glob("state-*.bin"))) == len(second["files"])
  rows = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in rows] == [2, 4]
  assert [r["finite"] for r in rows] == [1.0, 1.0]       # was 0.5: a false non-finite warning
  _, final = online.load_variables(tmp_path / "run")
  moved = [np.abs(a - b).max() for a, b in zip(jax.tree.leaves(final), jax.tree.leaves(saved))]
  assert max(moved) > 0                         # the second sitting trained further
