"""The emotion encoder's "relative" input: each chunk less its spectral envelope (level, tilt, colour)."""

import jax
import numpy as np
import pytest
import scipy.fft

from a2e_jax.core import schema
from a2e_jax.models import a2enet, layers

B, T = 3, 10


def _mel(seed=0):
  rng = np.random.default_rng(seed)
  mel = rng.normal(-1.0, 1.0, (B, T, schema.MEL_WINDOW, schema.MEL_BANDS)).astype(np.float32)
  mel[:, :, 5:9] -= 3.0  # a pause: quiet mel frames that must not set the level
  mask = np.ones((B, T), np.float32)
  mask[1, 6:] = 0.0  # a padded row
  mel[1, 6:] = 3.0  # loud padding that must be ignored
  return mel, mask


def _reference(mel, mask):
  """float64 numpy/scipy: the mean spectrum of each chunk's loud frames, low-passed by zeroing its
  orthonormal DCT-II coefficients from ENVELOPE_TERMS on."""
  out = np.empty(mel.shape, np.float64)
  for b in range(mel.shape[0]):
    frames = mel[b][mask[b] > 0].reshape(-1, mel.shape[-1]).astype(np.float64)
    level = frames.mean(-1)
    spectrum = frames[level >= level.max() - layers.LOUD_WITHIN].mean(0)
    coefficients = scipy.fft.dct(spectrum, type=2, norm="ortho")
    coefficients[layers.ENVELOPE_TERMS:] = 0.0
    out[b] = mel[b] - scipy.fft.idct(coefficients, type=2, norm="ortho")
  return out


def test_envelope_removed_matches_a_float64_dct_low_pass():
  mel, mask = _mel()
  got = np.asarray(layers.envelope_removed(mel, mask))
  np.testing.assert_allclose(got, _reference(mel, mask), atol=2e-5)


def test_the_pause_does_not_set_the_level():
  mel, mask = _mel()
  mean_all = mel[0].mean()
  got = np.asarray(layers.envelope_removed(mel, mask))
  # Loud frames end centred; had the pause counted, they would sit above zero by its share.
  loud = np.ones(schema.MEL_WINDOW, bool)
  loud[5:9] = False
  assert abs(got[0][:, loud].mean()) < 0.05 < abs(mel[0][:, loud].mean() - mean_all)


@pytest.fixture(scope="module")
def encoders():
  out = {}
  for mode in ("absolute", "relative"):
    config = a2enet.model_config("tiny")
    config.emotion_input = mode
    module = a2enet.A2ENet(config)
    params = jax.jit(module.init)(jax.random.key(0), a2enet.example_view(config))
    out[mode] = jax.jit(lambda p, m, k, module=module: module.apply(p, m, k, method="encode_emotion")[2])
    out[mode + "_params"] = params
  return out


@pytest.mark.parametrize("mode,invariant", [("relative", True), ("absolute", False)])
def test_gain_and_colour_change_the_reading_only_of_the_absolute_input(encoders, mode, invariant):
  mel, mask = _mel(1)
  phase = np.pi * (np.arange(schema.MEL_BANDS) + 0.5) / schema.MEL_BANDS
  brighter = -0.6 * np.cos(phase) + 0.2 * np.cos(3 * phase)
  louder_brighter = mel + 1.1 + brighter.astype(np.float32)  # +14 dB and brighter, like the real clip
  before = np.asarray(encoders[mode](encoders[mode + "_params"], mel, mask))
  after = np.asarray(encoders[mode](encoders[mode + "_params"], louder_brighter, mask))
  same = np.allclose(before, after, atol=1e-4)
  assert same == invariant
  assert np.isfinite(after).all()


def test_an_unknown_emotion_input_is_named():
  config = a2enet.model_config("tiny")
  config.emotion_input = "relativ"
  module = a2enet.A2ENet(config)
  with pytest.raises(ValueError, match="emotion_input='relativ'; choose one of absolute, relative"):
    jax.eval_shape(module.init, jax.random.key(0), a2enet.example_view(config))
