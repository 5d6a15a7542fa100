"""benchmarks.bench_accuracy: the one-speaker floor and the Optuna search of decoding settings
on synthetic window outputs."""

import pathlib

import numpy as np
import pytest

from benchmarks import bench_accuracy
from jaxdiar import diarize
from jaxdiar.core import scoring as evaluate
from jaxdiar.io import rttm

HOP, SR = 256, 16000
FS = HOP / SR


def meeting(uri: str, seed: int):
  """Two voices with the same embedding, from different directions, taking turns of 150
  frames; one window per turn (one local speaker each). Returns (Inference, reference)."""
  rng = np.random.default_rng(seed)
  turns, w, tw = 8, 8, 150
  vad = np.zeros((w, tw, 2), np.float16)
  vad[:, :, 0] = 0.9
  who = np.arange(turns) % 2
  emb = np.zeros((w, 2, 8), np.float32)
  emb[:, :, 0] = 1.0
  emb += 0.01 * rng.standard_normal(emb.shape).astype(np.float32)
  grid = np.arange(72)
  direction = np.zeros((w, 2, 72), np.float32)
  for i in range(w):
    direction[i, 0] = np.exp(-0.5 * ((grid - (10 if who[i] == 0 else 45)) / 3.0) ** 2)
  inf = diarize.Inference(uri, np.arange(w) * tw, vad, np.zeros((w, tw), np.float16), emb,
                          direction, w * tw, w * tw * HOP, SR, HOP)
  ref = [rttm.Turn(uri, i * tw * FS, (i + 1) * tw * FS, f"v{who[i]}") for i in range(w)]
  return inf, ref


BASE = dict(onset=0.5, offset=0.4, median_frames=1, min_speech_seconds=0.0,
            min_silence_seconds=0.0, min_active_frames=5, cluster_threshold=0.5, stitch="count",
            count="expected", spatial_weight=0.0, osd_threshold=1.0, anchor_seconds=0.0,
            refine=0)


def test_search_finds_the_direction_weight_the_start_lacks():
  data = {f"m{i}": meeting(f"m{i}", i) for i in range(2)}
  inferences = {u: inf for u, (inf, _) in data.items()}
  refs = {u: ref for u, (_, ref) in data.items()}
  found = bench_accuracy.search(inferences, refs, BASE, trials=12)
  assert found["start"] > 0.4            # one voice for both: half the speech confused
  assert found["best_der"] < 0.05 and found["best"]["spatial_weight"] > 0
  hyp = {u: diarize.decode(inf, dict(BASE, **found["best"])).turns
         for u, inf in inferences.items()}
  assert evaluate.score(refs, hyp)["total"]["der"] == found["best_der"]


def test_one_speaker_floor_is_all_confusion_and_overlap():
  ref = {"m": [rttm.Turn("m", 0.0, 2.0, "a"), rttm.Turn("m", 1.0, 3.0, "b")]}
  s = bench_accuracy.summarise(ref, bench_accuracy.one_speaker(ref))
  # 4 s of reference speech: 1 s of overlap missed, b's 1 s alone confused.
  assert s["missed"] == 0.25 and s["confusion"] == 0.25 and s["false_alarm"] == 0.0


def test_ami_rows_on_a_subset_score_only_those_excerpts():
  folder = pathlib.Path(__file__).parents[1] / ".." / "shared" / "data" / "ami-excerpts"
  if not folder.is_dir():
    pytest.skip("no ../shared/data/ami-excerpts")
  full = bench_accuracy.ami_excerpts({}, folder)["one speaker (oracle VAD)"]["est"]
  rows = bench_accuracy.ami_excerpts({}, folder, only=["trn05", "trn08"])
  (name, entry), = rows.items()
  assert name == "one speaker (oracle VAD) [trn05, trn08]"
  assert entry["est"]["meetings"] == 2
  assert entry["est"]["per_meeting"] == {u: full["per_meeting"][u] for u in ("trn05", "trn08")}
  with pytest.raises(ValueError, match="no excerpt trn99"):
    bench_accuracy.ami_excerpts({}, folder, only=["trn05", "trn99"])


