"""The pause gate (lips at rest where the audio is silent) and `auto` emotion's calibrated fallback."""

import numpy as np
import pytest

from a2e_jax.core import schema
from a2e_jax.core.channels import ICT_CHANNELS
from a2e_jax.core.errors import UserError
from a2e_jax.infer import confidence, controls, pauses


def test_silent_stretches_need_three_quiet_frames_below_a_tenth_of_the_loudest():
  rms = np.array([1.0, 0.05, 0.05, 1.0, 0.05, 0.05, 0.05, 0.5, 0.09, 0.11, 0.09, 0.09, 0.09, 0.8])
  silent = pauses.silent_stretches(rms)
  assert silent.tolist() == [False] * 4 + [True] * 3 + [False] * 3 + [True] * 3 + [False]
  assert not pauses.silent_stretches(rms, threshold=0.0).any()
  assert not pauses.silent_stretches(np.zeros(5)).any()  # digital silence throughout: nothing to gate


def test_rest_weight_rises_inside_pauses_and_leaves_speech_alone():
  silent = np.zeros(14, bool)
  silent[3:10] = True
  w = pauses.rest_weight(silent, edge_frames=2)
  np.testing.assert_allclose(w[3:10], [1 / 3, 2 / 3, 1, 1, 1, 2 / 3, 1 / 3], atol=1e-6)
  assert not w[:3].any() and not w[10:].any()  # speech frames untouched
  np.testing.assert_allclose(pauses.rest_weight(np.ones(4, bool), 2), [1 / 3, 2 / 3, 2 / 3, 1 / 3], atol=1e-6)


def test_gate_audio_zeroes_exactly_the_silent_frames():
  wav = np.ones(5 * schema.SAMPLES_PER_FRAME, np.float32)
  silent = np.array([False, True, True, False, False, True, True])  # a longer clip's mask, from frame 0
  gated = pauses.gate_audio(wav[2 * schema.SAMPLES_PER_FRAME:], silent, first_frame=2).reshape(3, -1)
  assert gated[0].max() == 0 and gated[1].min() == 1 and gated[2].min() == 1
  assert wav.min() == 1  # the input is left alone


def test_opening_channels_are_the_lip_parting_ones():
  opening = pauses.opening_channels(ICT_CHANNELS)
  names = {ICT_CHANNELS[i] for i in np.flatnonzero(opening)}
  assert names == set(pauses.OPENING_CHANNELS) and "mouthSmile_L" not in names


def test_temperature_is_recovered_and_lowers_the_calibration_error():
  rng = np.random.default_rng(0)
  logits = rng.normal(0, 3, (4000, 8))
  true_t = 2.5
  probs = confidence.calibrated_probs(logits, true_t)
  labels = np.array([rng.choice(8, p=p) for p in probs])  # labels drawn from softmax(logits / 2.5)
  fitted = confidence.fit_temperature(logits, labels)
  assert abs(fitted - true_t) < 0.25
  before = confidence.expected_calibration_error(confidence.calibrated_probs(logits, 1.0), labels)
  after = confidence.expected_calibration_error(confidence.calibrated_probs(logits, fitted), labels)
  assert after < 0.03 < before


def test_trust_falls_back_on_neutral_readings_and_unsure_ones():
  probs = np.array([[0.9, 0.1] + [0] * 6,    # neutral reading: never followed
                    [0.1, 0.9] + [0] * 6,    # sure: followed
                    [0.4, 0.6] + [0] * 6,    # at the threshold: half
                    [0.3, 0.35, 0.35] + [0] * 5])  # unsure: neutral
  np.testing.assert_allclose(confidence.trust(probs, 0.6), [0, 1, 0.5, 0], atol=1e-9)
  np.testing.assert_allclose(confidence.trust(probs, 0.0), [1, 1, 1, 1])  # 0: always the speech


