"""The coefficient emotion classifier and `evaluate`: learnable, saved and loaded, exact on an oracle."""

import json

import flax.linen as nn
import jax
import numpy as np
import pytest
from model_helpers import random_face_model, synthetic_batch

from a2e_jax.core import schema
from a2e_jax.core.channels import ICT_CHANNELS
from a2e_jax.core.errors import UserError
from a2e_jax.eval import emotion_classifier, evaluate
from a2e_jax.models import a2enet

pytestmark = pytest.mark.slow  # trains an emotion classifier and evaluates A2ENet

K = len(ICT_CHANNELS)
E = len(schema.EMOTIONS)


def _clips(n, seed, frames=(30, 70)):
  """Clips whose emotion shows as a per-emotion offset and a per-emotion oscillation, over noise."""
  rng = np.random.default_rng(seed)
  style = np.random.default_rng(99).normal(size=(E, 2, K)) * 0.3
  out = []
  for i in range(n):
    label, t = i % E, int(rng.integers(*frames))
    beta0 = rng.uniform(0, 0.3, K)
    wave = np.sin(np.arange(t)[:, None] * (0.2 + 0.05 * label))
    coeffs = beta0 + style[label, 0] + wave * style[label, 1] + rng.normal(size=(t, K)) * 0.3
    out.append({"coeffs": coeffs.astype(np.float32), "beta0": beta0.astype(np.float32), "emotion": label})
  return out


@pytest.fixture(scope="module")
def classifier():
  return emotion_classifier.train_emotion_classifier(_clips(160, 0), K, steps=150, batch_size=32, window=24)


def test_classifier_learns_and_round_trips(classifier, tmp_path):
  held_out = _clips(48, 1, frames=(10, 60))  # includes clips shorter than the window
  pairs = [(c["coeffs"], c["beta0"]) for c in held_out]
  labels = np.array([c["emotion"] for c in held_out])
  predicted = classifier.predict(pairs)
  assert np.mean(predicted == labels) >= 0.9
  path = str(tmp_path / "classifier.npz")
  classifier.save(path)
  loaded = emotion_classifier.load_classifier(path)
  np.testing.assert_allclose(loaded.predict_log_probs(pairs), classifier.predict_log_probs(pairs), atol=1e-6)
  np.save(tmp_path / "other.npy", np.zeros(3))
  with pytest.raises(UserError, match="not"):
    emotion_classifier.load_classifier(str(tmp_path / "other.npy"))
  with pytest.raises(UserError, match="two emotions"):
    emotion_classifier.train_emotion_classifier([{**c, "emotion": 0} for c in held_out], K, steps=1)


def test_swap_targets_differ_and_cycle():
  labels = np.repeat(np.arange(E), 7)
  targets = evaluate.swap_targets(labels, np.tile(np.arange(7), E))
  assert np.all(targets != labels)
  for label in range(E):
    assert set(targets[labels == label]) == set(range(E)) - {label}


class _Oracle:
  """Predicts the ground truth itself (and ignores emotion overrides)."""

  def __call__(self, view):
    return view["coeffs"], None

  def with_emotion(self, view, label_b, intensity_b):
    return view["coeffs"]


def _batches(config, count=2):
  out = []
  for seed in range(count):
    view = synthetic_batch(config, 3, 20, seed=seed)["a"]
    view["clip"] = np.arange(3) + 3 * seed
    out.append(view)
  return out


def test_oracle_scores_perfectly(classifier):
  config = a2enet.model_config("tiny")
  face = random_face_model(K)
  results = evaluate.evaluate(_Oracle(), _batches(config), face, channel_names=ICT_CHANNELS)
  assert results["clips"] == 6 and results["frames"] == 20 * 6 - 2 * 5  # row 1 of each batch is padded
  assert results["lve_mm2"] == 0.0 and results["fdd_mm2"] == 0.0 and results["identity_error"] == 0.0
  assert results["blink_precision"] == 1.0 and results["blink_recall"] == 1.0
  baseline = evaluate.evaluate(evaluate.Beta0Predictor(), _batches(config), face, channel_names=ICT_CHANNELS)
  assert baseline["lve_mm2"] > 0 and baseline["fdd_mm2"] > 0 and baseline["blink_recall"] == 0.0


