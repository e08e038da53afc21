"""Reference files for generation: identity (β0), head pose and eye tracks, in the network's channel space.

Any coefficient file `a2e_jax.formats.files.read_sequence` reads can serve:
  identity  β0 is the file's stored `beta0` (our .npz, a SadTalker first-frame .mat), else its first frame
  pose      the pose track (a first-frame file gives one still pose)
  eyes      the eye-control track (our .npz), else the eyeBlink/eyeLook channels of an ICT/ARKit-space file
Files in another expression space than the network's (a SadTalker .mat holds BFM's 64 coefficients, the
demo network speaks the 53 ICT/ARKit channels) are retargeted with face/retarget.py, which needs the face
models of both spaces: without a BFM model that stops with one line naming `--bfm`.
"""

import dataclasses

import numpy as np

from a2e_jax.core import channels
from a2e_jax.core.errors import UserError
from a2e_jax.data.synth import eyes
from a2e_jax.face.retarget import channel_map
from a2e_jax.formats.files import read_sequence
from a2e_jax.formats.sequence import CoeffSequence

BFM_HINT = ("pass --bfm BFM_model_front.mat (or convert it once with 'a2e models convert --from bfm "
            "PATH/BFM_model_front.mat')")


@dataclasses.dataclass(frozen=True)
class Reference:
  """One reference file: β0 [K] in the network's channels, pose [T',6] or None, eye [T',4] or None."""

  path: str
  beta0: np.ndarray | None
  pose: np.ndarray | None
  eye: np.ndarray | None


def read_reference(path: str, channel_names, network_model=None, bfm_model=None) -> Reference:
  """Reads `path` (any coefficient format) and maps its expression onto `channel_names`.

  Args:
    channel_names: the network's K output channels.
    network_model: the face model speaking `channel_names` (the built-in face for the demo weights); needed
      only when the file is in another space.
    bfm_model: a BFM MorphableModel, needed for files in BFM's space when the network's is not.
  """
  seq = read_sequence(path)
  return Reference(path, _beta0(seq, path, tuple(channel_names), network_model, bfm_model), seq.pose,
                   eye_of(seq))


def _beta0(seq: CoeffSequence, path: str, names: tuple, network_model, bfm_model) -> np.ndarray:
  source = seq.beta0 if seq.beta0 is not None else seq.coeffs[0]
  if tuple(seq.channel_names) == names:
    return np.asarray(source, np.float32)
  source_model = bfm_model if seq.model == "bfm" else None
  if seq.model == "bfm" and bfm_model is None:
    raise UserError(f"{path} holds BFM expression coefficients but the network speaks "
                    f"{len(names)} other channels; to take its identity, {BFM_HINT}")
  matrix = channel_map(seq.channel_names, names, source_model, network_model,
                       purpose=f"the reference {path}")
  return (matrix @ np.asarray(source, np.float64)).astype(np.float32)


def eye_of(seq: CoeffSequence) -> np.ndarray | None:
  """[T,4] eye control of a sequence: its own, or read off its eyeBlink/eyeLook channels; None if neither."""
  if seq.eye is not None:
    return np.asarray(seq.eye, np.float32)
  names = tuple(seq.channel_names)
  if names == channels.ARKIT_BLENDSHAPES:
    coeffs = seq.coeffs @ channels.arkit_to_ict_matrix().T
  elif names == channels.ICT_CHANNELS:
    coeffs = seq.coeffs
  else:
    return None
  c = {name: coeffs[:, i] for i, name in enumerate(channels.ICT_CHANNELS)}
  # The inverse of the corpus's eye_channels: looking to the subject's left turns the left eye out.
  yaw = (c["eyeLookOut_L"] - c["eyeLookIn_L"] + c["eyeLookIn_R"] - c["eyeLookOut_R"]) / 2
  pitch = (c["eyeLookUp_L"] - c["eyeLookDown_L"] + c["eyeLookUp_R"] - c["eyeLookDown_R"]) / 2
  gaze = np.stack([yaw, pitch], axis=1) * eyes.LOOK_FULL_SCALE
  return np.concatenate([c["eyeBlink_L"][:, None], c["eyeBlink_R"][:, None], gaze], axis=1).astype(np.float32)


def eye_reference(path: str) -> np.ndarray:
  """[T,4] eye control from a coefficient file, or a UserError saying the file has none."""
  eye = eye_of(read_sequence(path))
  if eye is None:
    raise UserError(f"{path} has no eye control or eye channels (BFM files have none); use a .npz or "
                    "ARKit .csv reference, or --blink auto")
  return eye


def pose_reference(path: str) -> np.ndarray:
  """[T,6] head pose track of a coefficient file, or a UserError saying it has none."""
  pose = read_sequence(path).pose
  if pose is None:
    raise UserError(f"{path} has no head pose track; use --pose still or a file with a pose")
  return np.asarray(pose, np.float32)
