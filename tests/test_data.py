"""Simulator, corpus readers, TFDS windows and the grain pipeline."""

import json

import numpy as np
import pytest
import soundfile as sf

from configs import smoke
from jaxdiar.cli import simulate as cli_simulate
from jaxdiar.core import features
from jaxdiar.data import audio as audio_lib
from jaxdiar.data import corpus as corpus_lib
from jaxdiar.data import datasets
from jaxdiar.data import pipeline
from jaxdiar.data import simulate as sim_lib
from jaxdiar.io import rttm
from tests.conftest import shared_data

CFG = smoke.get_config()
GEOMETRY = CFG.features.mic_positions


def _simulate(out, seed, num=2, duration=8.0, source=None):
  return sim_lib.simulate_corpus(source or sim_lib.speech_source(""), out, num, seed,
                                 CFG.data.sim, GEOMETRY, duration, progress=False)


@pytest.fixture(scope="module")
def sim_corpus(tmp_path_factory):
  out = tmp_path_factory.mktemp("sim") / "train"
  _simulate(out, seed=3, num=3, duration=10.0)
  return out


def test_same_seed_same_bytes_different_seed_differs(tmp_path):
  _simulate(tmp_path / "a", seed=7)
  _simulate(tmp_path / "b", seed=7)
  _simulate(tmp_path / "c", seed=8)
  for name in ("meeting00000.wav", "meeting00001.wav", "meeting00000.rttm", "meeting00001.json"):
    assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
  assert (tmp_path / "a" / "meeting00000.wav").read_bytes() != (
      tmp_path / "c" / "meeting00000.wav").read_bytes()
  # Parallel workers write the same bytes as one process.
  sim_lib.simulate_corpus(sim_lib.speech_source(""), tmp_path / "d", 2, 7, CFG.data.sim,
                          GEOMETRY, 8.0, max_workers=2, progress=False)
  assert (tmp_path / "a" / "meeting00001.wav").read_bytes() == (
      tmp_path / "d" / "meeting00001.wav").read_bytes()


def test_meeting_files_and_scene(sim_corpus):
  rate, channels, frames = audio_lib.info(sim_corpus / "meeting00000.wav")
  assert (rate, channels, frames) == (16000, 8, 160000)
  scene = json.loads((sim_corpus / "meeting00000.json").read_text())
  assert scene["procedural_speech"] and 1 <= len(scene["speakers"]) <= 4
  assert CFG.data.sim.rt60[0] <= scene["rt60"] <= CFG.data.sim.rt60[1]
  manifest = json.loads((sim_corpus / "corpus.json").read_text())
  assert len(manifest["meetings"]) == 3
  assert not list(sim_corpus.glob(".*"))            # no temporary files left


def test_overlap_ratio_within_configured_range_and_nobody_overlaps_themselves():
  source = sim_lib.speech_source(str(shared_data("speech", "libri-test-other")))
  lo, hi = CFG.data.sim.overlap_range
  ratios = []
  for i in range(4):
    _, turns, scene = sim_lib.simulate_meeting(source, i, 0, CFG.data.sim, GEOMETRY, 60.0,
                                               16000)
    if len(scene["speakers"]) > 1:
      ratios.append(sim_lib.overlap_ratio(turns, 60.0))
      assert ratios[-1] == pytest.approx(scene["overlap_ratio"])
    for name in {t.speaker for t in turns}:     # the overlap is between talkers, never within
      own = sorted((t.onset, t.offset) for t in turns if t.speaker == name)
      assert all(b[0] >= a[1] for a, b in zip(own, own[1:])), (i, name)
  assert ratios and all(lo <= r <= hi for r in ratios), ratios
  assert abs(np.mean(ratios) - CFG.data.sim.overlap_target) < 0.08, ratios


