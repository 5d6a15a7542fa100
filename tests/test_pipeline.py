"""The Python API (`jaxdiar.Pipeline`), exclusive output, the output formats, transcripts."""

import io
import json
import pathlib
import subprocess
import sys

import hypothesis
import hypothesis.strategies as st
import numpy as np
import pytest
import soundfile as sf
from pyannote.core import Annotation, Segment

import jaxdiar
from jaxdiar import diarize
from jaxdiar.io import formats
from jaxdiar.io import rttm
from jaxdiar.io import transcript
from jaxdiar.models import runtime
from tests.conftest import REPO


def _turns(annotation):
  return sorted((round(s.start, 3), round(s.end, 3), str(l))
                for s, _, l in annotation.itertracks(yield_label=True))


def _supports(annotation):
  return {str(l): [(round(s.start, 3), round(s.end, 3))
                   for s in annotation.label_timeline(l).support()]
          for l in annotation.labels()}


@pytest.fixture(scope="module")
def pipeline(exported):
  return jaxdiar.Pipeline.from_pretrained(exported[0])


def test_pipeline_on_an_array_equals_the_pipeline_on_the_file(pipeline, meeting):
  from_file = pipeline(meeting)
  assert isinstance(from_file, Annotation) and from_file.uri == meeting.stem
  assert len(from_file) > 0
  audio, rate = sf.read(meeting, dtype="float32", always_2d=True)
  from_array = pipeline({"waveform": audio.T, "sample_rate": rate, "uri": meeting.stem})
  assert _turns(from_array) == _turns(from_file)
  # What users of pyannote do with it works.
  buffer = io.StringIO()
  from_file.write_rttm(buffer)
  assert buffer.getvalue().count("SPEAKER") == len(from_file)
  assert from_file.crop(Segment(0, 10)).get_timeline().duration() <= 10
  with pytest.raises(TypeError):
    pipeline(meeting, num_speaker=2)                        # a misspelt argument is refused
  with pytest.raises(ValueError, match="unknown decoding setting"):
    jaxdiar.Pipeline(None, settings={"onsett": 0.5})
  with pytest.raises(diarize.InputError, match="channels, samples"):
    pipeline({"waveform": audio, "sample_rate": rate})      # [samples, channels]: refused
  assert runtime.load("mono").num_channels == 1              # a bundled name loads as a file


def test_exclusive_from_the_models_scores(pipeline, meeting):
  full, embeddings = pipeline(meeting, return_embeddings=True)
  one = pipeline(meeting, exclusive=True)
  assert one.get_overlap().duration() == 0
  assert _supports(_union(one)) == _supports(_union(full))
  assert set(one.labels()) <= set(full.labels())
  assert set(embeddings) == set(full.labels())
  for vector in embeddings.values():
    assert vector.ndim == 1 and abs(np.linalg.norm(vector) - 1) < 1e-3


def _union(annotation):
  """One label holding the union of speech."""
  out = Annotation(uri=annotation.uri)
  for s in annotation.get_timeline().support():
    out[s] = "speech"
  return out


@st.composite
def annotations(draw):
  """Turns at whole milliseconds, per label without self-overlap (what every format holds)."""
  annotation = Annotation(uri="rec")
  for label in draw(st.lists(st.sampled_from(["spk00", "spk01", "alice", "Bob"]),
                             min_size=1, max_size=3, unique=True)):
    t = 0
    for gap, length in draw(st.lists(st.tuples(st.integers(1, 3000), st.integers(1, 3000)),
                                     min_size=1, max_size=6)):
      t += gap
      segment = Segment(t / 1000, (t + length) / 1000)
      annotation[segment, annotation.new_track(segment)] = label
      t += length
  return annotation


@hypothesis.settings(max_examples=25, deadline=None)
@hypothesis.given(annotations())
def test_every_format_round_trips_an_annotation(annotation):
  for fmt in formats.FORMATS:
    text = formats.dumps(annotation, fmt, duration=30.0)
    back = formats.loads(text, fmt, uri="rec")
    if fmt in ("rttm", "json", "csv"):
      assert _turns(back) == _turns(annotation), fmt
    else:                               # one tier / cue per turn, merged where they touch
      assert _supports(back) == _supports(annotation), fmt


