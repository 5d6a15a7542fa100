"""Property-based tests (hypothesis): RTTM/UEM round trips with arbitrary UTF-8 labels, frame
<-> segment conversion, and the binarisation's guarantees."""

import pathlib
import tempfile

from hypothesis import given, settings, strategies as st
import numpy as np
import pytest

from jaxdiar import diarize
from jaxdiar.data import corpus
from jaxdiar.io import rttm

# A label is any UTF-8 text that is one whitespace-separated field (surrogates cannot be
# encoded; control characters and separators split fields or lines).
LABEL = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")),
                min_size=1, max_size=12).filter(lambda s: s.split() == [s])
TIME = st.integers(0, 10_000_000).map(lambda ms: ms / 1000)      # whole milliseconds
SETTINGS = settings(max_examples=60, deadline=None)


def _turn(uri, speaker, onset, duration):
  return rttm.Turn(uri, onset, round(onset + duration, 3), speaker)


@SETTINGS
@given(st.lists(st.tuples(LABEL, LABEL, TIME, TIME), max_size=20))
def test_rttm_round_trip(rows):
  turns = [_turn(u, s, a, d) for u, s, a, d in rows]
  with tempfile.TemporaryDirectory() as tmp:
    path = pathlib.Path(tmp) / "x.rttm"
    rttm.write_rttm(path, turns)
    back = rttm.read_rttm(path)
  assert _close(back, turns)
  assert set(back) == {t.uri for t in turns}
  with pytest.raises(ValueError, match="one field"):
    rttm.format_rttm(turns + [rttm.Turn("a b", 0.0, 1.0, "x")])
  for uri, ts in back.items():
    assert ts == sorted(ts)


def _close(back, turns) -> bool:
  got = sorted(t for ts in back.values() for t in ts)
  want = sorted(turns)
  return len(got) == len(want) and all(
      (g.uri, g.speaker) == (w.uri, w.speaker) and abs(g.onset - w.onset) < 1e-9
      and abs(g.offset - w.offset) < 1e-6 for g, w in zip(got, want))


@SETTINGS
@given(st.dictionaries(LABEL, st.lists(st.tuples(TIME, TIME), min_size=1, max_size=5),
                       max_size=5))
def test_uem_round_trip(regions):
  if any(uri.startswith(("#", ";;")) for uri in regions):   # would read back as a comment
    with tempfile.TemporaryDirectory() as tmp, pytest.raises(ValueError, match="comment"):
      rttm.write_uem(pathlib.Path(tmp) / "x.uem", regions)
    return
  regions = {uri: [(min(a, b), max(a, b)) for a, b in r] for uri, r in regions.items()}
  with tempfile.TemporaryDirectory() as tmp:
    path = pathlib.Path(tmp) / "x.uem"
    rttm.write_uem(path, regions)
    assert rttm.read_uem(path) == regions


@SETTINGS
@given(st.lists(st.lists(st.booleans(), min_size=1, max_size=300), min_size=1, max_size=4)
       .map(lambda rows: np.array([r + [False] * (300 - len(r)) for r in rows]).T),
       st.sampled_from([(256, 16000), (160, 16000), (128, 8000), (100, 22050)]))
def test_frames_to_segments_to_frames(active, hop_rate):
  """Runs of active frames written as turns (as decode writes them) come back as the same
  frames through corpus.frame_activity (as training reads an RTTM)."""
  hop, rate = hop_rate
  fs = hop / rate
  speakers = [f"spk{k:02d}" for k in range(active.shape[1])]
  turns = [rttm.Turn("u", a * fs, b * fs, speakers[k])
           for k in range(active.shape[1]) for a, b in diarize.runs(active[:, k])]
  back = corpus.frame_activity(turns, speakers, len(active), hop, rate)
  np.testing.assert_array_equal(back, active.astype(np.uint8))


PROB = st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=200).map(np.array)


