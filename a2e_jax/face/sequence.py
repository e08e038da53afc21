"""`CoeffSequence`: one clip of per-frame face coefficients, the unit every importer and exporter handles."""

import dataclasses

import numpy as np


@dataclasses.dataclass
class CoeffSequence:
  """Per-frame coefficients of one clip.

  Attributes:
    coeffs: [T,K] float32 expression coefficients (columns named by `channel_names`).
    channel_names: K names (ICT/ARKit channel names, or "exp00".."exp63" for BFM).
    fps: frames per second (25 for everything this project writes).
    pose: [T,6] float32 head pose, angles in radians (R = Rz·Ry·Rx) + translation, or None.
    eye: [T,4] float32 eye control (blink L/R in [0,1], gaze yaw/pitch in radians; data/schema.py), or None.
    beta0: [K] float32 reference (resting) expression of the identity, or None.
    id_coeffs: [Ki] float32 identity coefficients of the face model, or None.
    model: id of the face model the coefficients belong to ("builtin", "bfm", "ict", ...), or "".
  """

  coeffs: np.ndarray
  channel_names: tuple
  fps: float = 25.0
  pose: np.ndarray | None = None
  eye: np.ndarray | None = None
  beta0: np.ndarray | None = None
  id_coeffs: np.ndarray | None = None
  model: str = ""

  @property
  def num_frames(self) -> int:
    return int(self.coeffs.shape[0])
