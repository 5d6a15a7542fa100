"""jaxdiar.decoding.views: the model's second view of a uniform circular array (the channels
turned by one microphone), its local speakers matched to the first view's, the two averaged."""

import numpy as np
import pytest

from jaxdiar import diarize
from jaxdiar.data import audio as audio_lib
from jaxdiar.decoding import decode as decode_lib
from jaxdiar.decoding import settings
from jaxdiar.decoding import views
from jaxdiar.models import runtime


def _outputs(rng, batch=3, frames=60, slots=4, dim=16):
  vad = (rng.random((batch, frames, slots)) < 0.3).astype(np.float32) * 0.9 + 0.05
  return dict(vad=vad, osd=rng.random((batch, frames)).astype(np.float32),
              spk_emb=rng.standard_normal((batch, slots, dim)).astype(np.float32),
              frame_emb=rng.standard_normal((batch, frames, dim)).astype(np.float32))


def _unit(x):
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_average_puts_the_turned_views_local_speakers_back_in_order():
  """A turned view that says the same in another slot order (and embeddings of another norm)
  averages back to the first view: the matching undoes the order."""
  rng = np.random.default_rng(0)
  out = _outputs(rng)
  order = np.stack([rng.permutation(4) for _ in range(3)])
  turned = dict(out, vad=np.take_along_axis(out["vad"], order[:, None, :], axis=2),
                spk_emb=3.0 * np.take_along_axis(out["spk_emb"], order[:, :, None], axis=1))
  got = views.average(out, turned)
  np.testing.assert_allclose(got["vad"], out["vad"], atol=1e-6)
  np.testing.assert_allclose(got["osd"], out["osd"], atol=1e-6)
  np.testing.assert_allclose(got["frame_emb"], out["frame_emb"], atol=1e-6)
  np.testing.assert_allclose(got["spk_emb"], _unit(out["spk_emb"]), atol=1e-5)


def test_average_is_the_mean_of_two_views_that_differ():
  rng = np.random.default_rng(1)
  out = _outputs(rng)
  turned = {k: v + 0.01 * rng.standard_normal(v.shape).astype(np.float32)
            for k, v in out.items()}
  got = views.average(out, turned)
  for key in ("vad", "osd", "frame_emb"):
    np.testing.assert_allclose(got[key], (out[key] + turned[key]) / 2, atol=1e-6)
  np.testing.assert_allclose(got["spk_emb"],
                             (_unit(out["spk_emb"]) + _unit(turned["spk_emb"])) / 2, atol=1e-5)


def test_turn_and_which_models_have_a_circle():
  np.testing.assert_array_equal(views.turn(4), [1, 2, 3, 0])
  assert views.applies(runtime.load("jaxdiar/models/array8.jaxdiar"))
  assert not views.applies(runtime.load("jaxdiar/models/mono.jaxdiar"))


class _Recording:
  """A model that remembers what it was given and what it said."""

  def __init__(self, model):
    self._model, self.calls = model, []

  def __getattr__(self, name):
    return getattr(self._model, name)

  def __call__(self, audio, *args):
    out = {k: np.asarray(v) for k, v in self._model(audio, *args).items()}
    self.calls.append((np.array(audio), out))
    return out


def test_infer_averages_the_view_of_the_turned_channels(exported, meeting):
  path, _ = exported
  model = _Recording(runtime.load(path))
  inf = diarize.infer(meeting, model, progress=False, spatial=False, turned_view=True)
  assert inf.turned_view and len(model.calls) % 2 == 0
  (first, out), (second, turned) = model.calls[:2]
  np.testing.assert_array_equal(second, first[:, views.turn(first.shape[1])])
  batch = min(len(first), len(inf.vad))
  want = views.average(out, turned)
  np.testing.assert_allclose(inf.vad[:batch].astype(np.float32), want["vad"][:batch], atol=1e-3)
  np.testing.assert_allclose(inf.emb[:batch], want["spk_emb"][:batch], atol=1e-5)


def test_one_channel_copied_is_not_turned_and_a_model_of_no_circle_is_refused(exported, meeting,
                                                                              tmp_path):
  path, _ = exported
  model = _Recording(runtime.load(path))
  one = tmp_path / "one.wav"
  audio_lib.write_wav(one, audio_lib.read(meeting, 16000)[:1, :16000 * 20], 16000)
  inf = diarize.infer(one, model, progress=False, spatial=False, replicate_channels=True,
                      turned_view=True)
  assert not inf.turned_view
  assert len(model.calls) == len(range(0, len(inf.vad), model.meta["inference"]["batch_windows"]))
  with pytest.raises(diarize.InputError, match="turned_view"):
    diarize.infer(meeting, runtime.load("jaxdiar/models/mono.jaxdiar"), progress=False,
                  turned_view=True)


def test_the_setting_is_a_bool_and_one_inference_holds_one_view():
  settings.validate({"turned_view": True})
  with pytest.raises(ValueError, match="turned_view: expected true or false"):
    settings.validate({"turned_view": 1})
  assert decode_lib.needs({"turned_view": True})["turned_view"]
  with pytest.raises(ValueError, match="turned view"):
    decode_lib.needs_of_all([{"turned_view": True}, {"turned_view": False}])


def test_cached_inferences_are_those_of_the_view_asked(exported, meeting, tmp_path,
                                                        monkeypatch):
  """bench_accuracy.infer_all: a cached inference of the other view is computed again; one
  asked of no view in particular (None) is taken as it is."""
  from benchmarks import bench_accuracy
  path, _ = exported
  model = runtime.load(path)
  meetings = [{"uri": meeting.stem}]
  runs = []
  real = bench_accuracy.diarize_lib.infer
  monkeypatch.setattr(bench_accuracy.diarize_lib, "infer",
                      lambda *a, **kw: runs.append(kw["turned_view"]) or real(*a, **kw))
  first = bench_accuracy.infer_all(model, meeting.parent, meetings, spatial=False,
                                   cache=tmp_path, turned_view=True)
  assert runs == [True] and first[meeting.stem].turned_view
  again = bench_accuracy.infer_all(model, meeting.parent, meetings, spatial=False,
                                   cache=tmp_path)
  assert runs == [True] and again[meeting.stem].turned_view
  other = bench_accuracy.infer_all(model, meeting.parent, meetings, spatial=False,
                                   cache=tmp_path, turned_view=False)
  assert runs == [True, False] and not other[meeting.stem].turned_view