def _live_head(params):
  """params whose zero-initialised output head is random, so the emotion reaches the coefficients."""
  decoder = dict(params["expression_decoder"])
  kernel = decoder["out"]["kernel"]
  decoder["out"] = {**decoder["out"], "kernel": 0.1 * np.random.default_rng(0).standard_normal(kernel.shape)}
  return {**params, "expression_decoder": decoder}


def test_evaluate_a2enet_writes_json_and_plot(classifier, tmp_path):
  config = a2enet.model_config("tiny")
  module = a2enet.A2ENet(config)
  params = nn.unbox(jax.jit(module.init)(jax.random.key(0), a2enet.example_view(config)))["params"]
  face = random_face_model(K)
  predictor = evaluate.ModelPredictor(module, params)
  results = evaluate.evaluate(predictor, _batches(config), face, classifier, out_dir=str(tmp_path),
                              channel_names=ICT_CHANNELS, name="tiny")
  for key in ("lve_mm2", "lve_swap_ratio", "fdd_mm2", "emotion_accuracy", "emotion_swap_accuracy",
              "emotion_schedule_accuracy", "classifier_accuracy_on_truth", "blink_precision", "blink_recall",
              "identity_error", "identity_transfer", "audio_emotion_accuracy"):
    assert np.isfinite(results[key]), key
  # An untrained decoder returns β0 (eyes gated by the control): identity fully transferred, blinks obeyed,
  # and the emotion does not reach the coefficients, so there is no intensity to order.
  np.testing.assert_allclose(results["identity_transfer"], 1.0, atol=1e-5)
  assert results["blink_recall"] == 1.0 and "intensity_order" not in results
  # The same compiled predictor with a live output head: the emotion label and intensity matter.
  predictor.params = _live_head(params)
  live = evaluate.evaluate(predictor, _batches(config), face, channel_names=ICT_CHANNELS)
  assert 0.0 <= live["intensity_order"] <= 1.0 and live["intensity_3_vs_1"] > 1.0
  # A constant per-frame schedule is the same as one label per clip.
  view = _batches(config, 1)[0]
  labels, intensity = np.array([1, 5, 7], np.int32), np.array([1.0, 2.0, 3.0])
  np.testing.assert_allclose(predictor.with_emotion(view, np.repeat(labels[:, None], 20, 1), intensity),
                             predictor.with_emotion(view, labels, intensity), atol=1e-5)
  written = json.loads((tmp_path / "metrics_tiny.json").read_text())
  assert written["lve_mm2"] == results["lve_mm2"]
  assert (tmp_path / "eval_tiny.png").stat().st_size > 10_000


def test_swap_pairs_compare_with_the_true_rendition():
  config = a2enet.model_config("tiny")
  face = random_face_model(K)
  batch = synthetic_batch(config, 3, 20, seed=4)
  delta = np.random.default_rng(5).normal(size=K).astype(np.float32) * 0.1

  class Offset:
    """Own speech: the truth of a plus delta; an override: the truth of ab plus 2·delta."""

    def __call__(self, view):
      return batch["a"]["coeffs"] + delta, None

    def with_emotion(self, view, label_b, intensity_b):
      np.testing.assert_array_equal(label_b, batch["ab"]["emotion"])
      return batch["ab"]["coeffs"] + 2 * delta

  out = evaluate.evaluate_swap_pairs(Offset(), [batch], face)
  assert out["swap_pairs"] == 3
  np.testing.assert_allclose(out["lve_swap_true_ratio"], 4.0, rtol=1e-5)
  lips = np.asarray(face.region("lips"))
  expect = np.max(np.sum(np.einsum("vck,k->vc", np.asarray(face.exp_basis)[lips], delta) ** 2, -1))
  np.testing.assert_allclose(out["lve_self_pairs_mm2"], expect * evaluate.MM2_PER_UNIT2, rtol=1e-4)
