"""The benchmarks' baselines and report (the timings themselves run on demand, not here)."""

import io
import contextlib

import jax.numpy as jnp
import numpy as np

from benchmarks import bench_pit
from benchmarks import common
from benchmarks import report
from jaxdiar import losses


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