def _scores(der):
  part = dict(der=der, missed=der / 2, false_alarm=der / 4, confusion=der / 4)
  return {"pipeline": {"est": part, "true": dict(part, der=der - 0.01)},
          "model only": {"est": dict(part, der=der + 0.2), "true": dict(part, der=der + 0.1)}}


def test_ablation_table_and_bad_variants(tmp_path):
  import pytest
  from benchmarks import bench_ablation
  rows = {"init (no training)": dict(overrides="", steps=0, wall_seconds=0.0,
                                     scores=_scores(0.166)),
          "osd_x2": dict(overrides="--config.loss.osd_weight=2.0", steps=210,
                         wall_seconds=301.4, scores=_scores(0.171))}
  table = bench_ablation.markdown(rows).splitlines()
  assert len(table) == 2 + len(rows)
  assert "| osd_x2 | `--config.loss.osd_weight=2.0` | 210 | 301 s | 17.1 % | 16.1 % |" in table[3]
  assert "36.6 % / 26.6 %" in table[2]                 # the model alone, est. / true count
  speech = tmp_path / "speech"
  speech.mkdir()
  with pytest.raises(SystemExit):                      # NAME=OVERRIDES, refused before any work
    bench_ablation.main(["--root", str(tmp_path / "r"), "--config", "configs/smoke.py",
                         "--seconds", "1", "--speech", str(speech), "--dev-speech", str(speech),
                         "--variant", "no-equals-sign"])
  assert not (tmp_path / "r").exists()
  assert bench_ablation.main(["--root", str(tmp_path / "r"), "--config", "configs/smoke.py",
                              "--seconds", "1", "--speech", str(tmp_path / "none")]) == 2


def test_resegment_examples_from_the_shift_fit_meetings(tmp_path, monkeypatch):
  """--fit-generator shift: the resegmentation's examples come from the shift suite's
  randomised fit meetings of the given seed, decoded as the model does but before the speech
  detector's gate (which comes after the resegmentation: no detector output is needed)."""
  from jaxdiar.data import shift
  inf, ref = meeting("fit000", 0)
  inf.response = np.stack([inf.direction[i, 0] for i in range(len(inf.window_frames))
                           for _ in range(150)]).astype(np.float16)
  rttm.write_rttm(tmp_path / "fit000.rttm", ref)
  asked = []
  monkeypatch.setattr(shift, "cached", lambda speech, name, **kw: (
      asked.append((speech, name, kw["seed"], kw["num_meetings"])) or
      (tmp_path, [dict(uri="fit000")])))
  monkeypatch.setattr(bench_accuracy, "infer_all", lambda model, folder, meetings, **kw: {
      "fit000": inf})
  options = {**diarize.DEFAULT_DECODE, **BASE, "spatial_weight": 0.5, "speech_gate": 0.5,
             "speech_channels": "all"}
  examples = bench_accuracy._resegment_examples(None, options, "VOICES", 3200, 16, None, None,
                                                "m", 13, "shift")
  assert asked == [("VOICES", shift.FIT, 3200, 16)]
  assert len(examples) == 1
  features, target = examples[0]
  assert features.shape[-1] == 13 and target.shape == features.shape[:2]
  assert target.any(axis=0).all()               # both talkers found and paired
  with pytest.raises(ValueError, match="generator 'bogus'"):
    bench_accuracy._resegment_examples(None, options, "VOICES", 3200, 16, None, None, "m", 13,
                                       "bogus")


