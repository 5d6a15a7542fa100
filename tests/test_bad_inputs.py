"""The bad-input suite: every entry point answers a user error with a one-line message that
names the file and the cause, a non-zero exit code, no traceback and nothing partial written.
(The service's HTTP statuses are in test_serve.py.) docs/robustness.md lists these cases."""

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import soundfile as sf

from jaxdiar import diarize
from jaxdiar.cli import enroll as cli_enroll
from jaxdiar.cli import evaluate as cli_evaluate
from jaxdiar.cli import export as cli_export
from jaxdiar.cli import simulate as cli_simulate
from jaxdiar.models import runtime

RATE = 16000


def _wav(path, seconds=1.0, channels=8, rate=RATE, subtype="PCM_16", value=None):
  n = int(seconds * rate)
  audio = (0.1 * np.random.default_rng(0).standard_normal((n, channels)) if value is None
           else np.full((n, channels), value))
  sf.write(path, audio.astype(np.float64 if subtype == "DOUBLE" else np.float32), rate,
           subtype=subtype)
  return path


def _rttm(path, text):
  path.write_bytes(text if isinstance(text, bytes) else text.encode())
  return path


GOOD_RTTM = "SPEAKER a 1 0.0 1.0 <NA> <NA> x <NA> <NA>\n"


# name: (entry, make(tmp, model) -> (argv, output that must not appear), rc, message part).
# The message must also name the file in `names` (the input's base name) when one is given.
def _case_table():
  def diarize_input(make_input, text, rc=2):
    def make(tmp, model):
      src = make_input(tmp)
      return [str(src), "--model", str(model), "--out", str(tmp / "out" / "o.rttm")], src.name
    return ("diarize", make, rc, text)

  def truncated(tmp):
    path = _wav(tmp / "trunc.wav", 2.0)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 3])
    return path

  def corrupt(tmp):
    path = tmp / "corrupt.wav"
    path.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + os.urandom(200))
    return path

  def folder_missing_channel(tmp):
    folder = tmp / "perchannel"
    folder.mkdir()
    for k in range(1, 8):                       # channel 8 missing
      _wav(folder / f"rec.Array1-0{k}.wav", 1.0, 1)
    return folder

  def empty_folder(tmp):
    (tmp / "nothing").mkdir()
    return tmp / "nothing"

  def other_model(tmp, model, how):
    bad = tmp / f"{how}.jaxdiar"
    if how == "truncated":
      bad.write_bytes(model.read_bytes()[:5000])
    elif how == "directory":
      bad.mkdir()
    elif how == "version":
      with zipfile.ZipFile(model) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.namelist():
          data = src.read(item)
          if item == "meta.json":
            meta = json.loads(data)
            meta["format_version"] = 99
            data = json.dumps(meta).encode()
          dst.writestr(item, data)
    return bad

  def diarize_model(how, text):
    def make(tmp, model):
      bad = tmp / "missing.jaxdiar" if how == "missing" else other_model(tmp, model, how)
      return [str(_wav(tmp / "ok.wav")), "--model", str(bad), "--out", str(tmp / "o.rttm")], \
          bad.name
    return ("diarize", make, 2, text)

  def diarize_out(how, text):
    def make(tmp, model):
      (tmp / "afile").write_text("x")
      (tmp / "adir").mkdir()
      out = tmp / "afile" / "o.rttm" if how == "file" else tmp / "adir"
      return [str(_wav(tmp / "ok.wav")), "--model", str(model), "--out", str(out)], out.name
    return ("diarize", make, 2, text)

  def evaluate_files(ref_text, text, uem_text=None, json_out=None):
    def make(tmp, model):
      ref = _rttm(tmp / "ref.rttm", ref_text) if ref_text is not None else tmp / "ref.rttm"
      argv = ["--ref", str(ref), "--hyp", str(_rttm(tmp / "hyp.rttm", GOOD_RTTM))]
      name = ref.name
      if uem_text is not None:
        argv += ["--uem", str(_rttm(tmp / "a.uem", uem_text))]
        name = "a.uem"
      if json_out:
        (tmp / "afile").write_text("x")
        argv += ["--json", str(tmp / "afile" / "s.json")]
        name = "s.json"
      return argv, name
    return ("evaluate", make, 2, text)

  return {
      "truncated wav": diarize_input(truncated, "truncated"),
      "corrupt wav (RIFF header, garbage)": diarize_input(corrupt, "cannot read"),
      "zero-length file": diarize_input(lambda t: _rttm(t / "zero.wav", b""), "cannot read"),
      "wav header, no samples": diarize_input(lambda t: _wav(t / "none.wav", 0.0), "empty"),
      # pyannote's answer to a file too short to hold speech: an empty result, exit 0.
      "shorter than one STFT frame": diarize_input(lambda t: _wav(t / "tiny.wav", 0.01),
                                                   None, 0),
      "8-bit PCM": diarize_input(lambda t: _wav(t / "u8.wav", 1.0, subtype="PCM_U8"), None, 0),
      "24-bit PCM": diarize_input(lambda t: _wav(t / "p24.wav", 1.0, subtype="PCM_24"), None, 0),
      "float64 wav": diarize_input(lambda t: _wav(t / "f64.wav", 1.0, subtype="DOUBLE"), None, 0),
      "8 kHz (resampled)": diarize_input(lambda t: _wav(t / "r8k.wav", 1.0, rate=8000), None, 0),
      "44.1 kHz (resampled)": diarize_input(lambda t: _wav(t / "r44.wav", 1.0, rate=44100),
                                            None, 0),
      "wrong channel count": diarize_input(lambda t: _wav(t / "two.wav", 1.0, 2), "2 channel"),
      "NaN samples": diarize_input(lambda t: _wav(t / "nan.wav", 1.0, subtype="FLOAT",
                                                  value=np.nan), "NaN"),
      "Inf samples": diarize_input(lambda t: _wav(t / "inf.wav", 1.0, subtype="FLOAT",
                                                  value=np.inf), "infinite"),
      "all-zero audio": diarize_input(lambda t: _wav(t / "zeros.wav", 1.0, value=0.0),
                                      "all zeros"),
      "per-channel folder, a channel missing": diarize_input(folder_missing_channel,
                                                             "7 channel"),
      "empty folder": diarize_input(empty_folder, "no audio files"),
      "missing input": diarize_input(lambda t: t / "absent.wav", "cannot read"),
      "missing model file": diarize_model("missing", "No such file"),
      "truncated model file": diarize_model("truncated", "not a .jaxdiar"),
      "a directory as the model": diarize_model("directory", "not a .jaxdiar"),
      "model of another format version": diarize_model("version", "format version 99"),
      "--out under a file": diarize_out("file", "not a directory"),
      "--out is a directory": diarize_out("dir", "is a directory"),
      "RTTM line with 5 fields": evaluate_files("SPEAKER a 1 0.0 1.0\n", "at least 8 fields"),
      "RTTM negative duration": evaluate_files(GOOD_RTTM.replace("1.0", "-1.0"), "negative"),
      "RTTM non-numeric onset": evaluate_files(GOOD_RTTM.replace("0.0", "zero"),
                                               "is not a number"),
      "RTTM not UTF-8": evaluate_files(b"SPEAKER a 1 0 1 <NA> <NA> \xff\xfe <NA> <NA>\n",
                                       "not UTF-8"),
      "UEM line with 3 fields": evaluate_files(GOOD_RTTM, "4 fields", uem_text="a 1 0.0\n"),
      "UEM end before start": evaluate_files(GOOD_RTTM, "before start", uem_text="a 1 5 1\n"),
      "missing reference RTTM": evaluate_files(None, "No such file"),
      "--json under a file": evaluate_files(GOOD_RTTM, "not a directory", json_out=True),
      "export: workdir without checkpoints": (
          "export", lambda t, m: (["--workdir", str(t), "--out", str(t / "m.jaxdiar")], t.name),
          2, "not a jaxdiar training workdir"),
      "export: folder without variables": (
          "export", lambda t, m: (["--variables", str(t), "--out", str(t / "m.jaxdiar")],
                                  t.name), 2, "variables"),
      "enroll: missing clip": (
          "enroll", lambda t, m: (["--model", str(m), "--speaker", "ann", str(t / "no.wav"),
                                   "--out", str(t / "b.npz")], "no.wav"), 2, "cannot read"),
      "enroll: --out under a file": (
          "enroll", lambda t, m: ((t / "afile").write_text("x") and None) or (
              ["--model", str(m), "--speaker", "ann", str(_wav(t / "c.wav")),
               "--out", str(t / "afile" / "b.npz")], "b.npz"), 2, "not a directory"),
      "simulate: speech folder without speech": (
          "simulate", lambda t, m: ((t / "speech").mkdir() or None) or (
              ["--speech", str(t / "speech"), "--out", str(t / "sim")], "speech"),
          2, "no speech found"),
      "train: unknown config key": ("train", ["--config.nope=1"], 1, "no field nope"),
      "train: override of the wrong type": ("train", ["--config.train.batch_size=abc"], 1,
                                            "invalid literal"),
      "train: missing config file": ("train", ["--config=configs/absent.py"], 1,
                                     "No such file"),
  }


