"""The audio front end: loading and validation, the SadTalker log-mel against a float64 transcription of
its formula, streamed extraction against one-shot, and the per-frame mel windows."""

import subprocess

import imageio_ffmpeg
import librosa
import numpy as np
import pytest
import scipy.fft
import soundfile as sf
from conftest import require_shared

from a2e_jax.audio import features, io
from a2e_jax.core import schema
from a2e_jax.core.errors import UserError


def reference_log_mel(wav: np.ndarray) -> np.ndarray:
  """float64 numpy transcription of SadTalker's melspectrogram (src/utils/audio.py, hparams of Wav2Lip)."""
  x = np.asarray(wav, np.float64)
  y = np.concatenate([[x[0]], x[1:] - 0.97 * x[:-1]])  # scipy.signal.lfilter([1, -0.97], [1], x)
  padded = np.pad(y, 400)  # librosa >= 0.9 centres frames with zero padding
  n_frames = 1 + len(y) // 200
  frames = np.stack([padded[k * 200 : k * 200 + 800] for k in range(n_frames)])
  window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(800) / 800)  # periodic Hann
  magnitude = np.abs(np.fft.rfft(frames * window, axis=1)).T
  basis = librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600, dtype=np.float64)
  s_db = 20 * np.log10(np.maximum(1e-5, basis @ magnitude)) - 20
  return np.clip(8 * (s_db + 100) / 100 - 4, -4, 4).T


def _speech_like(seconds=2.0, seed=0):
  rng = np.random.default_rng(seed)
  n = int(seconds * 16000)
  t = np.arange(n) / 16000
  f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
  voiced = sum(np.sin(2 * np.pi * np.cumsum(f0 * h) / 16000) / h for h in range(1, 20))
  envelope = np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None)
  wav = 0.2 * voiced * envelope + 0.01 * rng.standard_normal(n)
  wav[: n // 10] = 0.0  # digital silence: the floor of -100 dB
  return wav.astype(np.float32)


def test_log_mel_matches_float64_reference():
  wav = _speech_like()
  mel = features.log_mel(wav)
  expect = reference_log_mel(wav)
  assert mel.shape == (1 + len(wav) // 200, 80) and mel.dtype == np.float32
  assert mel.min() == -4 and mel.max() > 0.5  # the signal reaches the floor and loud levels
  np.testing.assert_allclose(mel, expect, atol=1e-4)


def test_log_mel_of_real_speech_matches_reference():
  wav = io.load_audio(str(require_shared("audio/real_speech_en_stereo_8s.wav")))
  assert wav.ndim == 1 and abs(len(wav) / 16000 - 8) < 0.5
  np.testing.assert_allclose(features.log_mel(wav), reference_log_mel(wav), atol=1e-4)


@pytest.mark.parametrize("block", [1, 7, 199, 200, 401, 801, 4000, 100_000])
def test_streamed_log_mel_equals_one_shot(block):
  wav = _speech_like(1.3, seed=block)[:-37]  # a length that is no multiple of the hop
  one_shot = features.log_mel(wav)
  pieces = list(features.log_mel_chunked(wav[i : i + block] for i in range(0, len(wav), block)))
  np.testing.assert_allclose(np.concatenate(pieces), one_shot, atol=1e-5)


def test_stream_memory_stays_bounded():
  stream = features.LogMelStream()
  block = _speech_like(1.0)
  for _ in range(20):
    stream.push(block)
    assert stream._buffer.size <= block.size + features.N_FFT


def test_mfcc_is_the_dct_of_the_db_mel():
  wav = _speech_like()
  s_db = (reference_log_mel(wav) + 4) * 100 / 8 - 100
  expect = scipy.fft.dct(s_db, type=2, norm="ortho", axis=1)[:, :13]
  np.testing.assert_allclose(features.mfcc(wav), expect, atol=0.05)


def test_mel_windows_follow_sadtalker():
  mel = np.arange(81 * 80, dtype=np.float32).reshape(81, 80)  # 25 frames of audio
  windows = features.mel_windows(mel, 25)
  for t in (0, 1, 2, 10, 24):
    start = int(80 * (t - 2) / 25)
    idx = np.clip(np.arange(start, start + 16), 0, 80)
    np.testing.assert_array_equal(windows[t], mel[idx])
  np.testing.assert_array_equal(features.mel_windows(mel, np.array([3, 3, 7])), windows[[3, 3, 7]])
  for frames, num_mel in ((1, 4), (7, 23), (250, schema.num_mel_frames(250)), (250, 100)):
    np.testing.assert_array_equal(
      features.mel_window_index(np.arange(frames), num_mel), schema.mel_window_indices(frames, num_mel)
    )


def test_crop_or_pad_to_frames():
  wav = np.ones(1000, np.float32)
  assert features.video_frames(1000) == 1
  np.testing.assert_array_equal(features.crop_or_pad(wav, 1), wav[:640])
  padded = features.crop_or_pad(wav, 2)
  assert padded.shape == (1280,) and padded[1000:].sum() == 0
  assert features.log_mel(features.crop_or_pad(wav, 7)).shape[0] == schema.num_mel_frames(7)


# ------------------------------------------------------------------------------------------ loading


@pytest.fixture(scope="module")
def stereo_files(tmp_path_factory):
  """The same 1.5 s stereo signal at 44.1 kHz in every supported container."""
  root = tmp_path_factory.mktemp("audio")
  sr = 44100
  t = np.arange(int(1.5 * sr)) / sr
  stereo = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 660 * t)], 1).astype(
    np.float32
  )
  paths = {}
  for ext in ("wav", "flac", "ogg"):
    paths[ext] = root / f"s.{ext}"
    sf.write(paths[ext], stereo, sr)
  for ext, codec in (("m4a", "aac"), ("mp3", "libmp3lame")):
    paths[ext] = root / f"s.{ext}"
    subprocess.run(
      [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-y",
        "-v",
        "error",
        "-i",
        str(paths["wav"]),
        "-c:a",
        codec,
        "-b:a",
        "192k",
        str(paths[ext]),
      ],
      check=True,
    )
  mono16k = librosa.resample(stereo.mean(1), orig_sr=sr, target_sr=16000)
  return paths, mono16k


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "m4a", "mp3"])
def test_formats_load_as_mono_16k(stereo_files, ext):
  paths, expect = stereo_files
  info = io.audio_info(str(paths[ext]))
  assert info.sample_rate == 44100 and info.channels == 2 and abs(info.seconds - 1.5) < 0.05
  wav = io.load_audio(str(paths[ext]))
  assert wav.dtype == np.float32 and abs(len(wav) - len(expect)) < 0.05 * 16000
  if ext in ("wav", "flac"):
    np.testing.assert_allclose(wav, expect, atol=1e-4)
  else:  # lossy codecs: compare the spectra (encoder delay shifts the samples)
    a, b = np.abs(np.fft.rfft(wav[4000:20000])), np.abs(np.fft.rfft(expect[4000:20000]))
    assert np.corrcoef(a, b)[0, 1] > 0.98


