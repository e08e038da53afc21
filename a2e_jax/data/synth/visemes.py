"""Speech mouth movement: phoneme events -> per-frame ARKit/ICT channel values with coarticulation.

Each phoneme is a segment [start, next start) with a viseme target (a few mouth and jaw channels) and a
dominance function, after Cohen & Massaro (1993), "Modeling coarticulation in synthetic visual speech"
(Models and Techniques in Computer Animation, 139–156): the value of a channel at time t is the
dominance-weighted mean of all targets, sum_i D_i(t) T_i / sum_i D_i(t). Dominance is flat over the
middle of a segment and decays outside it as exp(-(d / sigma)^c), more slowly before the segment than
after it (anticipation reaches further than carry-over, as lip rounding does in "s" of "soup"). Each
segment's dominance magnitude differs for the lips and the jaw: a bilabial dominates the lips completely
(the lips must close) while /t/, /k/ or /h/ barely constrain them and take their neighbours' shape.
Vowel targets grow with stress, and every movement with the speaker's and the emotion's articulation,
except the lip closures, which happen however sloppy the speech.

Lip closure follows ARKit's definition of mouthClose — lips brought together against an open jaw, so
jawOpen = mouthClose means closed lips. It is a hard constraint, not a blend: `closure_track` is 1 over
each bilabial (/p b m/) with raised-cosine closing (60 ms) and opening (40 ms) ramps, and `close_lips`
sets mouthClose = closure x the face's final jawOpen, whatever opened the jaw (speech, an emotion, the
resting face).
"""

import numpy as np

from a2e_jax.core.channels import ICT_CHANNELS
from a2e_jax.data.synth import phonemes
from a2e_jax.data.synth.expressions import channel_vector

_CHANNEL = {name: i for i, name in enumerate(ICT_CHANNELS)}
# Channels whose target is a closure: not reduced by sloppy articulation.
_CLOSURE = ("mouthPress_L", "mouthPress_R", "mouthRollLower", "mouthRollUpper")
_CLOSE, _JAW_OPEN = ICT_CHANNELS.index("mouthClose"), ICT_CHANNELS.index("jawOpen")

# Targets per viseme class; names without a side apply to both _L and _R. Closure is separate (close_lips).
_TARGETS = {
  "sil": {},
  "PP": {"jawOpen": 0.04, "mouthPress": 0.45},
  "FF": {"jawOpen": 0.08, "mouthRollLower": 0.55, "mouthUpperUp": 0.2, "mouthPress": 0.1},
  "TH": {"jawOpen": 0.14, "mouthLowerDown": 0.15, "mouthUpperUp": 0.05},
  "DD": {"jawOpen": 0.13, "mouthLowerDown": 0.08},
  "kk": {"jawOpen": 0.18, "mouthStretch": 0.05},
  "CH": {"jawOpen": 0.12, "mouthFunnel": 0.55, "mouthPucker": 0.25, "mouthUpperUp": 0.2,
         "mouthLowerDown": 0.2},
  "SS": {"jawOpen": 0.06, "mouthStretch": 0.3, "mouthSmile": 0.1, "mouthUpperUp": 0.1, "mouthLowerDown": 0.1},
  "RR": {"jawOpen": 0.12, "mouthPucker": 0.35, "mouthFunnel": 0.3},
  "ww": {"jawOpen": 0.07, "mouthPucker": 0.75, "mouthFunnel": 0.3},
  "yy": {"jawOpen": 0.1, "mouthStretch": 0.25, "mouthSmile": 0.1},
  "hh": {"jawOpen": 0.2},
  "aa": {"jawOpen": 0.62, "mouthLowerDown": 0.3, "mouthUpperUp": 0.1, "mouthStretch": 0.05},
  "ae": {"jawOpen": 0.5, "mouthStretch": 0.3, "mouthLowerDown": 0.3, "mouthUpperUp": 0.15},
  "E": {"jawOpen": 0.36, "mouthStretch": 0.3, "mouthLowerDown": 0.2},
  "ih": {"jawOpen": 0.15, "mouthStretch": 0.4, "mouthSmile": 0.18, "mouthLowerDown": 0.1},
  "oh": {"jawOpen": 0.4, "mouthFunnel": 0.55, "mouthPucker": 0.25},
  "ou": {"jawOpen": 0.14, "mouthPucker": 0.75, "mouthFunnel": 0.35},
  "@": {"jawOpen": 0.26, "mouthLowerDown": 0.1},
}  # fmt: skip
# (lips, jaw) dominance magnitudes per class.
_DOMINANCE = {
  "sil": (0.5, 0.5), "PP": (1.0, 0.5), "FF": (0.9, 0.6), "TH": (0.4, 0.5), "DD": (0.15, 0.4),
  "kk": (0.12, 0.3), "CH": (0.7, 0.5), "SS": (0.35, 0.6), "RR": (0.5, 0.3), "ww": (0.8, 0.4),
  "yy": (0.2, 0.3), "hh": (0.05, 0.05), "aa": (0.5, 0.9), "ae": (0.5, 0.9), "E": (0.5, 0.8),
  "ih": (0.6, 0.7), "oh": (0.8, 0.8), "ou": (0.9, 0.7), "@": (0.3, 0.4),
}  # fmt: skip
STRESS_SCALE = (0.85, 1.0, 1.15)  # unstressed, secondary, primary vowels
SIGMA_BEFORE_S = 0.05  # anticipatory spread
SIGMA_AFTER_S = 0.035  # carry-over spread
SHAPE = 1.5
CORE = 0.7  # fraction of a segment around its middle where dominance is full
CLOSING_S, OPENING_S = 0.06, 0.04  # lip closing and opening around a bilabial
# A faint pull towards the resting mouth, so that targets decay to rest far from any segment.
REST_DOMINANCE = 1e-3


