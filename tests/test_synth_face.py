"""Built-in corpus faces: visemes, expressions, blinks and gaze, resting offset, head pose."""

import numpy as np
import pytest

from a2e_jax.core import schema
from a2e_jax.core.channels import ICT_CHANNELS
from a2e_jax.data.synth import eyes, phonemes, visemes, voices
from a2e_jax.data.synth.utterance import synthesize_utterance

CH = {name: i for i, name in enumerate(ICT_CHANNELS)}
TEXT = "Bob made a map of the moon with a blue pen."


def frames_in(phones, seq, classes):
  """Frame indices whose centre lies in the middle half of a phoneme of one of `classes`."""
  times = (np.arange(seq.num_frames) + 0.5) / schema.FPS
  ends = np.append(phones.start_s[1:], times[-1])
  picked = []
  for name, start, end in zip(phones.names, phones.start_s, ends):
    if phonemes.viseme_classes(name)[0] in classes:
      quarter = (end - start) / 4
      picked += np.flatnonzero((times >= start + quarter) & (times <= end - quarter)).tolist()
  return np.array(sorted(set(picked)), int)


@pytest.fixture(scope="module")
def neutral():
  return synthesize_utterance(TEXT, speaker=0, emotion="neutral", intensity=1, seed=0)


def test_jaw_opens_on_open_vowels_and_lips_close_on_bilabials(neutral):
  wav, phones, seq = neutral
  mouth = seq.coeffs - seq.beta0
  open_vowels = frames_in(phones, seq, ("aa", "ae"))
  bilabials = np.flatnonzero([phonemes.viseme_classes(n)[0] == "PP" for n in phones.names])
  # Each bilabial's closure: the frame nearest its middle.
  ends = np.append(phones.start_s[1:], wav.shape[0] / schema.SAMPLE_RATE)
  closure = np.round((phones.start_s[bilabials] + ends[bilabials]) / 2 * schema.FPS - 0.5).astype(int)
  assert len(open_vowels) >= 3 and len(closure) >= 8
  jaw, close = seq.coeffs[:, CH["jawOpen"]], seq.coeffs[:, CH["mouthClose"]]
  press = mouth[:, [CH["mouthPress_L"], CH["mouthPress_R"]]].mean(1)
  assert jaw[open_vowels].mean() > 0.35 > jaw[closure].mean() + 0.15
  # ARKit's mouthClose: lips meet when it equals jawOpen, and it never exceeds it.
  lip_gap = jaw - close
  assert np.all(lip_gap >= -1e-6) and np.all(lip_gap[closure] < 0.05) and lip_gap[open_vowels].mean() > 0.35
  assert close[closure].mean() > close[open_vowels].mean() + 0.05
  assert press[closure].mean() > press[open_vowels].mean() + 0.2


def test_rounded_vowels_pucker_and_the_mouth_rests_in_silence(neutral):
  wav, phones, seq = neutral
  mouth = seq.coeffs - seq.beta0
  rounded = frames_in(phones, seq, ("ou",))
  spread = frames_in(phones, seq, ("ih", "E"))
  assert mouth[rounded, CH["mouthPucker"]].mean() > mouth[spread, CH["mouthPucker"]].mean() + 0.3
  lead_frames = int(phones.start_s[0] * schema.FPS) - 3  # well before anticipation of the first phoneme
  assert np.abs(mouth[:lead_frames, CH["jawOpen"]]).max() < 0.02


def test_lips_close_against_an_emotionally_open_jaw():
  """Surprise drops the jaw (AU26); a bilabial must still bring the lips together."""
  wav, phones, seq = synthesize_utterance(TEXT, 3, "surprised", 3, seed=0)
  ends = np.append(phones.start_s[1:], wav.shape[0] / schema.SAMPLE_RATE)
  bilabial = np.flatnonzero([phonemes.viseme_classes(n)[0] == "PP" for n in phones.names])
  closure = np.round((phones.start_s[bilabial] + ends[bilabial]) / 2 * schema.FPS - 0.5).astype(int)
  jaw, close = seq.coeffs[:, CH["jawOpen"]], seq.coeffs[:, CH["mouthClose"]]
  assert jaw[closure].min() > 0.1 and np.all(jaw[closure] - close[closure] < 0.05)


def test_coarticulation_anticipates_lip_rounding():
  times = np.arange(0, 1.0, 0.01)
  # "s" before a rounded vowel is already rounded, "s" before a spread vowel is not.
  before_u = visemes.viseme_track([("_", 0.0), ("s", 0.3), ("u:", 0.42), ("_", 0.7)], times, 1.0)
  before_i = visemes.viseme_track([("_", 0.0), ("s", 0.3), ("i:", 0.42), ("_", 0.7)], times, 1.0)
  in_s = (times >= 0.34) & (times <= 0.4)
  assert before_u[in_s, CH["mouthPucker"]].mean() > before_i[in_s, CH["mouthPucker"]].mean() + 0.1
  assert np.abs(before_u[times < 0.15]).max() < 0.01  # at rest far from speech


