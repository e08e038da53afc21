"""The code passes the project's ruff configuration and its import-linter contracts (pyproject.toml)."""

import os
import pathlib
import shutil
import subprocess
import sys

import pytest
from conftest import REPO


def _tool(name: str) -> str:
  path = shutil.which(name, path=str(pathlib.Path(sys.executable).parent)) or shutil.which(name)
  if path is None:
    pytest.fail(f"{name} is not installed; install the test extra: pip install -e '.[test]'")
  return path


def test_ruff_clean():
  result = subprocess.run([_tool("ruff"), "check", str(REPO)], capture_output=True, text=True)
  assert result.returncode == 0, result.stdout + result.stderr


def test_layers_import_only_downward():
  # This checkout's package, whatever the environment's editable install points at.
  env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH"))))}
  result = subprocess.run([_tool("lint-imports"), "--no-cache"], capture_output=True, text=True, cwd=REPO,
                          env=env)
  assert result.returncode == 0, result.stdout + result.stderr
