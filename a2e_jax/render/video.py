"""Frames → H.264 mp4 (yuv420p, 25 fps) with the audio muxed as AAC; panel layouts with labels.

Video is encoded by mediapy's VideoWriter, which pipes frames to ffmpeg as they come, so a clip of any
length is written batch by batch and never sits in memory. The ffmpeg binary is imageio-ffmpeg's (no system
ffmpeg needed); the audio is muxed with the same binary afterwards (`-c:v copy -c:a aac`), padded with
silence or cut to the video's length: every rendered frame stays in the file. (`-shortest` used to end the
file with the audio, and AAC's 1024-sample frames and encoder delay made that drop the last 1–3 video frames
of a clip rendered from that same audio.)
"""

import os
import subprocess
import tempfile

import imageio_ffmpeg
import mediapy
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

from a2e_jax.core.errors import UserError

FPS = 25


def ffmpeg_exe() -> str:
  """imageio-ffmpeg's ffmpeg binary, also registered with mediapy."""
  exe = imageio_ffmpeg.get_ffmpeg_exe()
  mediapy.set_ffmpeg(exe)
  return exe


class VideoSink:
  """Writes frames incrementally to an mp4, then muxes the audio.

  Args:
    path: the .mp4 to write.
    height, width: frame size (even numbers: yuv420p halves the chroma resolution).
    fps: frames per second.
    audio: an audio file ffmpeg can read (wav, flac, m4a, mp3, ...), or None for a silent video.
    crf: H.264 quality (lower is better; 18 is visually lossless).
  """

  def __init__(self, path: str, height: int, width: int, fps: float = FPS, audio: str | None = None,
               crf: float = 18):
    if height % 2 or width % 2:
      raise UserError(f"{path}: H.264 with yuv420p needs an even frame size, got {width}x{height}")
    if audio is not None and not os.path.isfile(audio):
      raise UserError(f"audio file {audio!r} not found")
    ffmpeg_exe()
    self.path, self.audio, self.shape = path, audio, (height, width)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    self._video_path = path
    if audio is not None:
      handle, self._video_path = tempfile.mkstemp(suffix=".mp4", dir=folder)
      os.close(handle)
    self._writer = mediapy.VideoWriter(self._video_path, (height, width), fps=fps, codec="h264", crf=crf,
                                       encoded_format="yuv420p")
    self._writer.__enter__()
    self.frames, self.fps = 0, fps

  def write(self, frames):
    """Appends uint8 frames [H,W,3] or [B,H,W,3]."""
    frames = np.asarray(frames)
    if frames.ndim == 3:
      frames = frames[None]
    if frames.shape[1:3] != self.shape or frames.dtype != np.uint8:
      raise ValueError(f"frames {frames.shape} {frames.dtype} do not match the video {self.shape} uint8")
    for frame in frames:
      self._writer.add_image(frame)
    self.frames += len(frames)

  def close(self):
    """Finishes the video stream and muxes the audio."""
    if self._writer is None:
      return
    self._writer.__exit__(None, None, None)
    self._writer = None
    if self.audio is not None:
      try:
        mux_audio(self._video_path, self.audio, self.path, self.frames / self.fps)
      finally:
        os.remove(self._video_path)

  def __enter__(self):
    return self

  def __exit__(self, exc_type, *_):
    if exc_type is None:
      self.close()
    elif self._writer is not None:
      self._writer.__exit__(None, None, None)
      self._writer = None
      if self._video_path != self.path:
        os.remove(self._video_path)


def mux_audio(video_path: str, audio_path: str, out_path: str, seconds: float) -> None:
  """Copies the video stream (`seconds` long) and adds the audio as AAC, padded with silence or cut to it."""
  command = [ffmpeg_exe(), "-y", "-v", "error", "-i", video_path, "-i", audio_path, "-map", "0:v:0",
             "-map", "1:a:0", "-c:v", "copy", "-af", "apad", "-c:a", "aac", "-b:a", "160k",
             "-t", f"{seconds:.6f}", out_path]
  result = subprocess.run(command, capture_output=True, text=True)
  if result.returncode != 0:
    message = (result.stderr.strip().splitlines() or ["ffmpeg failed"])[-1]
    raise UserError(f"could not add audio {audio_path!r} to the video: {message}")


def write_video(path: str, batches, height: int, width: int, *, fps: float = FPS, audio: str | None = None,
                total: int | None = None, progress: bool = True) -> int:
  """Writes an iterable of uint8 frame batches [b,H,W,3] to `path`; returns the number of frames.

  `total` (frames) sizes the progress bar.
  """
  with VideoSink(path, height, width, fps=fps, audio=audio) as sink, tqdm(
      total=total, unit="frame", desc=os.path.basename(path), disable=not progress) as bar:
    for batch in batches:
      sink.write(batch)
      bar.update(len(batch) if np.ndim(batch) == 4 else 1)
  return sink.frames


def label(frames_bhw3, text: str, scale: float = 1.0):
  """Frames [B,H,W,3] uint8 with `text` drawn in the top-left corner on a dark band."""
  frames_bhw3 = np.asarray(frames_bhw3)
  height = frames_bhw3.shape[1]
  font = ImageFont.load_default(size=max(10, int(round(height * 0.06 * scale))))
  left, top, right, bottom = font.getbbox(text)
  band = Image.new("RGBA", (right + 8, bottom + 6), (0, 0, 0, 150))
  ImageDraw.Draw(band).text((4, 2), text, font=font, fill=(255, 255, 255, 255))
  out = []
  for frame in frames_bhw3:
    image = Image.fromarray(frame).convert("RGBA")
    image.alpha_composite(band, (0, 0))
    out.append(np.asarray(image.convert("RGB")))
  return np.stack(out)


def tile(panels, labels=None, cols: int | None = None, pad: int = 0):
  """Lays out panels [B,H,W,3] (same B, H, W) in a grid, row by row; returns [B, rows·H, cols·W, 3].

  Args:
    panels: list of uint8 frame batches, e.g. prediction | ground truth | emotion swap.
    labels: a caption per panel (or None).
    cols: panels per row (default: all in one row up to 4, else a near-square grid).
    pad: pixels of black between panels.
  """
  panels = [np.asarray(p) for p in panels]
  if not panels or any(p.shape != panels[0].shape for p in panels):
    raise ValueError(f"panels must share one shape, got {[p.shape for p in panels]}")
  if labels is not None:
    panels = [label(p, text) if text else p for p, text in zip(panels, labels, strict=True)]
  count = len(panels)
  cols = cols or (count if count <= 4 else int(np.ceil(np.sqrt(count))))
  rows = -(-count // cols)
  batch, height, width, _ = panels[0].shape
  blank = np.zeros_like(panels[0])
  grid = np.zeros((batch, rows * height + (rows - 1) * pad, cols * width + (cols - 1) * pad, 3), np.uint8)
  for i in range(rows * cols):
    r, c = divmod(i, cols)
    y, x = r * (height + pad), c * (width + pad)
    grid[:, y:y + height, x:x + width] = panels[i] if i < count else blank
  return grid
