"""SadTalker-compatible log-mel features, their per-video-frame windows, and MFCC for alignment.

The formula (SadTalker's `src/utils/audio.py` with Wav2Lip's hparams, librosa >= 0.9 whose centred STFT
pads with zeros):
  y      = x[n] - 0.97 x[n-1]                                   (pre-emphasis, x[-1] = 0)
  S      = |STFT(y)|, Hann window 800, n_fft 800, hop 200, centred (400 zeros each side)
  S_db   = 20 log10(max(1e-5, mel_basis @ S)) - 20             (80 Slaney mels, 55..7600 Hz)
  mel    = clip(8 (S_db + 100) / 100 - 4, -4, 4)
giving [1 + N // 200, 80] frames at 80 per second. `LogMelStream` computes the same frames from audio
arriving in blocks with memory bounded by the block size, so an hour of speech never sits in memory.
"""

import functools
from collections.abc import Iterable, Iterator

import numpy as np
import scipy.sparse

from a2e_jax.core import schema

N_FFT = 800
WIN = 800
HOP = schema.HOP
N_MELS = schema.MEL_BANDS
FMIN, FMAX = 55.0, 7600.0
PREEMPHASIS = 0.97
REF_LEVEL_DB = 20.0
MIN_LEVEL_DB = -100.0
MAX_ABS = 4.0
N_MFCC = 13

_PAD = N_FFT // 2


@functools.cache
def mel_basis() -> np.ndarray:
  """[80, 401] float32 Slaney mel filterbank (librosa's default normalisation, as SadTalker uses)."""
  # librosa (with numba) takes about a second to import: only the functions that use it load it.
  import librosa

  return librosa.filters.mel(sr=schema.SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN, fmax=FMAX).astype(
    np.float32
  )


@functools.cache
def mel_band_hz() -> np.ndarray:
  """[80] float64 centre frequencies (Hz) of the mel bands of `mel_basis`."""
  # librosa (with numba) takes about a second to import: only the functions that use it load it.
  import librosa

  return librosa.mel_frequencies(N_MELS + 2, fmin=FMIN, fmax=FMAX)[1:-1]


@functools.cache
def _sparse_mel_basis():
  # Each FFT bin feeds at most two mel bands: the sparse product does 1/40 of the dense one's work and,
  # unlike a BLAS call, does not stall when other processes load the CPU.

  return scipy.sparse.csr_array(mel_basis())


def num_mel_frames(num_samples: int) -> int:
  """Mel frames of a centred STFT over `num_samples` samples."""
  return 1 + num_samples // HOP


def _preemphasis(x: np.ndarray, previous: float) -> np.ndarray:
  """y[n] = x[n] - k x[n-1] with x[-1] = `previous` (the last sample of the preceding block)."""
  y = np.array(x, dtype=np.float32)
  y[1:] -= PREEMPHASIS * x[:-1]
  if y.size:
    y[0] -= PREEMPHASIS * previous
  return y


def _spectrum_to_log_mel(magnitude_ft: np.ndarray) -> np.ndarray:
  """[401, M] C-ordered STFT magnitudes -> [M, 80] normalised log-mel."""
  mel = _sparse_mel_basis() @ magnitude_ft
  s_db = 20.0 * np.log10(np.maximum(np.float32(1e-5), mel)) - REF_LEVEL_DB
  scaled = (2 * MAX_ABS) * (s_db - MIN_LEVEL_DB) / (-MIN_LEVEL_DB) - MAX_ABS
  return np.clip(scaled, -MAX_ABS, MAX_ABS).T.astype(np.float32)


def _frames_log_mel(y_padded: np.ndarray) -> np.ndarray:
  """Log-mel of every full 800-sample frame (hop 200) of already padded, pre-emphasised samples."""
  # librosa (with numba) takes about a second to import: only the functions that use it load it.
  import librosa

  spec = librosa.stft(y_padded, n_fft=N_FFT, hop_length=HOP, win_length=WIN, center=False)
  return _spectrum_to_log_mel(np.abs(spec, order="C"))


def log_mel(wav: np.ndarray) -> np.ndarray:
  """[N] float 16 kHz audio -> [1 + N // 200, 80] float32 normalised log-mel (one shot)."""
  wav = np.asarray(wav, np.float32)
  if wav.ndim != 1:
    raise ValueError(f"log_mel expects mono [N] audio, got shape {wav.shape}")
  y = np.pad(_preemphasis(wav, 0.0), _PAD)
  return _frames_log_mel(y)


