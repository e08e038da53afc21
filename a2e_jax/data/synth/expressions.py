"""Emotion on the face: FACS-based expressions per MEAD class, their dynamics, and each speaker's rest face.

Prototype expressions follow the action units of Ekman & Friesen's EMFACS prototypes (Ekman, Friesen &
Hager 2002, FACS Investigator's Guide; Ekman & Friesen 1975, "Unmasking the Face"), mapped to ARKit
channels the way ARKit/ICT define them (AU1 inner brow raiser -> browInnerUp, AU2 -> browOuterUp, AU4 ->
browDown, AU5 -> eyeWide, AU6 -> cheekSquint, AU7 -> eyeSquint, AU9 -> noseSneer, AU10 -> mouthUpperUp,
AU12 -> mouthSmile, AU14 -> mouthDimple, AU15 -> mouthFrown, AU16 -> mouthLowerDown, AU17 ->
mouthShrugLower, AU20 -> mouthStretch, AU23/24 -> mouthPress, AU26 -> jawOpen):

  happy      AU6 + AU12 (+ AU14 a little)
  sad        AU1 + AU4 + AU15 (+ AU17)
  surprised  AU1 + AU2 + AU5 + AU26
  fear       AU1 + AU2 + AU4 + AU5 + AU7 + AU20 + AU26
  angry      AU4 + AU5 + AU7 + AU10 + AU23/24
  disgusted  AU9 + AU10 + AU15 + AU16 (+ AU4, AU6)
  contempt   unilateral AU12 + AU14 (right side), the one asymmetric prototype

A clip's expression is the prototype x MEAD intensity scale x the speaker's expressivity, reached through
an onset ramp (it starts part-way, as MEAD actors are already in the emotion when recording starts), with a
slow sway (sums of 0.1–0.5 Hz sines, one per face region) and, because upper-face motion in speech follows
prosody (Cavé et al. 1996, "About the relationship between eyebrow movements and F0 variations", ICSLP),
brow movements on accented syllables whose size follows the syllable's loudness — so the upper face moves
with the voice, in an emotion-specific way (raises for surprise and happiness, frowns for anger).
"""

import numpy as np

from a2e_jax.core.channels import ICT_CHANNELS
from a2e_jax.data.synth import dsp
from a2e_jax.data.synth.emotion import INTENSITY_SCALE

_CHANNEL = {name: i for i, name in enumerate(ICT_CHANNELS)}


def channel_vector(values: dict) -> np.ndarray:
  """[53] vector from {channel: value}; a name without _L/_R sets both sides."""
  vector = np.zeros(len(ICT_CHANNELS), np.float64)
  for name, value in values.items():
    for full in (name,) if name in _CHANNEL else (name + "_L", name + "_R"):
      vector[_CHANNEL[full]] = value
  return vector


PROTOTYPES = {
  "neutral": {},
  "angry": {"browDown": 0.85, "eyeWide": 0.25, "eyeSquint": 0.5, "mouthUpperUp": 0.2, "mouthPress": 0.45,
            "noseSneer": 0.25},
  "contempt": {"mouthSmile_R": 0.6, "mouthDimple_R": 0.55, "eyeSquint_R": 0.15, "mouthPress_R": 0.15,
               "browDown_L": 0.15},
  "disgusted": {"noseSneer": 0.75, "mouthUpperUp": 0.55, "mouthFrown": 0.4, "mouthLowerDown": 0.3,
                "browDown": 0.45, "cheekSquint": 0.35, "eyeSquint": 0.3},
  "fear": {"browInnerUp": 0.85, "browOuterUp": 0.5, "browDown": 0.3, "eyeWide": 0.75, "eyeSquint": 0.12,
           "mouthStretch": 0.6, "jawOpen": 0.1},
  "happy": {"cheekSquint": 0.65, "eyeSquint": 0.4, "mouthSmile": 0.85, "mouthDimple": 0.25},
  "sad": {"browInnerUp": 0.8, "browDown": 0.3, "mouthFrown": 0.7, "mouthShrugLower": 0.4},
  "surprised": {"browInnerUp": 0.85, "browOuterUp": 0.85, "eyeWide": 0.75, "jawOpen": 0.18},
}  # fmt: skip
# Gaze and blinks stay out of the prototypes: eyeLook/eyeBlink show the eye control alone (eyes.py).
_PROTOTYPE_VECTORS = {k: channel_vector(v) for k, v in PROTOTYPES.items()}

