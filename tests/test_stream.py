"""The live diarizer: incremental speaker assignment, segments, the CLI on a file and on stdin."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from jaxdiar import stream
from jaxdiar.decoding import settings as settings_lib
from jaxdiar.io import rttm
from jaxdiar.live.streamer import MIN_TALKER_SECONDS
from jaxdiar.models import runtime
from jaxdiar.training import checkpoints

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_assignment_is_incremental_with_cannot_link(exported):
  model = runtime.load(exported[0])
  s = stream.Streamer(model, step_seconds=0.5, cluster_threshold=0.5, anchor_seconds=0.0)
  a, b = np.eye(4)[0], np.eye(4)[1]
  assert list(s._assign(np.stack([a, b]), np.array([2.0, 2.0]))) == [0, 1]   # two new
  # Both locals resemble speaker 0 most: one keeps it; the other may not (cannot-link) and,
  # farther than the threshold from speaker 1, becomes a new speaker.
  near = np.stack([a, 0.9 * a + 0.1 * b])
  near /= np.linalg.norm(near, axis=1, keepdims=True)
  assert list(s._assign(near, np.array([2.0, 2.0]))) == [0, 2]
  # Within the threshold of speaker 1: joins it.
  close = 0.8 * b + 0.2 * a
  assert list(s._assign(np.stack([a, close / np.linalg.norm(close)]),
                        np.array([2.0, 2.0]))) == [0, 1]
  s.max_speakers = 3                      # full: a far voice joins the nearest speaker
  assert s._assign(np.eye(4)[3][None], np.array([2.0]))[0] in (0, 1, 2)
  assert len(s.centroids) == 3
  # A voice heard too briefly never founds a speaker.
  s2 = stream.Streamer(model, step_seconds=0.5, cluster_threshold=0.5, anchor_seconds=1.0)
  assert list(s2._assign(a[None], np.array([0.2]))) == [-1] and not s2.centroids
  with pytest.raises(ValueError, match="latency"):
    stream.Streamer(model, step_seconds=0.5, latency_seconds=0.1)


def test_stream_a_meeting_segments_are_closed_and_ordered(exported, meeting, tmp_path):
  model = runtime.load(exported[0])
  s = stream.Streamer(model, step_seconds=0.25, latency_seconds=1.0)
  audio, rate = sf.read(meeting, dtype="float32")
  out = []
  for start in range(0, len(audio), 1234):                 # blocks of any size
    out += s.push(audio[start:start + 1234].T)
  out += s.finish()
  duration = len(audio) / rate
  assert out == s.segments
  assert all(0 <= g.start < g.end <= duration + 1e-6 for g in out)
  assert s.decided_seconds >= duration - 0.02
  assert not s.open
  for spk in {g.speaker for g in out}:                      # one speaker's segments disjoint
    mine = sorted((g.start, g.end) for g in out if g.speaker == spk)
    assert all(e <= s2 for (_, e), (s2, _) in zip(mine, mine[1:]))
  steps = len(s.step_seconds)
  assert steps == int(np.ceil(len(audio) / s.step))


def test_stdin_gives_the_same_segments_as_the_file(exported, meeting, tmp_path):
  model = str(exported[0])
  data, rate = sf.read(meeting, dtype="int16")
  assert sf.info(meeting).subtype == "PCM_16"
  base = [sys.executable, "-m", "jaxdiar.stream", "--model", model, "--step", "0.5"]
  from_file = subprocess.run(base + [str(meeting), "--out", str(tmp_path / "f.rttm")],
                             cwd=REPO, capture_output=True, text=True, timeout=300)
  assert from_file.returncode == 0, from_file.stderr
  from_stdin = subprocess.run(
      base + ["-", "--channels", str(data.shape[1]), "--sample-rate", str(rate),
              "--format", "s16", "--out", str(tmp_path / "s.rttm"), "--uri", meeting.stem],
      cwd=REPO, input=data.astype("<i2").tobytes(), capture_output=True, timeout=300)
  assert from_stdin.returncode == 0, from_stdin.stderr.decode()
  lines = from_file.stdout.splitlines()
  assert lines and lines == from_stdin.stdout.decode().splitlines()
  segments = [json.loads(l) for l in lines]
  assert all({"start", "end", "speaker"} <= set(g) for g in segments)
  assert "RTF" in from_file.stderr and not from_file.stderr.count("Traceback")
  # The RTTM at the end holds the same segments.
  turns = rttm.read_rttm(tmp_path / "f.rttm")[meeting.stem]
  assert sorted((round(t.onset, 3), t.speaker) for t in turns) == sorted(
      (g["start"], g["speaker"]) for g in segments)
  assert (tmp_path / "f.rttm").read_text() == (tmp_path / "s.rttm").read_text()


def test_stream_errors(exported, tmp_path):
  bad = subprocess.run([sys.executable, "-m", "jaxdiar.stream", "-", "--model",
                        str(exported[0])], cwd=REPO, capture_output=True, text=True,
                       input="", timeout=120)
  assert bad.returncode == 2 and "--channels" in bad.stderr
  two = tmp_path / "two.wav"
  sf.write(two, np.zeros((16000, 2), np.float32), 16000)
  r = subprocess.run([sys.executable, "-m", "jaxdiar.stream", str(two), "--model",
                      str(exported[0])], cwd=REPO, capture_output=True, text=True, timeout=120)
  assert r.returncode == 2 and "2 channel" in r.stderr and "Traceback" not in r.stderr
  # --set reaches every tunable of the Streamer (carry_seconds was once missed).
  assert stream.TUNABLE == {"piece_seconds", "reset_seconds", "carry_seconds", "reliable_seconds",
                            "hold_seconds", "provisional_threshold", "provisional_direction",
                            "live_gate", "min_talker_seconds"}
  parse = lambda items: settings_lib.parse_items(items, extra=stream.TUNABLE, what="setting")
  assert parse(["carry_seconds=3.5", "onset=0.6"]) == dict(carry_seconds=3.5, onset=0.6)
  assert parse(["provisional_threshold=null"]) == dict(provisional_threshold=None)


def test_pcm_blocks_decode_and_resample():
  import io
  x = (0.1 * np.sin(np.arange(24000) / 5.0)).astype(np.float32)
  stereo = np.stack([x, -x], 1)
  blocks = list(stream.pcm_blocks(io.BytesIO(stereo.astype("<f4").tobytes()), 2, 16000, "f32",
                                  16000, 8000))
  np.testing.assert_array_equal(np.concatenate(blocks, 1), stereo.T)
  s16 = (x * 32767).astype("<i2")
  blocks = list(stream.pcm_blocks(io.BytesIO(s16.tobytes()), 1, 8000, "s16", 16000, 8000))
  y = np.concatenate(blocks, 1)[0]
  assert abs(len(y) - 2 * len(x)) <= 2                      # 8 kHz -> 16 kHz
  np.testing.assert_allclose(np.abs(y).max(), 0.1, rtol=0.05)


# --------------------------------------------------------------------------- causal mode


@pytest.fixture(scope="module")
def causal_model(trained_smoke, tmp_path_factory):
  """The smoke model's variables exported as a causal model (its TCN is causal already;
  causal heads and windowed attention change no shape), so it has a streaming step."""
  from jaxdiar.models import export
  _, workdir = trained_smoke
  config, variables, _ = checkpoints.load_checkpoint(workdir)
  config.model.causal = True
  config.model.attention_window = 20
  out = tmp_path_factory.mktemp("causal") / "causal.jaxdiar"
  export.export(config, variables, out, platforms=("cpu",))
  return out


class _Scripted:
  """A causal model's interface with scripted outputs: slot 0 talks throughout (slot 1
  never), with the frame embeddings of voice A before frame `switch` and of voice B after."""
  sample_rate, hop, num_channels, needs_array, can_stream = 16000, 256, 1, False, True
  stream_block_samples = 8 * 256
  stream_outputs = ("frame_emb", "osd", "vad")

  def __init__(self, switch: int):
    from configs import default
    self.switch = switch
    self.meta = dict(inference=default.get_config().inference.to_dict(), num_speakers=2,
                     embedding_dim=4, n_fft=512, mic_positions=[[0.0, 0.0, 0.0]],
                     stream_block_frames=8)

  def stream_init(self, batch_size=1):
    return 0

  def stream_step(self, block, frame):
    frames = frame + np.arange(8)
    vad = np.zeros((1, 8, 2), np.float32)
    vad[..., 0] = 0.9
    emb = np.where((frames < self.switch)[:, None], np.eye(4)[0], np.eye(4)[1])
    return dict(vad=vad, osd=np.zeros((1, 8), np.float32), frame_emb=emb[None]), frame + 8


class _Voices(_Scripted):
  """Slot 0 talks in the scripted turns (first frame, end frame, voice), silent elsewhere."""

  def __init__(self, turns):
    super().__init__(switch=0)
    self.turns = turns

  def stream_step(self, block, frame):
    frames = frame + np.arange(8)
    vad = np.full((1, 8, 2), 0.01, np.float32)
    emb = np.tile(np.eye(4)[3], (8, 1))
    for a, b, voice in self.turns:
      inside = (frames >= a) & (frames < b)
      vad[0, inside, 0] = 0.9
      emb[inside] = np.eye(4)[voice]
    return dict(vad=vad, osd=np.zeros((1, 8), np.float32), frame_emb=emb[None]), frame + 8


def _stream(model, frames, **options):
  """The scripted voices, streamed causally. Their turns last seconds: the end-of-stream fold
  of short talkers is off unless a test asks for it."""
  s = stream.Streamer(model, causal=True, **{"min_talker_seconds": 0.0, **options})
  audio = np.zeros((1, frames * 256), np.float32)
  for start in range(0, audio.shape[1], s.step):
    s.push(audio[:, start:start + s.step])
  s.finish()
  return s


def test_causal_provisional_speaker_for_a_new_voice():
  """A second voice far from the first one's speaker founds a provisional speaker as soon as it
  is heard enough to be matched, confirmed once it has talked 1 s: its first second is its
  own, not the first speaker's (as with provisional speakers off, where it founds its
  speaker only after that second)."""
  fs = 256 / 16000
  turns = [(0, 200, 0), (400, 600, 1)]               # A 0-3.2 s; B 6.4-9.6 s (pause > carry)
  on, off = (_stream(_Voices(turns), 700, provisional_threshold=t) for t in (0.7, None))
  assert on.num_speakers == off.num_speakers == 2 and on.num_dropped == 0
  b_on = [g for g in on.segments if g.speaker == "spk01"]
  assert len(b_on) == 1 and 400 * fs <= b_on[0].start <= 400 * fs + 0.25
  assert [g.speaker for g in on.segments if g.end > 400 * fs] == ["spk01"]
  b_off = [g for g in off.segments if g.speaker == "spk01"]
  assert len(b_off) == 1 and b_off[0].start >= 400 * fs + 0.9
  assert any(g.speaker == "spk00" and g.end > 400 * fs + 0.5 for g in off.segments)
  with pytest.raises(ValueError, match="provisional_threshold"):
    stream.Streamer(_Scripted(switch=0), causal=True, provisional_threshold=2.5)


def test_causal_provisional_speaker_dropped_and_its_place_reused():
  """A voice that stops before it is reliable is dropped: it keeps the frames it was given
  (its own label) but is no speaker; its place serves the next new voice, under a new
  label, and the first voice's return goes to the first speaker."""
  turns = [(0, 200, 0), (300, 330, 1), (500, 600, 0), (800, 1000, 2)]
  s = _stream(_Voices(turns), 1100)
  assert s.num_dropped == 1 and s.num_speakers == 2 and not s.provisional
  assert len(s.centroids) == 2                       # the dropped place reused
  labels = [g.speaker for g in s.segments]
  assert labels == ["spk00", "spk01", "spk00", "spk02"]