def test_speech_classifier_fit_on_the_shift_fit_meetings(tmp_path, monkeypatch):
  """--fit-speech-classifier: the classifier's frames come from the fit meetings of each seed,
  decoded with neither gate nor classifier, the detector on every channel asked for; its
  target is "someone in the reference talks"; the weights then decode in place of the gate."""
  from jaxdiar.data import shift
  from jaxdiar.decoding import speech
  inf, ref = meeting("fit000", 0)
  ref = ref[:6]               # the last two turns are silent: the model's false alarm there
  inf.response = np.stack([inf.direction[i, 0] for i in range(len(inf.window_frames))
                           for _ in range(150)]).astype(np.float16)
  chunks = int(np.ceil(inf.num_samples / 512))
  inf.speech = np.where(np.arange(chunks) * 512 < 6 * 150 * HOP, 0.9, 0.1).astype(np.float16)
  inf.speech_max = inf.speech
  rttm.write_rttm(tmp_path / "fit000.rttm", ref)
  asked, needs = [], []
  monkeypatch.setattr(shift, "cached", lambda speech_, name, **kw: (
      asked.append((speech_, name, kw["seed"])) or (tmp_path, [dict(uri="fit000")])))
  monkeypatch.setattr(bench_accuracy, "infer_all", lambda model, folder, meetings, **kw: (
      needs.append(kw) or {"fit000": inf}))
  options = {**diarize.DEFAULT_DECODE, **BASE, "speech_gate": 0.5, "speech_fill": 0.5}
  fitted = bench_accuracy.fit_speech_classifier(None, options, "VOICES", [3200, 3300], 16, None)
  assert asked == [("VOICES", shift.FIT, 3200), ("VOICES", shift.FIT, 3300)]
  assert all(n["detect_speech"] and n["speech_channels"] == "all" for n in needs)
  assert fitted["used"] == 2 and len(fitted["weights"]) == speech.NUM_FEATURES + 1
  assert fitted["speech_share"] == pytest.approx(0.75, abs=0.01)
  plain = diarize.decode(inf, {**options, "speech_gate": None, "speech_fill": None})
  assert plain.active[6 * 150:].all(axis=0).any()                  # marked before
  out = diarize.decode(inf, {**options, "speech_gate": None, "speech_fill": None,
                             "speech_classifier": fitted["weights"]})
  assert out.active[:6 * 150].any(axis=1).mean() > 0.95 and not out.active[6 * 150:].any()


def test_speech_classifier_for_the_mics_path_fits_on_each_array(tmp_path, monkeypatch):
  """`arrays`: every seed's fit meetings are simulated with each geometry, and a one-channel
  model reads them with that geometry (`mics`): the --mics path's classifier (bench_shift
  --fit-speech-classifier)."""
  from jaxdiar.data import shift
  inf, ref = meeting("fit000", 0)
  inf.response = np.stack([inf.direction[i, 0] for i in range(len(inf.window_frames))
                           for _ in range(150)]).astype(np.float16)
  inf.speech = inf.speech_max = np.full(int(np.ceil(inf.num_samples / 512)), 0.9, np.float16)
  rttm.write_rttm(tmp_path / "fit000.rttm", ref)
  square, circle = np.eye(4, 3) * 0.03, np.eye(6, 3)[::-1] * 0.05
  asked, mics = [], []
  monkeypatch.setattr(shift, "cached", lambda speech_, name, **kw: (
      asked.append((kw["seed"], kw["geometry"].shape)) or (tmp_path, [dict(uri="fit000")])))
  monkeypatch.setattr(bench_accuracy, "infer_all", lambda model, folder, meetings, **kw: (
      mics.append(kw["mics"]) or {"fit000": inf}))
  options = {**diarize.DEFAULT_DECODE, **BASE}
  fitted = bench_accuracy.fit_speech_classifier(None, options, "VOICES", [3200], 16, None,
                                                arrays=[square, circle])
  assert asked == [(3200, (4, 3)), (3200, (6, 3))]
  assert [m is square for m in mics] == [True, False] and mics[1] is circle
  assert fitted["used"] == 2


def _one_fit_meeting(monkeypatch, tmp_path, inf, ref) -> list:
  """Every seed's fit meetings are the one meeting `inf` (reference `ref`); returns the list
  that collects the options of each `decode` bench_accuracy makes."""
  from jaxdiar.data import shift
  rttm.write_rttm(tmp_path / "fit000.rttm", ref)
  monkeypatch.setattr(shift, "cached", lambda speech, name, **kw: (tmp_path, [dict(uri="fit000")]))
  monkeypatch.setattr(bench_accuracy, "infer_all", lambda model, folder, meetings, **kw: {
      "fit000": inf})
  decoded = []
  real = diarize.decode
  monkeypatch.setattr(bench_accuracy.diarize_lib, "decode", lambda i, o, **kw: (
      decoded.append(o) or real(i, o, **kw)))
  return decoded