def test_turns_are_tight_to_the_speech(tmp_path):
  """The dry speech of an RTTM turn starts and ends loud; edges are not padded silence."""
  source = sim_lib.speech_source(str(shared_data("speech", "libri-test-other")))
  x = sim_lib._load_utterance(source.utterances[source.speakers[0]][0], 16000)
  segs = sim_lib._speech_segments(x, 16000)
  assert segs
  frame = 400
  for s, e in segs:
    level = lambda a: 10 * np.log10(np.mean(a ** 2) + 1e-12)
    peak = level(x[s:e])
    assert level(x[s:s + frame]) > peak - 35 and level(x[e - frame:e]) > peak - 35


def test_windows_agree_with_rttm(sim_corpus):
  """Frame activity rebuilt from overlapping windows equals the RTTM at frame resolution."""
  meeting, = corpus_lib.read_corpus(sim_corpus, ["meeting00001"])
  speakers = meeting.speakers
  ids = {s: i for i, s in enumerate(speakers)}
  hop, sr = CFG.features.hop, 16000
  wins = list(corpus_lib.windows(meeting, ids, 4, 2.0, 1.0, sr, hop, 8))
  assert len(wins) == 9
  for w in wins:
    centres = (w["start"] + np.arange(w["activity"].shape[0]) * hop) / sr
    for slot, spk in enumerate(w["speaker_ids"]):
      if spk < 0:
        assert not w["activity"][:, slot].any()
        continue
      expected = np.zeros(len(centres), bool)
      for t in meeting.turns:
        if t.speaker == speakers[spk]:
          expected |= (centres >= t.onset) & (centres < t.offset)
      np.testing.assert_array_equal(w["activity"][:, slot].astype(bool), expected)
    assert w["audio"].dtype == np.int16 and w["audio"].shape == (8, 32000)


def test_windows_keep_the_most_active_speakers():
  turns = [rttm.Turn("m", 0.0, 2.0, "a"), rttm.Turn("m", 0.0, 0.5, "b"),
           rttm.Turn("m", 0.0, 1.0, "c")]
  act = corpus_lib.frame_activity(turns, ["a", "b", "c"], 126, 256, 16000)
  assert act.sum(0).tolist() == [125, 32, 63]


def test_tfds_windows_and_shards(sim_corpus, tmp_path):
  meetings = corpus_lib.read_corpus(sim_corpus)
  speakers = sorted({s for m in meetings for s in m.speakers})
  builder = datasets.build("t", tmp_path, {"train": str(sim_corpus)}, speakers, CFG.features,
                           4, 2.0, 1.0)
  source = builder.as_data_source("train")
  assert len(source) == 27
  ex = source[0]
  assert ex["audio"].shape == (8, 32000) and ex["activity"].shape == (126, 4)
  # Two hosts: disjoint shards that cover the data set (one epoch, no shuffle).
  # An example is identified by its audio (windows of different times differ).
  key = lambda audio: audio.astype(np.float64).round(6).tobytes()
  seen = []
  for host in range(2):
    loader = pipeline.make_loader(source, global_batch_size=2, seed=0, shuffle=True,
                                  num_epochs=1, shard_index=host, shard_count=2,
                                  drop_remainder=False)
    seen.append([key(b["audio"][i] * 32768.0) for b in loader for i in range(len(b["audio"]))])
  all_keys = [key(source[i]["audio"].astype(np.float32)) for i in range(len(source))]
  assert len(set(all_keys)) == 27
  # 27 examples, 2 shards with drop_remainder: 13 each, disjoint, all real examples.
  assert len(seen[0]) == len(seen[1]) == 13
  assert not set(seen[0]) & set(seen[1])
  assert len(set(seen[0]) | set(seen[1]) | set(all_keys)) == 27
  covered = []
  for host in range(3):   # 27 = 3 x 9: three shards cover every example exactly once
    loader = pipeline.make_loader(source, global_batch_size=3, seed=0, num_epochs=1,
                                  shard_index=host, shard_count=3, drop_remainder=False)
    covered += [key(b["audio"][i] * 32768.0) for b in loader for i in range(len(b["audio"]))]
  assert sorted(covered) == sorted(all_keys)


