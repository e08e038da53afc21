"""One generation's controls, resolved for a network: the emotion keys, the identity β0 and still pose of
a reference, and the eye and head-pose tracks (controls.py holds the tracks themselves)."""

import dataclasses
import os
from collections.abc import Callable

import numpy as np

from a2e_jax.core.errors import UserError
from a2e_jax.face.registry import resolve_model
from a2e_jax.infer import controls
from a2e_jax.infer.reference import eye_reference, pose_reference, read_reference


@dataclasses.dataclass
class Request:
  """What the decode pass needs besides the audio.

  Attributes:
    keys: the emotion keys (controls.EmotionKey), one per schedule entry.
    beta0: [K] the identity: the reference's resting expression, else zeros.
    eye: T -> [T,4] eye control (blink left/right, gaze yaw/pitch) of a T-frame clip.
    pose: T -> [T,6] head pose of a T-frame clip.
    transition_s: the length of each emotion change.
  """

  keys: list
  beta0: np.ndarray
  eye: Callable[[int], np.ndarray]
  pose: Callable[[int], np.ndarray]
  transition_s: float

  def describe(self) -> str:
    """The requested emotion in words ("happy@3", "0s:neutral, 3.5s:happy@3")."""
    if len(self.keys) == 1:
      return self.keys[0].describe()
    return ", ".join(f"{k.time_s:g}s:{k.describe()}" for k in self.keys)


def emotion_keys(emotion, intensity, emotion_from, emotion_schedule, clip_emotion: Callable) -> list:
  """The emotion keys of one call; `clip_emotion(emotion_from)` is the [D] latent of another clip."""
  given = [x is not None for x in (emotion, emotion_from, emotion_schedule)]
  if sum(given) > 1:
    raise UserError("give at most one of emotion, emotion_from and emotion_schedule")
  if emotion_schedule is not None:
    return controls.parse_schedule(emotion_schedule, intensity)
  if emotion_from is not None:
    return [controls.EmotionKey(latent=clip_emotion(emotion_from))]
  if emotion is None:
    if intensity is not None:
      raise UserError("an intensity needs an emotion label (e.g. emotion='happy', intensity=3)")
    return [controls.EmotionKey(fallback=True)]
  return [controls.parse_emotion(emotion, intensity)]


def eye_part(spec, column: int, what: str):
  """A blink/gaze spec: a keyword, or a reference file's eye columns [T',2]."""
  if isinstance(spec, np.ndarray):
    return spec
  spec = os.fspath(spec)
  if spec in ("auto", "none", "still") or spec.startswith("rate="):
    return spec
  if not os.path.exists(spec):
    raise UserError(f"--{what} {spec!r}: no such file; use " +
                    ("auto, none, rate=N" if what == "blink" else "auto, still") + " or a reference file")
  return eye_reference(spec)[:, column:column + 2]


def resolve(weights, *, keys, ref, transition_s, blink, gaze, pose, seed, bfm_model) -> Request:
  """The Request of one call to a network with `weights` (see `generate` for the arguments)."""
  names = tuple(weights.channel_names)
  reference = None
  if ref is not None:
    network_model = resolve_model(weights.face_model) if weights.face_model else None
    reference = read_reference(os.fspath(ref), names, network_model, bfm_model)
  beta0 = reference.beta0 if reference is not None else np.zeros(len(names), np.float32)
  name, scale = controls.single_label(keys)
  blink_rng, gaze_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
  blink_spec, gaze_spec = eye_part(blink, 0, "blink"), eye_part(gaze, 2, "gaze")

  def eye(num_frames):
    return np.concatenate([
      controls.blink_track(blink_spec, num_frames, name, scale, blink_rng),
      controls.gaze_track(gaze_spec, num_frames, name, scale, gaze_rng)], axis=1)

  if isinstance(pose, str | os.PathLike) and os.fspath(pose) != "still":
    pose = pose_reference(os.fspath(pose))
  still = reference.pose[0] if reference is not None and reference.pose is not None else None

  def pose_track(num_frames):
    return controls.pose_track(pose, num_frames, still)

  return Request(keys, np.asarray(beta0, np.float32), eye, pose_track, transition_s)
