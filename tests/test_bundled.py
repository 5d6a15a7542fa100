"""The bundled models: each loads in a fresh process (no --model: chosen by channel count) and
diarizes one short fixed dev meeting from unseen voices under a stated DER bound."""

import subprocess
import sys

import pytest

from configs import default
from jaxdiar.core import scoring as evaluate
from jaxdiar.data import audio as audio_lib
from jaxdiar.data import devmeetings
from jaxdiar.data import simulate as sim_lib
from jaxdiar.io import rttm
from jaxdiar.models import bundled
from jaxdiar.models import runtime
from tests.conftest import REPO
from tests.conftest import shared_data

# Measured with the committed models (collar 0, overlap scored, estimated count): array8
# 5.3 % (2026-12-01, with the spatial resegmentation and count of this date; 17.6 % before), mono
# 25.1 % (2026-11-28); on the meeting of simulator version 2 (no talker over themselves):
# array8 4.4 %, mono 24.3 % (2026-12-01); the mono file with the voice encoder's d-vectors
# (2026-12-01, later): 18.5 %; with the speech detector's gate (2026-12-02): 19.5 %; array8 with
# the speech detector's gate 0.4 / 0.2 s and float16 weights (2026-12-05): 8.7 %; with turns of at
# least 0.5 s and resegmentation threshold 0.6 (2026-12-06) within the bound. Since 2026-12-06
# (later) six meetings (seeds 77-82) pooled: array8 fine-tuned on the shift pool 25.3 % (the file
# before it, gate on every channel: 27.7 %; on seed 77 alone 31.4 % against 9.0 %, on seed 78
# 13.6 % against 32.1 %: one meeting is a coin toss of the count), mono 31.9 %. The bounds
# leave room for numeric differences between machines, not for a worse model.
BOUNDS = {"array8": 0.27, "mono": 0.34}
MEETING_SEEDS = tuple(range(77, 83))
# The bundled live model streamed (causal, 0.25 s latency) on the same meeting: measured
# 2026-12-06: 0.140; the bound leaves room for machines.
LIVE_BOUND = 0.20


def test_bundled_models_fit_the_budget_and_channel_choice():
  sizes = {name: bundled.path(name).stat().st_size for name in bundled.MODELS}
  files = {p.name: p.stat().st_size for p in bundled.path("mono").parent.iterdir()}
  assert files["voice_encoder.npz"] and files["silero_vad.npz"]
  assert set(files) >= {bundled.MODELS[n] for n in sizes}
  assert sum(files.values()) < 30e6, files   # every shipped weight file, encoder's, detector's
  assert bundled.choose(8) == "array8"
  assert bundled.choose(1) == bundled.choose(2) == "mono"
  assert bundled.choose_live(8) == "array8-live" and bundled.choose_live(1) == "mono"
  live = runtime.load("array8-live")
  assert live.can_stream and live.meta["causal"] and set(RECIPES) == set(bundled.MODELS)
  with pytest.raises(KeyError, match="bundled"):
    bundled.path("nope")


RECIPES = {"array8": "array8", "mono": "mono", "array8-live": "array8_causal"}


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_bundled_model_decodes_as_its_recipe(name):
  """What `diarize` uses for a bundled file (its settings over the defaults) is what its config
  in configs/ sets: the README's reproduce commands give the bundled decoding."""
  import importlib
  import json
  import zipfile
  from jaxdiar import diarize
  with zipfile.ZipFile(bundled.path(name)) as z:
    shipped = json.loads(z.read("meta.json"))["inference"]
  recipe = importlib.import_module(f"configs.{RECIPES[name]}").get_config().inference.to_dict()
  normal = lambda d: json.loads(json.dumps({**diarize.DEFAULT_DECODE, **d}))  # tuples -> lists
  assert normal(recipe) == normal(shipped)


@pytest.fixture(scope="module")
def dev_meeting(tmp_path_factory):
  speech = shared_data("speech", "libri-test-other")
  source = sim_lib.speech_source(str(speech))
  audio, turns, scene = sim_lib.simulate_meeting(source, 2, 77, devmeetings.dev_sim_config(),
                                                 default.circular_array(), 40.0, 16000)
  folder = tmp_path_factory.mktemp("bundled")
  audio_lib.write_wav(folder / "array.wav", audio, 16000)
  audio_lib.write_wav(folder / "mono.wav", audio[:1], 16000)
  return folder, turns


@pytest.fixture(scope="module")
def dev_meetings(tmp_path_factory):
  """Six short dev-style meetings (seeds 77-82, 2-3 talkers, 40 s): one meeting alone turns on
  whether its count comes out right (both array8 files of 2026-12-06 find one talker in one of
  the first two), which says little of a model."""
  speech = shared_data("speech", "libri-test-other")
  source = sim_lib.speech_source(str(speech))
  folder = tmp_path_factory.mktemp("bundled6")
  refs = {}
  for seed in MEETING_SEEDS:
    audio, turns, _ = sim_lib.simulate_meeting(source, 2, seed, devmeetings.dev_sim_config(),
                                               default.circular_array(), 40.0, 16000)
    audio_lib.write_wav(folder / f"array{seed}.wav", audio, 16000)
    audio_lib.write_wav(folder / f"mono{seed}.wav", audio[:1], 16000)
    refs[seed] = turns
  return folder, refs


