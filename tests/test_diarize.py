"""The diarize pipeline on an exported model: a simulated meeting end to end (RTTM, plot,
evaluate), real AMI excerpts scored as pyannote.metrics does, bad inputs, clustering and
post-processing."""

import json
import pathlib
import sys

import numpy as np
import pytest
import soundfile as sf
from pyannote.core import Segment, Timeline
from pyannote.metrics.diarization import DiarizationErrorRate

from jaxdiar import diarize
from jaxdiar.cli import evaluate as cli_evaluate
from jaxdiar.core import scoring as evaluate
from jaxdiar.io import rttm
from tests.conftest import shared_data


def test_diarize_a_simulated_meeting_and_evaluate(exported, trained_smoke, tmp_path):
  path, _ = exported
  config, _ = trained_smoke
  dev = sorted(pathlib.Path(config.data.data_dir).glob("simulated-*/dev"))[0]
  wav, ref = dev / "meeting00000.wav", dev / "meeting00000.rttm"
  out = tmp_path / "hyp.rttm"
  assert diarize.main([str(wav), "--model", str(path), "--out", str(out),
                       "--plot", str(tmp_path / "d.png"), "--ref", str(ref)]) == 0
  hyp = rttm.read_rttm(out)
  assert list(hyp) == ["meeting00000"]
  duration = sf.info(wav).duration
  assert all(0 <= t.onset < t.offset <= duration + 1e-6 for t in hyp["meeting00000"])
  assert (tmp_path / "d.png").stat().st_size > 10000
  assert cli_evaluate.main(["--ref", str(ref), "--hyp", str(out), "--json",
                            str(tmp_path / "s.json")]) == 0
  scores = json.loads((tmp_path / "s.json").read_text())
  t = scores["total"]
  assert t["der"] == pytest.approx(t["missed"] + t["false_alarm"] + t["confusion"])
  assert 0 <= t["jer"] <= 1 and scores["speakers"]