def test_dropped_provisional_speaker_is_relabelled(capsys):
  """The dropped voice's segment goes to the confirmed speaker nearest it: one relabel event,
  printed by the command as a JSON line; the final segments carry the final labels, the sent
  ones keep theirs."""
  from jaxdiar.cli import stream as cli_stream
  turns = [(0, 200, 0), (300, 330, 1), (500, 600, 0), (800, 1000, 2)]
  s = _stream(_Voices(turns), 1100)
  cli_stream._relabels(s)
  assert capsys.readouterr().out.splitlines() == ['{"relabel": {"spk01": "spk00"}}']
  assert s.pop_relabels() == []                      # each event is given once
  assert [g.speaker for g in s.segments] == ["spk00", "spk01", "spk00", "spk02"]
  final = s.final_segments()
  assert [g.speaker for g in final] == ["spk00", "spk00", "spk00", "spk02"]
  assert [(g.start, g.end) for g in final] == [(g.start, g.end) for g in s.segments]


def test_a_short_talker_joins_the_nearest_speaker_at_the_end(capsys):
  """A voice heard long enough to be confirmed (1 s alone) but under min_talker_seconds in the
  whole stream joins the speaker nearest it when the stream ends: a relabel event, printed by
  the command, and the final labels; with 0 it stays a speaker."""
  from jaxdiar.cli import stream as cli_stream
  turns = [(0, 300, 0), (400, 530, 1), (650, 950, 2)]       # voice 1: 2.1 s, the others 4.8 s
  s = _stream(_Voices(turns), 1050, min_talker_seconds=MIN_TALKER_SECONDS)
  cli_stream._relabels(s)
  assert capsys.readouterr().out.splitlines() == ['{"relabel": {"spk01": "spk00"}}']
  assert s.num_speakers == 2 and s.num_dropped == 0 and s.folded == {1: 0}
  assert [g.speaker for g in s.segments] == ["spk00", "spk01", "spk02"]
  assert [g.speaker for g in s.final_segments()] == ["spk00", "spk00", "spk02"]
  kept = _stream(_Voices(turns), 1050, min_talker_seconds=0.0)
  assert kept.num_speakers == 3 and not kept.pop_relabels()
  with pytest.raises(ValueError, match="min_talker_seconds"):
    stream.Streamer(_Scripted(switch=0), causal=True, min_talker_seconds=-1.0)


