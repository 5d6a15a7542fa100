"""Kill safety: SIGKILL at several moments (during data preparation, during an asynchronous
checkpoint write, at a random delay between steps), then the same command again, ends where an uninterrupted
run ends, with every metric row once and the checkpoint bound kept."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest
import soundfile as sf

REPO = pathlib.Path(__file__).resolve().parents[1]
STEPS = 12


def _train_cmd(workdir, data_dir):
  return [sys.executable, "-m", "jaxdiar.train", "--config=configs/smoke.py",
          f"--workdir={workdir}", f"--config.data.data_dir={data_dir}",
          "--config.data.max_workers=1", f"--config.train.num_steps={STEPS}",
          "--config.train.checkpoint_every=2", "--config.eval.every=4",
          "--config.train.log_every=1", "--config.train.keep_checkpoints=2"]


def _start(cmd, log):
  return subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                          env=dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2"))


def _kill_when(process, condition, timeout=300.0) -> bool:
  """SIGKILL `process` as soon as `condition()` holds; False if it ended first."""
  deadline = time.time() + timeout
  while process.poll() is None and time.time() < deadline:
    if condition():
      process.send_signal(signal.SIGKILL)
      process.wait()
      return True
    time.sleep(0.002)
  process.wait(timeout=max(deadline - time.time(), 1))
  return False


def _params(workdir):
  import orbax.checkpoint as ocp
  mngr = ocp.CheckpointManager((pathlib.Path(workdir) / "checkpoints").absolute())
  step = mngr.latest_step()
  restored = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
  mngr.close()
  return step, restored["state"]["params"]


@pytest.mark.slow
def test_training_killed_at_random_moments_ends_like_an_uninterrupted_run(tmp_path):
  import jax
  rng = np.random.default_rng(2026)
  log = open(tmp_path / "log.txt", "w")
  ref = tmp_path / "ref"
  assert _start(_train_cmd(ref, tmp_path / "data-ref"), log).wait(timeout=600) == 0

  work, data = tmp_path / "killed", tmp_path / "data"
  ckpt = work / "checkpoints"
  metrics = work / "metrics.jsonl"

  def after_compile(delay):
    start, seen = len((tmp_path / "log.txt").read_text()), []

    def condition():
      if not seen and "compiled the train step" in (tmp_path / "log.txt").read_text()[start:]:
        seen.append(time.time())
      return bool(seen) and time.time() - seen[0] > delay
    return condition

  delay = float(rng.uniform(0.0, 3.0))
  moments = [   # (what, a function that makes the kill condition when the run starts)
      ("preparing the data", lambda: lambda: any(data.glob("simulated-*/tfds/*/*/incomplete*"))
       or any(data.glob("simulated-*/*/meeting*.json"))),
      ("an asynchronous checkpoint write in progress",
       lambda: lambda: ckpt.exists() and any("tmp" in p.name for p in ckpt.iterdir())),
      (f"{delay:.1f} s after the step compiled", lambda: after_compile(delay)),
  ]
  killed = []
  for what, make_condition in moments:
    p = _start(_train_cmd(work, data), log)
    if _kill_when(p, make_condition()):
      killed.append(what)
    else:
      assert p.returncode == 0
  assert len(killed) >= 3, killed
  assert "an asynchronous checkpoint write in progress" in killed
  p = _start(_train_cmd(work, data), log)
  assert p.wait(timeout=600) == 0, (tmp_path / "log.txt").read_text()[-3000:]
  log.close()

  (s1, a), (s2, b) = _params(ref), _params(work)
  assert s1 == s2 == STEPS
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
  lines = [json.loads(l) for l in metrics.read_text().splitlines()]
  assert [l["step"] for l in lines if "loss/total" in l] == list(range(1, STEPS + 1))
  assert [l["step"] for l in lines if "dev/der" in l] == [4, 8, 12]
  kept = sorted(p.name for p in ckpt.iterdir())
  assert all(name.isdigit() for name in kept), kept           # no temporary left
  assert len(kept) <= 3, kept                                 # 2 latest + the best dev one
  # The corpus the killed preparation left is complete and readable.
  for wav in data.glob("simulated-*/*/meeting*.wav"):
    assert sf.info(wav).frames > 0


def test_keep_checkpoints_bounds_the_kept_checkpoints(tmp_path):
  """Checkpoint and eval intervals that do not line up (the smoke recipe's 10 and 15: a dev
  metric only at 30, 60, 90): keep_checkpoints latest + the best dev one are kept."""
  import orbax.checkpoint as ocp
  from configs import smoke
  from jaxdiar.training import checkpoints
  tcfg = smoke.get_config().train
  tcfg.keep_checkpoints = 2
  manager = checkpoints.manager(tmp_path, tcfg)
  ders = {30: 0.5, 60: 0.7, 90: 0.9}
  for step in range(10, 101, 10):
    manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave({"w": np.full(3, step, np.float32)})),
                 metrics={"dev_der": ders[step]} if step in ders else None)
    manager.wait_until_finished()
  kept = manager.all_steps()
  manager.close()
  assert sorted(kept) == [30, 90, 100]


def test_killed_corpus_simulation_ends_its_workers(tmp_path):
  """jaxdiar.simulate with several workers killed: its pool's processes end (an idle worker
  used to wait for its next task for good)."""
  out = tmp_path / "sim"
  cmd = [sys.executable, "-m", "jaxdiar.simulate", "--out", str(out), "--num-meetings", "40",
         "--duration", "4", "--workers", "2"]
  workers = []
  with open(tmp_path / "log.txt", "w") as log:
    p = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)

    def started():
      try:
        workers[:] = psutil.Process(p.pid).children(recursive=True)
      except psutil.NoSuchProcess:
        pass
      return len(workers) >= 2 and (out / "meeting00000.json").exists()
    assert _kill_when(p, started, timeout=300)
  _, alive = psutil.wait_procs(workers, timeout=30)
  assert not [w for w in alive if w.status() != psutil.STATUS_ZOMBIE], alive
  assert not (out / "corpus.json").exists()


def test_simulation_killed_then_rerun_completes_and_keeps_finished_meetings(tmp_path):
  out = tmp_path / "sim"
  cmd = [sys.executable, "-m", "jaxdiar.simulate", "--out", str(out), "--num-meetings", "5",
         "--duration", "4", "--workers", "1"]
  with open(tmp_path / "log.txt", "w") as log:
    p = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    assert _kill_when(p, lambda: (out / "meeting00001.json").exists(), timeout=300)
    first = {f.name: f.stat().st_mtime_ns for f in out.glob("meeting0000[01].*")}
    assert not (out / "corpus.json").exists()
    assert subprocess.run(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                          timeout=300).returncode == 0
  manifest = json.loads((out / "corpus.json").read_text())
  assert [m["uri"] for m in manifest["meetings"]] == [f"meeting{i:05d}" for i in range(5)]
  for i in range(5):
    assert sf.info(out / f"meeting{i:05d}.wav").frames == 4 * 16000
    assert (out / f"meeting{i:05d}.rttm").read_text().startswith("SPEAKER")
  assert not list(out.glob(".*"))                            # no temporary file left
  # The meetings finished before the kill were not simulated again.
  assert {f: out.joinpath(f).stat().st_mtime_ns for f in first} == first


def test_killed_pool_simulation_stops_its_workers(tmp_path):
  """jaxdiar.online simulate killed: its worker processes notice and stop (they used to run on
  to the deadline, orphaned)."""
  out = tmp_path / "pool"
  cmd = [sys.executable, "-m", "jaxdiar.online", "simulate", "--config", "configs/smoke.py",
         "--speech", "", "--out", str(out), "--workers", "1", "--seconds", "600"]
  workers = []
  with open(tmp_path / "log.txt", "w") as log:
    p = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)

    def started():
      if list(out.glob("meeting*.npz")):
        return True
      try:
        workers[:] = psutil.Process(p.pid).children(recursive=True)  # the pool's processes
      except psutil.NoSuchProcess:
        pass
      return False
    assert _kill_when(p, started, timeout=300)
  assert workers
  time.sleep(8.0)                     # the meeting in progress may still be finished
  count = len(list(out.glob("meeting*.npz")))
  time.sleep(8.0)
  assert len(list(out.glob("meeting*.npz"))) == count
  # ... and end: none of them is left running, orphaned (the worker process used to wait for
  # its next task for good, and with it multiprocessing's resource tracker).
  _, alive = psutil.wait_procs(workers, timeout=30)
  assert not [w for w in alive if w.status() != psutil.STATUS_ZOMBIE], alive
