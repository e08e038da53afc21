"""Generation controls: emotion parsing, schedules and smooth mixing, eye and pose tracks, references."""

import numpy as np
import pytest
import scipy.io

from a2e_jax.core import schema
from a2e_jax.core.channels import ICT_CHANNELS
from a2e_jax.core.errors import UserError
from a2e_jax.data.synth import eyes
from a2e_jax.formats.sequence import CoeffSequence, save_npz
from a2e_jax.infer import controls, reference

HAPPY, SAD = schema.EMOTIONS.index("happy"), schema.EMOTIONS.index("sad")


def test_parse_emotion_label_intensity_blend_and_speech():
  key = controls.parse_emotion("Happy")
  assert key.weights[HAPPY] == 1.0 and key.intensity == controls.DEFAULT_INTENSITY
  assert controls.parse_emotion("happy@3").intensity == 3.0
  assert controls.parse_emotion("happy", intensity=1).intensity == 1.0
  blend = controls.parse_emotion("happy=3+sad=1@2.5")
  assert blend.weights[HAPPY] == pytest.approx(0.75) and blend.weights[SAD] == pytest.approx(0.25)
  assert blend.intensity == 2.5 and sum(blend.weights) == pytest.approx(1.0)
  assert controls.parse_emotion("happy+sad").weights[SAD] == pytest.approx(0.5)
  assert controls.parse_emotion("speech").is_speech
  assert controls.parse_emotion("surprise").weights[schema.EMOTIONS.index("surprised")] == 1.0


@pytest.mark.parametrize("text, fragment", [
  ("joyful", "unknown emotion"), ("happy@9", "outside 0..3"), ("happy@x", "not a number"),
  ("happy=-1", "is negative"), ("happy=0", "sum to 0")])
def test_parse_emotion_errors_are_one_line(text, fragment):
  with pytest.raises(UserError, match=fragment) as error:
    controls.parse_emotion(text)
  assert "\n" not in str(error.value)


def test_parse_schedule():
  keys = controls.parse_schedule("0:neutral, 3.5:happy@3,8:speech", intensity=1)
  assert [k.time_s for k in keys] == [0.0, 3.5, 8.0]
  assert keys[0].intensity == 1.0 and keys[1].intensity == 3.0 and keys[2].is_speech
  for bad in ("3:happy,1:sad", "happy", "x:happy", ""):
    with pytest.raises(UserError):
      controls.parse_schedule(bad)


def test_mix_weights_switch_smoothly_at_the_key_times():
  keys = controls.parse_schedule("0:neutral,2:happy,2.2:sad")
  mix = controls.mix_weights(keys, 150, transition_s=0.5)
  np.testing.assert_allclose(mix.sum(axis=1), 1.0, atol=1e-6)
  assert np.all(mix >= 0)
  assert np.all(mix[:50, 0] == 1.0)  # frames before 2 s: all neutral
  np.testing.assert_allclose(mix[-1], [0, 0, 1], atol=1e-6)  # after the last ramp: all sad
  # A raised-cosine ramp over 0.5 s moves at most pi/2 / (0.5 s * 25 fps) per frame and key.
  assert np.abs(np.diff(mix, axis=0)).max() <= np.pi / 2 / (0.5 * 25) * 2 + 1e-6
  assert mix[:, 1].max() < 1.0  # happy never fully arrives: sad takes over during its ramp
  hard = controls.mix_weights(keys, 150, transition_s=0.0)
  assert set(np.unique(hard)) <= {0.0, 1.0} and hard[55, 2] == 1.0


def test_single_label_and_label_arrays():
  keys = [controls.parse_emotion("sad@3")]
  assert controls.single_label(keys) == ("sad", 1.0)
  assert controls.single_label([controls.parse_emotion("happy+sad")]) == ("neutral", 0.0)
  weights, intensity = controls.label_arrays(controls.parse_schedule("0:speech,1:happy@1"))
  assert weights.shape == (2, len(schema.EMOTIONS)) and not weights[0].any() and intensity[1] == 1.0


def test_fit_length_cuts_or_plays_back_and_forth():
  track = np.arange(4.0)[:, None]
  assert controls.fit_length(track, 3)[:, 0].tolist() == [0, 1, 2]
  assert controls.fit_length(track, 9)[:, 0].tolist() == [0, 1, 2, 3, 2, 1, 0, 1, 2]
  assert controls.fit_length(track[:1], 3)[:, 0].tolist() == [0, 0, 0]


