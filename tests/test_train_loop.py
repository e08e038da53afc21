"""`train_and_evaluate` with the stand-in model: NaN stop, user errors, TensorBoard output, and (in
subprocesses) kill-and-resume and SIGTERM-and-resume reproducing an uninterrupted run's losses."""

import os
import signal
import struct
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import REPO

from a2e_jax.core import run_dir
from a2e_jax.core.config import load_config
from a2e_jax.core.errors import UserError
from a2e_jax.train import checkpoint, summary, trainer

pytestmark = pytest.mark.slow  # trains models: the full suite only

STANDIN = str(REPO / "tests" / "train_standin.py")


def _config(*overrides):
  return load_config(STANDIN, list(overrides))


def test_nan_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
  config = _config("--config.standin.nan_at_step=5", "--config.checkpoint.every=2", "--config.eval.every=0")
  monkeypatch.chdir(tmp_path.parent)
  with pytest.raises(trainer.TrainingDivergedError,
                     match=r"loss and grad_norm became nan at step 5; .*last checkpoint \(step 4\)"):
    trainer.train_and_evaluate(config, tmp_path.name)  # a relative workdir, as users type it
  assert checkpoint.Checkpointer(tmp_path).all_steps() == [2, 4]
  params = run_dir.restore_params(tmp_path, "latest")
  assert all(np.isfinite(np.asarray(x)).all() for x in _leaves(params))
  assert sorted(summary.read_metrics(tmp_path)) == [1, 2, 3, 4]


def test_nan_right_after_a_restore_names_the_restored_checkpoint(tmp_path):
  trainer.train_and_evaluate(_config("--config.train.steps=4", "--config.eval.every=0"), tmp_path)
  config = _config("--config.standin.nan_at_step=5", "--config.eval.every=0")
  with pytest.raises(trainer.TrainingDivergedError,
                     match=r"became nan at step 5, the first step after restoring checkpoint 4: that "
                           r"checkpoint is the suspect; move \S+/checkpoints/4 to \S+/corrupt_checkpoints/"):
    trainer.train_and_evaluate(config, tmp_path)


def _leaves(tree):
  import jax

  return jax.tree.leaves(tree)


def test_user_errors_name_the_setting(tmp_path):
  afile = tmp_path / "file"
  afile.write_text("")
  with pytest.raises(UserError, match="is a file"):
    trainer.train_and_evaluate(_config(), afile)
  with pytest.raises(UserError, match=r"train.batch_size=6 must be a multiple of 8"):
    trainer.train_and_evaluate(_config("--config.train.batch_size=6"), tmp_path / "a")
  with pytest.raises(UserError, match=r"grad_accum_steps"):
    trainer.train_and_evaluate(_config("--config.train.grad_accum_steps=3"), tmp_path / "a")
  checkpoint.save_run_config(tmp_path / "b", _config())
  with pytest.raises(UserError, match=r"another model config \(dim differ\)"):
    trainer.train_and_evaluate(_config("--config.model.dim=64"), tmp_path / "b")


def _events(workdir):
  """(tag -> [(step, value)], image tags) read from the TensorBoard event files (TFRecord framing)."""
  from tensorboardX.proto import event_pb2

  scalars, images = {}, set()
  folder = workdir / "tensorboard"
  for name in os.listdir(folder):
    data = (folder / name).read_bytes()
    offset = 0
    while offset < len(data):
      (length,) = struct.unpack("<Q", data[offset:offset + 8])
      event = event_pb2.Event.FromString(data[offset + 12:offset + 12 + length])
      offset += 12 + length + 4
      for value in event.summary.value:
        if value.HasField("image"):
          images.add(value.tag)
        else:
          scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
  return scalars, images


def test_tensorboard_gets_losses_learning_rate_throughput_eval_and_plots(tmp_path):
  result = trainer.train_and_evaluate(_config("--config.summary.plots=True"), tmp_path)
  assert result["step"] == 8 and not result["preempted"]
  scalars, images = _events(tmp_path)
  for tag in ("train/loss", "train/mse_a", "train/learning_rate", "train/grad_norm", "perf/examples_per_s",
              "eval/val/loss", "eval/loss"):
    assert tag in scalars, (tag, sorted(scalars))
  assert [s for s, _ in scalars["train/loss"]] == [2, 4, 6, 8]
  assert [s for s, _ in scalars["eval/loss"]] == [4, 8]
  assert all(v > 0 for _, v in scalars["perf/examples_per_s"])
  assert images == {"eval/coefficient_curves", "eval/faces_predicted_over_true"}
  # metrics.jsonl has every step; the learning rate warms up.
  train = summary.read_metrics(tmp_path)
  assert sorted(train) == list(range(1, 9))
  assert train[1]["learning_rate"] == 0 and train[3]["learning_rate"] > train[2]["learning_rate"] > 0
  # Running a finished run again restores it and stops at once.
  again = trainer.train_and_evaluate(_config("--config.summary.plots=True"), tmp_path)
  assert again["step"] == 8 and again["train"] == {}
  assert sorted(summary.read_metrics(tmp_path)) == sorted(train)


# ------------------------------------------------------------------------------- interrupted runs


def _start(workdir, *overrides):
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]))
  command = [sys.executable, str(REPO / "launch" / "train.py"), "--config", STANDIN,
             "--workdir", str(workdir), "--config.train.steps=12", "--config.checkpoint.every=3",
             "--config.eval.every=6", *overrides]
  return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)


def _wait_for_step(process, workdir, step, timeout=240):
  """Blocks until metrics.jsonl shows `step` (and a checkpoint exists) while `process` runs."""
  deadline = time.time() + timeout
  while time.time() < deadline:
    assert process.poll() is None, process.communicate()[0]
    if max(summary.read_metrics(workdir), default=0) >= step and any(
        name.isdigit() for name in os.listdir(workdir / "checkpoints")):
      return
    time.sleep(0.1)
  process.kill()
  pytest.fail(f"no step {step} within {timeout} s")


def _losses(workdir):
  return {step: m["loss"] for step, m in summary.read_metrics(workdir).items()}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("uninterrupted")
  process = _start(workdir)
  output = process.communicate(timeout=300)[0]
  assert process.returncode == 0, output
  return _losses(workdir)


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_interrupted_and_resumed_run_reproduces_the_losses(tmp_path, uninterrupted, how):
  slow = "--config.standin.step_seconds=0.3"
  process = _start(tmp_path, slow)
  _wait_for_step(process, tmp_path, 5)
  process.send_signal(getattr(signal, how))
  output = process.communicate(timeout=120)[0]
  if how == "SIGKILL":
    assert process.returncode == -signal.SIGKILL
  else:  # a clean stop: a checkpoint at the step it stopped, and exit status 0
    assert process.returncode == 0, output
    assert "preempted at step" in output
    stopped = int(output.split("preempted at step ")[1].split(";")[0])
    assert stopped in checkpoint.Checkpointer(tmp_path).all_steps()
  interrupted_at = max(summary.read_metrics(tmp_path))
  assert interrupted_at < 12

  process = _start(tmp_path)
  output = process.communicate(timeout=300)[0]
  assert process.returncode == 0, output
  assert "resuming at step" in output
  resumed = _losses(tmp_path)
  assert sorted(resumed) == sorted(uninterrupted) == list(range(1, 13))
  np.testing.assert_allclose([resumed[s] for s in range(1, 13)], [uninterrupted[s] for s in range(1, 13)],
                             rtol=1e-6)
