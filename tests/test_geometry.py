"""Microphone geometry at inference (`--mics`): presets, files, refusals, and the directions a
one-channel model's pipeline reads from the user's array."""

import json
import pathlib

import numpy as np
import pytest
import soundfile as sf

import jaxdiar
from jaxdiar import diarize
from jaxdiar import stream
from jaxdiar.cli import enroll as cli_enroll
from jaxdiar.core import geometry
from jaxdiar.core import spatial
from jaxdiar.models import bundled
from jaxdiar.models import runtime
from tests.conftest import REPO


def test_presets_load_with_a_source_and_sensible_sizes():
  for name, (positions, source) in geometry.PRESETS.items():
    mics = geometry.load(name)
    assert mics.shape == (len(positions), 3), name
    assert len(source) > 30, name                       # where the coordinates come from
    assert 0.05 <= geometry.aperture(mics) <= 0.25, name
  # The AMI preset is the bundled array model's own geometry: an 8-channel file with it runs
  # the array model, another geometry the one-channel model.
  array8 = runtime.load("array8")
  assert geometry.same(geometry.load("ami-array1"), array8.meta["mic_positions"])
  assert bundled.choose(8, geometry.load("ami-array1")) == "array8"
  assert bundled.choose(4, geometry.load("respeaker-4")) == "mono"
  assert bundled.choose(8, geometry.load("ami-array1") * 0.5) == "mono"


def test_files_of_positions(tmp_path):
  rows = [[0.03, 0.0, 0.0], [0.0, 0.03, 0.0], [-0.03, 0.0, 0.0], [0.0, -0.03, 0.0]]
  (tmp_path / "a.json").write_text(json.dumps(rows))
  (tmp_path / "b.json").write_text(json.dumps({"mics": rows}))
  (tmp_path / "c.csv").write_text("x,y,z  # metres\n" + "\n".join(",".join(map(str, r))
                                                                  for r in rows))
  (tmp_path / "d.csv").write_text("\n".join(f"{x} {y}".replace(" ", ",") for x, y, _ in rows))
  for name in "a.json", "b.json", "c.csv", "d.csv":
    np.testing.assert_allclose(geometry.load(tmp_path / name), rows, err_msg=name)
  (tmp_path / "mm.json").write_text(json.dumps([[30, 0, 0], [0, 30, 0], [-30, 0, 0]]))
  with pytest.raises(geometry.GeometryError, match="metres expected"):
    geometry.load(tmp_path / "mm.json")
  (tmp_path / "one.json").write_text(json.dumps([[0.0, 0.0, 0.0]]))
  with pytest.raises(geometry.GeometryError, match="at least two"):
    geometry.load(tmp_path / "one.json")
  with pytest.raises(geometry.GeometryError, match="neither a preset"):
    geometry.load("respeaker-5")


def test_a_wrong_channel_count_is_refused_naming_mics(tmp_path, capsys):
  wav = tmp_path / "two.wav"
  sf.write(wav, np.random.default_rng(0).standard_normal((16000, 2)).astype(np.float32) * 0.1,
           16000)
  assert diarize.main([str(wav), "--mics", "respeaker-4", "--out", str(tmp_path / "x.rttm")]) == 2
  err = capsys.readouterr().err
  assert "--mics" in err and "2 channel(s)" in err and "4 microphone positions" in err
  assert stream.main([str(wav), "--mics", "respeaker-4"]) == 2
  assert "--mics respeaker-4 gives 4 microphone positions" in capsys.readouterr().err
  pipeline = jaxdiar.Pipeline(mics="respeaker-6")
  with pytest.raises(diarize.InputError, match="--mics"):
    pipeline({"waveform": np.zeros((4, 16000), np.float32), "sample_rate": 16000})
  # A call's own geometry replaces the pipeline's, for that recording only.
  noise = np.random.default_rng(1).standard_normal((4, 32000)).astype(np.float32) * 0.05
  pipeline({"waveform": noise, "sample_rate": 16000}, mics="respeaker-4")
  with pytest.raises(diarize.InputError, match="--mics respeaker-6"):
    pipeline({"waveform": noise, "sample_rate": 16000})
  # enroll checks its clips the same way.
  assert cli_enroll.main(["--model", "mono", "--speaker", "ann", str(wav), "--mics",
                          "respeaker-4", "--out", str(tmp_path / "bank.npz")]) == 2
  assert "--mics" in capsys.readouterr().err and not (tmp_path / "bank.npz").exists()
  # The array model takes its own geometry only.
  with pytest.raises(diarize.InputError, match="--mics"):
    diarize.infer(_write(tmp_path / "eight.wav", np.zeros((8, 16000), np.float32) + 0.01),
                  runtime.load("array8"), mics=geometry.load("ami-array1") * 0.5)