def _blink_onsets(closure_t):
  closed = closure_t > 0.5
  return int(np.sum(closed[1:] & ~closed[:-1]) + closed[0])


def test_blink_tracks():
  frames = 25 * 600
  assert not controls.blink_track("none", frames).any()
  for rate in (6, 30):
    track = controls.blink_track(f"rate={rate}", frames, rng=np.random.default_rng(1))
    assert track.shape == (frames, 2) and track.min() >= 0 and track.max() <= 1
    assert abs(_blink_onsets(track[:, 0]) - rate * 10) <= 0.2 * rate * 10
  fear = _blink_onsets(controls.blink_track("auto", frames, "fear", 1.0, np.random.default_rng(2))[:, 0])
  sad = _blink_onsets(controls.blink_track("auto", frames, "sad", 1.0, np.random.default_rng(2))[:, 0])
  assert fear > sad  # the corpus's rates: 26 vs 13 per minute
  ref = np.zeros((10, 2))
  ref[4] = 1.0
  assert controls.blink_track(ref, 25)[:, 0].tolist().count(1.0) == 3
  for bad in ("rate=0", "rate=x", "often"):
    with pytest.raises(UserError, match="--blink"):
      controls.blink_track(bad, 10)


def test_long_blink_tracks_are_built_in_pieces_equal_to_one_call():
  frames = controls.BLINK_PIECE_FRAMES * 2 + 77
  times = (np.arange(frames) + 0.5) / 25
  expected = eyes.blink_track(times, frames / 25, 30.0, np.random.default_rng(5))
  np.testing.assert_array_equal(controls.blink_track("rate=30", frames, rng=np.random.default_rng(5)),
                                expected.astype(np.float32))


def test_gaze_and_pose_tracks():
  assert not controls.gaze_track("still", 20).any()
  gaze = controls.gaze_track("auto", 500, rng=np.random.default_rng(0))
  assert gaze.shape == (500, 2) and gaze.std() > 0.005
  with pytest.raises(UserError, match="--gaze"):
    controls.gaze_track("left", 10)
  still = controls.pose_track("still", 5, still_pose=np.arange(6))
  assert still.shape == (5, 6) and np.all(still == np.arange(6))
  assert controls.pose_track(np.ones((3, 6)), 7).shape == (7, 6)
  with pytest.raises(UserError):
    controls.pose_track(np.ones((3, 5)), 7)


def test_eye_of_inverts_the_corpus_eye_channels():
  rng = np.random.default_rng(0)
  eye = np.concatenate([rng.uniform(0, 1, (40, 2)), rng.uniform(-0.5, 0.5, (40, 2))], axis=1)
  eye = eye.astype(np.float32)
  seq = CoeffSequence(eyes.eye_channels(eye), ICT_CHANNELS)
  np.testing.assert_allclose(reference.eye_of(seq), eye, atol=1e-6)


def test_read_reference_npz(tmp_path):
  beta0 = np.linspace(0, 0.3, len(ICT_CHANNELS)).astype(np.float32)
  seq = CoeffSequence(np.zeros((3, len(ICT_CHANNELS)), np.float32), ICT_CHANNELS, pose=np.ones((3, 6)),
                      beta0=beta0, model="builtin")
  save_npz(tmp_path / "ref.npz", seq)
  ref = reference.read_reference(str(tmp_path / "ref.npz"), ICT_CHANNELS)
  np.testing.assert_array_equal(ref.beta0, beta0)
  assert ref.pose.shape == (3, 6) and ref.eye is not None
  seq.beta0 = None
  seq.coeffs[0] = 0.5
  save_npz(tmp_path / "first.npz", seq)
  assert np.all(reference.read_reference(str(tmp_path / "first.npz"), ICT_CHANNELS).beta0 == 0.5)


def test_bfm_reference_without_bfm_names_the_flag(tmp_path):
  path = str(tmp_path / "first_frame.mat")
  scipy.io.savemat(path, {"coeff_3dmm": np.zeros((1, 73)), "full_3dmm": np.zeros((1, 257))})
  with pytest.raises(UserError, match="--bfm") as error:
    reference.read_reference(path, ICT_CHANNELS)
  assert "\n" not in str(error.value)
  with pytest.raises(UserError, match="no eye control"):
    reference.eye_reference(path)
