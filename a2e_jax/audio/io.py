"""Loading speech: any common audio file -> validated mono float32 at 16 kHz, whole or streamed in blocks.

wav/flac/ogg (and whatever else libsndfile reads) go through soundfile; m4a/mp3/mp4/aac/opus/webm are
decoded by the ffmpeg binary that imageio-ffmpeg ships (MEAD's audio is m4a). Channels are averaged and
the result is resampled to 16 kHz with soxr (librosa's default resampler). Problems a user can fix raise
`UserError` naming the file; doubtful but usable input (silence, clipping) warns with `AudioWarning`.
"""

import os
import re
import subprocess
import warnings
from collections.abc import Iterator
from typing import NamedTuple

import imageio_ffmpeg
import numpy as np
import soundfile
import soxr

from a2e_jax.core import schema
from a2e_jax.core.errors import UserError

SAMPLE_RATE = schema.SAMPLE_RATE
MAX_SECONDS = 1800.0  # longer files must be streamed (`iter_audio`): a whole hour at 48 kHz stereo is 1.4 GB
SILENCE_PEAK = 1e-4  # -80 dBFS
CLIP_LEVEL = 0.999
CLIP_FRACTION = 1e-3
FFMPEG_SUFFIXES = (".m4a", ".mp3", ".mp4", ".aac", ".opus", ".webm", ".mkv", ".mov", ".wma")


class AudioWarning(UserWarning):
  """Usable audio that is probably not what the user meant (silent, clipped)."""


class SilenceWarning(AudioWarning):
  """The audio is silent."""


class ClippingWarning(AudioWarning):
  """Many samples sit at full scale."""


class TruncatedWarning(AudioWarning):
  """The file holds fewer samples than its header declares."""


class AudioInfo(NamedTuple):
  sample_rate: int
  channels: int
  seconds: float


def _ffmpeg() -> str:
  return imageio_ffmpeg.get_ffmpeg_exe()


def _uses_ffmpeg(path: str) -> bool:
  return os.path.splitext(path)[1].lower() in FFMPEG_SUFFIXES


def _check_exists(path: str) -> None:
  if not os.path.isfile(path):
    raise UserError(f"audio file {path} not found; check the path")


def _ffmpeg_info(path: str) -> AudioInfo:
  """Sample rate, channels and duration of the first audio stream, from ffmpeg's stream report."""
  result = subprocess.run(
    [_ffmpeg(), "-hide_banner", "-i", path], capture_output=True, text=True, check=False
  )
  report = result.stderr
  stream = re.search(r"Stream #\S+.*?: Audio: [^\n]*?(\d+) Hz, ([^,\n]+)", report)
  duration = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", report)
  if stream is None:
    reason = report.strip().splitlines()[-1] if report.strip() else "no output"
    raise UserError(
      f"cannot decode audio file {path}: no audio stream ({reason}); is it a media file with sound?"
    )
  layout = stream.group(2).strip()
  named = {"mono": 1, "stereo": 2, "2.1": 3, "quad": 4, "5.0": 5, "5.1": 6, "6.1": 7, "7.1": 8}
  counted = re.match(r"(\d+) channels", layout)
  channels = int(counted.group(1)) if counted else named.get(layout.split("(")[0], 2)
  seconds = 0.0
  if duration:
    h, m, s = duration.groups()
    seconds = 3600 * int(h) + 60 * int(m) + float(s)
  return AudioInfo(int(stream.group(1)), channels, seconds)


def audio_info(path: str) -> AudioInfo:
  """Sample rate, channel count and duration of an audio file, without decoding it."""
  _check_exists(path)
  if _uses_ffmpeg(path):
    return _ffmpeg_info(path)

  try:
    info = soundfile.info(path)
  except (RuntimeError, soundfile.LibsndfileError) as e:
    raise UserError(
      f"cannot read audio file {path}: {e}; re-export it as wav/flac or check it is not truncated"
    ) from None
  result = AudioInfo(int(info.samplerate), int(info.channels), float(info.frames) / info.samplerate)
  if path.lower().endswith(".wav"):
    _warn_if_truncated(path, result)
  return result


def _warn_if_truncated(path: str, info: AudioInfo) -> None:
  """Warns when a WAV file holds fewer sample bytes than its header declares (a cut-off download or copy:
  libsndfile then reads what is there without a word)."""
  with open(path, "rb") as f:
    header = f.read(1 << 16)
  size = os.path.getsize(path)
  offset = 12
  while offset + 8 <= len(header):
    chunk, length = header[offset : offset + 4], int.from_bytes(header[offset + 4 : offset + 8], "little")
    if chunk == b"data":
      present = size - offset - 8
      if 0 < length < 0xFFFFFFFF and present < length:  # 0 and 0xFFFFFFFF: a streamed WAV, length unknown
        warnings.warn(
          f"audio file {path} is truncated: its header declares {length:,} bytes of samples, {present:,} are "
          f"there; using the {info.seconds:.2f} s present", TruncatedWarning, stacklevel=3)
      return
    offset += 8 + length + (length & 1)


def _ffmpeg_blocks(path: str, info: AudioInfo, block_samples: int) -> Iterator[np.ndarray]:
  """[n, channels] float32 blocks at the file's own rate, decoded by ffmpeg through a pipe."""
  command = [
    _ffmpeg(),
    "-nostdin",
    "-v",
    "error",
    "-i",
    path,
    "-vn",
    "-map",
    "0:a:0",
    "-ac",
    str(info.channels),
    "-f",
    "f32le",
    "-acodec",
    "pcm_f32le",
    "-",
  ]
  process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
  frame_bytes = 4 * info.channels
  try:
    while True:
      data = process.stdout.read(block_samples * frame_bytes)
      if not data:
        break
      usable = len(data) - len(data) % frame_bytes
      yield np.frombuffer(data[:usable], np.float32).reshape(-1, info.channels)
    error = process.stderr.read().decode(errors="replace").strip()
    if process.wait() != 0:
      raise UserError(
        f"cannot decode audio file {path}: ffmpeg says {error.splitlines()[-1] if error else '?'}"
      )
  finally:
    if process.poll() is None:
      process.kill()
      process.wait()
    process.stdout.close()
    process.stderr.close()