_TARGET_VECTORS = {cls: channel_vector(t) for cls, t in _TARGETS.items()}
_JAW = np.zeros(len(ICT_CHANNELS), bool)
_JAW[_CHANNEL["jawOpen"]] = True
_MOUTH = np.zeros(len(ICT_CHANNELS), bool)
_MOUTH[[i for i, n in enumerate(ICT_CHANNELS) if n.startswith(("mouth", "jaw"))]] = True
_SCALED = _MOUTH & ~np.isin(np.array(ICT_CHANNELS), _CLOSURE)


def segments(events, end_s: float):
  """Viseme segments (class, stress, start_s, end_s) from phoneme events [(mnemonic, start_s)].

  A diphthong becomes two segments (55 % onset, 45 % glide); silence fills the time before the first
  event and after `end_s`-bounded last one.
  """
  out = []
  if events and events[0][1] > 0:
    out.append(("sil", 0, 0.0, events[0][1]))
  for i, (mnemonic, start) in enumerate(events):
    end = events[i + 1][1] if i + 1 < len(events) else end_s
    if end <= start:
      continue
    stress = phonemes.split_stress(mnemonic)[1]
    classes = phonemes.viseme_classes(mnemonic)
    if len(classes) == 2:
      middle = start + 0.55 * (end - start)
      out += [(classes[0], stress, start, middle), (classes[1], stress, middle, end)]
    else:
      out.append((classes[0], stress, start, end))
  return out


def viseme_track(events, times_s: np.ndarray, end_s: float, articulation: float = 1.0) -> np.ndarray:
  """[T,53] mouth and jaw channel values at `times_s` [T] (ICT_CHANNELS order; 0 = resting mouth).


  events: (espeak mnemonic, start_s) in time order; end_s: end of the last phoneme;
  articulation: scale of non-closing movements (speaker style x emotion).
  """
  segs = segments(events, end_s)
  if not segs:
    return np.zeros((times_s.shape[0], len(ICT_CHANNELS)), np.float32)
  start = np.array([s[2] for s in segs])
  end = np.array([s[3] for s in segs])
  middle, half_core = (start + end) / 2, CORE * (end - start) / 2
  targets = np.stack([_TARGET_VECTORS[s[0]] for s in segs])  # [P,53]
  vowel = np.array([s[0] in phonemes.VOWEL_CLASSES for s in segs])
  stress = np.array([STRESS_SCALE[s[1]] for s in segs])
  targets *= np.where(vowel, stress, 1.0)[:, None]
  targets[:, _SCALED] *= articulation
  offset = times_s[:, None] - middle[None, :]  # [T,P]
  distance = np.maximum(np.abs(offset) - half_core[None, :], 0.0)
  sigma = np.where(offset < 0, SIGMA_BEFORE_S, SIGMA_AFTER_S)
  falloff = np.exp(-((distance / sigma) ** SHAPE))
  magnitude = np.array([_DOMINANCE[s[0]] for s in segs])  # [P,2] lips, jaw
  out = np.zeros((times_s.shape[0], len(ICT_CHANNELS)))
  for group, mask in ((0, _MOUTH & ~_JAW), (1, _JAW)):
    weight = falloff * magnitude[None, :, group]  # [T,P]
    out[:, mask] = (weight @ targets[:, mask]) / (weight.sum(1, keepdims=True) + REST_DOMINANCE)
  return np.clip(out, 0.0, 1.0).astype(np.float32)


def closure_track(events, times_s: np.ndarray, end_s: float) -> np.ndarray:
  """[T] lip closure in [0,1] at `times_s`: 1 during bilabials, raised-cosine ramps around them."""
  closure = np.zeros(times_s.shape[0])
  for cls, _, start, end in segments(events, end_s):
    if cls == "PP":
      before = np.clip((start - times_s) / CLOSING_S, 0, 1)
      after = np.clip((times_s - end) / OPENING_S, 0, 1)
      closure = np.maximum(closure, 0.5 + 0.5 * np.cos(np.pi * np.maximum(before, after)))
  return closure


def close_lips(coeffs: np.ndarray, closure: np.ndarray) -> np.ndarray:
  """[T,53] coefficients with mouthClose = closure [T] x jawOpen: the lips meet where closure is 1."""
  out = coeffs.copy()
  out[:, _CLOSE] = closure * coeffs[:, _JAW_OPEN]
  return out
