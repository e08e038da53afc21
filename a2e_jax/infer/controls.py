"""Generation controls as per-frame tracks: emotion (label, blend, schedule, speech), eyes, head pose.

Emotion. Every emotion request becomes a list of keys, each holding from its time on:
  happy                 one label at the given intensity (`--intensity`, default 2)
  happy@3               the same with its intensity
  happy=0.7+sad=0.3@2   a blend: label weights (normalised to sum 1) at one intensity
  auto                  the emotion heard in the speech where the reading is confident, else neutral
                        (the default; infer/confidence.py)
  speech                the emotion the model hears in the speech, however unsure the reading
  0:neutral,3.5:happy@3,8:speech      a schedule: `time_s:emotion` keys, separated by commas
A key's latent is the model's label embedding `neutral + (intensity / 3) · weights @ directions` (linear in
the weights, so blends and intensities interpolate), the pooled emotion latent of the speech (for `auto`
mixed with the neutral embedding by the reading's confidence), or that of another clip. Frames mix the
keys' latents with weights `mix_tq` [T,Q]: each key takes over from the
mixture before it along a raised-cosine ramp of `transition_s` seconds that starts at its time, so
transitions are smooth even when keys come faster than the ramp.

Eyes. The eye-control input [T,4] (blink left/right in [0,1], gaze yaw/pitch in radians; core/schema.py):
  blink  auto (the corpus's natural blink statistics for the emotion), none, rate=N (blinks per minute),
         or a reference track [T',2]
  gaze   auto (fixations and saccades as in the corpus), still (straight ahead), or a reference [T',2]
Reference tracks shorter or longer than the clip are cut or played back and forth (`fit_length`), so a
looped track never jumps.
"""

import dataclasses
import re

import numpy as np

from a2e_jax.core import schema
from a2e_jax.core.errors import UserError
from a2e_jax.data.synth import eyes

SPEECH = "speech"
AUTO = "auto"
DEFAULT_INTENSITY = 2.0
DEFAULT_TRANSITION_S = 0.5
BLINK_PIECE_FRAMES = 1500
_NUMBER = r"[0-9]*\.?[0-9]+"


@dataclasses.dataclass(frozen=True)
class EmotionKey:
  """One emotion from `time_s` on.

  Attributes:
    time_s: when the key takes over (seconds from the start).
    weights: [E] label weights summing to 1, or None for an emotion taken from audio.
    intensity: 0..3 (0 is neutral whatever the label); unused for audio emotions.
    latent: [D] a fixed latent (another clip's emotion), or None: with `weights` None and `latent` None the
      key is the speech's own emotion.
    fallback: for a speech key, fall back to neutral where the reading is not confident (`auto`).
  """

  time_s: float = 0.0
  weights: tuple | None = None
  intensity: float = DEFAULT_INTENSITY
  latent: np.ndarray | None = None
  fallback: bool = False

  @property
  def is_speech(self) -> bool:
    return self.weights is None and self.latent is None

  def describe(self) -> str:
    if self.is_speech:
      return AUTO if self.fallback else SPEECH
    if self.weights is None:
      return "reference clip"
    parts = [f"{schema.EMOTIONS[e]}={w:.2g}" for e, w in enumerate(self.weights) if w > 0]
    name = parts[0].split("=")[0] if len(parts) == 1 else "+".join(parts)
    return f"{name}@{self.intensity:g}"


