"""Eyes: blinks with natural statistics and gaze shifts — the eye-control input and its eye channels.

Blinks are a renewal process: inter-blink intervals are a 0.3 s refractory gap plus a gamma variate
(shape 2), right-skewed as measured intervals are, with the mean set by the blink rate. Rates are per
emotion around the spontaneous adult rate of about 17 per minute at rest (Bentivoglio et al. 1997,
"Analysis of blink rate patterns in normal subjects", Movement Disorders 12(6):1028–1034): higher with
arousal and anxiety (fear, anger), lower in sadness and when the eyes widen in surprise. A blink lasts
100–300 ms (median about 180 ms), closes fast and reopens about twice as slowly (closing 30 %, closed 15 %,
opening 55 %; VanderWerf et al. 2003, J Neurophysiol 89:2784–2796), reaches 0.9–1.0 closure, and the right
lid follows the left within a few percent.

Gaze holds still during fixations (0.4 s plus a gamma variate, mean 1.5 s; shorter in fear) and jumps
between them in one ~50 ms saccade; targets scatter a few degrees around an emotion's mean direction (sad
looks down). Eye control columns are schema.EYE_CHANNELS: blink_left, blink_right in [0,1], gaze_yaw
(radians, positive towards the subject's left) and gaze_pitch (radians, positive up).
"""

import numpy as np

from a2e_jax.core.channels import ICT_CHANNELS

BLINKS_PER_MINUTE = {"neutral": 17.0, "angry": 21.0, "contempt": 16.0, "disgusted": 18.0, "fear": 26.0,
                     "happy": 19.0, "sad": 13.0, "surprised": 11.0}  # fmt: skip
REFRACTORY_S = 0.3
GAMMA_SHAPE = 2.0
# (mean yaw, mean pitch, scatter) of gaze in radians, and the mean fixation length in seconds.
GAZE = {
  "neutral": (0.0, 0.0, 0.06, 1.5), "angry": (0.0, 0.0, 0.04, 1.8), "contempt": (0.05, -0.02, 0.05, 1.6),
  "disgusted": (-0.04, -0.03, 0.06, 1.4), "fear": (0.0, 0.02, 0.1, 0.8), "happy": (0.0, 0.01, 0.06, 1.4),
  "sad": (0.0, -0.12, 0.05, 2.0), "surprised": (0.0, 0.04, 0.05, 1.5),
}  # fmt: skip
LOOK_FULL_SCALE = 0.6  # radians of gaze that drive an eyeLook channel to 1 (about 35 degrees)

_CH = {name: i for i, name in enumerate(ICT_CHANNELS)}


def _blink_shape(u: np.ndarray) -> np.ndarray:
  """Closure at phase u in [0,1) of a blink: cosine close (30 %), hold (15 %), cosine reopen (55 %)."""
  closing = 0.5 - 0.5 * np.cos(np.pi * np.clip(u / 0.3, 0, 1))
  opening = 0.5 + 0.5 * np.cos(np.pi * np.clip((u - 0.45) / 0.55, 0, 1))
  return np.where(u < 0.3, closing, np.where(u < 0.45, 1.0, opening)) * ((u >= 0) & (u < 1))


def blink_times(duration_s: float, rate_per_minute: float, rng: np.random.Generator):
  """(onsets_s, lengths_s) of the blinks in [0, duration_s)."""
  mean_gap = 60.0 / rate_per_minute - REFRACTORY_S
  onsets, t = [], rng.uniform(0, 60.0 / rate_per_minute)
  while t < duration_s:
    onsets.append(t)
    t += REFRACTORY_S + rng.gamma(GAMMA_SHAPE, mean_gap / GAMMA_SHAPE)
  lengths = np.clip(rng.normal(0.18, 0.045, len(onsets)), 0.1, 0.3)
  return np.array(onsets), lengths


def blink_track(times_s: np.ndarray, duration_s: float, rate_per_minute: float, rng: np.random.Generator):
  """[T,2] blink closure (left, right) in [0,1] at `times_s`."""
  onsets, lengths = blink_times(duration_s, rate_per_minute, rng)
  depth = rng.uniform(0.9, 1.0, onsets.shape[0])
  right = depth * rng.uniform(0.95, 1.0, onsets.shape[0])
  phase = (times_s[:, None] - onsets[None, :]) / lengths[None, :]  # [T,B]
  shape = _blink_shape(phase)
  return np.stack([(shape * depth).max(1, initial=0.0), (shape * right).max(1, initial=0.0)], axis=1)


def gaze_track(times_s: np.ndarray, emotion: str, scale: float, rng: np.random.Generator) -> np.ndarray:
  """[T,2] gaze (yaw, pitch) in radians: fixations joined by ~50 ms saccades."""
  mean_yaw, mean_pitch, scatter, fixation_s = GAZE[emotion]
  end = float(times_s[-1]) if times_s.size else 0.0
  jumps, targets, t = [0.0], [], 0.0
  while True:
    yaw, pitch = rng.normal(0, scatter), rng.normal(0, scatter / 2)
    targets.append((scale * mean_yaw + yaw, scale * mean_pitch + pitch))
    t += 0.4 + rng.gamma(2.0, max(fixation_s - 0.4, 0.1) / 2.0)
    if t > end:
      break
    jumps.append(t)
  targets = np.array(targets)
  # Piecewise-linear through (jump, previous target) -> (jump + 50 ms, next target).
  knots_t = np.concatenate([[jumps[0]], np.repeat(jumps[1:], 2) + np.tile([0.0, 0.05], len(jumps) - 1)])
  knots_v = np.concatenate([targets[:1], np.repeat(targets[1:], 2, axis=0)])
  knots_v[1:-1:2] = targets[:-1]
  return np.stack([np.interp(times_s, knots_t, knots_v[:, k]) for k in range(2)], axis=1)


def eye_control(times_s: np.ndarray, duration_s: float, emotion: str, scale: float, rng: np.random.Generator):
  """[T,4] eye control (blink_left, blink_right, gaze_yaw, gaze_pitch) for one clip."""
  rate = BLINKS_PER_MINUTE["neutral"] + scale * (BLINKS_PER_MINUTE[emotion] - BLINKS_PER_MINUTE["neutral"])
  blinks = blink_track(times_s, duration_s, rate, rng)
  return np.concatenate([blinks, gaze_track(times_s, emotion, scale, rng)], axis=1).astype(np.float32)


def eye_channels(eye: np.ndarray) -> np.ndarray:
  """[T,53] eyeBlink and eyeLook channel values (ICT order) that show eye control `eye` [T,4]."""
  out = np.zeros((eye.shape[0], len(ICT_CHANNELS)), np.float32)
  out[:, _CH["eyeBlink_L"]], out[:, _CH["eyeBlink_R"]] = eye[:, 0], eye[:, 1]
  yaw, pitch = eye[:, 2] / LOOK_FULL_SCALE, eye[:, 3] / LOOK_FULL_SCALE
  left, right, up, down = (np.clip(v, 0, 1) for v in (yaw, -yaw, pitch, -pitch))
  # Looking to the subject's left turns the left eye outwards and the right eye inwards.
  out[:, _CH["eyeLookOut_L"]], out[:, _CH["eyeLookIn_R"]] = left, left
  out[:, _CH["eyeLookIn_L"]], out[:, _CH["eyeLookOut_R"]] = right, right
  for side in "LR":
    out[:, _CH["eyeLookUp_" + side]], out[:, _CH["eyeLookDown_" + side]] = up, down
  return out