def _write(path: pathlib.Path, audio: np.ndarray) -> pathlib.Path:
  sf.write(path, audio.T, 16000)
  return path


def _far_field(x: np.ndarray, mics: np.ndarray, azimuth: float) -> np.ndarray:
  """[M, N] a plane wave from `azimuth` reaching each mic (mic m earlier by m . u / c)."""
  u = np.array([np.cos(azimuth), np.sin(azimuth), 0.0])
  lead = mics @ u / 343.0 * 16000                                    # samples
  spec = np.fft.rfft(x)
  k = np.arange(len(spec))
  return np.stack([np.fft.irfft(spec * np.exp(2j * np.pi * k * d / len(x)), len(x))
                   for d in lead]).astype(np.float32)


def test_the_one_channel_model_reads_directions_from_the_given_array(tmp_path):
  """A talker at 120 degrees in front of a ReSpeaker-like square: the mono model's pipeline
  with --mics finds its direction there (the channel order and the sign convention of the
  geometry are the spatial features'), and without --mics computes none."""
  libri = REPO.parent / "shared" / "data" / "speech" / "libri-test-other"
  clips = sorted(libri.rglob("*.flac"))[:1] if libri.exists() else []
  if not clips:
    pytest.skip("shared speech not present")
  speech, rate = sf.read(clips[0], dtype="float32")
  assert rate == 16000
  speech = speech[:16000 * 6]
  mics = geometry.load("respeaker-4")
  wav = _write(tmp_path / "square.wav", 0.5 * _far_field(speech, mics, np.radians(120.0)))
  mono = runtime.load("mono")
  inf = diarize.infer(wav, mono, progress=False, mics=mics)
  assert inf.response is not None and inf.direction is not None
  grid = spatial.azimuth_grid()
  heard = diarize.heard_frames(inf, 0.5)
  w, s = np.unravel_index(np.argmax(heard), heard.shape)
  found = np.degrees(grid[np.argmax(inf.direction[w, s])])
  assert abs((found - 120.0 + 180.0) % 360.0 - 180.0) <= 10.0
  plain = diarize.infer(wav, mono, progress=False)
  assert plain.response is None and plain.direction is None
  # The model's own input is channel 0 either way: the same speech probabilities.
  np.testing.assert_array_equal(plain.vad, inf.vad)


def test_any_array_settings_are_valid_and_only_for_a_one_channel_model_with_mics():
  from jaxdiar.decoding import settings
  extra = bundled.any_array_settings()
  settings.validate(extra)
  assert extra["spatial_weight"] > 0 and extra["resegment"]
  mono, array8 = runtime.load("mono"), runtime.load("array8")
  plain = diarize.decoding_settings(mono, {})
  spatial = diarize.decoding_settings(mono, {}, geometry.load("respeaker-4"))
  assert plain["spatial_weight"] == mono.meta["inference"]["spatial_weight"]
  assert {k: spatial[k] for k in extra} == extra
  assert diarize.decoding_settings(mono, {"spatial_weight": 0.1},
                                   geometry.load("respeaker-4"))["spatial_weight"] == 0.1
  own = geometry.load("ami-array1")
  assert diarize.decoding_settings(array8, {}, own) == diarize.decoding_settings(array8, {})


def test_the_live_modes_take_the_given_array():
  """stream --mics: the one-channel model reads channel 0; with a spatial weight the talkers'
  directions come from every channel with the given positions (off by default: it lost on
  the fit meetings); an array model takes its own geometry only."""
  mics = geometry.load("respeaker-4")
  s = stream.Streamer(runtime.load("mono"), num_channels=4, mics=mics, spatial_weight=0.2)
  assert s.first_only and s.steer is not None and s.steer.real.shape[1] > 0
  assert s.o["spatial_weight"] == 0.2
  assert stream.Streamer(runtime.load("mono"), num_channels=4, mics=mics).steer is None
  assert stream.Streamer(runtime.load("mono"), num_channels=4, spatial_weight=0.2).steer is None
  with pytest.raises(diarize.InputError, match="4 microphone positions"):
    stream.Streamer(runtime.load("mono"), num_channels=2, mics=mics)
  with pytest.raises(diarize.InputError, match="its own array"):
    stream.Streamer(runtime.load("array8"), num_channels=8,
                    mics=geometry.load("ami-array1") * 0.5)