def _soundfile_blocks(path: str, block_samples: int) -> Iterator[np.ndarray]:
  try:
    yield from soundfile.blocks(path, blocksize=block_samples, dtype="float32", always_2d=True)
  except (RuntimeError, soundfile.LibsndfileError) as e:
    raise UserError(f"cannot read audio file {path}: {e}; check it is not truncated") from None


def _raw_blocks(path: str, info: AudioInfo, block_samples: int) -> Iterator[np.ndarray]:
  if _uses_ffmpeg(path):
    return _ffmpeg_blocks(path, info, block_samples)
  return _soundfile_blocks(path, block_samples)


def _mono(block_nc: np.ndarray) -> np.ndarray:
  return block_nc.mean(axis=1, dtype=np.float32) if block_nc.shape[1] > 1 else block_nc[:, 0]


def _check_finite(block: np.ndarray, path: str) -> None:
  if not np.all(np.isfinite(block)):
    raise UserError(f"audio file {path} contains NaN or infinite samples; re-export it")


def _check_whole(num_samples: int, peak: float, clipped: int, path: str) -> None:
  """The checks that need the whole signal: length, silence, clipping."""
  if num_samples == 0:
    raise UserError(f"audio file {path} has no samples; it is empty")
  if num_samples < schema.SAMPLES_PER_FRAME:
    raise UserError(
      f"audio file {path} lasts {num_samples / SAMPLE_RATE * 1000:.1f} ms, shorter than one video "
      f"frame ({1000 / schema.FPS:.0f} ms); give at least {1 / schema.FPS:.2f} s of speech"
    )
  if peak < SILENCE_PEAK:
    warnings.warn(
      f"audio file {path} is silent (peak {peak:.1e}); the face will not speak", SilenceWarning, stacklevel=3
    )
  elif clipped > CLIP_FRACTION * num_samples:
    warnings.warn(
      f"audio file {path} is clipped ({100 * clipped / num_samples:.2f}% of samples at full scale); "
      "features will be distorted",
      ClippingWarning,
      stacklevel=3,
    )


def validate(wav: np.ndarray, path: str = "<array>") -> np.ndarray:
  """Checks mono 16 kHz audio: raises UserError if empty, shorter than a frame or non-finite; warns if silent
  or clipped. Returns it as float32."""
  wav = np.asarray(wav, np.float32)
  _check_finite(wav, path)
  magnitude = np.abs(wav)
  _check_whole(wav.size, float(magnitude.max(initial=0.0)), int(np.sum(magnitude >= CLIP_LEVEL)), path)
  return wav


def load_audio(path: str, *, max_seconds: float = MAX_SECONDS) -> np.ndarray:
  """[N] float32 mono audio at 16 kHz from any supported file, validated (see `validate`).

  Files longer than `max_seconds` raise UserError pointing at `iter_audio`, which streams them.
  """
  # librosa (with numba) takes about a second to import: only the functions that use it load it.
  import librosa

  path = os.fspath(path)
  info = audio_info(path)
  if info.seconds > max_seconds:
    raise UserError(
      f"audio file {path} lasts {info.seconds:.0f} s, more than {max_seconds:.0f} s to load at once; "
      "process it in blocks with a2e_jax.audio.io.iter_audio (bounded memory)"
    )
  blocks = []
  for block in _raw_blocks(path, info, 1 << 20):
    _check_finite(block, path)
    blocks.append(_mono(block))
  wav = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
  if info.sample_rate != SAMPLE_RATE and wav.size:
    wav = librosa.resample(wav, orig_sr=info.sample_rate, target_sr=SAMPLE_RATE).astype(np.float32)
  return validate(wav, path)


def iter_audio(path: str, block_seconds: float = 10.0) -> Iterator[np.ndarray]:
  """Yields [n] float32 mono 16 kHz blocks of a file of any length; memory stays at one block.

  Resampling runs as a soxr stream, so the blocks join without seams. The checks of `validate` run as
  the blocks pass (non-finite samples raise at once; length, silence and clipping at the end).
  """
  path = os.fspath(path)
  info = audio_info(path)
  block_samples = max(1, int(block_seconds * info.sample_rate))
  stream = None
  if info.sample_rate != SAMPLE_RATE:
    stream = soxr.ResampleStream(info.sample_rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
  num_samples, peak, clipped = 0, 0.0, 0
  pending = None
  for block in _raw_blocks(path, info, block_samples):
    _check_finite(block, path)
    mono = _mono(block)
    if stream is not None:
      mono = stream.resample_chunk(mono)
    if pending is not None and pending.size:  # hold one block back: the stream's tail joins the last one
      yield pending
    pending = mono
    num_samples += mono.size
    peak = max(peak, float(np.abs(mono).max(initial=0.0)))
    clipped += int(np.sum(np.abs(mono) >= CLIP_LEVEL))
  tail = (
    stream.resample_chunk(np.zeros(0, np.float32), last=True)
    if stream is not None
    else np.zeros(0, np.float32)
  )
  num_samples += tail.size
  _check_whole(num_samples, peak, clipped, path)
  last = np.concatenate([pending, tail]) if pending is not None else tail
  if last.size:
    yield last.astype(np.float32)
