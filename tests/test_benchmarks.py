"""The benchmarks' baselines and report (the timings themselves run on demand, not here)."""

import contextlib
import io
import os

import jax.numpy as jnp
import numpy as np

from benchmarks import bench_pit
from benchmarks import common
from benchmarks import report
from jaxdiar.core import losses


def test_pit_baselines_compute_what_pit_bce_computes():
  rng = np.random.default_rng(0)
  logits = rng.standard_normal((3, 40, 5)).astype(np.float32)
  targets = (rng.random((3, 40, 5)) < 0.3).astype(np.float32)
  ours = np.asarray(losses.pit_bce(jnp.asarray(logits), jnp.asarray(targets))[0])
  np.testing.assert_allclose(bench_pit.loop_pit(logits, targets), ours, rtol=1e-5)
  np.testing.assert_allclose(bench_pit.hungarian_pit(logits, targets), ours, rtol=1e-5)


def test_report_renders_the_committed_results():
  files = sorted(p for p in common.RESULTS.glob("cpu-*.json"))
  assert files, "benchmarks/results holds no CPU results"
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    report.main([str(files[-1])])
  text = out.getvalue()
  for needle in ("JAX step", "PyTorch torch eager time / JAX time", "S = 8",
                 "features `compact`", "features `lps`", "diarize, 60 min"):
    assert needle in text, needle
  rows = [line for line in text.splitlines() if line.startswith("| ")]
  assert len(rows) >= 15


def test_report_without_a_file_takes_the_newest_run_all_results(tmp_path, monkeypatch):
  """Accuracy, errors and other results files beside the run_all ones are passed over."""
  results = tmp_path / "results"
  results.mkdir()
  newest = sorted(common.RESULTS.glob("cpu-*.json"))[-1]
  (results / newest.name).write_bytes(newest.read_bytes())
  os.utime(results / newest.name, (1, 1))                          # older than the next one
  (results / "errors-m-2099-01-01.json").write_text('{"der": 1.0}')
  monkeypatch.setattr(common, "RESULTS", results)
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    report.main([])
  assert newest.name in out.getvalue() and "JAX step" in out.getvalue()
