"""The Basel Face Model as Deep3DFaceRecon prepares it: `BFM_model_front.mat` -> MorphableModel.

Follows Deep3DFaceRecon_pytorch's ParametricFaceModel:
  shape   = (meanshape - its centroid) + idBase · id + exBase · exp    (vertices interleaved x, y, z)
  texture = (meantex + texBase · tex) / 255
  tri, point_buf and keypoints are 1-based in the file and 0-based here.
Units are the file's: Deep3DFaceRecon divided BFM's micrometres by 1e5, so 1 unit = 10 cm, which is
the unit our camera (focal 1015, distance 10) and every other model use. Deep3DFaceRecon's vertex normals
sum the unit normals of the faces in `point_buf`, i.e. of each vertex's adjacent triangles, so they follow
from `triangles` and point_buf is only validated, not stored.
"""

import numpy as np
import scipy.io

from a2e_jax.core import channels
from a2e_jax.core.errors import UserError
from a2e_jax.face import coeffs
from a2e_jax.face.model import MorphableModel, require_finite, validate
from a2e_jax.face.regions import landmark_regions

# key -> expected shape, with N the vertex count and F the triangle count.
KEYS = {"meanshape": "(1, 3N)", "idBase": f"(3N, {coeffs.NUM_ID})", "exBase": f"(3N, {coeffs.NUM_EXP})",
        "meantex": "(1, 3N)", "texBase": f"(3N, {coeffs.NUM_TEX})", "tri": "(F, 3)", "point_buf": "(N, 8)",
        "keypoints": "(1, 68)"}


def load_bfm(path: str) -> MorphableModel:
  """Reads `BFM_model_front.mat` (or any .mat with the keys in KEYS); a bad file is one UserError line."""
  try:
    data = scipy.io.loadmat(path)
  except FileNotFoundError:
    raise UserError(f"BFM file {path!r} not found; Deep3DFaceRecon's README says how to build "
                    "BFM_model_front.mat from the Basel Face Model") from None
  except (OSError, ValueError, TypeError, NotImplementedError, scipy.io.matlab.MatReadError) as e:
    raise UserError(f"{path}: not a readable .mat file ({e})") from None
  for key, shape in KEYS.items():
    if key not in data:
      raise UserError(f"{path}: missing key {key!r} (expected shape {shape}); is this BFM_model_front.mat?")

  def array(key, rows, cols):
    value = np.asarray(data[key])
    if value.ndim == 2 and value.shape == (cols, rows) and 1 in value.shape:
      value = value.T  # row and column vectors both occur
    if value.shape != (rows, cols) or not np.issubdtype(value.dtype, np.number):
      raise UserError(f"{path}: key {key!r} has shape {value.shape} ({value.dtype}), expected {KEYS[key]} "
                      f"numbers with N = {n} vertices")
    require_finite(value, lambda at, number: f"{path}: key {key!r}, row {at[0]}, column {at[1]}: {number:g} "
                                            "is not finite; the file is damaged")
    return value

  size = np.size(data["meanshape"])
  if size % 3 or size == 0:
    raise UserError(f"{path}: key 'meanshape' has {size} values, expected (1, 3N)")
  n = size // 3
  mean = array("meanshape", 1, 3 * n).reshape(n, 3).astype(np.float64)
  mean -= mean.mean(axis=0)
  id_basis = array("idBase", 3 * n, coeffs.NUM_ID).reshape(n, 3, coeffs.NUM_ID)
  exp_basis = array("exBase", 3 * n, coeffs.NUM_EXP).reshape(n, 3, coeffs.NUM_EXP)
  color_mean = array("meantex", 1, 3 * n).reshape(n, 3) / 255.0
  color_basis = array("texBase", 3 * n, coeffs.NUM_TEX).reshape(n, 3, coeffs.NUM_TEX) / 255.0
  triangles = array("tri", np.shape(data["tri"])[0], 3).astype(np.int64) - 1
  point_buf = array("point_buf", n, 8).astype(np.int64) - 1
  landmarks = array("keypoints", 1, 68).reshape(68).astype(np.int64) - 1
  if triangles.min() < 0 or triangles.max() >= n:
    raise UserError(f"{path}: key 'tri' has indices outside 1..{n} (expected 1-based vertex indices)")
  # Deep3DFaceRecon pads point_buf with F+1, the index of an appended zero normal.
  if point_buf.min() < 0 or point_buf.max() > len(triangles):
    raise UserError(f"{path}: key 'point_buf' has indices outside 1..{len(triangles) + 1} "
                    "(expected 1-based triangle indices)")
  if landmarks.min() < 0 or landmarks.max() >= n:
    raise UserError(f"{path}: key 'keypoints' has indices outside 1..{n} (expected 1-based vertex indices)")

  model = MorphableModel(
    mean=mean.astype(np.float32), id_basis=id_basis.astype(np.float32),
    exp_basis=exp_basis.astype(np.float32),
    triangles=triangles.astype(np.int32), landmarks=landmarks.astype(np.int32),
    regions=landmark_regions(mean, landmarks),
    color_mean=color_mean.astype(np.float32), color_basis=color_basis.astype(np.float32),
    channel_names=channels.BFM_CHANNELS, name="bfm", units="BFM decimetres (1 unit = 10 cm), recentred",
  )
  validate(model, source=path)
  return model
