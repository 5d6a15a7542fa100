"""The sweep runner's bookkeeping."""

import json
import sys

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "launch"))
import sweep  # noqa: E402


def test_sweep_reads_the_last_dev_metrics(tmp_path, capsys):
  rows = [dict(step=5, **{"loss/total": 1.0}), dict(step=10, **{"dev/der": 0.5}),
          dict(step=20, **{"dev/der": 0.25, "dev/missed": 0.1})]
  (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  assert sweep.final_metrics(tmp_path) == {"step": 20, "dev/der": 0.25, "dev/missed": 0.1}
  assert sweep.final_metrics(tmp_path / "missing") == {}
  assert sweep.main(["--config", "configs/smoke.py", "--root", str(tmp_path), "--dry-run",
                     "--variant", "a=--config.model.use_attention=False"]) == 0
  assert "--config.model.use_attention=False" in capsys.readouterr().out