def test_live_gate_silences_what_the_speech_detector_does_not_hear():
  """The scripted voices talk over silent audio: with the live gate (the model's speech_gate)
  every frame is silenced; without it the voices are marked."""
  turns = [(0, 200, 0), (400, 600, 1)]
  heard = _stream(_Voices(turns), 700, speech_gate=0.5, speech_pad=0.2)
  gated = _stream(_Voices(turns), 700, speech_gate=0.5, speech_pad=0.2, live_gate=True)
  assert heard.segments and not gated.segments
  assert len(gated.speech_p) == gated.received // 512       # every chunk of what was stepped


def test_live_gate_says_the_speech_classifier_is_offline_only(caplog):
  """A model deciding speech by its classifier (speech_gate null) streams without a gate, and
  says so; given a speech_gate, the live gate reads the detector as before."""
  with caplog.at_level("WARNING", logger="jaxdiar.live.gate"):
    s = stream.Streamer(_Voices([]), causal=True, live_gate=True, speech_gate=None,
                        speech_classifier=[0.0] * 37)
  assert s.detector is None and "offline only" in caplog.text
  gated = stream.Streamer(_Voices([]), causal=True, live_gate=True, speech_gate=0.5,
                          speech_classifier=[0.0] * 37)
  assert gated.detector is not None