def test_emotion_expressions_follow_facs_and_intensity():
  base = synthesize_utterance(TEXT, 0, "neutral", 1, seed=0).seq
  mean = {}
  for name, k in (("happy", 1), ("happy", 3), ("sad", 3), ("angry", 3), ("surprised", 3), ("contempt", 3)):
    mean[name, k] = synthesize_utterance(TEXT, 0, name, k, seed=0).seq.coeffs.mean(0)
  neutral = base.coeffs.mean(0)
  smile = [CH["mouthSmile_L"], CH["mouthSmile_R"]]
  assert mean["happy", 3][smile].mean() > mean["happy", 1][smile].mean() > neutral[smile].mean() + 0.1
  assert mean["sad", 3][CH["mouthFrown_L"]] > neutral[CH["mouthFrown_L"]] + 0.2
  assert mean["sad", 3][CH["browInnerUp_L"]] > neutral[CH["browInnerUp_L"]] + 0.2
  assert mean["angry", 3][CH["browDown_L"]] > neutral[CH["browDown_L"]] + 0.3
  assert mean["surprised", 3][CH["eyeWide_R"]] > neutral[CH["eyeWide_R"]] + 0.3
  # Contempt is the one-sided expression.
  assert mean["contempt", 3][CH["mouthSmile_R"]] > mean["contempt", 3][CH["mouthSmile_L"]] + 0.2


def test_upper_face_moves_with_the_voice():
  """Accented syllables raise the brows in a neutral clip: the upper face is not a constant."""
  wav, phones, seq = synthesize_utterance(TEXT, 1, "neutral", 1, seed=3)
  brows = seq.coeffs[:, CH["browInnerUp_L"]]
  assert brows.max() - brows.min() > 0.05


def test_blinks_have_natural_rate_and_duration():
  rng = np.random.default_rng(0)
  minutes = 12
  onsets, lengths = eyes.blink_times(minutes * 60.0, eyes.BLINKS_PER_MINUTE["neutral"], rng)
  assert 14 <= len(onsets) / minutes <= 20
  assert lengths.min() >= 0.1 and lengths.max() <= 0.3 and 0.15 < np.median(lengths) < 0.21
  intervals = np.diff(onsets)
  assert intervals.min() >= eyes.REFRACTORY_S and np.std(intervals) > 0.3 * np.mean(intervals)
  # Sampled at 25 fps every blink still closes the eye past half.
  times = (np.arange(int(minutes * 60 * schema.FPS)) + 0.5) / schema.FPS
  closed = eyes.blink_track(times, minutes * 60.0, eyes.BLINKS_PER_MINUTE["neutral"],
                            np.random.default_rng(0))[:, 0] > 0.5
  assert np.count_nonzero(np.diff(closed.astype(int)) == 1) == pytest.approx(len(onsets), abs=2)
  frames_closed = closed.sum() / len(onsets)
  assert 1 <= frames_closed <= 0.3 * schema.FPS


def test_blink_rate_depends_on_emotion():
  def rate(name):
    return len(eyes.blink_times(1200.0, eyes.BLINKS_PER_MINUTE[name], np.random.default_rng(1))[0]) / 20

  assert rate("fear") > rate("neutral") > rate("surprised")


def test_eye_control_is_what_the_eye_channels_show():
  wav, phones, seq = synthesize_utterance(TEXT * 3, 4, "sad", 3, seed=1)
  blink = np.clip(seq.beta0[CH["eyeBlink_L"]] + seq.eye[:, 0], 0, 1)
  np.testing.assert_allclose(seq.coeffs[:, CH["eyeBlink_L"]], blink, atol=1e-6)
  assert seq.eye[:, 0].max() > 0.85  # a blink in ~8 s of speech
  assert seq.eye[:, 3].mean() < -0.04  # sadness looks down
  down = np.clip(seq.beta0[CH["eyeLookDown_L"]] - seq.eye[:, 3] / eyes.LOOK_FULL_SCALE, 0, 1)
  np.testing.assert_allclose(seq.coeffs[:, CH["eyeLookDown_L"]], down, atol=1e-6)


def test_resting_offset_is_the_speakers_identity():
  a = synthesize_utterance(TEXT, 5, "neutral", 1, seed=0).seq
  b = synthesize_utterance("A different sentence spoken angrily.", 5, "angry", 3, seed=9).seq
  c = synthesize_utterance(TEXT, 6, "neutral", 1, seed=0).seq
  np.testing.assert_array_equal(a.beta0, b.beta0)
  np.testing.assert_array_equal(a.beta0, voices.make_speaker(5).beta0)
  assert np.abs(a.beta0 - c.beta0).sum() > 0.3
  assert a.beta0.shape == (53,) and a.beta0.min() >= 0 and a.beta0.max() <= 0.25
  assert a.beta0[[CH["eyeBlink_L"], CH["eyeBlink_R"]]].sum() == 0
  # In the silent lead-in (no blink), a neutral face is its resting offset.
  first = a.coeffs[0]
  keep = np.array([not n.startswith(("eyeBlink", "eyeLook", "brow")) for n in ICT_CHANNELS])
  np.testing.assert_allclose(first[keep], a.beta0[keep], atol=0.03)


def test_head_pose_is_gentle_and_emotional():
  calm = synthesize_utterance(TEXT, 2, "neutral", 1, seed=0).seq.pose
  sad = synthesize_utterance(TEXT, 2, "sad", 3, seed=0).seq.pose
  for pose in (calm, sad):
    assert np.abs(pose[:, :3]).max() < 0.25 and np.all(pose[:, 3:] == 0)
    assert np.abs(np.diff(pose[:, :3], axis=0)).max() < 0.03  # smooth at 25 fps
  assert sad[:, 0].mean() > calm[:, 0].mean() + 0.04  # sad head tipped down (positive x)
