"""tools/eval_voices.py's calibration: the temperature and auto's threshold fitted on chunk logits of
engine clips, the heard engines' clips taken outside the training split."""

import os

import numpy as np
import pytest
from conftest import tool_module
from infer_helpers import random_weights


@pytest.fixture(scope="module")
def eval_voices():
  import sys

  sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "tools"))
  return tool_module("eval_voices")


def test_trained_engines_come_from_the_card(eval_voices):
  assert eval_voices.trained_engines({}) == {"espeak"}
  card = {"data": {"engines": {"espeak": "1", "flite": "2"}}}
  assert eval_voices.trained_engines(card) == {"espeak", "flite"}


@pytest.mark.slow
def test_calibration_fits_a_temperature_and_a_threshold(eval_voices):
  from a2e_jax.core import schema
  from a2e_jax.data.synth.utterance import synthesize_utterance
  from a2e_jax.infer import confidence
  from a2e_jax.infer.generate import Generator

  neutral = eval_voices.clip_set("espeak", 2, neutral_only=True)  # two held-out groups' neutral renditions
  assert [c["emotion"] for c in neutral] == [schema.NEUTRAL] * 2
  assert all(c["speaker"] != neutral[0]["speaker"] or c is neutral[0] for c in neutral)
  clips = list(neutral)
  for k, emotion in enumerate(("happy", "sad", "angry")):
    wav, _, _ = synthesize_utterance("Bob made a map of the moon.", 17, emotion, 3, seed=k)
    clips.append({"wav": wav, "emotion": schema.EMOTIONS.index(emotion)})
  generator = Generator(random_weights(), chunk_frames=16, overlap_frames=4, emotion_threshold=0.0,
                        pause_threshold=0.0)
  report, stats = eval_voices.calibration(generator, {"espeak": clips}, ["espeak"])
  assert stats is None and "ood" not in report  # no training clips given: no familiar-voice gate
  assert 0.05 <= report["temperature"] <= 100
  assert report["threshold"] in confidence.THRESHOLD_GRID
  assert report["neutral_offset"] in confidence.OFFSET_GRID
  figures = report["ece"]["espeak"]
  # The temperature rescales the logits: it moves the confidence, never which class is read.
  assert figures["after"]["chunk_accuracy"] == figures["before"]["chunk_accuracy"]
  probs, labels = eval_voices.clip_readings(np.eye(8)[[1, 1, 2]], np.array([3, 3, 4]), np.array([0, 0, 1]))
  np.testing.assert_allclose(probs, np.eye(8)[[1, 2]])
  assert labels.tolist() == [3, 4]