def test_live_gate_on_every_channel_keeps_the_highest():
  """speech_channels="all": the live gate's probabilities are the highest of a detector per
  channel, each carrying its own state from block to block."""
  from jaxdiar.models import vad
  s = stream.Streamer(_Voices([]), causal=True, live_gate=True, speech_gate=0.5,
                      speech_channels="all", num_channels=3)
  rng = np.random.default_rng(0)
  audio = (rng.standard_normal((3, 3 * 4096)) * np.array([[0.01], [0.3], [0.1]])).astype(np.float32)
  got = np.concatenate([s._detect(audio[:, a:a + 4096]) for a in range(0, audio.shape[1], 4096)])
  expect = np.max([vad.Detector(segment=8).push(ch) for ch in audio], axis=0)
  np.testing.assert_allclose(got, expect, atol=1e-6)
  assert not np.allclose(got, vad.Detector(segment=8).push(audio[0]), atol=1e-3)


def test_causal_provisional_speaker_needs_a_direction_of_its_own():
  """On an array a voice founds a provisional speaker only if its direction, too, is far from
  every speaker's: another voice from a known talker's direction does not."""
  from jaxdiar import diarize
  s = stream.Streamer(_Scripted(switch=0), causal=True)
  s.o["spatial_weight"] = 0.75
  grid = np.arange(72)
  toward = lambda deg: np.exp(-0.5 * ((grid - deg / 5) / 2.0) ** 2)[None]
  voice = lambda i, deg: diarize.joint_vectors(np.eye(4)[i][None], toward(deg), 0.75)
  s.centroids, s.mass, s.names = [voice(0, 90)[0]], [5.0], [0]
  rows = np.concatenate([voice(1, 90), voice(1, 270)])
  assert list(s._far_in_direction(rows, np.stack(s.centroids))) == [False, True]
  s.provisional_direction = None
  assert list(s._far_in_direction(rows, np.stack(s.centroids))) == [True, True]


