"""Gives JAX 8 fake CPU devices before it is imported, so sharding code runs as on a real mesh."""

import importlib.util
import os
import pathlib
import socket

import pytest

os.environ["XLA_FLAGS"] = (
  os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

REPO = pathlib.Path(__file__).resolve().parents[1]
# A2E_SHARED points a worktree elsewhere at the same data.
SHARED = pathlib.Path(os.environ.get("A2E_SHARED", REPO.parent / "shared"))


@pytest.fixture
def shared_dir():
  """`../shared` (real face models and audio); tests that need a file skip when it is absent."""
  return SHARED


def tool_module(name: str):
  """tools/<name>.py imported as a module (the tools folder is not a package)."""
  spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def require_shared(relative: str) -> pathlib.Path:
  """Path under ../shared, or skip the test with the reason."""
  path = SHARED / relative
  if not path.exists():
    pytest.skip(f"optional test data {path} is absent (see ../shared/*/README.md)")
  return path


def free_port() -> int:
  """A TCP port on localhost that is free now (for a jax.distributed coordinator in a test)."""
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]