def test_fitted_threshold_is_the_highest_that_keeps_the_heard_emotions():
  # 20 emotional clip readings, all right: 10 sure (0.8), 10 less sure (0.53 .. 0.76); 4 neutral ones.
  probs = np.zeros((24, 8))
  confident = np.array([0.8] * 10 + [0.53, 0.56, 0.59, 0.62, 0.64, 0.66, 0.68, 0.72, 0.74, 0.76])
  probs[:20, 1] = confident
  probs[:20, 0] = 1 - confident
  probs[20:, 0] = 1.0
  labels = np.array([1] * 20 + [0] * 4)
  # Losing at most 3 % of 20 loses none: 0.5 is the highest threshold that every reading reaches.
  assert confidence.fit_threshold(probs, labels, tolerance=0.03) == 0.5
  # Losing up to 25 % (5 clips): 0.65 drops the five readings under it, 0.7 would drop seven.
  assert confidence.fit_threshold(probs, labels, tolerance=0.25) == 0.65
  assert confidence.card_threshold({"emotion_calibration": {"threshold": 0.55}}) == 0.55
  assert confidence.card_threshold({}) == confidence.DEFAULT_THRESHOLD


def test_neutral_offset_is_the_largest_that_keeps_the_heard_emotions():
  # 20 angry clips of 2 chunks each, angry logit 1.1, 1.6, .. 10.6 against neutral 0 (the rest far below);
  # 4 neutral clips that a new voice might bring: a weak "contempt" reading (logit 1.0).
  sure = 1.1 + 0.5 * np.arange(20)
  logits = np.full((48, 8), -10.0)
  logits[:, 0] = 0.0
  logits[:40, 1] = np.repeat(sure, 2)
  logits[40:, 2] = 1.0
  owner = np.repeat(np.arange(24), 2)
  labels = np.array([1] * 20 + [0] * 4)
  # At threshold 0.5 an angry clip is kept while its logit beats the offset: an offset up to 1.0 keeps all
  # 20, up to 1.5 loses the first (5 %), 1.75 the second.
  assert confidence.fit_neutral_offset(logits, owner, labels, 1.0, 0.5, tolerance=0.0) == 1.0
  offset = confidence.fit_neutral_offset(logits, owner, labels, 1.0, 0.5, tolerance=0.06)
  assert offset == 1.5
  neutral_clips = confidence.clip_means(confidence.calibrated_probs(logits[40:], 1.0, offset), owner[40:])
  plain = confidence.clip_means(confidence.calibrated_probs(logits[40:], 1.0), owner[40:])
  np.testing.assert_allclose(confidence.trust(plain, 0.5), 1.0)  # without it they read contempt
  np.testing.assert_allclose(confidence.trust(neutral_clips, 0.5), 0.0)  # with it, neutral
  assert confidence.card_neutral_offset({"emotion_calibration": {"neutral_offset": 1.5}}) == 1.5
  assert confidence.card_neutral_offset({}) == 0.0


def test_auto_and_speech_keys():
  assert controls.parse_emotion("auto").fallback and controls.parse_emotion("auto").is_speech
  assert not controls.parse_emotion("speech").fallback
  assert controls.parse_emotion("auto").describe() == "auto"
  keys = controls.parse_schedule("0:auto,2:happy@3")
  assert keys[0].fallback and not keys[1].is_speech


def test_generator_rejects_thresholds_outside_the_unit_interval():
  from a2e_jax.infer.generate import Generator

  with pytest.raises(UserError, match="--pause-threshold"):
    Generator(None, pause_threshold=1.5)  # checked before the weights are touched
  with pytest.raises(UserError, match="--emotion-threshold"):
    Generator(None, emotion_threshold=-0.1)