def test_frame_responses_are_the_recordings_and_each_computed_once(exported, trained_smoke,
                                                                   monkeypatch):
  """Overlapping windows share frames: infer computes each frame's SRP-PHAT response once,
  equal to that of the whole recording's STFT (but at the last window's end, zero-padded);
  each local speaker's direction is the weighted mean over its window's frames."""
  from jaxdiar.models import runtime
  from jaxdiar.core import spatial
  from jaxdiar.data import audio as audio_lib
  config, _ = trained_smoke
  wav = sorted(pathlib.Path(config.data.data_dir).glob("simulated-*/dev"))[0] / "meeting00000.wav"
  model = runtime.load(exported[0])
  computed = []
  original = spatial.frame_response
  monkeypatch.setattr(spatial, "frame_response",
                      lambda spec, steer: computed.append(spec.shape[-1]) or original(spec, steer))
  inf = diarize.infer(wav, model, progress=False, step_seconds=1.0)      # 75 % overlap
  tw = inf.vad.shape[1]
  half = 1                                             # n_fft / 2 = one hop: a window's end
  windows = len(inf.window_frames)
  assert windows > 4 and sum(computed) == inf.window_frames[-1] + tw + half * (windows - 1)
  x = audio_lib.read(wav, model.sample_rate)
  steer = spatial.steering(model.meta["mic_positions"], model.meta["n_fft"], model.sample_rate,
                           spatial.azimuth_grid())
  whole = original(spatial.stft(x, model.meta["n_fft"], model.hop), steer)
  edge = 2                                             # the zero-padded end
  np.testing.assert_allclose(inf.response[:-edge].astype(np.float32),
                             whole[:len(inf.response) - edge], atol=2e-3)
  for w in (0, windows // 2):                          # its frames, the last zero-padded
    f0 = inf.window_frames[w]
    x = audio_lib.read(wav, model.sample_rate, f0 * model.hop, (f0 + tw - 1) * model.hop)
    frames = np.concatenate([whole[f0:f0 + tw - 1],
                             original(spatial.stft(x, model.meta["n_fft"], model.hop), steer)[-1:]])
    want = diarize.local_directions(inf.vad[w].astype(np.float32), frames)
    np.testing.assert_allclose(inf.direction[w], want, rtol=1e-2, atol=1e-4)


def test_ami_excerpts_end_to_end_and_scores_match_pyannote(exported, tmp_path):
  """Real single-channel AMI audio through the 8-channel model by channel replication."""
  folder = shared_data("ami-excerpts")
  path, _ = exported
  inputs = [str(folder / f"trn0{i}.wav") for i in (0, 1)]
  out = tmp_path / "ami.rttm"
  assert diarize.main(inputs + ["--model", str(path), "--out", str(out),
                                "--replicate-channels", "--max-speakers", "4"]) == 0
  ref = {u: t for u, t in rttm.read_rttm(folder / "debug.train.rttm").items()
         if u in ("trn00", "trn01")}
  hyp = rttm.read_rttm(out)
  uem = rttm.read_uem(folder / "debug.train.uem")
  ours = evaluate.score(ref, hyp, uem, collar=0.5)
  # pyannote.metrics directly.
  metric = DiarizationErrorRate(collar=0.5)
  for uri in ref:
    metric(evaluate.to_annotation(ref[uri], uri), evaluate.to_annotation(hyp.get(uri, []), uri),
           uem=Timeline([Segment(*r) for r in uem[uri]]))
  assert ours["total"]["der"] == pytest.approx(abs(metric), rel=1e-9)
  assert ours["total"]["scored_seconds"] == pytest.approx(metric[:]["total"])
  with pytest.raises(SystemExit):        # a mono file needs the flag with this model
    sys.exit(diarize.main([inputs[0], "--model", str(path), "--out", str(tmp_path / "x.rttm")]))
  assert not (tmp_path / "x.rttm").exists()


@pytest.mark.parametrize("case", ["channels", "unreadable", "empty", "zeros", "nan", "missing"])
def test_bad_inputs_give_clear_errors_and_no_rttm(exported, tmp_path, case, capsys):
  path, _ = exported
  wav = tmp_path / f"{case}.wav"
  if case == "channels":
    sf.write(wav, np.full((16000, 2), 0.1, np.float32), 16000)
  elif case == "unreadable":
    wav.write_bytes(b"not audio at all")
  elif case == "empty":
    sf.write(wav, np.zeros((0, 8), np.float32), 16000)
  elif case == "zeros":
    sf.write(wav, np.zeros((16000, 8), np.float32), 16000)
  elif case == "nan":
    sf.write(wav, np.full((16000, 8), np.nan, np.float32), 16000, subtype="FLOAT")
  out = tmp_path / "out.rttm"
  assert diarize.main([str(wav), "--model", str(path), "--out", str(out)]) == 2
  message = capsys.readouterr().err
  expected = dict(channels="2 channel", unreadable="cannot read", empty="empty",
                  zeros="all zeros", nan="NaN", missing="cannot read")[case]
  assert expected in message, message
  assert not out.exists() and not list(tmp_path.glob(".out.rttm*"))


def test_clustering_beyond_max_embeddings_clusters_a_subset_and_assigns_the_rest():
  rng = np.random.default_rng(1)
  centres = rng.standard_normal((3, 16)) * 5
  truth = np.concatenate([rng.permutation(3)[:2] for _ in range(150)])  # 2 locals a window
  windows = np.repeat(np.arange(150), 2)
  emb = centres[truth] + 0.5 * rng.standard_normal((300, 16))
  full = diarize.cluster(emb, windows, threshold=0.5)
  bounded = diarize.cluster(emb, windows, threshold=0.5, max_embeddings=40)
  for labels in (full, bounded):
    assert len(set(labels)) == 3
    # the same partition as the truth (labels up to a permutation)
    assert len(set(zip(labels, truth))) == 3
    # two local speakers of one window never share a label
    assert np.all(labels[0::2] != labels[1::2])
  assert len(set(zip(bounded, full))) == 3       # the subset path finds the same partition


def test_clustering_and_postprocessing():
  rng = np.random.default_rng(0)
  centres = rng.standard_normal((3, 16)) * 5
  emb = np.concatenate([c + 0.1 * rng.standard_normal((4, 16)) for c in centres])
  windows = np.arange(12)       # all in different windows
  labels = diarize.cluster(emb, windows, threshold=0.5)
  assert len(set(labels)) == 3
  assert all(len(set(labels[i * 4:(i + 1) * 4])) == 1 for i in range(3))
  assert len(set(diarize.cluster(emb, windows, num_speakers=2))) == 2
  assert len(set(diarize.cluster(emb, windows, threshold=0.5, max_speakers=2))) == 2
  # Two local speakers of one window never share a label.
  same = diarize.cluster(emb[:2], np.array([0, 0]), threshold=1.5)
  assert same[0] != same[1]
  prob = np.array([0.1, 0.6, 0.45, 0.45, 0.3, 0.2, 0.7, 0.9, 0.1, 0.1])
  np.testing.assert_array_equal(diarize.binarize(prob, 0.5, 0.4, 1, 1),
                                [0, 1, 1, 1, 0, 0, 1, 1, 0, 0])
  np.testing.assert_array_equal(diarize.binarize(prob, 0.5, 0.4, 1, 3),
                                [0, 1, 1, 1, 1, 1, 1, 1, 0, 0])      # gap of 2 filled
  np.testing.assert_array_equal(diarize.binarize(prob, 0.5, 0.4, 3, 1),
                                [0, 1, 1, 1, 0, 0, 0, 0, 0, 0])      # 2-frame run dropped
  # A stream's newest frames: a short run reaching the last frame may go on and is kept;
  # a short run that ended is still dropped.
  np.testing.assert_array_equal(diarize.binarize(prob[:8], 0.5, 0.4, 3, 1, open_end=True),
                                [0, 1, 1, 1, 0, 0, 1, 1])
  np.testing.assert_array_equal(diarize.binarize(prob, 0.5, 0.4, 3, 1, open_end=True),
                                [0, 1, 1, 1, 0, 0, 0, 0, 0, 0])