def test_causal_pieces_follow_a_slot_from_one_voice_to_the_next():
  """One slot passes from voice A to voice B without a pause (frame 320 = 5.12 s): pieces of
  2 s let B found its own speaker once a piece of B alone is heard for 1 s; one running
  embedding per slot (pieces longer than the stream) never does."""
  audio = np.zeros((1, 500 * 256), np.float32)
  s = stream.Streamer(_Scripted(switch=320), causal=True)
  block = s.step
  for start in range(0, audio.shape[1], block):
    s.push(audio[:, start:start + block])
    # The latency defaults to one block: every frame of a block is decided once it is in.
    assert s.decided == s.received // s.hop
  s.finish()
  assert len(s.centroids) == 2
  b = [g for g in s.segments if g.speaker == "spk01"]
  assert len(b) == 1 and 5.12 <= b[0].start <= 7.5 and b[0].end == pytest.approx(8.0)
  assert [g.speaker for g in s.segments if g.start < 5.12] == ["spk00"]
  whole = stream.Streamer(_Scripted(switch=320), causal=True, piece_seconds=100.0)
  whole.push(audio)
  whole.finish()
  assert len(whole.centroids) == 1


def test_causal_first_voice_founds_the_first_speaker_at_once():
  """No speaker yet: the first voice founds one as soon as it is heard enough to be matched
  (nobody to confuse it with), not after the second of speech alone a new speaker needs
  once there are others; the rule off, its first second is lost."""
  audio = np.zeros((1, 200 * 256), np.float32)
  starts = {}
  for founds in (True, False):
    s = stream.Streamer(_Scripted(switch=10 ** 6), causal=True, first_founds=founds,
                        provisional_threshold=None)
    s.push(audio)
    s.finish()
    assert len(s.centroids) == 1 and len(s.segments) == 1
    starts[founds] = s.segments[0].start
  assert starts[True] <= 0.2 and starts[False] >= 1.0


