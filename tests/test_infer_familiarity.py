"""`auto`'s familiar-voice gate: Mahalanobis distance of the emotion latent from the training voices'."""

import dataclasses
import json

import numpy as np
import pytest
import scipy.spatial.distance

from a2e_jax.core import schema
from a2e_jax.infer import familiarity


def _training_latents(rng, n_per_class=60, dims=16):
  """Eight Gaussian clusters sharing one anisotropic covariance: latents [n,D], labels [n], the means."""
  means = rng.normal(0, 4, (8, dims))
  scales = np.geomspace(0.2, 3.0, dims)  # the voices vary a lot along some axes, little along others
  labels = np.repeat(np.arange(8), n_per_class)
  return means[labels] + rng.normal(size=(labels.size, dims)) * scales, labels, means, scales


def test_distance_is_the_mahalanobis_distance_to_the_nearest_emotion():
  rng = np.random.default_rng(0)
  latents, labels, _, _ = _training_latents(rng)
  stats = familiarity.fit_stats(latents, labels)
  points = rng.normal(0, 5, (5, latents.shape[1]))
  want = [min(scipy.spatial.distance.mahalanobis(p, m, stats.precision_dd.astype(np.float64))
              for m in stats.means_ed.astype(np.float64)) for p in points]
  np.testing.assert_allclose(stats.distance(points), want, rtol=1e-4)
  np.testing.assert_allclose(stats.means_ed[3], latents[labels == 3].mean(0), atol=1e-5)


def test_held_out_latents_are_familiar_and_shifted_ones_are_not():
  rng = np.random.default_rng(1)
  latents, labels, means, scales = _training_latents(rng)
  stats = familiarity.fit_stats(latents, labels)
  held_labels = np.repeat(np.arange(8), 25)
  held = means[held_labels] + rng.normal(size=(held_labels.size, scales.size)) * scales
  limit = familiarity.fit_limit(stats, held, quantile=0.99)
  assert limit == pytest.approx(np.quantile(stats.distance(held), 0.99))
  fresh = means[held_labels] + rng.normal(size=held.shape) * scales  # more of the same voices
  assert np.mean(familiarity.trust(stats.distance(fresh), limit) == 1.0) > 0.9
  # A voice that moves the latent along an axis the training voices barely use is unfamiliar, though it
  # is as far in plain Euclidean terms as a familiar shift along their widest axis.
  quiet, wide = np.zeros(scales.size), np.zeros(scales.size)
  quiet[0], wide[-1] = 6.0, 6.0
  assert familiarity.trust(stats.distance(means + quiet), limit).max() == 0.0
  assert familiarity.trust(stats.distance(means + wide), limit).min() == 1.0


def test_trust_ramps_around_the_limit_and_inf_turns_the_gate_off():
  np.testing.assert_allclose(familiarity.trust(np.array([5.0, 9.5, 10.0, 10.25, 10.5, 30.0]), 10.0),
                             [1, 1, 0.5, 0.25, 0, 0], atol=1e-9)
  assert familiarity.trust(np.array([1e6]), np.inf).tolist() == [1.0]


def test_fit_stats_needs_every_emotion():
  with pytest.raises(ValueError, match=r"none of \[7\]"):
    familiarity.fit_stats(np.zeros((7, 4)), np.arange(7))


def test_statistics_round_trip_beside_the_weights(tmp_path):
  rng = np.random.default_rng(3)
  stats = familiarity.fit_stats(*_training_latents(rng)[:2])
  familiarity.save_stats(str(tmp_path), stats)
  card = {"emotion_calibration": {"ood": {"distance": 7.5, "quantile": 0.99, "file": familiarity.STATS_FILE}}}
  (tmp_path / "model_card.json").write_text(json.dumps(card))
  loaded, limit = familiarity.load_gate(str(tmp_path), json.loads((tmp_path / "model_card.json").read_text()))
  assert limit == 7.5
  np.testing.assert_array_equal(loaded.precision_dd, stats.precision_dd)
  np.testing.assert_array_equal(loaded.means_ed, stats.means_ed)
  assert familiarity.load_gate(str(tmp_path), {}) == (None, float("inf"))  # a card without a gate
  assert familiarity.load_gate(str(tmp_path / "elsewhere"), card) == (None, float("inf"))  # no statistics


def test_generator_rejects_a_distance_that_is_not_positive():
  from a2e_jax.core.errors import UserError
  from a2e_jax.infer.generate import Generator

  with pytest.raises(UserError, match="--emotion-distance"):
    Generator(None, emotion_distance=0.0)


@pytest.mark.slow
def test_auto_reads_neutral_far_from_the_training_latents_and_follows_near_them():
  """A random network's latent of a clip; statistics centred on that latent keep auto's reading (the
  confidence-only one), the same statistics moved far away make the clip unfamiliar: neutral."""
  from infer_helpers import random_weights, speechlike

  from a2e_jax.infer.generate import Generator

  wav = speechlike(3.0, seed=4)
  generator = Generator(random_weights(), emotion_threshold=0.0, pause_threshold=0.0)
  latent = generator.clip_emotion(wav, schema.SAMPLE_RATE)
  dims = latent.size
  near = familiarity.LatentStats(np.tile(latent, (8, 1)).astype(np.float32), np.eye(dims, dtype=np.float32))
  far = dataclasses.replace(near, means_ed=near.means_ed + 100.0)
  speech = generator(wav, schema.SAMPLE_RATE, emotion="speech", blink="none", gaze="still")
  neutral = generator(wav, schema.SAMPLE_RATE, emotion="neutral@0", blink="none", gaze="still")
  generator.familiar, generator.emotion_distance = near, 1.0
  followed = generator(wav, schema.SAMPLE_RATE, blink="none", gaze="still")
  generator.familiar = far
  gated = generator(wav, schema.SAMPLE_RATE, blink="none", gaze="still")
  assert followed.emotion_familiar == 1.0 and followed.emotion_trust == 1.0
  np.testing.assert_allclose(followed.coeffs, speech.coeffs, atol=1e-5)
  assert gated.emotion_familiar == 0.0 and gated.emotion_trust == 0.0
  np.testing.assert_allclose(gated.coeffs, neutral.coeffs, atol=1e-5)
  assert np.abs(speech.coeffs - neutral.coeffs).max() > 1e-3  # the gate had something to change