def test_resegment_examples_leave_the_speech_classifier_out(tmp_path, monkeypatch):
  """The resegmentation is fitted on the decision before the speech stage: a model whose
  settings hold a speech classifier (which comes after it) is decoded without it."""
  inf, ref = meeting("fit000", 0)
  inf.response = np.stack([inf.direction[i, 0] for i in range(len(inf.window_frames))
                           for _ in range(150)]).astype(np.float16)
  decoded = _one_fit_meeting(monkeypatch, tmp_path, inf, ref)
  options = {**diarize.DEFAULT_DECODE, **BASE, "spatial_weight": 0.5, "speech_gate": None,
             "speech_classifier": [1.0] * 37, "overlap_classifier": [1.0] * 101}
  bench_accuracy._resegment_examples(None, options, "VOICES", 3200, 16, None, None, "m", 13,
                                     "shift")
  assert decoded and all(o["speech_classifier"] is None and o["overlap_classifier"] is None
                         for o in decoded)


def test_choose_takes_the_lowest_mean_of_fit_and_dev(tmp_path):
  """bench_choose: each row decoded over the model's own settings on each set (as
  bench_shift.score_set does); the row of the lowest mean of the fit and dev DERs is chosen
  (here the one that uses the directions)."""
  from benchmarks import bench_choose
  sets = {}
  for name, seed in (("fit", 0), ("dev", 1)):
    pairs = [meeting(f"{name}{i}", seed * 10 + i) for i in range(2)]
    sets[name] = ({inf.uri: inf for inf, _ in pairs}, {inf.uri: ref for inf, ref in pairs})
  rows = {"own": {}, "directions": {"spatial_weight": 0.5}}
  scores = {}
  for name, (inferences, refs) in sets.items():
    for row, opts in rows.items():
      scores.setdefault(row, {})[name] = bench_accuracy.summarise(
          refs, bench_accuracy.decode_all(inferences, refs, {**BASE, **opts}, true_count=False))
  found = bench_choose.choose(scores)
  assert found["chosen"] == "directions"
  assert found["mean"]["directions"] < found["mean"]["own"]
  assert found["mean"]["own"] == pytest.approx(
      (scores["own"]["fit"]["der"] + scores["own"]["dev"]["der"]) / 2)
  # With --long the long fit meetings are a third set of the mean.
  three = {row: dict(s, **{"fit-long": {"der": 0.9}}) for row, s in scores.items()}
  assert bench_choose.choose(three)["mean"]["own"] == pytest.approx(
      (scores["own"]["fit"]["der"] + scores["own"]["dev"]["der"] + 0.9) / 3)
  with pytest.raises(ValueError, match="nothing to choose"):
    bench_choose.choose({})
  with pytest.raises(SystemExit) as stop:
    bench_choose.main(["--speech", str(tmp_path), "--variant", "x=nope:{}"])
  assert stop.value.code == 2