@pytest.mark.parametrize("ext", ["wav", "m4a"])
def test_streamed_audio_equals_whole(stereo_files, ext):
  path = str(stereo_files[0][ext])
  whole = io.load_audio(path)
  blocks = list(io.iter_audio(path, block_seconds=0.13))
  assert len(blocks) > 5 and max(len(b) for b in blocks) <= 0.2 * 16000
  np.testing.assert_allclose(np.concatenate(blocks), whole, atol=1e-5)
  streamed_mel = np.concatenate(list(features.log_mel_chunked(blocks)))
  np.testing.assert_allclose(streamed_mel, features.log_mel(whole), atol=1e-4)


def _write(path, samples, sr=16000, subtype="FLOAT"):
  sf.write(path, np.asarray(samples, np.float32), sr, subtype=subtype)
  return str(path)


@pytest.mark.parametrize(
  "samples, fragment",
  [
    (np.zeros(0), "no samples"),
    (np.full(300, 0.1), "shorter than one video frame"),
    (np.r_[np.full(2000, 0.1), np.nan, np.full(2000, 0.1)], "NaN"),
    (np.r_[np.full(2000, 0.1), np.inf], "NaN or infinite"),
  ],
)
def test_bad_audio_raises_user_error_naming_the_file(tmp_path, samples, fragment):
  path = _write(tmp_path / "bad.wav", samples)
  for load in (io.load_audio, lambda p: list(io.iter_audio(p))):
    with pytest.raises(UserError, match=fragment) as info:
      load(path)
    assert path in str(info.value) and "\n" not in str(info.value)


def test_corrupt_and_missing_files(tmp_path):
  garbage = tmp_path / "broken.wav"
  garbage.write_bytes(b"RIFF" + bytes(range(256)) * 4)
  with pytest.raises(UserError, match="broken.wav"):
    io.load_audio(str(garbage))
  fake_m4a = tmp_path / "broken.m4a"
  fake_m4a.write_bytes(bytes(range(256)) * 8)
  with pytest.raises(UserError, match="broken.m4a"):
    io.load_audio(str(fake_m4a))
  with pytest.raises(UserError, match="not found"):
    io.load_audio(str(tmp_path / "missing.wav"))


def test_silence_and_clipping_warn(tmp_path):
  with pytest.warns(io.AudioWarning, match="silent"):
    io.load_audio(_write(tmp_path / "quiet.wav", np.full(4000, 1e-6)))
  clipped = np.clip(2 * np.sin(np.arange(8000) / 5.0), -1, 1)
  with pytest.warns(io.AudioWarning, match="clipped"):
    io.load_audio(_write(tmp_path / "loud.wav", clipped, subtype="PCM_16"))


def test_too_long_to_load_at_once_points_to_streaming(tmp_path):
  path = _write(tmp_path / "long.wav", _speech_like(3.0))
  with pytest.raises(UserError, match="iter_audio"):
    io.load_audio(path, max_seconds=2.0)
  assert sum(len(b) for b in io.iter_audio(path)) == 48000