@hypothesis.settings(max_examples=50, deadline=None)
@hypothesis.given(annotations())
def test_exclusive_has_no_overlap_and_keeps_all_speech(annotation):
  one = jaxdiar.exclusive(annotation)
  assert one.get_overlap().duration() == pytest.approx(0, abs=1e-9)
  assert _supports(_union(one)) == _supports(_union(annotation))
  # In overlap, the talker whose turn started first.
  a = formats.to_annotation([rttm.Turn("u", 0, 5, "late"), rttm.Turn("u", -1, 3, "early")])
  assert _turns(jaxdiar.exclusive(a)) == [(-1, 3, "early"), (3, 5, "late")]


def _meeting_reference(rng, talkers=3, turns=60) -> Annotation:
  """A synthetic meeting's turns: 1-8 s each, a third of the floor changes overlapping by
  0.2-0.8 s, the others after a 0.1-1 s pause."""
  out, t, last = [], 0.0, None
  for _ in range(turns):
    who = rng.choice([k for k in range(talkers) if k != last])
    length = rng.uniform(1, 8)
    out.append(rttm.Turn("syn", t, t + length, f"talker{who}"))
    t += length + (-rng.uniform(0.2, 0.8) if rng.random() < 1 / 3 else rng.uniform(0.1, 1.0))
    last = who
  return formats.to_annotation(out, "syn")


def test_attribution_with_the_reference_assigns_the_right_talker(tmp_path):
  """Five synthetic meetings (3,000 words; 4 % of their time in overlap, where the exclusive
  reference keeps one talker): 96.4 % of the words pooled (94.9-97.5 % each, 2026-12-05)."""
  right = total = 0
  for seed in range(5):
    reference = _meeting_reference(np.random.default_rng(seed))
    words = transcript.words_of(reference, np.random.default_rng(seed))
    assert len(words) > 300 and reference.get_overlap().duration() > 5
    path = tmp_path / "whisper.json"
    path.write_text(transcript.dumps(transcript.as_whisper(words), "json"))
    attributed = jaxdiar.Pipeline.attribute(path, reference)
    right += transcript.word_accuracy(attributed, [w[2] for w in words]) * len(words)
    total += len(words)
    for segment in attributed:           # segments are split where the talker changes
      assert {w.speaker for w in segment.words} == {segment.speaker}
  assert right / total >= 0.95, right / total
  # Without word times: each segment takes the talker who overlaps it most.
  srt = tmp_path / "t.srt"
  srt.write_text("1\n00:00:01,000 --> 00:00:02,000\nhello\n\n")
  (only,) = transcript.attribute(transcript.load(srt), formats.exclusive(reference))
  assert only.text == "hello" and only.speaker == transcript.Speakers(
      formats.exclusive(reference))(1.0, 2.0)
  # Nothing within 0.5 s: no speaker.
  far = transcript.Segment(1000.0, 1001.0, "later")
  assert transcript.attribute([far], formats.exclusive(reference))[0].speaker is None
  text = transcript.dumps(attributed, "srt")
  assert text.count("[") >= len(attributed)


