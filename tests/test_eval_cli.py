"""`a2e eval` plumbing: errors a user can cause, the classifier cache, the results table."""

import ml_collections
import numpy as np
import pytest

from a2e_jax import cli
from a2e_jax.core.errors import UserError
from a2e_jax.eval import emotion_classifier, runs


def test_missing_run_is_one_line_error(tmp_path, capsys):
  assert cli.main(["eval", "--checkpoint", str(tmp_path / "nowhere")]) == 2
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and "config.json" in err and "a2e train --workdir" in err


def test_face_model_must_match_the_run():
  config = ml_collections.ConfigDict(dict(face_model="", model=dict(channel_layout="bfm", num_coeffs=64)))
  with pytest.raises(UserError, match="--face-model"):
    runs._face_model(None, config)
  config.model.num_coeffs = 12
  with pytest.raises(UserError, match="12"):
    runs._face_model("builtin", config)


@pytest.mark.slow
def test_classifier_is_trained_once_then_loaded(tmp_path, monkeypatch):
  rng = np.random.default_rng(0)
  clips = [{"coeffs": rng.normal(size=(30, 5)).astype(np.float32) + (i % 2), "beta0": np.zeros(5, np.float32),
            "emotion": i % 2} for i in range(20)]
  calls = []

  def open_split(data_cfg, split):
    calls.append(split)
    return clips, None

  from a2e_jax.data import pipeline

  monkeypatch.setattr(pipeline, "open_split", open_split)
  monkeypatch.setattr(runs, "CLASSIFIER_CLIPS", 10)
  original = emotion_classifier.train_emotion_classifier
  monkeypatch.setattr(emotion_classifier, "train_emotion_classifier",
                      lambda clips, k, seed=0: original(clips, k, steps=5, window=8, seed=seed))
  data_cfg = ml_collections.ConfigDict(dict(train_split="train"))
  path = str(tmp_path / "c" / "emotion_classifier.npz")
  first = runs.get_classifier(path, data_cfg, 5)
  second = runs.get_classifier(path, data_cfg, 5)
  assert calls == ["train"]
  pairs = [(c["coeffs"], c["beta0"]) for c in clips]
  np.testing.assert_allclose(first.predict_log_probs(pairs), second.predict_log_probs(pairs), atol=1e-6)


def test_format_table():
  results = {"val": {"model": {"lve_mm2": 1.23456, "emotion_accuracy": 0.5}, "beta0": {"lve_mm2": 2.0}}}
  table = runs.format_table(results).splitlines()
  assert len(table) == 3 and table[0].split()[:3] == ["split", "predictor", "lve_mm2"]
  assert table[1].split()[:4] == ["val", "model", "1.235", "-"] and table[2].split()[2] == "2"
