"""Run folders given as URLs stay URLs: a gs:// workdir is written through etils.epath (here onto an
in-memory filesystem standing in for gcsfs), never into a local folder named 'gs:'; without the
filesystem package, `a2e train` stops with one line."""

import os
import subprocess
import sys

import fake_buckets
import pytest
from conftest import REPO

from a2e_jax.core import run_dir
from a2e_jax.core.config import load_config
from a2e_jax.train import checkpoint, summary, trainer


@pytest.fixture
def fake_gcs(monkeypatch, tmp_path):
  monkeypatch.chdir(tmp_path)  # where a 'gs:' folder would appear if a URL became a local path
  with fake_buckets.registered("gs", "gcs") as gcs:
    yield gcs
  assert not os.path.exists(tmp_path / "gs:"), "a gs:// path became a local folder"


def test_a_gs_workdir_gets_config_metrics_and_tensorboard_in_the_bucket(fake_gcs, tmp_path):
  workdir, exists = trainer._run_path("gs://bucket/run")
  assert os.fspath(workdir) == "gs://bucket/run" and not exists
  trainer._make_dir(workdir)
  config = load_config(str(REPO / "tests" / "train_standin.py"))
  checkpoint.save_run_config(workdir, config)
  assert run_dir.load_run_config("gs://bucket/run").train.steps == config.train.steps
  writer = summary.Summary(workdir)
  writer.record(1, "train", {"loss": 2.0})
  writer.scalars(1, {"train/loss": 2.0})
  writer.record(2, "train", {"loss": 1.5})
  writer.close()
  assert summary.read_metrics("gs://bucket/run") == {1: {"loss": 2.0}, 2: {"loss": 1.5}}
  events = [k for k in fake_gcs.store if k.startswith("gs://bucket/run/tensorboard/events.out")]
  assert len(events) == 1 and len(fake_gcs.store[events[0]].getvalue()) > 0
  resumed = summary.Summary("gs://bucket/run", tensorboard=False)  # a resumed run appends
  resumed.record(3, "train", {"loss": 1.0})
  resumed.close()
  assert sorted(summary.read_metrics("gs://bucket/run")) == [1, 2, 3]
  assert not any(tmp_path.iterdir())


def test_without_the_filesystem_package_a2e_train_says_so_in_one_line(tmp_path):
  if _gcsfs_installed():
    pytest.skip("gcsfs is installed here")
  out = subprocess.run([sys.executable, "-m", "a2e_jax.cli", "train", "--config",
                        str(REPO / "tests" / "train_standin.py"), "--workdir", "gs://bucket/run"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "tests"), str(REPO)])))
  assert out.returncode == 2
  lines = out.stderr.strip().splitlines()
  assert len(lines) == 1 and "gs://bucket/run" in lines[0] and "gcsfs" in lines[0], out.stderr
  assert not os.path.exists(tmp_path / "gs:")


def _gcsfs_installed() -> bool:
  try:
    import gcsfs  # noqa: F401
  except ImportError:
    return False
  return True