def parse_emotion(text: str, intensity: float | None = None, time_s: float = 0.0) -> EmotionKey:
  """`happy`, `happy@3`, `happy=0.7+sad=0.3@2`, `auto` or `speech` -> EmotionKey (`intensity` when no @)."""
  text = text.strip()
  if text.lower() in (SPEECH, AUTO):
    return EmotionKey(time_s, fallback=text.lower() == AUTO)
  body, _, level = text.partition("@")
  if level:
    if not re.fullmatch(_NUMBER, level.strip()):
      raise UserError(f"emotion {text!r}: intensity {level!r} is not a number; write e.g. happy@3")
    intensity = float(level)
  intensity = DEFAULT_INTENSITY if intensity is None else float(intensity)
  if not 0.0 <= intensity <= schema.INTENSITIES[-1]:
    raise UserError(f"emotion {text!r}: intensity {intensity:g} is outside 0..{schema.INTENSITIES[-1]}")
  weights = np.zeros(len(schema.EMOTIONS))
  for part in body.split("+"):
    name, _, weight = part.partition("=")
    try:
      index = schema.emotion_index(name)
    except ValueError as e:
      raise UserError(f"emotion {text!r}: {e} (or 'auto', 'speech')") from None
    if weight and re.fullmatch("-" + _NUMBER, weight.strip()):
      raise UserError(f"emotion {text!r}: weight {weight!r} is negative; blend weights are 0 or more, "
                      "e.g. happy=0.7+sad=0.3")
    if weight and not re.fullmatch(_NUMBER, weight.strip()):
      raise UserError(f"emotion {text!r}: weight {weight!r} is not a number; write e.g. happy=0.7+sad=0.3")
    weights[index] += float(weight) if weight else 1.0
  if weights.sum() <= 0:
    raise UserError(f"emotion {text!r}: the weights sum to 0; give at least one positive weight")
  return EmotionKey(time_s, tuple(float(w) for w in weights / weights.sum()), intensity)


def parse_schedule(text: str, intensity: float | None = None) -> list[EmotionKey]:
  """`0:neutral,3.5:happy@3,8:speech` -> keys sorted by time (`intensity` for keys without @)."""
  keys = []
  for item in filter(None, (s.strip() for s in text.split(","))):
    time, sep, emotion = item.partition(":")
    if not sep or not re.fullmatch(_NUMBER, time.strip()):
      raise UserError(f"emotion schedule item {item!r}: write TIME_S:EMOTION, e.g. 0:neutral,3.5:happy@3")
    keys.append(parse_emotion(emotion, intensity, float(time)))
  if not keys:
    raise UserError(f"emotion schedule {text!r} is empty; write e.g. 0:neutral,3.5:happy@3")
  times = [k.time_s for k in keys]
  if times != sorted(times):
    raise UserError(f"emotion schedule {text!r}: times must not decrease")
  return keys


def mix_weights(keys: list[EmotionKey], num_frames: int, fps: float = schema.FPS,
                transition_s: float = DEFAULT_TRANSITION_S) -> np.ndarray:
  """[T,Q] float32 weights of the Q keys at each frame centre; rows sum to 1 (see the module docstring)."""
  times_t = (np.arange(num_frames) + 0.5) / fps
  mix_tq = np.zeros((num_frames, len(keys)))
  mix_tq[:, 0] = 1.0
  for q, key in enumerate(keys[1:], start=1):
    if transition_s > 0:
      u = np.clip((times_t - key.time_s) / transition_s, 0.0, 1.0)
      take = 0.5 - 0.5 * np.cos(np.pi * u)
    else:
      take = (times_t >= key.time_s).astype(np.float64)
    mix_tq *= (1.0 - take)[:, None]
    mix_tq[:, q] += take
  return mix_tq.astype(np.float32)


def label_arrays(keys: list[EmotionKey]) -> tuple[np.ndarray, np.ndarray]:
  """([Q,E] label weights, [Q] intensities) for the model's label embedding (zeros for other keys)."""
  weights_qe = np.array([k.weights or (0.0,) * len(schema.EMOTIONS) for k in keys], np.float32)
  return weights_qe, np.array([k.intensity for k in keys], np.float32)


def single_label(keys: list[EmotionKey]) -> tuple[str, float]:
  """(name, intensity / 3) of a request of one pure label, else ("neutral", 0); sets the blink rate."""
  if len(keys) == 1 and keys[0].weights is not None and max(keys[0].weights) == 1.0 and keys[0].intensity:
    return schema.EMOTIONS[int(np.argmax(keys[0].weights))], keys[0].intensity / schema.INTENSITIES[-1]
  return "neutral", 0.0


