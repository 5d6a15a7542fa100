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


def test_optuna_search_trains_each_trial_and_reads_its_dev_der(tmp_path, capsys):
  """Two tiny trials of the smoke recipe: each trains in its own workdir, the study is kept in
  sqlite, the table and search.json report the final dev DER of every trial."""
  root = tmp_path / "search"
  data = tmp_path / "data"
  fixed = [f"--config.data.data_dir={data}", "--config.data.max_workers=1",
           "--config.train.num_steps=4", "--config.eval.every=2",
           "--config.train.checkpoint_every=4", "--config.train.batch_size=4",
           "--config.eval.batch_size=4"]
  argv = ["--config", "configs/smoke.py", "--root", str(root), "--optuna", "2",
          "--param", "train.learning_rate=1e-4:1e-2:log"] + [f"--set={f}" for f in fixed]
  assert sweep.main(argv) == 0
  result = json.loads((root / "search.json").read_text())
  assert [t["state"] for t in result["trials"]] == ["COMPLETE", "COMPLETE"]
  for t in result["trials"]:
    rows = sweep.dev_rows(root / f"trial{t['number']:03d}")
    assert [r["step"] for r in rows] == [2, 4] and t["value"] == rows[-1]["dev/der"]
    assert 1e-4 <= t["params"]["train.learning_rate"] <= 1e-2
    config = json.loads((root / f"trial{t['number']:03d}" / "config.json").read_text())
    assert config["train"]["learning_rate"] == t["params"]["train.learning_rate"]
  assert result["best_der"] == min(t["value"] for t in result["trials"])
  assert (root / "optuna.db").exists()
  assert "| trial | state | train.learning_rate | dev DER |" in capsys.readouterr().out
