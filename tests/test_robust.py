"""Real use (robustness issue): names with spaces, batches that keep their good results,
speaker counts and banks checked before the work, output modes, a stream stopped by Ctrl-C."""

import os
import pathlib
import signal
import stat
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from jaxdiar import diarize
from jaxdiar.io import rttm

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_safe_and_unique_uris():
  assert rttm.safe_uri("réunion 1") == "réunion_1"
  assert rttm.safe_uri("a\tb  c") == "a_b__c"
  assert rttm.safe_uri("#x") == "_x" and rttm.safe_uri("") == "recording"
  assert rttm.safe_uri("dev00") == "dev00"
  assert rttm.unique_uris(["dev00", "dev00", "a b", "a_b", "dev00"]) == [
      "dev00", "dev00-2", "a_b", "a_b-2", "dev00-3"]
  for name in ("réunion 1", "a\tb", "#c", "x y z"):        # each is one RTTM field
    turn = rttm.Turn(rttm.safe_uri(name), 0.0, 1.0, "s")
    assert rttm.format_rttm([turn]).split()[1] == rttm.safe_uri(name)


def test_names_with_spaces_and_twins_are_written(exported, meeting, tmp_path, capsys):
  path, _ = exported
  spaced = tmp_path / "réunion 1.wav"
  spaced.write_bytes(meeting.read_bytes())
  twin = tmp_path / "sub" / "réunion 1.flac"
  twin.parent.mkdir()
  audio, rate = sf.read(meeting)
  sf.write(twin, audio, rate)
  out = tmp_path / "x.rttm"
  assert diarize.main([str(spaced), str(twin), "--model", str(path), "--out", str(out)]) == 0
  err = capsys.readouterr().err
  assert "réunion_1" in err and "réunion_1-2" in err
  uris = {line.split()[1] for line in out.read_text().splitlines()}
  assert uris == {"réunion_1", "réunion_1-2"}
  assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~_umask()      # the user's umask


def _umask() -> int:
  mask = os.umask(0)
  os.umask(mask)
  return mask


def test_a_batch_keeps_what_succeeded(exported, meeting, tmp_path, capsys):
  path, _ = exported
  empty = tmp_path / "empty.wav"
  sf.write(empty, np.zeros((0, 8), np.float32), 16000)
  out = tmp_path / "all.rttm"
  a, b = tmp_path / "a.wav", tmp_path / "b.wav"
  a.write_bytes(meeting.read_bytes())
  b.write_bytes(meeting.read_bytes())
  assert diarize.main([str(a), str(empty), str(b), "--model", str(path),
                       "--out", str(out)]) == 1
  captured = capsys.readouterr()
  assert "empty.wav: skipped" in captured.err and "1 failed" in captured.out
  assert {line.split()[1] for line in out.read_text().splitlines()} == {"a", "b"}
  # All failed: exit 2, nothing written.
  assert diarize.main([str(empty), str(empty), "--model", str(path),
                       "--out", str(tmp_path / "none.rttm")]) == 2
  assert not (tmp_path / "none.rttm").exists()


@pytest.mark.parametrize("args, text", [
    (["--num-speakers", "0"], "num_speakers must be"),
    (["--num-speakers", "-1"], "num_speakers must be"),
    (["--min-speakers", "5", "--max-speakers", "2"], "above max_speakers"),
    (["--num-speakers", "6", "--max-speakers", "4"], "outside"),
    (["--speakers", "missing.npz"], "no such speaker bank"),
])
def test_arguments_are_checked_before_the_audio(tmp_path, capsys, args, text):
  # The input does not exist: an argument error must come first, before any reading.
  out = tmp_path / "o.rttm"
  assert diarize.main([str(tmp_path / "nothing.wav"), "--out", str(out)] + args) == 2
  err = capsys.readouterr().err
  assert text in err and "nothing.wav" not in err
  assert not out.exists()
  with pytest.raises(diarize.InputError, match="min_speakers"):
    diarize.check_counts(None, 3, 2)


def test_stream_stopped_by_sigint_writes_its_output(exported, meeting, tmp_path):
  path, _ = exported
  out = tmp_path / "live.rttm"
  # SIGINT as a terminal gives it, also when the tests run in a background job (which
  # starts its children with SIGINT ignored).
  proc = subprocess.Popen([sys.executable, "-m", "jaxdiar.stream", str(meeting), "--model",
                           str(path), "--realtime", "--out", str(out)], cwd=REPO,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
  deadline = time.time() + 120
  first = proc.stdout.readline()          # a segment has been sent: the stream is live
  assert first.startswith("{") and time.time() < deadline
  proc.send_signal(signal.SIGINT)
  stdout, stderr = proc.communicate(timeout=60)
  assert proc.returncode == 130, stderr
  assert "interrupted" in stderr and str(out) in stderr
  lines = out.read_text().splitlines()
  assert lines and all(line.split()[1] == meeting.stem for line in lines)
  duration = sf.info(meeting).duration
  assert max(float(l.split()[3]) + float(l.split()[4]) for l in lines) < duration - 1.0


def test_channels_dropped_are_said(tmp_path, capsys):
  """A 4-channel file with no --model: the mono model on channel 0, and the notice says so."""
  wav = tmp_path / "four.wav"
  rng = np.random.default_rng(0)
  sf.write(wav, (0.1 * rng.standard_normal((16000 * 3, 4))).astype(np.float32), 16000)
  diarize.main([str(wav), "--out", str(tmp_path / "o.rttm")])
  err = capsys.readouterr().err
  assert "4 channels: the bundled 'mono' model reads channel 0 only" in err


def _m4a(path, seconds=4.0, rate=16000):
  """An AAC .m4a of a chirp-like signal, written with PyAV."""
  av = pytest.importorskip("av")
  t = np.arange(int(seconds * rate)) / rate
  audio = (0.3 * np.sin(2 * np.pi * (200 + 100 * t) * t)).astype(np.float32)
  with av.open(str(path), "w", format="mp4") as out:
    stream = out.add_stream("aac", rate=rate, layout="mono")
    for i in range(0, len(audio), 1024):
      frame = av.AudioFrame.from_ndarray(audio[None, i:i + 1024], format="flt", layout="mono")
      frame.rate = rate
      for packet in stream.encode(frame):
        out.mux(packet)
    for packet in stream.encode(None):
      out.mux(packet)
  return audio


def test_m4a_is_decoded_or_refused_with_what_to_install(tmp_path, monkeypatch, capsys):
  from jaxdiar.data import audio as audio_lib
  source = _m4a(tmp_path / "call.m4a")
  wav = audio_lib.decode_to_wav(tmp_path / "call.m4a", tmp_path / "call.wav")
  decoded, rate = sf.read(wav, dtype="float32")
  assert rate == 16000 and abs(len(decoded) - len(source)) <= 2048   # AAC priming/padding
  assert diarize.main([str(tmp_path / "call.m4a"), "--out", str(tmp_path / "o.rttm")]) == 0
  monkeypatch.setitem(sys.modules, "av", None)          # PyAV not installed
  assert diarize.main([str(tmp_path / "call.m4a"), "--out", str(tmp_path / "o.rttm")]) == 2
  assert "pip install av" in capsys.readouterr().err


def test_a_missing_input_says_so(tmp_path, capsys):
  """Was libsndfile's '...: System error.'"""
  assert diarize.main([str(tmp_path / "absent.wav"), "--out", str(tmp_path / "o.rttm")]) == 2
  err = capsys.readouterr().err
  assert "absent.wav: cannot read audio (no such file)" in err and "System error" not in err
