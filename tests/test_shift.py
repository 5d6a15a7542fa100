"""The shift suite's generator (jaxdiar.data.shift): deterministic per seed, its habits."""

import numpy as np
import pytest
import scipy.signal
import soundfile as sf

from configs import default
from jaxdiar.data import shift

GEOMETRY = default.circular_array(8, 0.10)
TINY = dict(seconds=(9.0, 10.0), max_order=4, rt60=(0.2, 0.3))


@pytest.fixture(scope="module")
def speech(speech_dir):
  return shift.voices(speech_dir)


@pytest.fixture(scope="module")
def speech_dir(tmp_path_factory):
  """Four talkers of harmonic bursts with pauses (a speech-like stand-in), 2 files each."""
  root = tmp_path_factory.mktemp("speech")
  rng = np.random.default_rng(0)
  t = np.arange(int(2.5 * 16000)) / 16000
  for k in range(4):
    (root / f"spk{k}").mkdir()
    for u in range(2):
      f0 = 100 + 40 * k + 5 * u
      x = sum(np.sin(2 * np.pi * h * f0 * t) / h for h in range(1, 6))
      x *= (np.sin(2 * np.pi * 1.5 * t) > -0.3)              # bursts and pauses
      x += 0.001 * rng.standard_normal(len(t))
      sf.write(root / f"spk{k}" / f"u{u}.flac", (0.3 * x / np.abs(x).max()).astype(np.float32),
               16000)
  return root


def _meeting(speech, name, seed, index=0, **extra):
  return shift.meeting(speech, name, seed, index, GEOMETRY,
                       settings={**shift.SETS.get(name, {}), **TINY, **extra})


def test_same_seed_same_meeting_other_seed_differs(speech):
  a, rate, turns, scene = _meeting(speech, "uneven", 1)
  b, _, turns_b, scene_b = _meeting(speech, "uneven", 1)
  c, _, turns_c, _ = _meeting(speech, "uneven", 2)
  assert a.shape[0] == 8 and a.dtype == np.int16 and rate == 16000
  np.testing.assert_array_equal(a, b)
  assert turns == turns_b and scene == scene_b
  assert turns and all(0 <= t.onset < t.offset <= scene["seconds"] + 1e-6 for t in turns)
  assert a.shape != c.shape or not np.array_equal(a, c) or turns != turns_c


def test_ray_traced_meetings_are_reproducible(speech):
  """pyroomacoustics' ray tracing draws from generators of its own: the generator seeds them
  per meeting, so whatever state numpy's global generator is in, the meeting is the same."""
  np.random.seed(1)
  a, _, turns, _ = _meeting(speech, "heavy", 3)
  np.random.seed(2)
  b, _, turns_b, _ = _meeting(speech, "heavy", 3)
  np.testing.assert_array_equal(a, b)
  assert turns == turns_b and shift.SETS["heavy"]["ray_tracing"]


def test_rates_set_is_the_uneven_meeting_resampled(speech):
  a, rate, turns, _ = _meeting(speech, "uneven", 5, index=1)
  b, rate_b, turns_b, scene_b = _meeting(speech, "rates", 5, index=1)
  assert rate == 16000 and rate_b == 48000 and scene_b["sample_rate"] == 48000
  assert [(t.onset, t.offset, t.speaker) for t in turns] == [
      (t.onset, t.offset, t.speaker) for t in turns_b]
  assert abs(b.shape[1] / 48000 - a.shape[1] / 16000) < 1e-3


def test_uneven_shares_give_a_minor_talker_and_late_joiners_join_late(speech):
  rng = np.random.default_rng(3)
  settings = dict(shift.BASE, **shift.SETS["uneven"])
  for _ in range(5):
    turns = shift.conversation(rng, 4, 300.0, settings)
    talk = np.zeros(4)
    for k, _, length in turns:
      talk[k] += length
    assert talk.min() <= 16.0 + 6.0            # the minor talker's budget (+ interjections)
    assert talk.max() > 3 * talk.min()
  late = dict(shift.BASE, **shift.SETS["long"])
  turns = shift.conversation(np.random.default_rng(4), 4, 600.0, late)
  first = {k: min(s for j, s, _ in turns if j == k) for k in {j for j, _, _ in turns}}
  last = {k: max(s + n for j, s, n in turns if j == k) for k in first}
  assert max(first.values()) > 100 or min(last.values()) < 500


