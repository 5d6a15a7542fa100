"""RTTM / UEM reading and writing."""

import pytest

from jaxdiar.io import rttm
from tests.conftest import shared_data


def test_roundtrip_keeps_non_ascii_names(tmp_path):
  turns = [rttm.Turn("m1", 0.5, 1.25, "MÉO069"), rttm.Turn("m1", 0.0, 0.4, "FEE005")]
  rttm.write_rttm(tmp_path / "a.rttm", turns)
  back = rttm.read_rttm(tmp_path / "a.rttm")
  assert back == {"m1": sorted(turns)}
  assert list(tmp_path.iterdir()) == [tmp_path / "a.rttm"]   # no temporary file left


def test_reads_the_ami_excerpts():
  folder = shared_data("ami-excerpts")
  turns = rttm.read_rttm(folder / "debug.train.rttm")
  assert sorted(turns) == [f"trn{i:02d}" for i in range(10)]
  assert any("É" in t.speaker for t in turns["trn00"])
  uem = rttm.read_uem(folder / "debug.train.uem")
  assert uem["trn00"] == [(0.0, 30.0)]


@pytest.mark.parametrize("line,match", [
    ("SPEAKER m 1 0.5 abc <NA> <NA> spk <NA> <NA>", "'abc' is not a number"),
    ("SPEAKER m 1 0.5", "at least 8 fields"),
    ("SPEAKER m 1 -1 2 <NA> <NA> spk <NA> <NA>", "negative"),
])
def test_bad_rttm_line_names_file_and_line(tmp_path, line, match):
  path = tmp_path / "bad.rttm"
  path.write_text("SPEAKER m 1 0 1 <NA> <NA> a <NA> <NA>\n" + line + "\n", encoding="utf-8")
  with pytest.raises(rttm.FormatError, match=match) as e:
    rttm.read_rttm(path)
  assert f"{path}:2" in str(e.value)


def test_bad_uem_and_encoding(tmp_path):
  (tmp_path / "a.uem").write_text("m 1 5 2\n")
  with pytest.raises(rttm.FormatError, match="a.uem:1"):
    rttm.read_uem(tmp_path / "a.uem")
  (tmp_path / "b.rttm").write_bytes(b"SPEAKER m 1 0 1 <NA> <NA> M\xc9O <NA> <NA>\n")
  with pytest.raises(rttm.FormatError, match="not UTF-8"):
    rttm.read_rttm(tmp_path / "b.rttm")
