"""`a2e render`, `a2e models preview`, render_frames and photo mode, end to end on the built-in face."""

import subprocess

import numpy as np
import pytest
import soundfile
from PIL import Image

from a2e_jax.cli import main
from a2e_jax.core.channels import ICT_CHANNELS
from a2e_jax.face.builtin import builtin_model
from a2e_jax.formats.sequence import CoeffSequence, save_npz
from a2e_jax.render import photo, render_frames, video
from a2e_jax.render.pipeline import DEFAULT_BACKGROUND

pytestmark = pytest.mark.slow  # renders videos and contact sheets

SIZE = 64


@pytest.fixture(scope="module")
def model():
  return builtin_model()


def clip(frames=6, jaw=0.8, model_id="builtin"):
  coeffs = np.zeros((frames, len(ICT_CHANNELS)), np.float32)
  coeffs[:, ICT_CHANNELS.index("jawOpen")] = np.linspace(0, jaw, frames)
  pose = np.zeros((frames, 6), np.float32)
  pose[:, 1] = np.linspace(0, 0.3, frames)
  return CoeffSequence(coeffs=coeffs, channel_names=ICT_CHANNELS, pose=pose, model=model_id)


def streams(path):
  return subprocess.run([video.ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True,
                        text=True).stderr


def test_render_frames_api(model):
  seq = clip()
  frames = render_frames(model, seq.coeffs, pose_t6=seq.pose, size=SIZE, batch=4)
  assert frames.shape == (6, SIZE, SIZE, 3) and frames.dtype == np.uint8
  assert (frames[0, 0, 0] == 0).all(), "default background is black"
  assert frames[:, SIZE // 2, SIZE // 2].min() > 40, "the face covers the centre"
  assert np.abs(frames[0].astype(int) - frames[-1]).mean() > 2, "pose and jaw change the image"
  again = render_frames(model, seq.coeffs[:1], pose_t6=seq.pose[:1], size=SIZE, batch=4)
  np.testing.assert_array_equal(again[0], frames[0])  # padding of a partial batch does not leak


def test_a2e_render_with_audio_and_panels(tmp_path, capsys):
  coeffs = tmp_path / "clip.npz"
  save_npz(str(coeffs), clip())
  audio = tmp_path / "a.wav"
  soundfile.write(str(audio), np.zeros(16000 * 2, np.float32), 16000)
  out = tmp_path / "out.mp4"
  assert main(["render", str(coeffs), "--audio", str(audio), "--out", str(out), "--size", str(SIZE),
               "--no-progress"]) == 0
  report = streams(out)
  assert "Video: h264" in report and "Audio: aac" in report and f"{SIZE}x{SIZE}" in report
  assert "wrote" in capsys.readouterr().out

  side = tmp_path / "side.mp4"
  assert main(["render", str(coeffs), "--compare", str(coeffs), "--labels", "pred,truth",
               "--out", str(side), "--size", str(SIZE), "--no-progress"]) == 0
  assert f"{2 * SIZE}x{SIZE}" in streams(side)


def test_a2e_render_user_errors(tmp_path, capsys):
  coeffs = tmp_path / "clip.npz"
  save_npz(str(coeffs), clip())
  assert main(["render", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "x.mp4")]) == 2
  assert main(["render", str(coeffs), "--out", str(tmp_path / "x.avi")]) == 2
  assert main(["render", str(coeffs), "--out", str(tmp_path / "x.mp4"), "--size", "63"]) == 2
  names = tuple(f"exp{i:02d}" for i in range(64))
  bfm = tmp_path / "bfm.npz"
  save_npz(str(bfm), CoeffSequence(coeffs=np.zeros((3, 64), np.float32), channel_names=names))
  assert main(["render", str(bfm), "--model", "builtin", "--out", str(tmp_path / "x.mp4")]) == 2
  errors = capsys.readouterr().err.strip().splitlines()
  assert len(errors) == 4 and all(line.startswith("a2e: error: ") for line in errors)
  assert "BFM's 64 expression coefficients" in errors[-1]


def test_photo_mode_keeps_the_portrait_and_darkens_the_open_mouth(model, tmp_path):
  # The "portrait" is a render of the neutral face itself, so any neutral frame must give it back, even when
  # the clip starts with the mouth open (the photo is mapped with the reference expression, not frame 0's).
  portrait = render_frames(model, size=96, background=(0.4, 0.5, 0.6))[0]
  path = tmp_path / "portrait.png"
  Image.fromarray(portrait).save(path)
  exp = np.zeros((2, model.num_exp), np.float32)
  exp[0, model.channel("jawOpen")] = 1.0
  frames = render_frames(model, exp, ref_image=str(path), batch=2)
  assert frames.shape == (2, 96, 96, 3)
  assert np.abs(frames[1].astype(int) - portrait).max() <= 1
  mouth = np.round(np.array(photo.MOUTH_COLOR) * 255)
  dark = [np.all(np.abs(f.astype(int) - mouth) < 12, -1) for f in frames]
  new_dark = dark[0] & ~dark[1]
  assert new_dark[55:85].sum() > 20, "the open mouth shows the dark interior"
  assert not new_dark[:50].any(), "nothing above the mouth turns dark"
  np.testing.assert_array_equal(frames[0, :5, :5], portrait[:5, :5])  # the background is the photo


def test_photo_mode_colours_what_the_portrait_hides_with_the_fitted_albedo(model, tmp_path):
  # A render of the face turned away as the portrait, with its lighting known (what a fit gives): turning
  # the head back shows the cheek the portrait hides, which must look like the face rendered that way.
  gamma = np.zeros((2, 27), np.float32)
  gamma[:, [1, 10, 19]] = 0.3  # light from one side, so a wrong normal or colour shows
  pose = np.zeros((2, 6), np.float32)
  pose[:, 1] = [0.7, -0.2]  # yaw: the portrait's, then the animated frame's
  portrait = render_frames(model, size=128, pose_t6=pose[:1], gamma=gamma[:1])[0]
  path = tmp_path / "portrait.png"
  Image.fromarray(portrait).save(path)
  exp = np.zeros((2, model.num_exp), np.float32)
  truth = render_frames(model, exp, size=128, pose_t6=pose, gamma=gamma)[1].astype(int)
  face = np.abs(truth - np.round(np.array(DEFAULT_BACKGROUND) * 255)).sum(-1) > 6
  fitted = render_frames(model, exp, pose_t6=pose, ref_image=str(path), ref_gamma=gamma[0])[1].astype(int)
  nearest = render_frames(model, exp, pose_t6=pose, ref_image=str(path))[1].astype(int)
  error = lambda frame: np.abs(frame - truth)[face].mean()  # noqa: E731
  assert error(fitted) < 0.7 * error(nearest), (error(fitted), error(nearest))



def test_photo_errors(model, tmp_path):
  from a2e_jax.core.errors import UserError

  bad = tmp_path / "bad.png"
  bad.write_text("no image")
  with pytest.raises(UserError, match="cannot be read"):
    photo.load_photo(str(bad))
  tiny = tmp_path / "tiny.png"
  Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(tiny)
  with pytest.raises(UserError, match="at least"):
    photo.load_photo(str(tiny))
  odd = tmp_path / "odd.png"
  Image.fromarray(np.zeros((65, 67, 3), np.uint8)).save(odd)
  assert photo.load_photo(str(odd)).shape == (64, 66, 3)


def test_models_preview_contact_sheet(tmp_path, capsys):
  out = tmp_path / "sheet.png"
  assert main(["models", "preview", "--out", str(out), "--size", "48"]) == 0
  sheet = np.asarray(Image.open(out))
  cols = int(np.ceil(np.sqrt(54 * 1.5)))
  assert sheet.shape == (int(np.ceil(54 / cols)) * 48, cols * 48, 3)
  tiles = sheet.reshape(-1, 48, cols, 48, 3).transpose(0, 2, 1, 3, 4).reshape(-1, 48, 48, 3)
  neutral, jaw_open = tiles[0], tiles[1 + ICT_CHANNELS.index("jawOpen")]
  assert np.abs(neutral[24:].astype(int) - jaw_open[24:]).mean() > 1.0
  assert main(["models", "preview", "--out", str(tmp_path / "x.gif")]) == 2