# Brow movement per unit accent strength: raises in most emotions, a frown in anger and disgust.
ACCENT_BROWS = {
  "neutral": {"browInnerUp": 0.15, "browOuterUp": 0.12}, "angry": {"browDown": 0.25},
  "contempt": {"browOuterUp_R": 0.12}, "disgusted": {"browDown": 0.15, "noseSneer": 0.1},
  "fear": {"browInnerUp": 0.2, "browOuterUp": 0.1}, "happy": {"browInnerUp": 0.18, "browOuterUp": 0.2},
  "sad": {"browInnerUp": 0.1}, "surprised": {"browInnerUp": 0.3, "browOuterUp": 0.3},
}  # fmt: skip
_ACCENT_VECTORS = {k: channel_vector(v) for k, v in ACCENT_BROWS.items()}
ACCENT_WIDTH_S = 0.12

_REGIONS = {"brow": ("brow",), "eye": ("eye", "cheek", "nose"), "mouth": ("mouth", "jaw")}
_REGION_MASKS = {r: np.array([n.startswith(p) for n in ICT_CHANNELS]) for r, p in _REGIONS.items()}

# Resting-face channels and their ranges; eyeBlink/eyeLook stay 0 (they belong to the eye control).
_REST_RANGES = {
  "browDown": 0.18, "browInnerUp": 0.2, "browOuterUp": 0.18, "cheekSquint": 0.15, "eyeSquint": 0.2,
  "eyeWide": 0.15, "jawOpen": 0.06, "jawForward": 0.1, "mouthSmile": 0.15, "mouthFrown": 0.15,
  "mouthPress": 0.1, "mouthRollLower": 0.1, "mouthPucker": 0.08, "mouthDimple": 0.1, "noseSneer": 0.08,
  "mouthShrugUpper": 0.1, "mouthLeft": 0.08, "mouthRight": 0.08,
}  # fmt: skip


def resting_offset(rng: np.random.Generator) -> np.ndarray:
  """[53] float32 resting expression beta0: a random subset of channels, roughly symmetric, small."""
  vector = np.zeros(len(ICT_CHANNELS), np.float32)
  for name, top in _REST_RANGES.items():
    if rng.random() < 0.6:
      level = rng.uniform(0.2, 1.0) * top
      for full in (name,) if name in _CHANNEL else (name + "_L", name + "_R"):
        vector[_CHANNEL[full]] = level * rng.uniform(0.85, 1.15)
  return vector


def onset_ramp(times_s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """[T] expression envelope: starts at 30–70 % and reaches 1 over 0.3–0.9 s (smoothstep)."""
  start, length = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.9)
  u = np.clip(times_s / length, 0.0, 1.0)
  return start + (1 - start) * u * u * (3 - 2 * u)


def expression_track(emotion: str, intensity: int, times_s: np.ndarray, accents, expressivity: float,
                     ramp: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """[T,53] emotion expression (ICT order) at `times_s`, before the resting offset is added.

  accents: (time_s, strength in [0,1]) of accented syllables; expressivity: the speaker's scale;
  ramp: [T] onset envelope (`onset_ramp`).
  """
  scale = INTENSITY_SCALE[intensity] * expressivity * rng.uniform(0.9, 1.1)
  sway = np.ones((times_s.shape[0], len(ICT_CHANNELS)))
  for mask in _REGION_MASKS.values():
    sway[:, mask] += 0.15 * dsp.slow_wobble(rng, times_s, 0.1, 0.5)[:, None]
  out = _PROTOTYPE_VECTORS[emotion][None, :] * (scale * ramp)[:, None] * sway
  if accents:
    when = np.array([a[0] for a in accents])
    strength = np.array([a[1] for a in accents])
    pulses = (strength[None, :] * np.exp(-0.5 * ((times_s[:, None] - when[None, :]) / ACCENT_WIDTH_S) ** 2))
    accent_scale = 1.0 if emotion == "neutral" else 0.6 + 0.4 * INTENSITY_SCALE[intensity]
    out += np.clip(pulses.sum(1), 0, 1.5)[:, None] * _ACCENT_VECTORS[emotion][None, :] * accent_scale
  return out.astype(np.float32)
