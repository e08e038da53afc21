"""Chunked inference over audio of any length: the chunk plan, mel windows per chunk, overlap-add blending.

A clip of T frames runs as chunks of C frames (about the training window, where the network is at home)
that overlap their neighbours by at least O frames:

  starts = 0, H, 2H, ... (H = C - O) while start + C < T, then T - C      (one chunk [0,T) when T <= C)

so every chunk is full length and the last one ends with the clip. Outputs are blended with trapezoid
weights (rising over the first O frames of a chunk, falling over its last O, flat at the clip's ends) and
normalised by their sum, so a network without temporal context gives back exactly its one-pass output
and seams fade over O frames.

Memory stays bounded whatever the length: audio arrives in blocks, cropped to whole video frames
(`whole_frames`), through the audio front end's `LogMelStream`; `ChunkWindows` keeps only the mel frames
that pending chunks still need, and `OverlapAdd` only the frames that a later chunk may still touch.
"""

from collections.abc import Iterable, Iterator

import numpy as np

from a2e_jax.audio.features import LogMelStream
from a2e_jax.core import schema


def chunk_starts(num_frames: int, chunk: int, overlap: int) -> list[int]:
  """First frames of the chunks of a T-frame clip (see the module docstring)."""
  if not 0 <= overlap < chunk:
    raise ValueError(f"overlap {overlap} must be in [0, chunk={chunk})")
  if num_frames <= chunk:
    return [0]
  starts, start = [], 0
  while start + chunk < num_frames:
    starts.append(start)
    start += chunk - overlap
  return starts + [num_frames - chunk]


def blend_weights(start: int, length: int, num_frames: int, overlap: int) -> np.ndarray:
  """[length] trapezoid weights of a chunk [start, start+length) of a T-frame clip; positive everywhere."""
  k = np.arange(length, dtype=np.float64)
  if overlap == 0:
    return np.ones(length)
  rise = np.minimum((k + 0.5) / overlap, 1.0) if start > 0 else np.ones(length)
  fall = np.minimum((length - k - 0.5) / overlap, 1.0) if start + length < num_frames else np.ones(length)
  return rise * fall


def whole_frames(blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
  """Audio blocks cut to whole video frames (640 samples): the tail after the last whole frame is dropped,
  as SadTalker crops its audio, so streamed and one-shot features agree."""
  pending = np.zeros(0, np.float32)
  for block in blocks:
    pending = np.concatenate([pending, np.asarray(block, np.float32)])
    usable = pending.size - pending.size % schema.SAMPLES_PER_FRAME
    if usable:
      yield pending[:usable]
      pending = pending[usable:]


def count_frames(blocks: Iterable[np.ndarray]) -> int:
  """Whole video frames in a stream of audio blocks."""
  return sum(np.shape(b)[0] for b in blocks) // schema.SAMPLES_PER_FRAME


class ChunkWindows:
  """Mel windows [c,16,80] of each chunk of a T-frame clip, from mel frames that arrive in pieces.

  `push(mel_m80)` returns the chunks (index, start, windows) whose mel frames have all arrived; mel frames
  no pending chunk needs are dropped. The windows are `audio.features.mel_windows` of the whole clip's
  mel, clamped to its M = 1 + T * 640 // 200 frames.
  """

  def __init__(self, num_frames: int, chunk: int, overlap: int):
    self.num_frames = num_frames
    self.num_mel = schema.num_mel_frames(num_frames)
    self.starts = chunk_starts(num_frames, chunk, overlap)
    self.chunk = min(chunk, num_frames)
    self._index_tw = None
    self._buffer = np.zeros((0, schema.MEL_BANDS), np.float32)
    self._buffer_start = 0  # mel frame index of _buffer[0]
    self._next = 0
    self.max_buffered = 0  # the most mel frames held at once (memory check)

  def _indices(self, start: int) -> np.ndarray:
    frames = np.arange(start, start + self.chunk)
    starts = np.trunc(schema.MEL_FPS * (frames - 2) / schema.FPS).astype(np.int64)  # schema's int(...)
    return np.clip(starts[:, None] + np.arange(schema.MEL_WINDOW), 0, self.num_mel - 1)

  def push(self, mel_m80: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
    self._buffer = np.concatenate([self._buffer, np.asarray(mel_m80, np.float32)])
    self.max_buffered = max(self.max_buffered, self._buffer.shape[0])
    end = self._buffer_start + self._buffer.shape[0]
    ready = []
    while self._next < len(self.starts):
      index_tw = self._indices(self.starts[self._next])
      if index_tw.max() >= end:
        break
      ready.append((self._next, self.starts[self._next], self._buffer[index_tw - self._buffer_start]))
      self._next += 1
    if self._next < len(self.starts):
      keep_from = int(self._indices(self.starts[self._next]).min())
      drop = max(0, keep_from - self._buffer_start)
      self._buffer, self._buffer_start = self._buffer[drop:], self._buffer_start + drop
    return ready

  @property
  def done(self) -> bool:
    return self._next == len(self.starts)


def iter_chunk_windows(audio_blocks: Iterable[np.ndarray], num_frames: int, chunk: int, overlap: int):
  """Yields (index, start, windows [c,16,80]) for every chunk of a clip streamed as audio blocks, which
  must hold exactly `num_frames` * 640 samples (pass them through `whole_frames`)."""
  windows = ChunkWindows(num_frames, chunk, overlap)
  stream = LogMelStream()
  for block in audio_blocks:
    yield from windows.push(stream.push(block))
  yield from windows.push(stream.finish())
  if not windows.done:
    raise ValueError(f"the audio ended before frame {num_frames}; pass exactly num_frames * 640 samples")


class OverlapAdd:
  """Blends chunk outputs [c,K] of a T-frame clip and hands out frames once no later chunk touches them.

  Chunks must be added in order of their start; `add` returns the frames [n,K] now final.
  """

  def __init__(self, num_frames: int, overlap: int):
    self.num_frames = num_frames
    self.overlap = overlap
    self._emitted = 0
    self._sum = None  # [frames from _emitted on, K] weighted sums, and their weights
    self._weight = np.zeros(0)

  def add(self, start: int, values_ck: np.ndarray, next_start: int | None) -> np.ndarray:
    values_ck = np.asarray(values_ck, np.float64)
    length = values_ck.shape[0]
    end = start + length
    if self._sum is None:
      self._sum = np.zeros((0, values_ck.shape[1]))
    grow = end - self._emitted - self._sum.shape[0]
    if grow > 0:
      self._sum = np.concatenate([self._sum, np.zeros((grow, values_ck.shape[1]))])
      self._weight = np.concatenate([self._weight, np.zeros(grow)])
    w = blend_weights(start, length, self.num_frames, self.overlap)
    rows = slice(start - self._emitted, end - self._emitted)
    self._sum[rows] += w[:, None] * values_ck
    self._weight[rows] += w
    final = (next_start if next_start is not None else self.num_frames) - self._emitted
    out = self._sum[:final] / self._weight[:final, None]
    self._sum, self._weight = self._sum[final:], self._weight[final:]
    self._emitted += final
    return out.astype(np.float32)