def test_overlap_classifier_fit_on_the_marked_frames(tmp_path, monkeypatch):
  """--fit-overlap-classifier: the model's decoding with its speech classifier and without an
  overlap classifier; the frames where someone is marked, the target "two or more talk in the
  reference"; a speech classifier that does not read the speech network is refused."""
  from jaxdiar.decoding import speech
  from jaxdiar.decoding import talkers
  inf, ref = meeting("fit000", 0)
  t = inf.total_frames
  inf.response = np.stack([inf.direction[i, 0] for i in range(len(inf.window_frames))
                           for _ in range(150)]).astype(np.float16)
  inf.speech = inf.speech_max = np.full(int(np.ceil(inf.num_samples / 512)), 0.9, np.float16)
  inf.level = np.zeros((t, 2), np.float16)
  inf.speech_net = np.full(t, 0.9, np.float16)
  ref.append(rttm.Turn("fit000", 3 * 150 * FS, 3.5 * 150 * FS, "v0"))   # v0 over v1's turn
  decoded = _one_fit_meeting(monkeypatch, tmp_path, inf, ref)
  real = diarize.decode
  classifier = [0.0] * max(speech.SIZES)
  classifier[-1] = 5.0                                        # speech everywhere
  options = {**diarize.DEFAULT_DECODE, **BASE, "spatial_weight": 0.5,
             "speech_classifier": classifier, "overlap_classifier": [1.0] * 101}
  fitted = bench_accuracy.fit_overlap_classifier(None, options, "VOICES", [3200, 3300], 16, None)
  assert len(decoded) == 2 and all(o["overlap_classifier"] is None
                                   and o["speech_classifier"] == classifier for o in decoded)
  marked = real(inf, decoded[0]).active.any(axis=1)
  assert fitted["used"] == 2 and fitted["frames"] == 2 * marked.sum()
  assert len(fitted["weights"]) == talkers.NUM_FEATURES + 1
  assert fitted["overlap_share"] == pytest.approx(75 / marked.sum(), abs=1e-6)
  with pytest.raises(ValueError, match="--speech-net"):
    bench_accuracy.fit_overlap_classifier(None, {**options, "speech_classifier": [0.0] * 37},
                                          "VOICES", [3200], 16, None)


class _Asked(Exception):
  """What `_asking_infer_all`'s stand-in raises once it has recorded its call."""


def _asking_infer_all(monkeypatch) -> list:
  """bench_accuracy.infer_all replaced by a stand-in that records its keyword arguments (what
  the caller asks the inference for) in the returned list and raises _Asked."""
  asked = []

  def infer_all(model, folder, meetings, **kw):
    asked.append(kw)
    raise _Asked

  monkeypatch.setattr(bench_accuracy, "infer_all", infer_all)
  return asked


def test_shift_sets_with_mics_infer_what_the_mics_row_decodes_with(tmp_path, monkeypatch):
  """bench_shift.score_set on an array's meetings: a one-channel model's inference holds what
  its `+ --mics` row needs (the speech classifier reads the detector on every channel and the
  speech network), not only what the model's own settings need."""
  import types
  from benchmarks import bench_shift
  rttm.write_rttm(tmp_path / "m0.rttm", [rttm.Turn("m0", 0.0, 1.0, "a")])
  model = types.SimpleNamespace(meta={"inference": {"speech_gate": 0.4}}, num_channels=1,
                                takes_geometry=False)
  asked = _asking_infer_all(monkeypatch)
  with pytest.raises(_Asked):
    bench_shift.score_set(tmp_path, [dict(uri="m0")], {"mono": model}, {}, baselines=False,
                          mics=np.eye(4, 3) * 0.03)
  assert asked[0]["detect_speech"] and asked[0]["speech_channels"] == "all"
  assert asked[0]["speech_net"] and asked[0]["mics"] is not None


def test_resegment_examples_infer_the_pieces_their_decoding_reads(tmp_path, monkeypatch):
  """A model whose settings move pieces (reassign_classifier) is decoded with them when its
  resegmentation examples are made: the inference is asked for its pieces."""
  from jaxdiar.data import shift
  from jaxdiar.decoding import pieces
  monkeypatch.setattr(shift, "cached", lambda speech, name, **kw: (tmp_path, [dict(uri="m0")]))
  asked = _asking_infer_all(monkeypatch)
  options = {**diarize.DEFAULT_DECODE, **BASE,
             "reassign_classifier": [0.0] * (pieces.NUM_FEATURES + 1)}
  with pytest.raises(_Asked):
    bench_accuracy._resegment_examples(None, options, "VOICES", 3200, 16, None, None, "m", 13,
                                       "shift")
  assert asked[0]["pieces"] == (options["onset"], options["piece_gap_seconds"],
                                options["min_active_frames"])
