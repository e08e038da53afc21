"""Video writing: H.264/yuv420p/25 fps, AAC audio cut or padded to the video (every frame kept), streaming,
layouts."""

import subprocess

import numpy as np
import pytest
import soundfile

from a2e_jax.core.errors import UserError
from a2e_jax.render import video


def probe(path):
  """Stream facts from ffmpeg's own report (imageio-ffmpeg ships ffmpeg, not ffprobe)."""
  command = [video.ffmpeg_exe(), "-hide_banner", "-i", str(path)]
  report = subprocess.run(command, capture_output=True, text=True).stderr
  duration = report.split("Duration: ")[1].split(",")[0]
  h, m, s = duration.split(":")
  return report, int(h) * 3600 + int(m) * 60 + float(s)


def read_frames(path):
  import mediapy

  video.ffmpeg_exe()
  return mediapy.read_video(str(path))


def smooth_frames(count, height=64, width=96):
  """Frames whose content changes slowly in space (H.264 keeps them nearly intact) and over time."""
  y, x = np.mgrid[0:height, 0:width]
  frames = [np.stack([x * 2 + 10 * t, y * 3, np.full_like(x, 128 + 5 * t)], -1) for t in range(count)]
  return np.clip(frames, 0, 255).astype(np.uint8)


def tone(path, seconds, rate=16000):
  t = np.arange(int(seconds * rate)) / rate
  soundfile.write(str(path), 0.3 * np.sin(2 * np.pi * 220 * t), rate)
  return str(path)


def test_video_with_audio_is_h264_yuv420p_aac_and_keeps_every_frame(tmp_path):
  frames = smooth_frames(10)
  out = tmp_path / "clip.mp4"
  count = video.write_video(str(out), [frames[:4], frames[4:7], frames[7:]], 64, 96,
                            audio=tone(tmp_path / "long.wav", 2.0), total=10, progress=False)
  assert count == 10
  report, duration = probe(out)
  assert "Video: h264" in report and "yuv420p" in report and "25 fps" in report
  assert "Audio: aac" in report
  assert abs(duration - 0.4) < 0.05  # 10 frames at 25 fps; the 2 s tone is cut
  decoded = read_frames(out)
  assert decoded.shape == (10, 64, 96, 3)
  assert np.abs(decoded.astype(float) - frames).mean() < 3.0

  short = tmp_path / "short.mp4"
  video.write_video(str(short), [smooth_frames(50)], 64, 96, audio=tone(tmp_path / "short.wav", 0.8),
                    progress=False)
  report, duration = probe(short)
  assert abs(duration - 2.0) < 0.05 and "Audio: aac" in report  # the 0.8 s of audio padded with silence
  assert len(read_frames(short)) == 50


def test_audio_as_long_as_the_video_keeps_its_last_frames(tmp_path):
  """97 frames at 30 fps with their own 3.23 s of audio: `-shortest` ended the file with the AAC stream and
  lost the last frame."""
  out = tmp_path / "clip.mp4"
  audio = tone(tmp_path / "a.wav", 97 / 30)
  count = video.write_video(str(out), [smooth_frames(97)], 64, 96, fps=30, audio=audio, progress=False)
  assert count == 97
  assert len(read_frames(out)) == 97


def test_silent_video_and_bad_input(tmp_path):
  out = tmp_path / "silent.mp4"
  video.write_video(str(out), iter([smooth_frames(25)]), 64, 96, progress=False)
  report, duration = probe(out)
  assert "Audio" not in report
  assert abs(duration - 1.0) < 0.1
  with pytest.raises(UserError, match="even frame size"):
    video.VideoSink(str(tmp_path / "odd.mp4"), 63, 96)
  with pytest.raises(UserError, match="not found"):
    video.VideoSink(str(tmp_path / "x.mp4"), 64, 96, audio=str(tmp_path / "missing.wav"))
  bad_audio = tmp_path / "bad.wav"
  bad_audio.write_text("not audio")
  with pytest.raises(UserError, match="could not add audio"):
    video.write_video(str(tmp_path / "y.mp4"), [smooth_frames(2)], 64, 96, audio=str(bad_audio),
                      progress=False)


def test_tile_and_labels():
  a = np.zeros((2, 40, 60, 3), np.uint8)
  b = np.full((2, 40, 60, 3), 200, np.uint8)
  grid = video.tile([a, b, a], labels=["pred", "", "swap"])
  assert grid.shape == (2, 40, 180, 3)
  assert grid[:, 20:, :60].max() == 0 and (grid[:, 20:, 60:120] == 200).all()
  assert grid[0, :12, :40].max() > 0, "the label is drawn in the top-left corner"
  assert (grid[:, :, 60:120] == 200).all(), "an empty label leaves its panel alone"
  five = video.tile([a] * 5, cols=3, pad=2)
  assert five.shape == (2, 2 * 40 + 2, 3 * 60 + 4, 3)
  with pytest.raises(ValueError):
    video.tile([a, b[:, :30]])


def test_long_clips_stream_in_batches(tmp_path):
  # A generator of batches is consumed lazily: at no point does the writer hold more than one batch.
  produced = []

  def batches():
    for i in range(6):
      produced.append(i)
      yield smooth_frames(5)

  out = tmp_path / "long.mp4"
  assert video.write_video(str(out), batches(), 64, 96, progress=False) == 30
  assert produced == list(range(6))
  assert read_frames(out).shape[0] == 30
