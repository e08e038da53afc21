"""Gentle head pose: slow sway, nods on accented syllables, and an emotion's posture.

Angles are radians about x, y, z with R = Rz·Ry·Rx (Deep3DFaceRecon's convention; the face looks along +z
with y up, so a positive x angle tips the head forward/down), translation is zero. Head motion in speech
follows prosody — nods and turns line up with stressed, loud syllables (Munhall et al. 2004, "Visual
prosody and speech intelligibility: head movement improves auditory speech perception", Psychological
Science 15(2):133–137; Graf et al. 2002, "Visual prosody: facial movements accompanying speech", IEEE FG)
— so each accent adds a small downward nod. Postures: sadness lowers the head, surprise and contempt raise
the chin (contempt with a tilt), disgust turns a little away; aroused emotions move more, sadness less.
"""

import numpy as np

from a2e_jax.core import schema
from a2e_jax.data.synth import dsp

# Posture (pitch, yaw, roll) at full intensity and the movement scale per emotion.
POSTURE = {
  "neutral": ((0.0, 0.0, 0.0), 1.0), "angry": ((0.04, 0.0, 0.0), 1.3), "contempt": ((-0.05, 0.02, 0.05), 0.8),
  "disgusted": ((-0.02, -0.05, 0.0), 1.0), "fear": ((0.02, 0.0, 0.0), 1.2), "happy": ((0.0, 0.0, 0.03), 1.3),
  "sad": ((0.09, 0.0, 0.0), 0.6), "surprised": ((-0.05, 0.0, 0.0), 1.2),
}  # fmt: skip
SWAY = (0.025, 0.04, 0.015)  # radians of slow sway in pitch, yaw, roll
NOD = 0.03  # radians of downward nod per unit accent strength
NOD_WIDTH_S = 0.15


def head_pose(times_s: np.ndarray, emotion: str, scale: float, accents, ramp: np.ndarray,
              rng: np.random.Generator) -> np.ndarray:
  """[T,6] pose (3 angles, 3 translations) at `times_s`.

  scale: the emotion's intensity scale; accents: (time_s, strength) of accented syllables; ramp: [T]
  onset envelope shared with the facial expression.
  """
  posture, movement = POSTURE[emotion]
  movement = 1 + scale * (movement - 1)
  pose = np.zeros((times_s.shape[0], schema.POSE), np.float32)
  for axis in range(3):
    sway = SWAY[axis] * movement * dsp.slow_wobble(rng, times_s, 0.05, 0.3)
    pose[:, axis] = sway + scale * posture[axis] * ramp
  for when, strength in accents:
    pose[:, 0] += NOD * movement * strength * np.exp(-0.5 * ((times_s - when) / NOD_WIDTH_S) ** 2)
  return pose
