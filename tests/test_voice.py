"""The ported voice encoder (jaxdiar.voice) against its oracles: librosa's mel spectrogram, a
numpy LSTM, and the embeddings Resemblyzer itself computed for a shared utterance; and how
`diarize` uses its d-vectors (voice_segments, voice_weight, min_cluster_size)."""

import librosa
import numpy as np
import pytest

from jaxdiar import diarize
from jaxdiar.cli import voice as cli_voice
from jaxdiar.data import audio as audio_lib
from jaxdiar.models import voice
from tests.conftest import REPO
from tests.conftest import shared_data

REFERENCE = REPO / "tests" / "data" / "resemblyzer-1688-142285-0000.npz"


def test_mel_spectrogram_is_librosas():
  wav = np.random.default_rng(0).normal(size=12345).astype(np.float32) * 0.1
  ours = voice.mel_spectrogram(wav)
  ref = librosa.feature.melspectrogram(y=wav, sr=16000, n_fft=400, hop_length=160, n_mels=40).T
  assert ours.shape == ref.shape == (1 + 12345 // 160, 40)
  np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-6 * ref.max())


def _numpy_forward(params, mels):
  """The encoder by hand: three LSTM layers (gates i, f, g, o), last state, linear, ReLU, unit."""
  sig = lambda z: 1 / (1 + np.exp(-z))
  x = mels.astype(np.float64)
  for layer in range(voice.LAYERS):
    w_ih, w_hh, b = (params[f"lstm_{k}_{layer}"].astype(np.float64) for k in ("ih", "hh", "b"))
    h = np.zeros((len(x), w_hh.shape[1]))
    c = np.zeros_like(h)
    out = []
    for t in range(x.shape[1]):
      i, f, g, o = np.split(x[:, t] @ w_ih.T + h @ w_hh.T + b, 4, axis=-1)
      c = sig(f) * c + sig(i) * np.tanh(g)
      h = sig(o) * np.tanh(c)
      out.append(h)
    x = np.stack(out, axis=1)
  e = np.maximum(h @ params["linear_w"].T + params["linear_b"], 0)
  return e / np.linalg.norm(e, axis=-1, keepdims=True)


def test_forward_is_the_numpy_lstm():
  params = voice.load()
  assert sum(v.size for v in params.values()) == 1420544      # Resemblyzer's 3 x 256 LSTM
  mels = np.abs(np.random.default_rng(1).normal(size=(3, 30, 40))).astype(np.float32)
  np.testing.assert_allclose(np.asarray(voice.forward(params, mels)),
                             _numpy_forward(params, mels), atol=2e-5)


def test_embeddings_are_resemblyzers():
  """The reference vectors were computed by resemblyzer 0.1.4 (torch, float32 weights):
  VoiceEncoder().embed_utterance(normalize_volume(wav, -30, increase_only=True))."""
  wav = audio_lib.read(shared_data("speech", "libri-test-other", "1688",
                                   "1688-142285-0000.flac"), 16000)[0]
  ref = np.load(REFERENCE)
  ours = voice.embed([wav[:4 * 16000], wav[16000:24000]])
  cos = np.sum(ours * np.stack([ref["first_4s"], ref["short_0.5s_at_1s"]]), axis=1)
  assert np.all(cos > 0.9999), cos             # float16 weights in the package


def test_embed_edge_cases_and_partials():
  rng = np.random.default_rng(2)
  speechy = rng.normal(size=40000).astype(np.float32) * 0.05
  out = voice.embed([np.zeros(0, np.float32), speechy, np.zeros(8000, np.float32), speechy])
  assert out.shape == (4, 256)
  assert not out[0].any() and not out[2].any()                  # nothing to embed: zero rows
  np.testing.assert_allclose(np.linalg.norm(out[[1, 3]], axis=1), 1, atol=1e-5)
  np.testing.assert_allclose(out[1], out[3], atol=1e-6)         # batching changes nothing
  # Resemblyzer's partials: 1.6 s each, 1.3 a second, the last kept at 75 % coverage.
  assert voice.partial_slices(8000) == [slice(0, 160)]
  assert [s.start for s in voice.partial_slices(45000)] == [0, 77, 154]   # last: 80 % audio
  assert [s.start for s in voice.partial_slices(40000)] == [0, 77]        # last: 60 %, dropped
  assert all(s.stop - s.start == 160 for s in voice.partial_slices(123456))
  # Volume: raised to -30 dBFS, never lowered.
  quiet = speechy * 0.01
  assert 20 * np.log10(np.sqrt(np.mean(voice.normalize_volume(quiet) ** 2))) == pytest.approx(-30)
  loud = speechy * 10
  assert voice.normalize_volume(loud) is loud