def test_restored_iterator_continues_with_the_same_batches(sim_corpus, tmp_path):
  meetings = corpus_lib.read_corpus(sim_corpus)
  speakers = sorted({s for m in meetings for s in m.speakers})
  source = datasets.build("t", tmp_path, {"train": str(sim_corpus)}, speakers, CFG.features,
                          4, 2.0, 1.0).as_data_source("train")
  make = lambda: pipeline.make_loader(source, global_batch_size=4, seed=5,
                                      augment=pipeline.augment_from_config(CFG.data,
                                                                           CFG.features),
                                      shard_index=0, shard_count=1)
  it = iter(make())
  for _ in range(3):
    next(it)
  state = it.get_state()
  expected = [next(it) for _ in range(8)]          # crosses an epoch boundary (27 // 4 = 6)
  resumed = iter(make())
  resumed.set_state(state)
  for a in expected:
    b = next(resumed)
    for k in a:
      np.testing.assert_array_equal(a[k], b[k])


def test_rotation_augmentation_is_a_channel_roll():
  assert features.is_uniform_circular(GEOMETRY)
  assert not features.is_uniform_circular([[0, 0, 0], [0.1, 0, 0], [0.3, 0, 0]])
  ex = dict(audio=(np.arange(8)[:, None] * 100 + np.zeros((8, 4))).astype(np.int16),
            activity=np.ones((3, 4), np.uint8), overlap=np.zeros(3, np.uint8),
            speaker_ids=np.arange(4, dtype=np.int32))
  out = pipeline.Augment(rotate=True).random_map(ex, np.random.default_rng(1))
  first = out["audio"][:, 0] * 32768 / 100
  assert sorted(np.round(first).astype(int)) == list(range(8))
  shift = int(np.round(first[0]))
  np.testing.assert_allclose(np.round(first), (np.arange(8) + shift) % 8)
  np.testing.assert_array_equal(out["activity"], ex["activity"])


def test_reads_ami_excerpts_and_per_channel_array(tmp_path):
  meetings = corpus_lib.read_corpus(shared_data("ami-excerpts"))
  assert len(meetings) == 10 and meetings[0].uem == ((0.0, 30.0),)
  assert "MÉO069" in meetings[0].speakers
  ids = {s: i for i, s in enumerate(sorted({s for m in meetings for s in m.speakers}))}
  wins = list(corpus_lib.windows(meetings[0], ids, 4, 8.0, 8.0, 16000, 256, 1))
  assert len(wins) == 3 and wins[0]["audio"].shape == (1, 128000)
  array = shared_data("array", "ami-wsj-array1")
  rate, channels, frames = audio_lib.info(array)
  assert (rate, channels) == (16000, 8) and frames == 127523
  audio = audio_lib.read(array, 16000)
  first = sf.read(sorted(array.iterdir(), key=audio_lib.natural_key)[0], dtype="float32")[0]
  np.testing.assert_array_equal(audio[0], first)


