"""`a2e env` and the trainer's device checks: a mesh larger than the devices stops in one line, a GPU/TPU
config on CPU warns."""

import json
import subprocess
import sys

import jax
import pytest
from conftest import REPO

from a2e_jax.core.config import load_config
from a2e_jax.core.errors import UserError
from a2e_jax.train import runtime


def test_a_mesh_larger_than_the_devices_is_one_clear_error():
  config = load_config("configs/synthetic.py:tiny", ["--config.mesh.data=4", "--config.mesh.fsdp=4"])
  with pytest.raises(UserError, match=r"needs 16 devices but JAX sees 8 cpu devices .*mesh"):
    runtime.check(config)
  gpu = load_config("configs/gpu8.py", ["--config.mesh.data=16"])
  with pytest.raises(UserError, match=r"needs 16 devices .* pip install -e '\.\[cuda\]'"):
    runtime.check(gpu)


def test_a_gpu_or_tpu_config_on_cpu_warns_and_names_the_install():
  assert runtime.check(load_config("configs/synthetic.py:tiny")) == []
  (warning,) = runtime.check(load_config("configs/tpu_pod.py"))
  assert "asks for tpu but JAX runs on cpu" in warning and ".[tpu]" in warning
  with pytest.raises(UserError, match="platform='gpus'"):
    runtime.check(load_config("configs/synthetic.py:tiny", ["--config.platform=gpus"]))


def test_report_describes_devices_versions_and_the_mesh():
  info = runtime.report(load_config("configs/synthetic.py:tiny", ["--config.mesh.fsdp=2"]))
  assert info["platform"] == jax.default_backend() and info["devices"] == jax.device_count() == 8
  assert info["versions"]["jax"] == jax.__version__
  assert info["mesh"] == {"data": 4, "fsdp": 2, "model": 1} and info["batch_per_device"] == 1
  bad = runtime.report(load_config("configs/synthetic.py:tiny", ["--config.mesh.model=3"]))
  assert "mesh" not in bad and "8 devices do not divide by 3" in bad["mesh_error"]


@pytest.mark.slow
def test_a2e_env_prints_the_mesh_a_config_builds():
  out = subprocess.run([sys.executable, "-m", "a2e_jax.cli", "env", "--config", "configs/gpu8.py", "--json"],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
  assert out.returncode == 0, out.stderr
  info = json.loads(out.stdout)
  assert info["mesh"] == {"data": 8, "fsdp": 1, "model": 1} and info["config_platform"] == "gpu"
  assert any("asks for gpu" in w for w in info["warnings"])