CASES = _case_table()
MAINS = dict(diarize=diarize.main, evaluate=cli_evaluate.main, export=cli_export.main,
             enroll=cli_enroll.main, simulate=cli_simulate.main)


def test_at_least_25_cases():
  assert len(CASES) >= 25


_LOADED = {}


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c[0] != "train"])
def test_bad_input(name, exported, tmp_path, capsys, monkeypatch):
  entry, make, rc, text = CASES[name]
  model, _ = exported
  load = runtime.load          # the good model is loaded (and compiled) once for all cases
  monkeypatch.setattr(runtime, "load", lambda p: _LOADED.setdefault(str(model), load(p))
                      if str(p) == str(model) else load(p))
  before = set(tmp_path.rglob("*"))
  argv, names = make(tmp_path, model)
  made = set(tmp_path.rglob("*"))
  code = MAINS[entry](argv)
  err = capsys.readouterr().err
  assert code == rc, err
  written = set(tmp_path.rglob("*")) - made
  if rc == 0:
    assert (tmp_path / "out" / "o.rttm").exists()
    return
  lines = [l for l in err.splitlines() if l.startswith("error:")]
  assert len(lines) == 1 and "Traceback" not in err, err
  assert text in lines[0] and names in lines[0], lines[0]
  assert not written, f"{name}: wrote {sorted(map(str, written))}"
  del before


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c[0] == "train"])
def test_bad_train_config(name, tmp_path):
  _, overrides, rc, text = CASES[name]
  argv = [sys.executable, "-m", "jaxdiar.train", "--workdir", str(tmp_path / "w")]
  if not any(o.startswith("--config=") for o in overrides):
    argv.append("--config=configs/smoke.py")
  r = subprocess.run(argv + overrides, capture_output=True, text=True, timeout=120)
  assert r.returncode == rc and "Traceback" not in r.stderr, r.stderr
  assert text in r.stderr.strip().splitlines()[-1], r.stderr
  assert not (tmp_path / "w").exists()
