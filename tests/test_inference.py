"""Export, the diarize pipeline, streaming, evaluation and plots."""

import json
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest
import soundfile as sf
from pyannote.core import Segment, Timeline
from pyannote.metrics.diarization import DiarizationErrorRate

from configs import smoke
from jaxdiar import diarize
from jaxdiar import evaluate
from jaxdiar import export
from jaxdiar import model as model_lib
from jaxdiar import features as features_lib
from jaxdiar import rttm
from jaxdiar import runtime
from tests.conftest import shared_data


FRESH_PROCESS = r"""
import sys, numpy as np
from jaxdiar import runtime
model = runtime.load(sys.argv[1])
data = np.load(sys.argv[2])
outs = {}
for i in range(int(data["count"])):
  for k, v in model(data[f"audio{i}"]).items():
    outs[f"{k}{i}"] = np.asarray(v)
assert "flax" not in sys.modules and "jaxdiar.model" not in sys.modules, "imported flax"
np.savez(sys.argv[3], **outs)
print("ok")
"""


def test_exported_file_in_a_fresh_process_equals_the_checkpoint(exported, tmp_path):
  path, workdir = exported
  config, variables, _ = export.load_checkpoint(workdir)
  forward = jax.jit(export.forward_fn(model_lib.from_config(config.model), variables,
                                      config.features))
  rng = np.random.default_rng(0)
  lengths = [(1, 16000), (2, 23456), (3, 40000)]        # several batch sizes and lengths
  audio = {f"audio{i}": (0.1 * rng.standard_normal((b, 8, n))).astype(np.float32)
           for i, (b, n) in enumerate(lengths)}
  np.savez(tmp_path / "in.npz", count=len(lengths), **audio)
  script = tmp_path / "fresh.py"
  script.write_text(FRESH_PROCESS)
  done = subprocess.run([sys.executable, str(script), str(path), str(tmp_path / "in.npz"),
                         str(tmp_path / "out.npz")], capture_output=True, text=True,
                        cwd=tmp_path, timeout=300)
  assert done.returncode == 0, done.stderr[-3000:]
  got = np.load(tmp_path / "out.npz")
  for i, (b, n) in enumerate(lengths):
    want = forward(audio[f"audio{i}"])
    assert got[f"vad{i}"].shape == (b, 1 + n // 256, 4)
    for k in ("vad", "osd", "spk_emb"):
      np.testing.assert_allclose(got[f"{k}{i}"], want[k], atol=1e-5, rtol=1e-5)


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
  assert evaluate.main(["--ref", str(ref), "--hyp", str(out), "--json",
                        str(tmp_path / "s.json")]) == 0
  scores = json.loads((tmp_path / "s.json").read_text())
  t = scores["total"]
  assert t["der"] == pytest.approx(t["missed"] + t["false_alarm"] + t["confusion"])
  assert 0 <= t["jer"] <= 1 and scores["speakers"]


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


@pytest.mark.parametrize("attention_window", [None, 20])
def test_streaming_equals_offline_causal_model(tmp_path, attention_window):
  """Block by block (8 frames) = the offline causal model: TCN only, and with windowed
  causal attention over 20 frames (its state spans blocks)."""
  config = smoke.get_config()
  config.model.causal = True
  config.model.use_attention = attention_window is not None
  config.model.attention_window = attention_window or 0
  model = model_lib.from_config(config.model)
  d = features_lib.feature_dim(config.features)
  variables = model_lib.init_variables(model, jax.random.key(0), d)
  # Non-trivial BatchNorm statistics, as after training.
  variables = dict(variables, batch_stats=jax.tree.map(
      lambda x: x + 0.3 * jax.random.uniform(jax.random.key(3), x.shape), variables["batch_stats"]))
  path = tmp_path / "causal.jaxdiar"
  export.export(config, variables, path, platforms=("cpu",))
  m = runtime.load(path)
  assert m.can_stream
  block = m.stream_block_samples
  n = 12 * block
  audio = (0.1 * np.random.default_rng(0).standard_normal((2, 8, n))).astype(np.float32)
  offline = m(audio)
  state = m.stream_init(2)
  vad, osd = [], []
  for s in range(0, n, block):
    out, state = m.stream_step(audio[:, :, s:s + block], state)
    vad.append(np.asarray(out["vad"]))
    osd.append(np.asarray(out["osd"]))
  vad, osd = np.concatenate(vad, 1), np.concatenate(osd, 1)
  assert vad.shape == (2, n // 256, 4)
  np.testing.assert_allclose(vad, offline["vad"][:, :n // 256], atol=2e-5)
  np.testing.assert_allclose(osd, offline["osd"][:, :n // 256], atol=2e-5)
  # A model with full (unwindowed) attention has no streaming step, and says so.
  config.model.use_attention = True
  config.model.attention_window = 0
  model = model_lib.from_config(config.model)
  export.export(config, model_lib.init_variables(model, jax.random.key(0), d),
                tmp_path / "attn.jaxdiar", platforms=("cpu",))
  with pytest.raises(runtime.ModelFileError, match="streaming"):
    runtime.load(tmp_path / "attn.jaxdiar").stream_init()


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


def test_export_set_changes_only_the_decoding_settings(exported, tmp_path):
  path, _ = exported
  out = tmp_path / "tuned.jaxdiar"
  run = lambda *a: subprocess.run([sys.executable, "-m", "jaxdiar.export", *a],
                                  capture_output=True, text=True, timeout=300)
  done = run("--model", str(path), "--set", "resegment_threshold=0.7",
             "--set", "cluster_threshold=0.3", "--out", str(out))
  assert done.returncode == 0, done.stderr[-2000:]
  before, after = runtime.load(path), runtime.load(out)
  assert after.meta["inference"] == dict(before.meta["inference"], resegment_threshold=0.7,
                                         cluster_threshold=0.3)
  assert {k: v for k, v in after.meta.items() if k != "inference"} == \
      {k: v for k, v in before.meta.items() if k != "inference"}
  audio = (0.1 * np.random.default_rng(0).standard_normal((1, 8, 16000))).astype(np.float32)
  for k, v in before(audio).items():
    np.testing.assert_array_equal(np.asarray(after(audio)[k]), np.asarray(v))
  for args, message in [(["--set", "nope=1"], "unknown decoding setting(s) nope"),
                        (["--set", "onset=high"], "not JSON"),
                        (["--set", "onset"], "expected KEY=JSON")]:
    bad = run("--model", str(path), *args, "--out", str(tmp_path / "bad.jaxdiar"))
    assert bad.returncode == 2 and message in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "bad.jaxdiar").exists()


def test_bad_model_file(tmp_path):
  (tmp_path / "m.jaxdiar").write_bytes(b"nope")
  with pytest.raises(runtime.ModelFileError, match="not a .jaxdiar"):
    runtime.load(tmp_path / "m.jaxdiar")


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