def test_voice_segments_take_the_alone_frames():
  hop = 256
  audio = np.arange(40 * hop, dtype=np.float32)
  vad = np.zeros((40, 3), np.float32)
  vad[0:30, 0] = 0.9                     # speaker 0: 30 frames, alone in 0-9 and 20-29
  vad[10:20, 1] = 0.9                    # speaker 1: 10 frames, all overlapped with 0
  vad[35:38, 2] = 0.9                    # speaker 2: 3 frames, too few
  seg = diarize.voice_segments(audio, vad, hop, onset=0.5, min_alone_seconds=0.1)
  frames = lambda x: sorted({int(v) // hop for v in x})
  assert frames(seg[0]) == list(range(0, 10)) + list(range(20, 30))   # alone: 0.32 s >= 0.1
  assert frames(seg[1]) == list(range(10, 20))       # never alone: all its frames instead
  assert len(seg[2]) == 0
  longer = diarize.voice_segments(audio, vad, hop, onset=0.5, min_alone_seconds=1.0)
  assert frames(longer[0]) == list(range(0, 30))     # alone too short: all its frames


def test_voice_weight_joins_and_needs_the_dvectors():
  rng = np.random.default_rng(3)
  emb, vec = rng.normal(size=(4, 2, 8)), rng.normal(size=(4, 2, 5))
  vec /= np.linalg.norm(vec, axis=-1, keepdims=True)
  assert diarize.voice_joined(emb, vec, 1.0) is vec
  j = diarize.voice_joined(emb, vec, 0.25)
  e = emb / np.linalg.norm(emb, axis=-1, keepdims=True)
  # One cosine = 0.75 * the embeddings' cosine + 0.25 * the d-vectors'.
  np.testing.assert_allclose(np.sum(j[0, 0] * j[1, 1]),
                             0.75 * e[0, 0] @ e[1, 1] + 0.25 * vec[0, 0] @ vec[1, 1])
  inference = diarize.Inference("u", np.array([0]), np.zeros((1, 10, 2), np.float16),
                                np.zeros((1, 10), np.float16), emb[:1], None, 10, 2560, 16000,
                                256)
  with pytest.raises(ValueError, match="voice=True"):
    diarize.decode(inference, {"voice_weight": 1.0})


def test_min_cluster_size_dissolves_small_clusters():
  rng = np.random.default_rng(4)
  centres = np.eye(6)[:3] * 10
  who = np.array([0] * 6 + [1] * 6 + [2])             # speaker 2: one local speaker only
  x = centres[who] + rng.normal(scale=0.3, size=(len(who), 6))
  windows = np.arange(len(who))                       # one local speaker per window
  plain = diarize.cluster(x, windows, threshold=0.5)
  assert len(np.unique(plain)) == 3
  pruned = diarize.cluster(x, windows, threshold=0.5, min_cluster_size=2)
  assert len(np.unique(pruned)) == 2
  assert len(np.unique(pruned[who == 0])) == len(np.unique(pruned[who == 1])) == 1
  assert pruned[0] != pruned[6]
  # The same as a share of the 13 anchors: 10 % asks 2, 5 % asks 1 (nothing dissolved).
  np.testing.assert_array_equal(
      diarize.cluster(x, windows, threshold=0.5, min_cluster_share=0.1), pruned)
  assert len(np.unique(diarize.cluster(x, windows, threshold=0.5, min_cluster_share=0.05))) == 3
  # A given count is kept as it is.
  assert len(np.unique(diarize.cluster(x, windows, num_speakers=3, min_cluster_size=2))) == 3
  assert len(np.unique(diarize.cluster(x, windows, num_speakers=3, min_cluster_share=0.1))) == 3


def test_infer_gives_each_local_speaker_its_dvector(exported, trained_smoke):
  """diarize.infer(voice=True): one d-vector per window and local speaker, that of its own
  audio (voice_segments of the window's first channel), and decode clusters them."""
  import pathlib
  from jaxdiar.models import runtime
  path, _ = exported
  config, _ = trained_smoke
  wav = sorted(pathlib.Path(config.data.data_dir).glob("simulated-*/dev"))[0] / "meeting00000.wav"
  model = runtime.load(path)
  inf = diarize.infer(wav, model, progress=False, voice=True)
  w, _, s = inf.vad.shape
  assert inf.voice.shape == (w, s, voice.EMBEDDING_DIM)
  norms = np.linalg.norm(inf.voice, axis=-1)
  assert np.all((np.abs(norms - 1) < 1e-4) | (norms == 0)) and np.any(norms > 0)
  # Window 1's local speakers, embedded by hand from the recording.
  audio = audio_lib.read(wav, 16000)
  f0 = inf.window_frames[1]
  window = int(round(model.meta["inference"]["window_seconds"] * 16000))
  block = audio[0, f0 * inf.hop:f0 * inf.hop + window]
  block = np.pad(block, (0, window - len(block)))
  segments = diarize.voice_segments(block, inf.vad[1], inf.hop, diarize.VOICE_ONSET)
  np.testing.assert_allclose(inf.voice[1], voice.embed(segments), atol=1e-5)
  result = diarize.decode(inf, {**model.meta["inference"], "voice_weight": 1.0,
                                "cluster_threshold": 0.2, "min_cluster_size": 2})
  assert result.active.shape[0] == inf.total_frames


def test_cli_embeds_files_and_refuses_bad_ones(tmp_path, capsys):
  rng = np.random.default_rng(5)
  wav = tmp_path / "a.wav"
  audio_lib.write_wav(wav, (0.05 * rng.normal(size=(1, 24000))).astype(np.float32), 16000)
  assert cli_voice.main(["embed", str(wav)]) == 0
  line = capsys.readouterr().out.split()
  assert line[0] == str(wav) and len(line) == 257
  np.testing.assert_allclose(np.float32(line[1:]), voice.embed([audio_lib.read(wav, 16000)[0]])[0],
                             atol=1e-5)
  assert cli_voice.main(["embed", str(tmp_path / "missing.wav")]) == 2
  err = capsys.readouterr().err
  assert err.startswith("error:") and "missing.wav" in err and "Traceback" not in err
  (tmp_path / "bad.pt").write_text("not a checkpoint")
  assert cli_voice.main(["port", str(tmp_path / "bad.pt"), "--out", str(tmp_path / "w.npz")]) == 2
  assert not (tmp_path / "w.npz").exists()
