"""The code passes the project's ruff configuration."""

import shutil
import subprocess

import pytest
from conftest import REPO


def test_ruff_clean():
  ruff = shutil.which("ruff") or str(REPO / ".venv/bin/ruff")
  if not shutil.which(ruff):
    pytest.fail("ruff is not installed; install the test extra: pip install -e '.[test]'")
  result = subprocess.run([ruff, "check", str(REPO)], capture_output=True, text=True)
  assert result.returncode == 0, result.stdout + result.stderr
