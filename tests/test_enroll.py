"""Enrolled speakers: the bank, Hungarian naming, and the enroll / diarize --speakers CLIs."""

import pathlib

import numpy as np
import pytest
import soundfile as sf

from jaxdiar import diarize
from jaxdiar.cli import enroll as cli_enroll
from jaxdiar.decoding import enroll
from jaxdiar.io import rttm


def _bank(names, embeddings, threshold=0.5):
  e = np.asarray(embeddings, np.float64)
  return dict(names=np.array(names), embeddings=e / np.linalg.norm(e, axis=1, keepdims=True),
              fingerprint=np.array("x"), threshold=np.array(threshold))


def test_assign_names_is_one_to_one_and_thresholded():
  bank = _bank(["ann", "bob", "cy"], [[1, 0, 0], [0, 1, 0], [0.9, 0.1, 0]])
  centroids = np.array([[1.0, 0, 0], [0.95, 0.05, 0], [0, 0, 1.0]])
  centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
  names = enroll.assign_names(centroids, bank)
  # Speakers 0 and 1 both resemble ann most; the assignment gives each one name, maximising
  # the total similarity; speaker 2 resembles no one and keeps its label.
  assert names == {0: "ann", 1: "cy"}
  assert enroll.assign_names(centroids, bank, threshold=0.999) == {0: "ann"}
  assert enroll.assign_names(None, bank) == {}
  turns = [rttm.Turn("u", 0, 1, "spk00"), rttm.Turn("u", 1, 2, "spk02")]
  result = diarize.Result(turns, np.zeros((1, 3)), np.zeros(1), 0.016, centroids)
  assert [t.speaker for t in enroll.name_turns(turns, result, bank)] == ["ann", "spk02"]


@pytest.fixture(scope="module")
def meetings(trained_smoke):
  config, _ = trained_smoke
  dev = sorted(pathlib.Path(config.data.data_dir).glob("simulated-*/dev"))[0]
  return sorted(dev.glob("meeting*.wav"))


def test_enroll_and_diarize_with_names(exported, meetings, tmp_path, capsys):
  model, _ = exported
  bank = tmp_path / "bank.npz"
  # One channel of a meeting as a clip (copied to every channel), and a whole meeting.
  mono, part = tmp_path / "clip.wav", tmp_path / "part.wav"
  audio, rate = sf.read(meetings[0])
  sf.write(mono, audio[:len(audio) // 2, 0], rate)
  sf.write(part, audio[len(audio) // 2:], rate)
  assert cli_enroll.main(["--model", str(model), "--speaker", "Zoë", str(mono),
                          "--speaker", "bob", str(part), str(meetings[0]),
                          "--out", str(bank)]) == 0
  assert "enrolled Zoë" in capsys.readouterr().out
  loaded = enroll.load_bank(bank)
  assert list(loaded["names"]) == ["Zoë", "bob"]
  np.testing.assert_allclose(np.linalg.norm(loaded["embeddings"], axis=1), 1.0, atol=1e-5)
  # Seconds of speech count each frame once (the windows overlap): never above the clips.
  clip_seconds = [len(audio) // 2 / rate, len(audio) / rate + (len(audio) - len(audio) // 2) / rate]
  assert all(0 < s <= c + 0.05 for s, c in zip(loaded["seconds"], clip_seconds)), (
      loaded["seconds"], clip_seconds)
  out = tmp_path / "named.rttm"
  # Threshold -1: every speaker the assignment reaches takes a name.
  assert diarize.main([str(meetings[0]), "--model", str(model), "--out", str(out),
                       "--speakers", str(bank), "--name-threshold", "-1"]) == 0
  labels = {t.speaker for t in rttm.read_rttm(out)["meeting00000"]}
  assert labels & {"Zoë", "bob"}
  assert labels <= {"Zoë", "bob"} | {f"spk{k:02d}" for k in range(10)}
  # Threshold above any cosine: nobody is named.
  assert diarize.main([str(meetings[0]), "--model", str(model), "--out", str(out),
                       "--speakers", str(bank), "--name-threshold", "1.01"]) == 0
  assert all(t.speaker.startswith("spk") for t in rttm.read_rttm(out)["meeting00000"])


def test_bank_errors(exported, meetings, tmp_path, capsys):
  model, _ = exported
  other = tmp_path / "other.npz"
  enroll.save_bank(other, _bank(["ann"], [[1.0] * 64]))
  out = tmp_path / "x.rttm"
  assert diarize.main([str(meetings[0]), "--model", str(model), "--out", str(out),
                       "--speakers", str(other)]) == 2
  assert "enrolled with another model" in capsys.readouterr().err
  (tmp_path / "junk.npz").write_bytes(b"junk")
  assert diarize.main([str(meetings[0]), "--model", str(model), "--out", str(out),
                       "--speakers", str(tmp_path / "junk.npz")]) == 2
  assert "not a speaker bank" in capsys.readouterr().err
  assert not out.exists()
  zeros = tmp_path / "zeros.wav"
  sf.write(zeros, np.zeros((16000, 8), np.float32), 16000)
  assert cli_enroll.main(["--model", str(model), "--speaker", "ann", str(zeros),
                          "--out", str(tmp_path / "b.npz")]) == 2
  assert "all zeros" in capsys.readouterr().err
  assert not (tmp_path / "b.npz").exists()
