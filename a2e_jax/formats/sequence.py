"""`CoeffSequence`: one clip of per-frame face coefficients, the unit every importer and exporter handles."""

import dataclasses
import zipfile

import numpy as np


@dataclasses.dataclass
class CoeffSequence:
  """Per-frame coefficients of one clip.

  Attributes:
    coeffs: [T,K] float32 expression coefficients (columns named by `channel_names`).
    channel_names: K names (ICT/ARKit channel names, or "exp00".."exp63" for BFM).
    fps: frames per second (25 for everything this project writes).
    pose: [T,6] float32 head pose, angles in radians (R = Rz·Ry·Rx) + translation, or None.
    eye: [T,4] float32 eye control (blink L/R in [0,1], gaze yaw/pitch in radians; core/schema.py), or None.
    beta0: [K] float32 reference (resting) expression of the identity, or None.
    id_coeffs: [Ki] float32 identity coefficients of the face model, or None.
    model: id of the face model the coefficients belong to ("builtin", "bfm", "ict", ...), or "".
    crop: [T,3] float32 Deep3DFaceRecon image-crop parameters (scale, centre x, centre y) that PIRenderer
      files carry, or None (face/coeffs.py).
  """

  coeffs: np.ndarray
  channel_names: tuple
  fps: float = 25.0
  pose: np.ndarray | None = None
  eye: np.ndarray | None = None
  beta0: np.ndarray | None = None
  id_coeffs: np.ndarray | None = None
  model: str = ""
  crop: np.ndarray | None = None

  @property
  def num_frames(self) -> int:
    return int(self.coeffs.shape[0])


NPZ_FORMAT = "a2e_coeff_sequence"
NPZ_VERSION = 1
_OPTIONAL = ("pose", "eye", "beta0", "id_coeffs", "crop")


def save_npz(path: str, seq: CoeffSequence, **extras: np.ndarray) -> None:
  """Writes our lossless `.npz` (byte-identical for identical data).

  Keys: format, version, coeffs, channel_names, fps, model, the optional arrays that are set (pose, eye,
  beta0, id_coeffs, crop), and any `extras` (e.g. phones, phone_start) under their own names.
  """
  arrays = {
    "format": np.array(NPZ_FORMAT),
    "version": np.array(NPZ_VERSION),
    "coeffs": np.asarray(seq.coeffs, np.float32),
    "channel_names": np.array(seq.channel_names, dtype=np.str_),
    "fps": np.array(seq.fps, np.float64),
    "model": np.array(seq.model),
  }
  for key in _OPTIONAL:
    if getattr(seq, key) is not None:
      arrays[key] = np.asarray(getattr(seq, key), np.float32)
  arrays.update({k: np.asarray(v) for k, v in extras.items()})
  # numpy's savez stamps each entry with the current time; a fixed stamp makes equal data equal bytes.
  with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
    for key, value in arrays.items():
      entry = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
      entry.compress_type = zipfile.ZIP_DEFLATED
      with archive.open(entry, "w", force_zip64=True) as f:
        np.lib.format.write_array(f, value, allow_pickle=False)


def load_npz(path: str) -> tuple[CoeffSequence, dict]:
  """Reads `save_npz`'s file: (the sequence, a dict of the extra arrays). Raises ValueError if malformed."""
  with np.load(path, allow_pickle=False) as data:
    arrays = {k: data[k] for k in data.files}
  if str(arrays.pop("format", "")) != NPZ_FORMAT:
    raise ValueError(f"{path}: not an a2e coefficient .npz (no format={NPZ_FORMAT!r})")
  arrays.pop("version")
  seq = CoeffSequence(
    coeffs=arrays.pop("coeffs"),
    channel_names=tuple(str(n) for n in arrays.pop("channel_names")),
    fps=float(arrays.pop("fps")),
    model=str(arrays.pop("model")),
    **{k: arrays.pop(k, None) for k in _OPTIONAL},
  )
  if seq.coeffs.ndim != 2 or seq.coeffs.shape[1] != len(seq.channel_names):
    raise ValueError(f"{path}: coeffs shape {seq.coeffs.shape} does not match {len(seq.channel_names)} names")
  return seq, arrays
