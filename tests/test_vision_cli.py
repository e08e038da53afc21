"""`a2e landmarks`: user errors, no face in an image, a video with a gap without a face."""

import numpy as np
import pytest
from PIL import Image

from a2e_jax.cli import main


def one_error_line(capsys) -> str:
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and err[0].startswith("a2e: error:"), err
  return err[0]


def test_user_errors_name_the_thing(tmp_path, capsys):
  image = tmp_path / "x.png"
  Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(image)
  (tmp_path / "empty").mkdir()
  cases = [
    (["landmarks", str(image), "--out", str(tmp_path / "x.csv")], "--out"),
    (["landmarks", str(tmp_path / "missing.png"), "--out", str(tmp_path / "x.npz")], "missing.png"),
    (["landmarks", str(image), "--out", str(tmp_path / "x.npz"), "--overlay", "o.mp4"], "--overlay"),
    (["landmarks", str(tmp_path / "empty"), "--out", str(tmp_path / "x.npz")], "no images"),
    (["landmarks", str(image), "--out", str(tmp_path / "x.npz"), "--batch", "0"], "--batch"),
  ]
  (tmp_path / "notes.txt").write_text("x")
  cases.append((["landmarks", str(tmp_path / "notes.txt"), "--out", str(tmp_path / "x.npz")], "unknown kind"))
  (tmp_path / "broken.png").write_bytes(image.read_bytes()[:40])
  cases.append((["landmarks", str(tmp_path / "broken.png"), "--out", str(tmp_path / "x.npz")], "broken.png"))
  (tmp_path / "fake.mp4").write_text("not a video")
  cases.append((["landmarks", str(tmp_path / "fake.mp4"), "--out", str(tmp_path / "x.npz")], "fake.mp4"))
  for argv, needle in cases:
    assert main(argv) == 2, argv
    assert needle in one_error_line(capsys)
  assert not (tmp_path / "x.npz").exists()


@pytest.mark.slow
def test_no_face_in_an_image_is_one_line_and_exit_2(tmp_path, capsys):
  image = tmp_path / "wall.png"
  noise = np.random.default_rng(0).integers(90, 110, (160, 200, 3), dtype=np.uint8)
  Image.fromarray(noise).save(image)
  assert main(["landmarks", str(image), "--out", str(tmp_path / "x.npz"), "--overlay",
               str(tmp_path / "o.png")]) == 2
  assert "no face found" in one_error_line(capsys)
  assert not (tmp_path / "x.npz").exists() and not (tmp_path / "o.png").exists()


def face_frames(count: int) -> np.ndarray:
  """[count,256,256,3] uint8 renders of the built-in face, turning its head a little."""
  from a2e_jax.face.registry import resolve_model
  from a2e_jax.render.pipeline import FaceRenderer
  from a2e_jax.render.shading import to_uint8

  model = resolve_model("builtin")
  pose = np.zeros((count, 6), np.float32)
  pose[:, 1] = np.linspace(-0.2, 0.2, count)
  images, _ = FaceRenderer(model, size=256, batch=count, background=(0.55, 0.6, 0.5)).render(
    np.zeros((count, model.num_exp), np.float32), pose)
  return np.asarray(to_uint8(images))


@pytest.mark.slow
def test_video_marks_frames_without_a_face_and_finds_it_again(tmp_path, capsys):
  from a2e_jax.render.video import VideoSink

  frames = face_frames(10)
  frames[4:6] = 128  # the face leaves for two frames
  clip = tmp_path / "clip.mp4"
  with VideoSink(str(clip), 256, 256) as sink:
    sink.write(frames)
  out, overlay = tmp_path / "faces.npz", tmp_path / "overlay.mp4"
  assert main(["landmarks", str(clip), "--out", str(out), "--overlay", str(overlay), "--batch", "4",
               "--no-progress"]) == 0
  assert "10 frames, 8 with a face" in capsys.readouterr().out
  data = np.load(out)
  np.testing.assert_array_equal(data["found"], np.arange(10) // 2 != 2)
  assert np.isnan(data["points"][4:6]).all() and np.isfinite(data["points"][data["found"]]).all()
  # Tracking: the detector ran on the first frame; frame 4 was still cropped where frame 3's face was (the
  # mesh's presence score then said "no face"), so the detector ran again from frame 5 until it found one.
  np.testing.assert_array_equal(np.flatnonzero(data["detected"]), [0, 5, 6])
  assert data["points"].shape == (10, 468, 3) and data["gaze"].shape == (10, 2)
  assert overlay.exists() and float(data["fps"]) == 25.0
