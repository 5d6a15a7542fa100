"""The geometry-agnostic array model (`srp` features, configs/anyarray.py): the features
against the numpy SRP-PHAT, a model grown from a one-channel one starts as it, windows of
random microphone subsets, random arrays for the pool, and the exported file taking the
geometry as an input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import soundfile as sf

from configs import smoke
from jaxdiar.core import features as features_lib
from jaxdiar.core import model as model_lib
from jaxdiar.core import spatial
from jaxdiar.data import shift
from jaxdiar.decoding import windows as windows_lib
from jaxdiar.models import export
from jaxdiar.models import runtime
from jaxdiar.training import budget
from jaxdiar.training import device
from jaxdiar.training import pool as pool_lib

SQUARE = np.array([[-0.032, 0, 0], [0, -0.032, 0], [0.032, 0, 0], [0, 0.032, 0]], np.float32)


def srp_config(kind="srp"):
  config = smoke.get_config()
  config.features.kind = kind
  config.features.srp_azimuths = 36
  config.features.srp_band = (300.0, 3500.0)
  config.model.channels = [16, 16]
  config.model.use_attention = False
  return config


def test_srp_features_equal_the_numpy_srp_phat_and_the_first_channels_spectrum():
  cfg = srp_config().features
  audio = np.random.default_rng(0).standard_normal((2, 4, 8000)).astype(np.float32)
  mics = np.stack([SQUARE, 2.5 * SQUARE])
  feats = np.asarray(features_lib.extract(jnp.asarray(audio), cfg, jnp.asarray(mics)))
  assert feats.shape == (2, features_lib.feature_dim(cfg), 32) == (2, 257 + 36, 32)
  grid = features_lib.srp_azimuths(cfg)
  for b in range(2):
    want = spatial.frame_response(spatial.stft(audio[b]), spatial.steering(mics[b], 512, 16000,
                                                                           grid))
    np.testing.assert_allclose(feats[b, 257:].T, want, atol=1e-6)
    lps = 10 * np.log10(np.abs(spatial.stft(audio[b, :1])[0]) ** 2 + 1e-10)
    np.testing.assert_allclose(feats[b, :257], lps, atol=1e-3)
  # A padded channel, masked, changes nothing; one microphone has no directions.
  padded = np.concatenate([audio[:, :3], np.zeros_like(audio[:, :1])], axis=1)
  mask = np.array([[1, 1, 1, 0], [1, 0, 0, 0]], np.float32)
  masked = np.asarray(features_lib.extract(jnp.asarray(padded), cfg, jnp.asarray(mics),
                                           jnp.asarray(mask)))
  want = spatial.frame_response(spatial.stft(audio[0, :3]),
                                spatial.steering(mics[0, :3], 512, 16000, grid))
  np.testing.assert_allclose(masked[0, 257:].T, want, atol=1e-6)
  assert np.all(masked[1, 257:] == 0)


def grown(config_from, config_to, seed=0):
  """Variables of `config_to`'s model grown from a fresh `config_from` model's."""
  d_from = features_lib.feature_dim(config_from.features)
  d_to = features_lib.feature_dim(config_to.features)
  small = model_lib.init_variables(model_lib.from_config(config_from.model),
                                   jax.random.key(seed), d_from)
  template = model_lib.init_variables(model_lib.from_config(config_to.model),
                                      jax.random.key(seed + 1), d_to)
  return small, jax.tree_util.tree_map_with_path(budget._like, template, small)


def test_a_model_grown_from_a_one_channel_model_starts_as_it():
  lps, srp = srp_config("lps"), srp_config()
  small, big = grown(lps, srp)
  audio = np.random.default_rng(1).standard_normal((2, 4, 8000)).astype(np.float32) * 0.1
  old = export.forward_with(model_lib.from_config(lps.model), lps.features)(
      small, jnp.asarray(audio[:, :1]))
  new = export.forward_with(model_lib.from_config(srp.model), srp.features)(
      big, jnp.asarray(audio), SQUARE, jnp.ones(4))
  for key in ("vad", "osd", "spk_emb"):     # float32 sums in another order: 2e-4 at most
    np.testing.assert_allclose(new[key], old[key], atol=1e-3)
  # ... but not any other shape: only the input layers may grow.
  wider = srp_config()
  wider.model.embedding_dim = 2 * srp.model.embedding_dim
  with pytest.raises(ValueError, match="shape"):
    grown(srp, wider)


def test_windows_keep_random_microphone_subsets_with_their_turned_positions():
  rng = np.random.default_rng(2)
  m, c, n = 3, 8, 4000
  audio = rng.integers(-3000, 3000, (m, c, n)).astype(np.int16)
  activity = (rng.random((m, 41, 4)) < 0.4).astype(np.uint8)
  ids = np.full((m, 4), -1, np.int32)
  mics = np.stack([shift.random_array(np.random.default_rng(i)) for i in range(m)])
  index, start = np.array([0, 2, 1, 2, 0, 1]), np.array([0, 7, 13, 20, 3, 5])
  out = device.window_batch(jnp.asarray(audio), jnp.asarray(activity), jnp.asarray(ids),
                            jnp.asarray(index), jnp.asarray(start), jax.random.key(0),
                            window_samples=1000, hop=100, model_channels=8, gain_db=0.0,
                            noise_snr_db=0.0, rotate=False, pool_mics=jnp.asarray(mics),
                            subset_mono_prob=0.3)
  counts = np.asarray(out["mic_mask"]).sum(axis=1)
  assert set(counts) <= set(range(1, 9)) and len(set(counts)) > 1
  for b, (i, f) in enumerate(zip(index, start)):
    k = int(counts[b])
    np.testing.assert_array_equal(out["mic_mask"][b], np.arange(8) < k)
    got = np.asarray(out["audio"][b])
    assert np.all(got[k:] == 0)
    want = audio[i, :, f * 100:f * 100 + 1000].astype(np.float32) / 32768
    order = [next(j for j in range(8) if np.allclose(got[r], want[j])) for r in range(k)]
    assert len(set(order)) == k                          # distinct microphones
    # Their positions, turned about the vertical: the same distances between them.
    pos = np.asarray(out["mics"][b])
    dist = lambda p: np.linalg.norm(p[:, None] - p[None], axis=-1)
    np.testing.assert_allclose(dist(pos[:k]), dist(mics[i][order]), atol=1e-6)


def test_random_arrays_are_small_planar_and_drawn_per_seed(tmp_path):
  arrays = [shift.random_array(np.random.default_rng(s)) for s in range(40)]
  np.testing.assert_array_equal(arrays[3], shift.random_array(np.random.default_rng(3)))
  for a in arrays:
    assert a.shape == (8, 3) and np.all(a[:, 2] == 0)
    gaps = np.linalg.norm(a[:, None] - a[None], axis=-1)[np.triu_indices(8, 1)]
    assert gaps.min() >= 0.0099 and gaps.max() <= 0.30
  # A pool meeting keeps its array; the device pool reads it (or the default geometry).
  speech = ["a", "b"]
  pool_lib.save_meeting(tmp_path / "meeting-a.npz", np.zeros((8, 1600), np.int16),
                        np.zeros((7, 2), np.uint8), speech, arrays[0])
  pool_lib.save_meeting(tmp_path / "meeting-b.npz", np.zeros((8, 1600), np.int16),
                        np.zeros((7, 2), np.uint8), speech)
  ring = device.DevicePool(tmp_path, 2, 8, 1600, 7, 4, {}, geometry=arrays[1])
  assert ring.refresh() == 2
  np.testing.assert_allclose(ring.mics[0], arrays[0], atol=1e-7)
  np.testing.assert_allclose(ring.mics[1], arrays[1], atol=1e-7)


@pytest.fixture(scope="module")
def srp_file(tmp_path_factory):
  config = srp_config()
  config.model.num_speaker_classes = 3
  variables = model_lib.init_variables(model_lib.from_config(config.model), jax.random.key(3),
                                       features_lib.feature_dim(config.features))
  path = tmp_path_factory.mktemp("srp") / "srp.jaxdiar"
  export.export(config, variables, path, platforms=("cpu",))
  return path, config, variables


def test_exported_model_takes_the_geometry_of_up_to_its_channels(srp_file):
  path, config, variables = srp_file
  model = runtime.load(path)
  assert model.takes_geometry and model.num_channels == 8 and not model.needs_array
  audio = np.random.default_rng(4).standard_normal((2, 4, 8000)).astype(np.float32) * 0.1
  forward = export.forward_with(model_lib.from_config(config.model), config.features)
  padded = np.concatenate([audio, np.zeros((2, 4, 8000), np.float32)], axis=1)
  mics8 = np.concatenate([SQUARE, np.zeros((4, 3), np.float32)])
  want = forward(variables, jnp.asarray(padded), mics8, jnp.asarray(np.r_[np.ones(4),
                                                                         np.zeros(4)]))
  got = model(audio, SQUARE)
  for key in want:
    np.testing.assert_allclose(got[key], want[key], atol=1e-5)
  # Without a geometry: the first channel alone.
  alone = model(audio[:, :1], SQUARE[:1])
  for key in want:
    np.testing.assert_allclose(model(audio)[key], alone[key], atol=1e-6)
  with pytest.raises(ValueError, match="up to 8 channels"):
    model(np.zeros((1, 9, 8000), np.float32), np.zeros((9, 3)))


def test_diarize_runs_the_geometry_model_on_a_four_channel_file(srp_file, tmp_path):
  path, _, _ = srp_file
  model = runtime.load(path)
  audio = np.random.default_rng(5).standard_normal((4 * 16000, 4)).astype(np.float32) * 0.1
  wav = tmp_path / "four.wav"
  sf.write(wav, audio, 16000)
  with_mics = windows_lib.infer(wav, model, progress=False, mics=SQUARE)
  without = windows_lib.infer(wav, model, progress=False)
  assert with_mics.vad.shape == without.vad.shape
  assert not np.allclose(with_mics.vad, without.vad)     # the directions reach the network
  assert without.direction is None
