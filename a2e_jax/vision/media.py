"""Reading what the landmarker looks at: still images and video frames as uint8 RGB arrays.

Video is decoded by mediapy with imageio-ffmpeg's ffmpeg (as everywhere in a2e_jax), frame batch by frame
batch, so a long clip never sits in memory whole.
"""

import os

import numpy as np

from a2e_jax.core.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")


def read_image(path: str) -> np.ndarray:
  """[H,W,3] uint8 RGB."""
  from PIL import Image, UnidentifiedImageError

  try:
    with Image.open(path) as image:
      return np.asarray(image.convert("RGB"))
  except (OSError, UnidentifiedImageError) as e:
    raise UserError(f"image {path!r} cannot be read ({e}); give a PNG or JPEG") from None


def _mediapy():
  import imageio_ffmpeg
  import mediapy

  mediapy.set_ffmpeg(imageio_ffmpeg.get_ffmpeg_exe())
  return mediapy


class VideoFrames:
  """A video file's frames. Attributes: fps, shape (H, W), count (frames, from the container)."""

  def __init__(self, path: str):
    if not os.path.isfile(path):
      raise UserError(f"video {path!r} not found")
    self.path = path
    try:
      with _mediapy().VideoReader(path) as reader:
        self.fps, self.shape, self.count = reader.fps, tuple(reader.shape), reader.num_images
    except Exception as e:  # mediapy raises bare RuntimeErrors for anything ffmpeg cannot open.
      raise UserError(f"video {path!r} cannot be read ({e}); give an mp4, mov, mkv or avi file") from None

  def batches(self, size: int):
    """Yields uint8 arrays [b,H,W,3] of up to `size` frames."""
    batch = []
    with _mediapy().VideoReader(self.path) as reader:
      for frame in reader:
        batch.append(frame)
        if len(batch) == size:
          yield np.stack(batch)
          batch = []
    if batch:
      yield np.stack(batch)


def read_frames(path: str) -> np.ndarray:
  """All frames of a video, [T,H,W,3] uint8."""
  return np.concatenate(list(VideoFrames(path).batches(64)))
