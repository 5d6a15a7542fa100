"""The inference settings' one declaration (jaxdiar.decoding.settings) and who reads it."""

import json

import pytest

from configs import default
from configs import array8
from configs import mono
from jaxdiar import diarize
from jaxdiar import stream
from jaxdiar.cli import export as cli_export
from jaxdiar.decoding import settings
from jaxdiar.models import bundled
from jaxdiar.models import runtime


def test_config_block_is_the_schema():
  block = default.get_config().inference.to_dict()
  assert set(block) == set(settings.BY_NAME)
  for s in settings.INFERENCE:
    assert block[s.name] == (list(s.default) if isinstance(s.default, tuple) else s.default)
  for recipe in (array8, mono):           # recipes only change declared settings, validly
    settings.validate(recipe.get_config().inference.to_dict())
  assert diarize.DEFAULT_DECODE == settings.legacy_defaults()


@pytest.mark.parametrize("name", sorted(bundled.MODELS))
def test_bundled_files_carry_valid_settings(name):
  settings.validate(runtime.load(bundled.path(name)).meta["inference"])


def test_unknown_or_bad_settings_are_refused_naming_the_key():
  with pytest.raises(ValueError, match="cluster_treshold"):
    settings.validate({"cluster_treshold": 0.5})
  with pytest.raises(ValueError, match=r"onset: 1.5 is outside"):
    settings.validate({"onset": 1.5})
  with pytest.raises(ValueError, match="stitch"):
    settings.validate({"stitch": "median"})
  with pytest.raises(ValueError, match="median_frames: expected a whole number"):
    settings.validate({"median_frames": 2.5})
  with pytest.raises(ValueError, match="cluster_threshold: None is not allowed"):
    settings.validate({"cluster_threshold": None})
  settings.validate({"speech_gate": None, "split_cos": 0.5, "resegment": [0.1, 0.2]})
  model = runtime.load(bundled.path("array8"))
  with pytest.raises(ValueError, match="cluster_treshold"):
    settings.parse_items(["cluster_treshold=0.5"], extra=stream.TUNABLE, what="setting")
  parsed = settings.parse_items(["hold_seconds=1", "onset=0.6"], extra=stream.TUNABLE)
  assert parsed == dict(hold_seconds=1, onset=0.6)
  with pytest.raises(ValueError, match="nope"):
    diarize.diarize("unused.wav", model, nope=1)


def test_export_set_validates(tmp_path):
  out = tmp_path / "m.jaxdiar"
  assert cli_export.main(["--model", str(bundled.path("mono")), "--set", "onset=0.6",
                          "--out", str(out)]) == 0
  assert json.loads(json.dumps(runtime.load(out).meta["inference"]))["onset"] == 0.6
  assert cli_export.main(["--model", str(bundled.path("mono")), "--set", "onset=7",
                          "--out", str(tmp_path / "x.jaxdiar")]) == 2
  assert not (tmp_path / "x.jaxdiar").exists()
  # A bundled model's name works as it does for every other command.
  assert cli_export.main(["--model", "mono", "--set", "onset=0.6", "--out",
                          str(tmp_path / "n.jaxdiar")]) == 0
  assert runtime.load(tmp_path / "n.jaxdiar").meta["inference"]["onset"] == 0.6


def test_search_space_lies_inside_the_valid_ranges():
  space = settings.search_space()
  assert {"cluster_threshold", "spatial_weight", "anchor_seconds", "osd_threshold"} <= set(space)
  for name, (lo, hi) in space.items():
    s = settings.BY_NAME[name]
    s.check(lo), s.check(hi)
    assert lo < hi