def test_causal_hold_waits_for_an_unplaced_voice():
  """hold_seconds: the frames of a voice not yet reliable wait (up to the hold) for it to
  found its speaker, so its first second is labelled rather than lost; frames stay in order,
  none waits past the hold, and a hold equal to the latency changes nothing."""
  audio = np.zeros((1, 200 * 256), np.float32)
  runs = {}
  for hold in (None, 0.128, 1.5):
    s = stream.Streamer(_Scripted(switch=10 ** 6), causal=True, hold_seconds=hold,
                        provisional_threshold=None)
    block = s.step
    for start in range(0, audio.shape[1], block):
      s.push(audio[:, start:start + block])
      assert s.decided * s.hop >= s.received + s.step - (s.hold or s.latency)
    s.finish()
    runs[hold] = s
  assert [g.to_json() for g in runs[0.128].segments] == [g.to_json() for g in runs[None].segments]
  assert runs[None].segments[0].start >= 1.0                    # its first second lost
  held = runs[1.5]
  assert len(held.centroids) == 1 and len(held.segments) == 1 and held.segments[0].start <= 0.2
  latencies = held.frame_latencies()
  assert latencies.max() <= 1.5 + 0.1 and latencies.max() > 0.9   # waited, not past the hold
  # What the frames wait for is the voice's reliability: sooner reliable, shorter waits.
  quick = stream.Streamer(_Scripted(switch=10 ** 6), causal=True, hold_seconds=1.5,
                          reliable_seconds=0.3, provisional_threshold=None)
  quick.push(audio)
  quick.finish()
  assert quick.segments[0].start <= 0.2 and quick.frame_latencies().max() < 0.6
  with pytest.raises(ValueError, match="hold_seconds"):
    stream.Streamer(_Scripted(switch=10 ** 6), causal=True, latency_seconds=0.5,
                    hold_seconds=0.3)
  with pytest.raises(ValueError, match="hold_seconds"):
    stream.Streamer(_Scripted(switch=10 ** 6), hold_seconds=1.0)


def test_causal_stream_decides_each_block_and_stdin_equals_file(causal_model, exported,
                                                                meeting):
  model = runtime.load(causal_model)
  # The smoke model marks several slots at once: little speech alone; looser settings.
  loose = dict(min_active_frames=2, reliable_seconds=0.1)
  s = stream.Streamer(model, causal=True, **loose)
  assert s.step == model.stream_block_samples
  audio, rate = sf.read(meeting, dtype="float32")
  for start in range(0, len(audio), 3000):                 # blocks of any size
    s.push(audio[start:start + 3000].T)
  s.finish()
  assert s.segments and all(0 <= g.start < g.end <= len(audio) / rate + 1e-6
                            for g in s.segments)
  # Decided once the block is in: arrival to decision at most one block plus the compute.
  lat = s.frame_latencies()
  assert lat.max() <= s.step / rate + max(s.step_seconds) + 1e-6
  data, _ = sf.read(meeting, dtype="int16")
  base = [sys.executable, "-m", "jaxdiar.stream", "--model", str(causal_model), "--causal"]
  base += [f"--set={k}={v}" for k, v in loose.items()]
  from_file = subprocess.run(base + [str(meeting)], cwd=REPO, capture_output=True,
                             text=True, timeout=300)
  assert from_file.returncode == 0, from_file.stderr
  from_stdin = subprocess.run(
      base + ["-", "--channels", str(data.shape[1]), "--sample-rate", str(rate)],
      cwd=REPO, input=data.astype("<i2").tobytes(), capture_output=True, timeout=300)
  assert from_stdin.returncode == 0, from_stdin.stderr.decode()
  lines = from_file.stdout.splitlines()
  assert lines and lines == from_stdin.stdout.decode().splitlines()
  rows = [json.loads(l) for l in lines]
  # The segments as the streamer sent them; beside them, one relabel line per dropped
  # provisional speaker (its final label).
  assert [r for r in rows if "relabel" not in r] == [json.loads(g.to_json()) for g in s.segments]
  assert {k: v for r in rows if "relabel" in r for k, v in r["relabel"].items()} == s.renamed
  # A model without a streaming step says so.
  r = subprocess.run([sys.executable, "-m", "jaxdiar.stream", str(meeting), "--causal",
                      "--model", str(exported[0])], cwd=REPO, capture_output=True, text=True,
                     timeout=120)
  assert r.returncode == 2 and "streaming step" in r.stderr and "Traceback" not in r.stderr
  r = subprocess.run(base + [str(meeting), "--set", "no_such=1"], cwd=REPO,
                     capture_output=True, text=True, timeout=120)
  assert r.returncode == 2 and "unknown setting" in r.stderr


