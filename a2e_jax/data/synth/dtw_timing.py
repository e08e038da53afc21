"""Phone times for an engine that gives none: borrowed from espeak-ng's rendition of the same text by DTW.

Neural engines such as hibari-tts return audio only. espeak-ng speaks the same sentence with exact phoneme
events; the two renditions are aligned by dynamic time warping on MFCC (the project's pairing DTW,
`data/align.py`'s features and `audio.features.dtw_path`: c1..c12 of the log-mel, normalised per clip,
12.5 ms frames), and every espeak phone
start is carried along the warping path to the other rendition. The phones are espeak's (the other
engine may pronounce a word differently; the mouth shapes stay close). `tools/eval_voices.py
--alignment` measures the error of this transfer on Flite, whose true phone times are known.
"""

import numpy as np
import scipy.signal

from a2e_jax.core import schema


def log_mel_features(wav: np.ndarray) -> np.ndarray:
  """[M,12] DTW features of 16 kHz audio (align.dtw_features of its log-mel)."""
  from a2e_jax.audio import features
  from a2e_jax.data import align

  return align.dtw_features(features.log_mel(np.asarray(wav, np.float32)))


def transfer_times(reference_wav: np.ndarray, reference_starts_s, target_wav: np.ndarray) -> np.ndarray:
  """[P] start times in the target of the reference's phone starts [P] (both 16 kHz), non-decreasing."""
  from a2e_jax.audio import features

  path = features.dtw_path(log_mel_features(reference_wav), log_mel_features(target_wav))
  ku, kv = path[:, 0], path[:, 1].astype(np.float64)
  count = np.bincount(ku)
  kv_mean = np.bincount(ku, weights=kv) / np.maximum(count, 1)
  frames = np.flatnonzero(count)
  at = np.interp(np.asarray(reference_starts_s) * schema.MEL_FPS, frames, kv_mean[frames])
  return np.maximum.accumulate(at) / schema.MEL_FPS


def espeak_reference(text: str, voice: str = "en-us"):
  """(16 kHz audio, ((mnemonic, start_s), ...)) of espeak-ng's neutral rendition of `text`."""
  from a2e_jax.data.synth import espeak

  speech = espeak.synthesize(text, voice)
  wav = scipy.signal.resample_poly(speech.audio / 32768.0, schema.SAMPLE_RATE, speech.sample_rate)
  return wav, tuple((n, s / speech.sample_rate) for n, s in speech.phonemes)


def borrowed_phones(text: str, target_wav: np.ndarray) -> tuple:
  """((mnemonic, start_s), ...) for a 16 kHz rendition of `text` by another engine."""
  wav, phones = espeak_reference(text)
  starts = transfer_times(wav, [s for _, s in phones], target_wav)
  return tuple((name, float(s)) for (name, _), s in zip(phones, starts))