@SETTINGS
@given(PROB, st.floats(0.05, 0.95), st.floats(0, 0.5), st.integers(0, 10), st.integers(0, 10))
def test_binarize_guarantees(prob, onset, gap, min_speech, min_silence):
  offset = onset * (1 - gap)
  active = diarize.binarize(prob, onset, offset, min_speech, min_silence)
  runs = diarize.runs(active)
  assert all(b - a >= min_speech for a, b in runs)                   # no short segment
  assert all(c - b >= min_silence for (_, b), (c, _) in zip(runs, runs[1:]))   # no short gap
  raw = diarize.binarize(prob, onset, offset, 0, 0)
  assert np.all(raw[prob > onset])                         # above onset: always active
  assert not np.any(raw[prob < offset])                    # below offset: never active
  louder = diarize.binarize(np.minimum(prob + 0.1, 1.0), onset, offset, min_speech, min_silence)
  assert np.all(louder[active])                            # monotone in the probabilities


def _wav_header(channels: int, rate: int, bits: int, fmt: int, data_size: int) -> bytes:
  block = max(channels * bits // 8, 0) & 0xFFFF
  fmt_chunk = (b"fmt " + (16).to_bytes(4, "little") + fmt.to_bytes(2, "little")
               + channels.to_bytes(2, "little") + rate.to_bytes(4, "little")
               + (rate * block & 0xFFFFFFFF).to_bytes(4, "little")
               + block.to_bytes(2, "little") + bits.to_bytes(2, "little"))
  return (b"RIFF" + (36 + data_size & 0xFFFFFFFF).to_bytes(4, "little") + b"WAVE" + fmt_chunk
          + b"data" + (data_size & 0xFFFFFFFF).to_bytes(4, "little"))


@settings(max_examples=80, deadline=None)
@given(channels=st.integers(0, 70000 & 0xFFFF), rate=st.integers(0, 2**32 - 1),
       bits=st.sampled_from([0, 1, 8, 16, 24, 32, 64, 7]), fmt=st.sampled_from([0, 1, 3, 2, 7]),
       declared=st.integers(0, 2**32 - 1), payload=st.binary(max_size=4096),
       cut=st.integers(0, 60), suffix=st.sampled_from([".wav", ".flac", ".ogg", ".m4a", ""]))
def test_the_audio_entry_point_fails_only_with_its_own_errors(channels, rate, bits, fmt,
                                                              declared, payload, cut, suffix):
  """Random wav headers (channel counts, rates, sample formats, declared sizes), truncated
  files and arbitrary bytes: reading says AudioError / InputError, never anything else."""
  from jaxdiar import pipeline
  from jaxdiar.data import audio as audio_lib
  data = _wav_header(channels, rate, bits, fmt, declared) + payload
  with tempfile.TemporaryDirectory() as folder:
    path = pathlib.Path(folder) / f"x{suffix}"
    path.write_bytes(data[:len(data) - cut] if cut < len(data) else b"")
    try:
      with pipeline.audio_input(path) as (source, _):
        rate_, channels_, frames = audio_lib.info(source)
        if frames:
          block = audio_lib.read(source, 16000, 0, min(frames, 4096))
          assert block.shape[0] == channels_ and np.all(np.isfinite(block))
    except (audio_lib.AudioError, diarize.InputError):
      pass


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1,
                max_size=64))
def test_non_finite_samples_are_refused(values):
  from jaxdiar.data import audio as audio_lib
  import soundfile as sf
  with tempfile.TemporaryDirectory() as folder:
    path = pathlib.Path(folder) / "x.wav"
    samples = np.array(values, np.float32)
    sf.write(path, samples, 16000, subtype="FLOAT")
    if np.all(np.isfinite(samples)):
      assert audio_lib.read(path, 16000).shape == (1, len(samples))
    else:
      with pytest.raises(audio_lib.AudioError, match="NaN or infinite"):
        audio_lib.read(path, 16000)
