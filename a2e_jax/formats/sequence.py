"""`CoeffSequence`: one clip of per-frame face coefficients, the unit every importer and exporter handles."""

import dataclasses
import zipfile

import numpy as np

from a2e_jax.core.errors import UserError

# No coefficient, pose value, eye control or crop parameter of any supported format comes near this (weights
# are O(1), angles radians, translations model units, crops pixels); a larger value is a damaged file.
MAX_MAGNITUDE = 1e4
MAX_FPS = 1000.0


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


_COLUMNS = {"pose": ("angle_x", "angle_y", "angle_z", "trans_x", "trans_y", "trans_z"),
            "eye": ("blink_left", "blink_right", "gaze_yaw", "gaze_pitch"),
            "crop": ("scale", "centre_x", "centre_y")}


def check_values(array, source: str, columns=None, rows: str = "frame", first_row: int = 0) -> None:
  """Raises a UserError naming `source`, the row and the column of the first value of [T,K] (or [K])
  `array` that is not a number, NaN, inf, or larger in magnitude than MAX_MAGNITUDE."""
  array = np.asarray(array)
  if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
    raise UserError(f"{source}: values of type {array.dtype}, expected numbers")
  bad = ~np.isfinite(array) | (np.abs(array) > MAX_MAGNITUDE)
  if not bad.any():
    return
  where = np.argwhere(bad)[0]
  value = float(array[tuple(where)])
  column = int(where[-1])
  name = f"column {column}"
  if columns is not None and column < len(columns):
    name += f" ({columns[column]})"
  place = f"{rows} {int(where[0]) + first_row}, {name}" if array.ndim == 2 else name
  what = "is not finite" if not np.isfinite(value) else f"exceeds {MAX_MAGNITUDE:g} in magnitude"
  raise UserError(f"{source}: {place}: {value:g} {what}; the file is damaged or not coefficients")


def check_fps(fps, source: str) -> float:
  """`fps` as a float, or a UserError unless it is a number in (0, MAX_FPS]."""
  try:
    value = float(fps)
  except (TypeError, ValueError):
    raise UserError(f"{source}: frame rate {fps!r} is not a number") from None
  if not (np.isfinite(value) and 0 < value <= MAX_FPS):
    raise UserError(f"{source}: frame rate {value:g} must be a positive number of frames per second, at most "
                    f"{MAX_FPS:g}")
  return value


def check_sequence_values(seq: "CoeffSequence", source: str) -> None:
  """`check_values` over every array of `seq` and `check_fps` on its rate."""
  check_fps(seq.fps, source)
  check_values(seq.coeffs, f"{source}: coeffs", seq.channel_names)
  for key in ("pose", "eye", "crop"):
    if getattr(seq, key) is not None:
      check_values(getattr(seq, key), f"{source}: {key}", _COLUMNS[key])
  for key in ("beta0", "id_coeffs"):
    if getattr(seq, key) is not None:
      check_values(getattr(seq, key), f"{source}: {key}")


NPZ_FORMAT = "a2e_coeff_sequence"
NPZ_VERSION = 1
_OPTIONAL = ("pose", "eye", "beta0", "id_coeffs", "crop")


def save_npz(path: str, seq: CoeffSequence, **extras: np.ndarray) -> None:
  """Writes our lossless `.npz` (byte-identical for identical data); NaN, inf or absurd values are a
  UserError.

  Keys: format, version, coeffs, channel_names, fps, model, the optional arrays that are set (pose, eye,
  beta0, id_coeffs, crop), and any `extras` (e.g. phones, phone_start) under their own names.
  """
  check_sequence_values(seq, f"coefficients for {path}")
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
  """Reads `save_npz`'s file: (the sequence, a dict of the extra arrays). Raises ValueError (saying what is
  wrong, without the path) if malformed."""
  if not zipfile.is_zipfile(path):
    raise ValueError("not a zip archive, which every .npz is")
  with np.load(path, allow_pickle=False) as data:
    arrays = {k: data[k] for k in data.files}
  if str(arrays.pop("format", "")) != NPZ_FORMAT:
    raise ValueError(f"no format={NPZ_FORMAT!r} entry")
  arrays.pop("version", None)
  seq = CoeffSequence(
    coeffs=arrays.pop("coeffs"),
    channel_names=tuple(str(n) for n in arrays.pop("channel_names")),
    fps=float(arrays.pop("fps")),
    model=str(arrays.pop("model")),
    **{k: arrays.pop(k, None) for k in _OPTIONAL},
  )
  if seq.coeffs.ndim != 2 or seq.coeffs.shape[1] != len(seq.channel_names):
    raise ValueError(f"coeffs shape {seq.coeffs.shape} does not match {len(seq.channel_names)} names")
  return seq, arrays