def test_diffuse_noise_has_the_arrays_coherence():
  mics = np.asarray(GEOMETRY)
  x = shift.diffuse_noise(np.random.default_rng(0), mics, 16000 * 20, colour=0.0)
  for a, b in ((0, 1), (0, 4)):                     # neighbours, and across the circle
    f, coh = scipy.signal.coherence(x[a], x[b], fs=16000, nperseg=512)
    d = np.linalg.norm(mics[a] - mics[b])
    expected = np.sinc(2 * f * d / shift.SOUND_SPEED) ** 2     # magnitude-squared coherence
    band = (f > 200) & (f < 6000)
    assert np.mean(np.abs(coh[band] - expected[band])) < 0.08


def test_randomised_settings_span_the_suite():
  draws = [shift.randomised(np.random.default_rng(i)) for i in range(200)]
  assert min(d["alpha"] for d in draws) < 0.6 and max(d["alpha"] for d in draws) > 3.0
  assert max(d["speakers"][1] for d in draws) == 6
  assert max(d["rt60"][1] for d in draws) > 1.0
  assert any(d["speed"] for d in draws) and any(d["move"] for d in draws)


def test_fit_settings_of_the_short_and_long_fit_meetings():
  """The fit meetings' draws are those of before the long fit set existed (the same rng
  words); the long ones are 10-20 min, 3 talkers or more, late joiners in most."""
  import zlib
  for i in range(5):
    assert shift.fit_settings(shift.FIT, 3100, i) == shift.randomised(
        np.random.default_rng([3100, zlib.crc32(b"fit"), i, 1]))
  draws = [shift.fit_settings(shift.FIT_LONG, 3600, i) for i in range(60)]
  assert all(d["seconds"] == (600.0, 1200.0) and d["speakers"][0] == 3 <= d["speakers"][1]
             for d in draws)
  assert 0.5 < np.mean([d["late"] for d in draws]) < 0.9
  assert any(d["minor_seconds"] for d in draws)



def test_pool_meetings_for_online_training(speech_dir, tmp_path, monkeypatch):
  """`pool` writes jaxdiar.online's format: int16 audio, frame activity of the reference,
  talker names; at most max_speakers talkers, meeting_seconds long; deterministic."""
  monkeypatch.setattr(shift, "randomised",
                      lambda rng, real=shift.randomised: {**real(rng), **TINY})
  for out in ("a", "b"):
    assert shift.pool(speech_dir, tmp_path / out, seconds=0, seed=9, geometry=GEOMETRY,
                      meeting_seconds=6.0, max_speakers=2) == 1
  (a,) = sorted((tmp_path / "a").glob("*.npz"))
  z, zb = np.load(a), np.load(tmp_path / "b" / a.name)
  assert z["audio"].dtype == np.int16 and z["audio"].shape == (8, 6 * 16000)
  assert z["activity"].shape == (1 + 6 * 16000 // 256, len(z["speakers"]))
  assert 1 <= len(z["speakers"]) <= 2 and z["activity"].any()
  np.testing.assert_array_equal(z["audio"], zb["audio"])
  np.testing.assert_array_equal(z["activity"], zb["activity"])


def test_suite_mean_and_table():
  from benchmarks import bench_shift
  row = lambda der, right=1: {"der": der, "missed": 0.0, "false_alarm": 0.0, "confusion": der,
                              "count_right": right, "meetings": 2}
  sets = {"uneven": {bench_shift.FLOOR: {"est": row(0.5)}, "m": {"est": row(0.2), "true": row(0.1)}},
          "crowd": {bench_shift.FLOOR: {"est": row(0.6)}, "m": {"est": row(0.4), "true": row(0.3)}}}
  mean = bench_shift.means(sets)
  assert mean["m"]["mean"] == pytest.approx(0.3) and mean["m"]["worst"] == ["crowd", 0.4]
  assert mean[bench_shift.FLOOR]["mean"] == pytest.approx(0.55)
  table = bench_shift.markdown(dict(sets=sets, mean=mean))
  assert "| uneven | 50.0 | - | 20.0 / 10.0 (1/2) |" in table
  assert "**30.0** (worst crowd 40.0)" in table
