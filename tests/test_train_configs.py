"""Every training config loads in every variant, runs the trainer's checks, and documents its command."""

import ast
import pathlib

import jax
import ml_collections
import pytest
from conftest import REPO

from a2e_jax.core.config import load_config
from a2e_jax.core.errors import UserError
from a2e_jax.train import sharding, trainer

CONFIGS = sorted(str(p.relative_to(REPO)) for p in (REPO / "configs").glob("*.py"))


def _variants(path: str) -> list[str]:
  tree = ast.parse(pathlib.Path(REPO / path).read_text())
  for node in tree.body:
    if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "VARIANTS" for t in node.targets):
      return list(ast.literal_eval(node.value))
  return [""]


@pytest.mark.parametrize("path", CONFIGS)
def test_config_variants_load_and_validate(path):
  doc = ast.get_docstring(ast.parse((REPO / path).read_text())) or ""
  commands = [line for line in doc.splitlines()
              if path in line and ("a2e train" in line or "launch/" in line)]
  assert commands, f"{path}: the docstring should hold the command that runs it"
  for variant in _variants(path):
    spec = f"{REPO / path}:{variant}" if variant else str(REPO / path)
    config = load_config(spec)
    assert config.is_locked
    with pytest.raises(AttributeError):
      config.train.no_such_key = 1
    # The mesh of a one-device run (every config must at least start on a laptop with overrides).
    mesh = sharding.make_mesh(ml_collections.ConfigDict(dict(data=1, fsdp=1, model=1)), jax.devices()[:1])
    trainer.validate(config, mesh)


def test_every_config_has_a_tiny_variant_or_is_a_hardware_preset():
  assert "tiny" in _variants("configs/synthetic.py") and "tiny" in _variants("configs/mead.py")


def test_unknown_variant_is_a_user_error():
  with pytest.raises(UserError, match="unknown variant"):
    load_config(str(REPO / "configs/synthetic.py:huge"))