@pytest.mark.slow
def test_lips_rest_in_a_pause_and_auto_falls_back_with_a_random_network():
  """A random network parts the lips everywhere; with the gate they close in the pause (within 2 mm of the
  reference rest's gap) and nowhere else changes; `auto` at threshold 1 is the neutral label's output."""
  from infer_helpers import random_weights

  from a2e_jax.face.registry import resolve_model
  from a2e_jax.infer.generate import Generator

  weights = random_weights()
  rng = np.random.default_rng(0)
  t = np.arange(16_000) / 16_000
  voice = (0.5 + 0.5 * np.sin(2 * np.pi * 3.7 * t) ** 2) * np.sin(2 * np.pi * 140 * t)  # never quiet
  wav = np.concatenate([voice, 0.001 * rng.standard_normal(9600), voice]).astype(np.float32)
  face = resolve_model("builtin").to_numpy()
  lips = np.asarray(face.landmarks)[[62, 66]]

  def gap_mm(coeffs):
    v = np.asarray(face.mean)[lips][None] + np.einsum("tk,vck->tvc", coeffs, np.asarray(face.exp_basis)[lips])
    return (v[:, 0, 1] - v[:, 1, 1]) * 100

  gated = Generator(weights)(wav, schema.SAMPLE_RATE, blink="none", gaze="still", emotion="neutral")
  plain = Generator(weights, pause_threshold=0.0)(wav, schema.SAMPLE_RATE, blink="none", gaze="still",
                                                  emotion="neutral")
  silent = pauses.silent_stretches(pauses.frame_rms(wav, gated.seq.num_frames))
  assert 10 <= silent.sum() <= 16 and gated.pause_frames == silent.sum()
  rest = gap_mm(np.zeros((1, len(ICT_CHANNELS))))[0]
  settled = silent & (pauses.rest_weight(silent) == 1)
  assert np.all(np.abs(gap_mm(gated.coeffs)[settled] - rest) <= 2.0)
  assert np.mean(np.abs(gap_mm(plain.coeffs)[silent] - rest) > 2.0) > 0.5  # the gate did the work
  # Away from the pause the output is the ungated one (the brows and eyes are the first 10 channels).
  far = np.abs(np.arange(silent.size)[:, None] - np.flatnonzero(silent)[None]).min(1) > 16
  np.testing.assert_allclose(gated.coeffs[far], plain.coeffs[far], atol=0.05)
  np.testing.assert_allclose(gated.coeffs[silent][:, :10], plain.coeffs[silent][:, :10], atol=0.05)

  never = Generator(weights, emotion_threshold=1.0, pause_threshold=0.0)
  auto = never(wav, schema.SAMPLE_RATE, blink="none", gaze="still")
  neutral = never(wav, schema.SAMPLE_RATE, blink="none", gaze="still", emotion="neutral@0")
  assert auto.emotion_trust == 0.0
  np.testing.assert_allclose(auto.coeffs, neutral.coeffs, atol=1e-5)


@pytest.mark.slow
def test_gated_file_streamed_in_blocks_equals_in_memory(tmp_path, monkeypatch):
  import soundfile
  from infer_helpers import random_weights

  from a2e_jax.infer import sources
  from a2e_jax.infer.generate import Generator

  rng = np.random.default_rng(1)
  t = np.arange(32_000) / 16_000
  voice = (0.5 + 0.5 * np.sin(2 * np.pi * 3.1 * t) ** 2) * np.sin(2 * np.pi * 130 * t)
  wav = np.concatenate([voice, 0.001 * rng.standard_normal(8000), voice]).astype(np.float32)
  path = str(tmp_path / "speech.wav")
  soundfile.write(path, wav, 16000, subtype="FLOAT")
  generator = Generator(random_weights(), chunk_frames=16, overlap_frames=4)
  in_memory = generator(wav, 16000, seed=3)
  monkeypatch.setattr(sources, "STREAM_SECONDS", 1.0)
  monkeypatch.setattr(sources, "CACHED_CHUNKS", 0)
  streamed = generator(path, seed=3)
  assert streamed.pause_frames == in_memory.pause_frames > 0
  np.testing.assert_allclose(streamed.coeffs, in_memory.coeffs, atol=1e-5)
