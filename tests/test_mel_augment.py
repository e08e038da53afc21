"""Training-time log-mel augmentation (data/mel_augment.py): each effect does what it says, nothing else."""

import numpy as np

from a2e_jax.audio import features
from a2e_jax.data import mel_augment


def _mel(seed=0):
  return np.random.default_rng(seed).uniform(-4.0, 2.0, (8, 16, 80)).astype(np.float32)


def test_warp_of_one_is_the_identity_and_moves_formants_with_alpha():
  mel = _mel()
  np.testing.assert_allclose(mel_augment.warp_bands(mel, 1.0), mel, atol=1e-5)
  peak = np.full((1, 80), -4.0, np.float32)
  peak[0, 40] = 2.0
  assert np.argmax(mel_augment.warp_bands(peak, 1.1)) > 40 > np.argmax(mel_augment.warp_bands(peak, 0.9))
  hz = features.mel_band_hz()
  assert hz.shape == (80,) and features.FMIN < hz[0] < hz[-1] < features.FMAX


def test_power_addition_in_normalised_units():
  # Equal powers add 3 dB (0.08 units per dB); a floor 40 dB down leaves a signal as it is.
  loud = np.float32(1.0)
  assert abs(mel_augment.add_power(loud, loud) - (1.0 + 10 * np.log10(2) * 0.08)) < 1e-5
  assert abs(mel_augment.add_power(loud, loud - 40 * 0.08) - loud) < 0.01


def test_every_effect_stays_in_range_and_off_is_nothing():
  mel = _mel()
  untouched = mel.copy()
  mel_augment.MelAugment().apply(untouched, np.random.default_rng(0))
  np.testing.assert_array_equal(untouched, mel)
  assert not mel_augment.MelAugment()
  every = mel_augment.MelAugment(gain_db=10, mel_noise=0.3, warp=0.12, eq_db=6, floor=1.0, floor_max=-1.0)
  out = mel.copy()
  every.apply(out, np.random.default_rng(0))
  again = mel.copy()
  every.apply(again, np.random.default_rng(0))
  np.testing.assert_array_equal(out, again)
  assert out.dtype == np.float32 and not np.array_equal(out, mel)
  assert out.min() >= -features.MAX_ABS and out.max() <= features.MAX_ABS
  # The noise floor fills silence: no band of the augmented windows stays at the front end's floor.
  silent = np.full((2, 16, 80), -features.MAX_ABS, np.float32)
  mel_augment.MelAugment(floor=1.0).apply(silent, np.random.default_rng(3))
  assert (silent > -features.MAX_ABS).all()


def test_from_config_reads_the_pipeline_settings():
  from a2e_jax.data import pipeline

  cfg = pipeline.data_config()
  assert not mel_augment.MelAugment.from_config(cfg.augment)
  cfg.augment.warp, cfg.augment.floor = 0.1, 0.5
  augment = mel_augment.MelAugment.from_config(cfg.augment)
  assert augment.warp == 0.1 and augment.floor == 0.5 and augment.floor_max == cfg.augment.floor_max