def fit_length(track_t_: np.ndarray, num_frames: int) -> np.ndarray:
  """A track [T',...] cut to `num_frames`, or played forwards and backwards until it is long enough."""
  track_t_ = np.asarray(track_t_)
  n = track_t_.shape[0]
  if n >= num_frames:
    return track_t_[:num_frames]
  if n == 1:
    return np.repeat(track_t_, num_frames, axis=0)
  period = 2 * n - 2
  phase = np.arange(num_frames) % period
  return track_t_[np.where(phase < n, phase, period - phase)]


def blink_track(spec, num_frames: int, emotion: str = "neutral", scale: float = 0.0,
                rng: np.random.Generator | None = None, fps: float = schema.FPS) -> np.ndarray:
  """[T,2] blink closure (left, right) for `spec`: "auto", "none", "rate=N", or an array [T',2]."""
  rng = rng or np.random.default_rng(0)
  if not isinstance(spec, str):
    track = np.asarray(spec, np.float32)
    if track.ndim != 2 or track.shape[1] != 2 or track.shape[0] == 0:
      raise UserError(f"blink reference has shape {track.shape}, expected [T,2] (left, right closure)")
    return np.clip(fit_length(track, num_frames), 0.0, 1.0)
  times_s, duration_s = (np.arange(num_frames) + 0.5) / fps, num_frames / fps
  if spec == "none":
    return np.zeros((num_frames, 2), np.float32)
  if spec == "auto":
    base = eyes.BLINKS_PER_MINUTE["neutral"]
    rate = base + scale * (eyes.BLINKS_PER_MINUTE[emotion] - base)
  else:
    match = re.fullmatch(r"rate=(" + _NUMBER + ")", spec.strip())
    rate = float(match.group(1)) if match else -1.0
    if not 0 < rate <= 120:
      raise UserError(f"--blink {spec!r}: use auto, none, rate=N (0 < N <= 120 blinks per minute) or a "
                      "reference .npz/.csv with eye channels")
  # The corpus's blink_track holds a [frames, blinks] array; pieces of frames keep that small for an hour,
  # and restarting the generator's state for each piece draws the same blinks every time.
  state = rng.bit_generator.state
  pieces = []
  for start in range(0, num_frames, BLINK_PIECE_FRAMES):
    rng.bit_generator.state = state
    pieces.append(eyes.blink_track(times_s[start:start + BLINK_PIECE_FRAMES], duration_s, rate, rng))
  return np.concatenate(pieces).astype(np.float32)


def gaze_track(spec, num_frames: int, emotion: str = "neutral", scale: float = 0.0,
               rng: np.random.Generator | None = None, fps: float = schema.FPS) -> np.ndarray:
  """[T,2] gaze (yaw, pitch) in radians for `spec`: "auto", "still", or an array [T',2]."""
  rng = rng or np.random.default_rng(0)
  if not isinstance(spec, str):
    track = np.asarray(spec, np.float32)
    if track.ndim != 2 or track.shape[1] != 2 or track.shape[0] == 0:
      raise UserError(f"gaze reference has shape {track.shape}, expected [T,2] (yaw, pitch in radians)")
    return fit_length(track, num_frames)
  if spec == "still":
    return np.zeros((num_frames, 2), np.float32)
  if spec != "auto":
    raise UserError(f"--gaze {spec!r}: use auto, still or a reference .npz/.csv with eye channels")
  times_s = (np.arange(num_frames) + 0.5) / fps
  return eyes.gaze_track(times_s, emotion, scale, rng).astype(np.float32)


def pose_track(spec, num_frames: int, still_pose=None) -> np.ndarray:
  """[T,6] head pose: "still" holds `still_pose` [6] (default zeros); an array [T',6] is fitted in length."""
  if isinstance(spec, str):
    if spec != "still":
      raise UserError(f"--pose {spec!r}: use still or a reference coefficient file with a pose track")
    pose = np.zeros(schema.POSE, np.float32) if still_pose is None else np.asarray(still_pose, np.float32)
    return np.broadcast_to(pose, (num_frames, schema.POSE)).copy()
  track = np.asarray(spec, np.float32)
  if track.ndim != 2 or track.shape[1] != schema.POSE or track.shape[0] == 0:
    raise UserError(f"pose reference has shape {track.shape}, expected [T,{schema.POSE}]")
  return fit_length(track, num_frames)
