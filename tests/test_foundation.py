"""The package skeleton: config loading with overrides, the CLI's error handling, the face model core."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import REPO

from a2e_jax import cli
from a2e_jax.core import channels
from a2e_jax.core.config import load_config
from a2e_jax.core.errors import UserError
from a2e_jax.face.model import MorphableModel, load_model


def test_eight_fake_devices():
  assert jax.device_count() == 8


def _write_config(tmp_path):
  path = tmp_path / "c.py"
  path.write_text(
    "import ml_collections\n"
    "def get_config(arg=None):\n"
    "  c = ml_collections.ConfigDict()\n"
    "  c.train = ml_collections.ConfigDict({'steps': 100, 'lr': 1e-3})\n"
    "  c.variant = arg or 'default'\n"
    "  return c.lock()\n"
  )
  return str(path)


def test_config_variant_and_overrides(tmp_path):
  path = _write_config(tmp_path)
  config = load_config(f"{path}:tiny", ["--config.train.steps=7", "config.train.lr=0.5"])
  assert config.variant == "tiny"
  assert config.train.steps == 7 and config.train.lr == 0.5


@pytest.mark.parametrize(
  "override, fragment",
  [("--config.train.stepz=1", "stepz"), ("--config.train.steps=abc", "train.steps"),
   ("--train.steps=1", "--config.<key>")],
)
def test_config_errors_name_the_key(tmp_path, override, fragment):
  with pytest.raises(UserError, match=fragment.replace(".", r"\.")):
    load_config(_write_config(tmp_path), [override])


def test_config_missing_file():
  with pytest.raises(UserError, match="not found"):
    load_config("nope/missing.py:tiny")


def test_cli_user_error_is_one_line_exit_2():
  result = subprocess.run(
    [sys.executable, "-m", "a2e_jax.cli", "no-such-command"], capture_output=True, text=True,
    cwd=REPO,
  )
  assert result.returncode == 2
  assert "Traceback" not in result.stderr
  assert len(result.stderr.strip().splitlines()) == 1


def test_cli_help_lists_subcommands(capsys):
  with pytest.raises(SystemExit) as exit_info:
    cli.main(["--help"])
  assert exit_info.value.code == 0
  assert "COMMAND" in capsys.readouterr().out


def test_arkit_mapping_round_trip():
  to_arkit = channels.ict_to_arkit_matrix()
  to_ict = channels.arkit_to_ict_matrix()
  assert to_arkit.shape == (52, 53) and to_ict.shape == (53, 52)
  weights = np.random.default_rng(0).uniform(size=52).astype(np.float32)
  weights[channels.ARKIT_BLENDSHAPES.index("tongueOut")] = 0.0  # ICT has no tongue
  np.testing.assert_allclose(to_arkit @ (to_ict @ weights), weights, atol=1e-6)
  assert channels.ict_to_arkit_name("mouthSmile_L") == "mouthSmileLeft"


def _random_model(n=50, ki=4, ke=3, seed=0):
  rng = np.random.default_rng(seed)
  return MorphableModel(
    mean=rng.normal(size=(n, 3)).astype(np.float32),
    id_basis=rng.normal(size=(n, 3, ki)).astype(np.float32),
    exp_basis=rng.normal(size=(n, 3, ke)).astype(np.float32),
    triangles=rng.integers(0, n, size=(20, 3)).astype(np.int32),
    landmarks=rng.integers(0, n, size=68).astype(np.int32),
    regions={"lips": np.arange(5, dtype=np.int32)},
    channel_names=("a", "b", "c"),
    name="random",
  )


def test_vertices_batched_jit_grad_match_numpy():
  model = _random_model()
  rng = np.random.default_rng(1)
  id_bk = rng.normal(size=(2, 4)).astype(np.float32)
  exp_btk = rng.normal(size=(2, 5, 3)).astype(np.float32)
  got = jax.jit(lambda m, i, e: m.vertices(i, e))(model, id_bk, exp_btk)
  mean, idb, exb = (np.float64(a) for a in (model.mean, model.id_basis, model.exp_basis))
  want = (mean[None, None] + np.einsum("bk,nck->bnc", id_bk, idb)[:, None]
          + np.einsum("btk,nck->btnc", exp_btk, exb))
  assert got.shape == (2, 5, 50, 3)
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
  grad = jax.grad(lambda e: model.vertices(id_bk, e).sum())(jnp.asarray(exp_btk))
  np.testing.assert_allclose(grad, np.broadcast_to(exb.sum(axis=(0, 1)), grad.shape), rtol=1e-4)


def test_model_npz_round_trip(tmp_path):
  model = _random_model()
  model.save(str(tmp_path / "m.npz"))
  loaded = load_model(str(tmp_path / "m.npz"))
  for field in ("mean", "id_basis", "exp_basis", "triangles", "landmarks"):
    np.testing.assert_array_equal(getattr(loaded, field), getattr(model, field))
  assert loaded.channel_names == model.channel_names and loaded.name == "random"
  np.testing.assert_array_equal(loaded.region("lips"), model.regions["lips"])


def test_load_model_bad_file(tmp_path):
  bad = tmp_path / "bad.npz"
  bad.write_bytes(b"not a zip")
  with pytest.raises(UserError, match="bad.npz"):
    load_model(str(bad))
  np.savez(tmp_path / "other.npz", x=np.zeros(3))
  with pytest.raises(UserError, match="not an a2e face model"):
    load_model(str(tmp_path / "other.npz"))


@pytest.mark.parametrize("with_id", [False, True])
def test_vertices_single_identity_matches_numpy(with_id):
  """One identity for all frames takes the one-GEMM path; it must equal the plain formula."""
  model = _random_model()
  rng = np.random.default_rng(2)
  id_k = rng.normal(size=(4,)).astype(np.float32) if with_id else None
  exp_btk = rng.normal(size=(3, 5, 3)).astype(np.float32)
  got = jax.jit(lambda m, e: m.vertices(id_k, e))(model, exp_btk)
  shape = np.float64(model.mean)
  if with_id:
    shape = shape + np.einsum("k,nck->nc", id_k, np.float64(model.id_basis))
  want = shape + np.einsum("btk,nck->btnc", exp_btk, np.float64(model.exp_basis))
  assert got.shape == (3, 5, 50, 3)
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
