"""`a2e track`: user errors, batch mode over a folder (a failing file reported, the rest done), resume."""

import numpy as np
import pytest
from PIL import Image

from a2e_jax.cli import main


def test_track_rejects_what_is_not_a_picture_or_video(tmp_path, capsys):
  text = tmp_path / "notes.txt"
  text.write_text("hello")
  assert main(["track", str(text), "--out", str(tmp_path / "out")]) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and "notes.txt" in err[0] and "not a picture" in err[0]
  empty = tmp_path / "empty"
  empty.mkdir()
  assert main(["track", str(empty), "--out", str(tmp_path / "out")]) == 2
  assert "holds no pictures" in capsys.readouterr().err


@pytest.mark.slow
def test_track_folder_reports_the_faceless_file_and_resumes(tmp_path, capsys):
  from a2e_jax.face.builtin import builtin_model
  from a2e_jax.fit import synthetic

  model = builtin_model()
  truth = synthetic.clip(model, 1, seed=7, face_px=(180, 220), max_angle=10.0, batch=1)
  folder = tmp_path / "in"
  folder.mkdir()
  Image.fromarray(truth.frames[0]).save(folder / "face.png")
  Image.fromarray(np.full((256, 256, 3), 90, np.uint8)).save(folder / "wall.png")
  out = tmp_path / "out"
  assert main(["track", str(folder), "--out", str(out), "--overlay", "--no-progress"]) == 1
  captured = capsys.readouterr()
  assert "wall.png" in captured.err and "no face" in captured.err
  with np.load(out / "face.npz") as data:
    assert data["coeffs"].shape == (1, model.num_exp) and data["pose"].shape == (1, 6)
    assert data["eye"].shape == (1, 4) and data["lighting"].shape == (1, 27)
    assert str(data["model"]) == "builtin"
    # The fitted pose is the true one within a few degrees.
    assert np.abs(np.rad2deg(data["pose"][0, :3] - truth.pose[0, :3])).max() < 8.0
  assert (out / "face.overlay.png").exists() and not (out / "wall.npz").exists()
  # Resume: the done file is skipped, the faceless one tried again.
  assert main(["track", str(folder), "--out", str(out), "--no-progress"]) == 1
  assert "skipping 1 file" in capsys.readouterr().out
  # A single faceless picture: one line, exit 2.
  assert main(["track", str(folder / "wall.png"), "--out", str(out)]) == 2
  assert len(capsys.readouterr().err.strip().splitlines()) == 1
