"""Audio in, chunks out: the mel windows of every chunk of a clip, from a file, an array or a dataset's
windows. Short audio is decoded once and its windows kept for a second pass; files longer than
STREAM_SECONDS are streamed from disk in blocks, so memory stays bounded whatever the length. With a pause
threshold, the pause gate's silent frames are found and zeroed on the way (pauses.py)."""

import os

import numpy as np
import soxr

from a2e_jax.audio import io
from a2e_jax.core import schema
from a2e_jax.core.errors import UserError
from a2e_jax.infer import pauses, streaming

CACHED_CHUNKS = 256  # mel windows of this many chunks (about 42 MB) are kept for the second pass
STREAM_SECONDS = 600.0  # files longer than this are streamed from disk instead of loaded


def _blocks(audio, sample_rate, pause_threshold: float = 0.0):
  """(a function returning the audio's blocks, cut to whole frames, with pauses zeroed; T frames; [T] bool
  the pause gate's silent frames) for a path or an array."""
  if isinstance(audio, str | os.PathLike):
    path = os.fspath(audio)
    if io.audio_info(path).seconds > STREAM_SECONDS:
      def stream():
        return streaming.whole_frames(io.iter_audio(path))

      rms = np.concatenate([pauses.frame_rms(b) for b in stream()])
      silent = pauses.silent_stretches(rms, pause_threshold)

      def gated():
        first = 0
        for block in stream():
          yield pauses.gate_audio(block, silent, first) if silent.any() else block
          first += block.size // schema.SAMPLES_PER_FRAME

      return gated, rms.size, silent
    wav = io.load_audio(path)
  else:
    wav = np.asarray(audio, np.float32)
    if wav.ndim == 2:
      wav = wav.mean(axis=1 if wav.shape[1] <= 8 else 0)
    if sample_rate is None:
      raise UserError("generate(): pass sample_rate with an audio array (e.g. sample_rate=16000)")
    if sample_rate != schema.SAMPLE_RATE:
      wav = soxr.resample(wav, sample_rate, schema.SAMPLE_RATE).astype(np.float32)
    wav = io.validate(wav)
  num_frames = wav.size // schema.SAMPLES_PER_FRAME
  wav = wav[:num_frames * schema.SAMPLES_PER_FRAME]
  silent = pauses.silent_stretches(pauses.frame_rms(wav, num_frames), pause_threshold)
  if silent.any():
    wav = pauses.gate_audio(wav, silent)
  blocks_of = 10 * schema.SAMPLE_RATE
  return (lambda: (wav[i:i + blocks_of] for i in range(0, wav.size, blocks_of))), num_frames, silent


def audio_chunks(audio, sample_rate, chunk: int, overlap: int, pause_threshold: float = 0.0,
                 silent_out: list | None = None):
  """(chunks, T): `chunks()` yields (index, start, windows [c,16,80]) of every chunk of the audio (a path,
  or an array at `sample_rate`), each time it is called; the windows of a clip of at most CACHED_CHUNKS
  chunks are kept after the first. With `pause_threshold` > 0 the pause gate's silent frames are zeroed
  and their [T] bool mask appended to `silent_out`."""
  blocks, num_frames, silent = _blocks(audio, sample_rate, pause_threshold)
  if silent_out is not None:
    silent_out.append(silent)
  cache = []
  collect = len(streaming.chunk_starts(num_frames, chunk, overlap)) <= CACHED_CHUNKS

  def chunks():
    if cache:
      yield from cache
      return
    for item in streaming.iter_chunk_windows(blocks(), num_frames, chunk, overlap):
      if collect:
        cache.append(item)
      yield item

  return chunks, num_frames


def window_chunks(windows_tfw, chunk: int, overlap: int):
  """(chunks, T) like `audio_chunks`, from a clip's mel windows [T,16,80] (e.g. a dataset's)."""
  num_frames = windows_tfw.shape[0]
  length = min(chunk, num_frames)
  starts = streaming.chunk_starts(num_frames, chunk, overlap)
  return (lambda: ((i, s, windows_tfw[s:s + length]) for i, s in enumerate(starts))), num_frames
