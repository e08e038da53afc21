"""`a2e models info|convert` and `a2e export` end to end (in-process, through cli.main)."""

import numpy as np
import pytest
from conftest import require_shared
from test_face_formats import bfm_sequence, grid_model, ict_sequence
from test_face_models import ICT, write_bfm

from a2e_jax import cli
from a2e_jax.core import channels
from a2e_jax.face import registry
from a2e_jax.formats.files import read_sequence, write_sequence


@pytest.fixture(autouse=True)
def empty_cache(tmp_path, monkeypatch):
  monkeypatch.setenv("A2E_CACHE_DIR", str(tmp_path / "cache"))
  for name in registry.ENV_VARS.values():
    monkeypatch.delenv(name, raising=False)


def test_convert_bfm_then_info(tmp_path, capsys):
  write_bfm(tmp_path / "BFM_model_front.mat")
  out = tmp_path / "bfm.npz"
  assert cli.main(["models", "convert", "--from", "bfm", str(tmp_path / "BFM_model_front.mat"),
                   "--out", str(out)]) == 0
  assert out.exists() and "150 vertices" in capsys.readouterr().out
  assert cli.main(["models", "info", str(out)]) == 0
  text = capsys.readouterr().out
  assert "vertices    150" in text and "identity    80 modes" in text and "64 channels: exp00" in text
  assert "lips" in text and "bbox" in text


def test_convert_ict_into_the_cache_that_the_registry_reads(capsys):
  folder = require_shared(ICT)
  assert cli.main(["models", "convert", "--from", "ict", str(folder), "--face-only", "--num-id", "2"]) == 0
  model = registry.resolve_model("ict")  # the face area: vertices 0-9408, polygons 0-9229
  assert model.num_vertices == 9_409 and model.num_id == 2 and model.channel_names == channels.ICT_CHANNELS
  assert int(np.max(model.triangles)) < 9_409 and len(model.triangles) == 18_460
  assert "9,409 vertices" in capsys.readouterr().out


def test_convert_errors_are_one_line_exit_2(tmp_path, capsys):
  write_bfm(tmp_path / "bfm.mat", exBase=np.zeros((450, 63)))
  assert cli.main(["models", "convert", "--from", "bfm", str(tmp_path / "bfm.mat"), "--out",
                   str(tmp_path / "x.npz")]) == 2
  err = capsys.readouterr().err
  assert len(err.strip().splitlines()) == 1 and "exBase" in err and "(3N, 64)" in err
  assert cli.main(["models", "info", "bfm"]) == 2
  assert "a2e models convert --from bfm" in capsys.readouterr().err


def test_export_between_bfm_and_arkit_spaces(tmp_path, capsys):
  ict_like, bfm_like = grid_model(name="tiny"), grid_model(64, channels.BFM_CHANNELS, name="bfm")
  ict_like.save(str(tmp_path / "tiny.npz"))
  bfm_like.save(str(tmp_path / "bfm.npz"))
  write_sequence(str(tmp_path / "talk.mat"), bfm_sequence(20))
  args = ["export", str(tmp_path / "talk.mat"), "--to", "arkit-csv", "--out", str(tmp_path / "talk.csv")]
  assert cli.main(args) == 2  # no BFM model to retarget with
  err = capsys.readouterr().err
  assert len(err.strip().splitlines()) == 1 and "a2e models convert --from bfm" in err
  assert cli.main(args + ["--bfm", str(tmp_path / "bfm.npz"), "--model", str(tmp_path / "tiny.npz")]) == 0
  csv_seq = read_sequence(str(tmp_path / "talk.csv"))
  assert csv_seq.num_frames == 20 and csv_seq.channel_names == channels.ICT_CHANNELS

  write_sequence(str(tmp_path / "gen.npz"), ict_sequence(20))
  out = tmp_path / "gen_sadtalker.mat"
  assert cli.main(["export", str(tmp_path / "gen.npz"), "--to", "sadtalker", "--out", str(out),
                   "--model", str(tmp_path / "tiny.npz"), "--bfm", str(tmp_path / "bfm.npz")]) == 0
  assert read_sequence(str(out)).coeffs.shape == (20, 64)


def test_export_glb_and_npz(tmp_path):
  model = grid_model(name="tiny")
  model.save(str(tmp_path / "tiny.npz"))
  seq = ict_sequence(8)
  write_sequence(str(tmp_path / "gen.csv"), seq)
  assert cli.main(["export", str(tmp_path / "gen.csv"), "--to", "glb", "--out", str(tmp_path / "gen.glb"),
                   "--model", str(tmp_path / "tiny.npz")]) == 0
  assert cli.main(["export", str(tmp_path / "gen.glb"), "--to", "npz", "--out",
                   str(tmp_path / "gen.npz")]) == 0
  back = read_sequence(str(tmp_path / "gen.npz"))
  np.testing.assert_allclose(back.coeffs, seq.coeffs, atol=1e-6)


def test_preview_parser_is_registered(capsys):
  with pytest.raises(SystemExit):
    cli.main(["models", "preview", "--help"])
  text = capsys.readouterr().out
  assert "--size" in text and "--out" in text and "--model" in text
