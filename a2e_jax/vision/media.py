"""Reading what the landmarker looks at: still images and video frames as uint8 RGB arrays.

Video is decoded by imageio-ffmpeg's ffmpeg (the binary a2e_jax writes its videos with), batch by batch, so
a long clip never sits in memory whole.
"""

import contextlib
import os
import warnings

import numpy as np

from a2e_jax.core.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")


@contextlib.contextmanager
def quiet_fork():
  """Silences JAX's warning about os.fork() while ffmpeg starts: subprocess forks and at once execs ffmpeg,
  running no Python in the child, so the deadlock the warning is about cannot happen."""
  with warnings.catch_warnings():
    warnings.filterwarnings("ignore", r"os\.fork\(\) was called", RuntimeWarning)
    yield


def read_image(path: str) -> np.ndarray:
  """[H,W,3] uint8 RGB."""
  from PIL import Image, UnidentifiedImageError

  try:
    with Image.open(path) as image:
      return np.asarray(image.convert("RGB"))
  except (OSError, UnidentifiedImageError) as e:
    raise UserError(f"image {path!r} cannot be read ({e}); give a PNG or JPEG") from None


class VideoFrames:
  """A video file's frames, decoded by imageio-ffmpeg's ffmpeg to rgb24.

  Attributes: fps, shape (H, W), count (frames, estimated from the container's duration), has_audio.
  """

  def __init__(self, path: str):
    import imageio_ffmpeg

    if not os.path.isfile(path):
      raise UserError(f"video {path!r} not found")
    self.path = path
    try:
      with quiet_fork():
        reader = imageio_ffmpeg.read_frames(path, pix_fmt="rgb24")
        meta = next(reader)
      reader.close()
    except (OSError, RuntimeError, StopIteration) as e:
      reason = (str(e).strip().splitlines() or ["no video stream"])[0][:160]
      raise UserError(f"video {path!r} cannot be read ({reason}); give an mp4, mov, mkv or avi") from None
    width, height = meta["size"]
    self.fps, self.shape = float(meta["fps"]), (height, width)
    self.count = int(round(meta["duration"] * self.fps))
    self.has_audio = bool(meta.get("audio_codec"))

  def batches(self, size: int):
    """Yields uint8 arrays [b,H,W,3] of up to `size` frames."""
    import imageio_ffmpeg

    height, width = self.shape
    reader = imageio_ffmpeg.read_frames(self.path, pix_fmt="rgb24")
    with quiet_fork():
      next(reader)
    batch = []
    for frame in reader:
      batch.append(np.frombuffer(frame, np.uint8).reshape(height, width, 3))
      if len(batch) == size:
        yield np.stack(batch)
        batch = []
    if batch:
      yield np.stack(batch)


def read_frames(path: str) -> np.ndarray:
  """All frames of a video, [T,H,W,3] uint8."""
  return np.concatenate(list(VideoFrames(path).batches(64)))