def test_bad_inputs(tmp_path):
  bad = tmp_path / "corrupt.wav"
  bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
  with pytest.raises(audio_lib.AudioError, match="corrupt.wav"):
    audio_lib.read(bad, 16000)
  # Channel-count mismatch between a recording and the config's array.
  folder = tmp_path / "corpus"
  folder.mkdir()
  sf.write(folder / "m.wav", np.zeros((16000, 2), np.float32), 16000)
  rttm.write_rttm(folder / "m.rttm", [rttm.Turn("m", 0, 0.5, "a")])
  meeting, = corpus_lib.read_corpus(folder)
  with pytest.raises(audio_lib.AudioError, match="2 channels"):
    next(corpus_lib.windows(meeting, {"a": 0}, 4, 0.5, 0.5, 16000, 256, 8))
  # Per-channel files at different sample rates.
  chans = tmp_path / "chans"
  chans.mkdir()
  sf.write(chans / "ch1.wav", np.zeros(800, np.float32), 16000)
  sf.write(chans / "ch2.wav", np.zeros(400, np.float32), 8000)
  with pytest.raises(audio_lib.AudioError, match="different sample rates"):
    audio_lib.info(chans)
  # Other rates are resampled.
  sf.write(tmp_path / "8k.wav", np.zeros(8000, np.float32), 8000)
  assert audio_lib.read(tmp_path / "8k.wav", 16000).shape == (1, 16000)
  # NaN samples.
  sf.write(tmp_path / "nan.wav", np.full(100, np.nan, np.float32), 16000, subtype="FLOAT")
  with pytest.raises(audio_lib.AudioError, match="NaN"):
    audio_lib.read(tmp_path / "nan.wav", 16000)
  # A speech folder without audio; the simulator writes nothing.
  (tmp_path / "speech" / "spk1").mkdir(parents=True)
  (tmp_path / "speech" / "spk1" / "notes.txt").write_text("x")
  with pytest.raises(audio_lib.AudioError, match="no speech found"):
    sim_lib.speech_source(str(tmp_path / "speech"))
  with pytest.raises(audio_lib.AudioError, match="does not exist"):
    sim_lib.speech_source(str(tmp_path / "missing"))
  # A corrupt utterance stops the simulation without a finished-looking corpus.
  (tmp_path / "speech" / "spk1" / "u.wav").write_bytes(b"RIFFjunk")
  (tmp_path / "speech" / "spk2").mkdir()
  (tmp_path / "speech" / "spk2" / "u.wav").write_bytes(b"RIFFjunk")
  with pytest.raises(audio_lib.AudioError, match="u.wav"):
    _simulate(tmp_path / "out", 0, source=sim_lib.speech_source(str(tmp_path / "speech")))
  assert not (tmp_path / "out" / "corpus.json").exists()
  assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("rate", [8000, 44100, 48000])
def test_a_resampled_block_is_that_of_the_whole_file(tmp_path, rate):
  """`read_block` from a file at another rate gives the samples of resampling the whole file
  (the oracle: `audio.read` of all of it), at any start (the windows' and live blocks' starts),
  to float rounding: no shift, no ringing at the block's edges."""
  from jaxdiar.decoding.windows import read_block
  rng = np.random.default_rng(rate)
  seconds = 3.0
  t = np.arange(int(seconds * rate)) / rate
  x = np.stack([np.sin(2 * np.pi * 440 * t) * (1 + np.sin(2 * np.pi * 3 * t)),
                rng.standard_normal(len(t))]) * 0.3
  sf.write(tmp_path / "x.wav", x.T.astype(np.float32), rate, subtype="FLOAT")
  whole = audio_lib.read(tmp_path / "x.wav", 16000)
  for start, length in [(0, 4000), (256, 8000), (4096, 2048), (12345, 777), (46000, 4000)]:
    block = read_block(tmp_path / "x.wav", rate, 16000, start, length)
    want = whole[:, start:start + length]
    assert block.shape == (2, length)
    np.testing.assert_allclose(block[:, :want.shape[1]], want, atol=2e-3 * np.abs(whole).max())
    assert not block[:, want.shape[1]:].any()          # past the end: zeros


def test_simulate_cli(tmp_path, capsys):
  assert cli_simulate.main(["--out", str(tmp_path / "c"), "--num-meetings", "1", "--duration", "4",
                            "--workers", "1"]) == 0
  captured = capsys.readouterr()
  assert "procedural" in captured.err and "wrote 1 meetings" in captured.out
  assert audio_lib.info(tmp_path / "c" / "meeting00000.wav") == (16000, 8, 64000)
  assert cli_simulate.main(["--out", str(tmp_path / "d"), "--speech", str(tmp_path / "none")]) == 2
  assert "does not exist" in capsys.readouterr().err