def test_causal_stream_resegments_from_the_array(causal_model, meeting, tmp_path):
  """With resegmentation weights the causal stream re-decides each frame from the array:
  its per-frame responses are the offline ones of the whole file, the decision changes,
  and stdin still equals the file."""
  from jaxdiar.models import export
  from jaxdiar.core import resegment as resegment_lib
  from jaxdiar.core import spatial as spatial_lib
  weights = np.zeros(resegment_lib.NUM_FEATURES + 1)
  weights[2 * len(resegment_lib.SMOOTH_FRAMES)] = 8.0     # the speaker's score ...
  weights[1] = 2.0                                        # ... and its direction (5 frames)
  weights[-1] = -4.0
  model_file = tmp_path / "reseg.jaxdiar"
  export.set_inference(causal_model, model_file,
                       {"resegment": weights.tolist(), "resegment_threshold": 0.5})
  model = runtime.load(model_file)
  loose = dict(min_active_frames=2, reliable_seconds=0.1)
  audio, rate = sf.read(meeting, dtype="float32")
  runs = {}
  for reseg in (True, False):
    s = stream.Streamer(model, causal=True, **loose, **({} if reseg else {"resegment": None}))
    assert s.reseg == reseg
    s.push(audio.T)
    s.finish()
    runs[reseg] = s
  s = runs[True]
  assert s.segments and all(0 <= g.start < g.end <= len(audio) / rate + 1e-6
                            for g in s.segments)
  # Directions from the reliable pieces instead (an option): gathered, and used.
  pieces = stream.Streamer(model, causal=True, templates="pieces", **loose)
  pieces.push(audio.T)
  pieces.finish()
  assert pieces.piece_dir_mass.sum() > 0 and not s.piece_dir_mass.any()
  assert pieces.segments and all(0 <= g.start < g.end <= len(audio) / rate + 1e-6
                                 for g in pieces.segments)
  with pytest.raises(ValueError, match="templates"):
    stream.Streamer(model, causal=True, templates="nearest")
  assert [g.to_json() for g in s.segments] != [g.to_json() for g in runs[False].segments]
  meta = model.meta
  steer = spatial_lib.steering(meta["mic_positions"], meta["n_fft"], rate,
                               spatial_lib.azimuth_grid())
  offline = spatial_lib.frame_response(spatial_lib.stft(audio.T, meta["n_fft"], meta["hop"]),
                                       steer)
  n = min(len(offline), s.filled) - 1
  np.testing.assert_allclose(s.response[:n], offline[:n], atol=2e-4)
  data, _ = sf.read(meeting, dtype="int16")
  base = [sys.executable, "-m", "jaxdiar.stream", "--model", str(model_file), "--causal"]
  base += [f"--set={k}={v}" for k, v in loose.items()]
  from_file = subprocess.run(base + [str(meeting)], cwd=REPO, capture_output=True, text=True,
                             timeout=300)
  from_stdin = subprocess.run(
      base + ["-", "--channels", str(data.shape[1]), "--sample-rate", str(rate)],
      cwd=REPO, input=data.astype("<i2").tobytes(), capture_output=True, timeout=300)
  assert from_file.returncode == 0 and from_stdin.returncode == 0, from_file.stderr
  assert from_file.stdout.splitlines() == from_stdin.stdout.decode().splitlines()
  rows = [json.loads(l) for l in from_file.stdout.splitlines()]
  assert [r for r in rows if "relabel" not in r] == [json.loads(g.to_json()) for g in s.segments]
  assert {k: v for r in rows if "relabel" in r for k, v in r["relabel"].items()} == s.renamed