def test_cli_formats_folders_stdin_embeddings_and_transcripts(exported, meeting, tmp_path,
                                                             capsys):
  model = str(exported[0])
  out = tmp_path / "one.TextGrid"
  assert diarize.main([str(meeting), "--model", model, "--out", str(out)]) == 0
  err = capsys.readouterr().err          # the decoding says what it does, after the windows
  assert f"{meeting.stem}: decoding" in err and f"{meeting.stem}: decoded in" in err
  rttm_out = tmp_path / "one.rttm"
  assert diarize.main([str(meeting), "--model", model, "--out", str(rttm_out),
                       "--embeddings", str(tmp_path / "e.npz")]) == 0
  expected = formats.load(rttm_out)
  one = tmp_path / "one.csv"
  assert diarize.main([str(meeting), "--model", model, "--out", str(one), "--exclusive"]) == 0
  assert formats.load(one).get_overlap().duration() == 0
  assert _supports(_union(formats.load(one))) == _supports(_union(expected))
  assert _supports(formats.load(out, uri=meeting.stem)) == _supports(expected)
  stored = np.load(tmp_path / "e.npz")
  assert sorted(stored["labels"]) == sorted(expected.labels())
  assert stored["embeddings"].shape[0] == len(stored["labels"])
  # A folder of recordings, one JSON each; a second copy makes two recordings.
  folder = tmp_path / "batch"
  folder.mkdir()
  (folder / "a.wav").write_bytes(meeting.read_bytes())
  (folder / "b.wav").write_bytes(meeting.read_bytes())
  (folder / "notes.txt").write_text("not audio")
  assert diarize.main([str(folder), "--model", model, "--out-dir", str(tmp_path / "o"),
                       "--format", "json", "--pattern", "*.wav"]) == 0
  bodies = [json.loads((tmp_path / "o" / f"{n}.json").read_text()) for n in "ab"]
  assert [b["uri"] for b in bodies] == ["a", "b"]
  assert bodies[0]["segments"] == bodies[1]["segments"]
  assert _turns(formats.loads(json.dumps(bodies[0]), "json", meeting.stem)) == _turns(expected)
  # One SRT cannot hold two recordings: refused before any work.
  assert diarize.main([str(folder), "--model", model, "--out", str(tmp_path / "x.srt")]) == 2
  # stdin in, stdout out (the run's own lines go to stderr).
  run = subprocess.run([sys.executable, "-m", "jaxdiar.diarize", "-", "--model", model,
                        "--out", "-", "--format", "csv"], input=meeting.read_bytes(),
                       capture_output=True, cwd=REPO, timeout=600)
  assert run.returncode == 0, run.stderr.decode()
  rows = run.stdout.decode().splitlines()
  assert rows[0] == "uri,start,end,duration,speaker" and len(rows) == len(expected) + 1
  assert all(r.startswith("stdin,") for r in rows[1:])


def test_cli_attributes_a_transcript(exported, meeting, tmp_path):
  reference = formats.to_annotation(rttm.read_rttm(meeting.with_suffix(".rttm"))[meeting.stem])
  words = transcript.words_of(reference, np.random.default_rng(1))
  whisper = tmp_path / "w.json"
  whisper.write_text(transcript.dumps(transcript.as_whisper(words), "json"))
  out = tmp_path / "rec.json"
  assert diarize.main([str(meeting), "--model", str(exported[0]), "--transcript", str(whisper),
                       "--out", str(out)]) == 0
  body = json.loads(out.read_text())
  said = [w for s in body["segments"] for w in s["words"]]
  assert len(said) == len(words)
  assert all(w["speaker"] is None or w["speaker"].startswith("spk") for w in said)
  vtt = tmp_path / "rec.vtt"
  assert diarize.main([str(meeting), "--model", str(exported[0]), "--transcript", str(whisper),
                       "--out", str(vtt)]) == 0
  assert vtt.read_text().startswith("WEBVTT") and "[spk" in vtt.read_text()


def test_channels_one_or_each_a_talker(tmp_path, capsys):
  """--channel K runs the one-channel model on channel K; --split-channels gives each channel
  its own label (speech where the detector hears it)."""
  libri = pathlib.Path(REPO.parent / "shared" / "data" / "speech" / "libri-test-other")
  clips = sorted(libri.rglob("*.flac"))[:2] if libri.exists() else []
  if len(clips) < 2:
    pytest.skip("shared speech not present")
  a, rate = sf.read(clips[0], dtype="float32")
  b, _ = sf.read(clips[1], dtype="float32")
  n = 16000 * 6
  left = np.zeros(n * 2, np.float32)
  right = np.zeros(n * 2, np.float32)
  left[:n] = a[:n] if len(a) >= n else np.pad(a, (0, n - len(a)))
  right[n:] = b[:n] if len(b) >= n else np.pad(b, (0, n - len(b)))
  wav = tmp_path / "call.wav"
  sf.write(wav, np.stack([left, right], axis=1), rate)
  out = tmp_path / "call.rttm"
  assert diarize.main([str(wav), "--split-channels", "--out", str(out)]) == 0
  turns = rttm.read_rttm(out)["call"]
  by = {t.speaker: t for t in turns}
  assert set(by) == {"spk00", "spk01"}
  assert max(t.offset for t in turns if t.speaker == "spk00") <= 6.5
  assert min(t.onset for t in turns if t.speaker == "spk01") >= 5.5
  assert diarize.main([str(wav), "--channel", "1", "--out", str(out)]) == 0
  assert min(t.onset for t in rttm.read_rttm(out)["call"]) >= 5.0
  assert diarize.main([str(wav), "--channel", "2", "--out", str(out)]) == 2
  assert "channel 2 does not exist" in capsys.readouterr().err