class LogMelStream:
  """Log-mel of audio that arrives in blocks; the concatenated output equals `log_mel` of the whole.

  Holds at most one block plus 800 samples: the pre-emphasis filter carries its last input sample across
  blocks, and frames are emitted once their 800-sample support (centred, zero-padded at both ends of the
  signal) has arrived.
  """

  def __init__(self):
    self._previous = 0.0
    self._buffer = np.zeros(_PAD, np.float32)  # pre-emphasised samples from global index _start on
    self._start = -_PAD
    self._next_frame = 0
    self._num_samples = 0

  def push(self, block: np.ndarray) -> np.ndarray:
    """Adds [n] samples; returns the [m, 80] frames now complete (m may be 0)."""
    block = np.asarray(block, np.float32)
    if block.size:
      self._buffer = np.concatenate([self._buffer, _preemphasis(block, self._previous)])
      self._previous = float(block[-1])
      self._num_samples += block.size
    end = self._start + self._buffer.size
    last = (end - _PAD) // HOP  # last frame whose support ends within the buffer
    return self._emit(last)

  def finish(self) -> np.ndarray:
    """Pads the end with zeros and returns the remaining frames, up to frame N // 200."""
    last = self._num_samples // HOP
    needed = last * HOP + _PAD - (self._start + self._buffer.size)
    self._buffer = np.concatenate([self._buffer, np.zeros(max(needed, 0), np.float32)])
    return self._emit(last)

  def _emit(self, last: int) -> np.ndarray:
    if last < self._next_frame:
      return np.zeros((0, N_MELS), np.float32)
    begin = self._next_frame * HOP - _PAD - self._start
    end = last * HOP + _PAD - self._start
    frames = _frames_log_mel(self._buffer[begin:end])
    self._next_frame = last + 1
    keep_from = self._next_frame * HOP - _PAD - self._start
    self._buffer = self._buffer[keep_from:]
    self._start += keep_from
    return frames


def log_mel_chunked(blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
  """Yields [m, 80] pieces of the log-mel of the concatenated `blocks` (see `LogMelStream`)."""
  stream = LogMelStream()
  for block in blocks:
    frames = stream.push(block)
    if len(frames):
      yield frames
  frames = stream.finish()
  if len(frames):
    yield frames


def crop_or_pad(wav: np.ndarray, num_frames: int) -> np.ndarray:
  """Audio cut or zero-padded to exactly `num_frames` video frames (640 samples each), as SadTalker does."""
  length = num_frames * schema.SAMPLES_PER_FRAME
  wav = np.asarray(wav, np.float32)[:length]
  return np.pad(wav, (0, length - wav.size))


def video_frames(num_samples: int) -> int:
  """Whole 25 fps video frames in `num_samples` samples (SadTalker's `int(len / 640)`)."""
  return num_samples // schema.SAMPLES_PER_FRAME


def mel_window_start(frames: np.ndarray) -> np.ndarray:
  """First mel frame of the window of each video frame in `frames` (any shape): int(80 (t - 2) / 25),
  truncated toward zero as SadTalker's int() does, not yet clamped to the clip."""
  t = np.asarray(frames, np.int64)
  return np.trunc(schema.MEL_FPS * (t - 2) / schema.FPS).astype(np.int64)


def mel_window_index(frames_t: np.ndarray, num_mel: int) -> np.ndarray:
  """[T, 16] mel-frame indices of the windows of video frames `frames_t` (`schema.mel_window_indices`:
  `mel_window_start`, clamped to the clip)."""
  return np.clip(mel_window_start(frames_t)[:, None] + np.arange(schema.MEL_WINDOW), 0, num_mel - 1)


def mel_windows(mel_mf: np.ndarray, frames: np.ndarray | int) -> np.ndarray:
  """[M, 80] log-mel -> [T, 16, 80] windows of the video frames `frames` (an int T means 0..T-1)."""
  frames = np.arange(frames) if np.isscalar(frames) else np.asarray(frames)
  return mel_mf[mel_window_index(frames, mel_mf.shape[0])]


def mfcc_from_log_mel(mel_mf: np.ndarray, n_mfcc: int = N_MFCC) -> np.ndarray:
  """[M, 80] normalised log-mel -> [M, n_mfcc] MFCC (DCT-II of the dB mel spectrum, c0 included)."""
  # librosa (with numba) takes about a second to import: only the functions that use it load it.
  import librosa

  s_db = (np.asarray(mel_mf, np.float32) + MAX_ABS) * (-MIN_LEVEL_DB / (2 * MAX_ABS)) + MIN_LEVEL_DB
  return librosa.feature.mfcc(S=s_db.T, n_mfcc=n_mfcc).T.astype(np.float32)


def mfcc(wav: np.ndarray, n_mfcc: int = N_MFCC) -> np.ndarray:
  """[N] 16 kHz audio -> [1 + N // 200, n_mfcc] MFCC at 80 frames per second, for DTW alignment."""
  return mfcc_from_log_mel(log_mel(wav), n_mfcc)


def dtw_path(features_a: np.ndarray, features_b: np.ndarray) -> np.ndarray:
  """[L,2] the Euclidean DTW path between feature sequences [Ma,D] and [Mb,D], from (0, 0) onwards."""
  # librosa (with numba) takes about a second to import: only the functions that use it load it.
  import librosa

  _, path = librosa.sequence.dtw(features_a.T, features_b.T, metric="euclidean")
  return path[::-1]