@pytest.mark.slow
@pytest.mark.parametrize("name", ["array8", "mono"])
def test_bundled_model_diarizes_dev_meetings(dev_meetings, name):
  folder, refs = dev_meetings
  kind = "array" if name == "array8" else "mono"
  out = folder / f"{name}.rttm"
  run = subprocess.run([sys.executable, "-m", "jaxdiar.diarize",
                        *[str(folder / f"{kind}{seed}.wav") for seed in refs], "--out", str(out)],
                       capture_output=True, text=True, cwd=REPO, timeout=900)
  assert run.returncode == 0, run.stderr[-2000:]
  assert f"bundled '{name}' model" in run.stderr
  found = rttm.read_rttm(out)                   # the RTTM names each file's stem
  ref = {f"{kind}{seed}": [rttm.Turn(f"{kind}{seed}", t.onset, t.offset, t.speaker)
                           for t in turns] for seed, turns in refs.items()}
  hyp = {uri: found.get(uri, []) for uri in ref}
  der = evaluate.score(ref, hyp)["total"]["der"]
  print(f"{name}: DER {der:.3f} over {len(ref)} meetings")
  assert der <= BOUNDS[name], f"{name}: DER {der:.3f} > {BOUNDS[name]}"


@pytest.mark.slow
def test_stream_runs_the_bundled_live_model_by_default(dev_meeting):
  """`python -m jaxdiar.stream FILE` on the 8-microphone array: the bundled causal model, its
  128 ms blocks and 0.25 s latency; the final RTTM within its bound."""
  folder, turns = dev_meeting
  out = folder / "live.rttm"
  run = subprocess.run([sys.executable, "-m", "jaxdiar.stream", str(folder / "array.wav"),
                        "--out", str(out)], capture_output=True, text=True, cwd=REPO,
                       timeout=600)
  assert run.returncode == 0, run.stderr[-2000:]
  assert "bundled 'array8-live' model (causal" in run.stderr
  assert "every 0.128 s" in run.stderr
  uri = turns[0].uri
  hyp = {uri: [rttm.Turn(uri, t.onset, t.offset, t.speaker)
               for found in rttm.read_rttm(out).values() for t in found]}
  der = evaluate.score({uri: turns}, hyp)["total"]["der"]
  print(f"array8-live streamed: DER {der:.3f}")
  assert der <= LIVE_BOUND, f"array8-live streamed: DER {der:.3f} > {LIVE_BOUND}"


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="the model hears the band the resampling removes: "
                   "measured 2026-12-07 with the file of two views and its refitted "
                   "resegmentation, meeting 80 finds 1 talker of 2 at 44.1 and 48 kHz, 78 finds "
                   "2 of 3 at 44.1 kHz only (DER 17.3 -> 18.0 / 22.9 %); with one view, 80's "
                   "last merge was at cosine distance 0.459 at 16 "
                   "kHz, 0.400 with only the band over ~7.2 kHz filtered away (0.1 % of the "
                   "energy), 0.378 / 0.379 at 44.1 / 48 kHz, against the cut 0.40. Issue 27: a "
                   "count that does not change with the sample rate")
def test_bundled_array8_counts_the_same_at_44_1_and_48_khz(dev_meetings):
  """The shift suite's `rates` habit: the six meetings recorded at 44.1 or 48 kHz (resampled
  from the 16 kHz ones, as `jaxdiar.data.shift` makes that set) give the bundled array8 the same
  speaker count each, and a DER within 3 points of the 16 kHz one's (soxr's anti-aliasing
  filter takes the band over ~7.3 kHz away on the way back: the windows' outputs move a little)."""
  import soxr
  from jaxdiar import Pipeline
  folder, refs = dev_meetings
  pipeline = Pipeline("array8")
  counts, der = {}, {}
  for rate in (16000, 44100, 48000):
    hyp, ref = {}, {}
    for seed, turns in refs.items():
      uri = f"m{seed}"
      audio = audio_lib.read(folder / f"array{seed}.wav", 16000)
      path = folder / f"array{seed}-{rate}.wav"
      audio_lib.write_wav(path, audio if rate == 16000 else soxr.resample(audio.T, 16000, rate).T,
                          rate)
      ann = pipeline(path, uri=uri)
      counts[rate, seed] = len(ann.labels())
      hyp[uri] = [rttm.Turn(uri, s.start, s.end, str(k)) for s, _, k in ann.itertracks(True)]
      ref[uri] = [rttm.Turn(uri, t.onset, t.offset, t.speaker) for t in turns]
    der[rate] = evaluate.score(ref, hyp)["total"]["der"]
  print(counts, der)
  for seed in refs:
    at = {rate: counts[rate, seed] for rate in (16000, 44100, 48000)}
    assert len(set(at.values())) == 1, f"meeting {seed}: the count changes with the rate: {at}"
  for rate in (44100, 48000):
    assert abs(der[rate] - der[16000]) <= 0.03, der
