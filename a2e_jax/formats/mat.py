"""SadTalker / Deep3DFaceRecon `.mat` and PIRenderer / DreamTalk `.npy` coefficient files.

What each file holds (column meanings in face/coeffs.py and docs/formats.md):
  SadTalker audio2coeff output   .mat  coeff_3dmm [T,70]  exp 64 + angles 3 + trans 3, 25 fps
  SadTalker preprocess (ref)     .mat  coeff_3dmm [T,73]  (+ crop 3) and full_3dmm [T,257]; T = 1 for a photo
  DreamTalk style clip           .mat  coeff_3dmm [T,257] or [T,260]
  Deep3DFaceRecon test output    .mat  id [1,80], exp [1,64], tex, angle [1,3], gamma, trans [1,3]
  PIRenderer / DreamTalk         .npy  [T,73]; [T,70], [T,257] and [T,260] are read too
The readers return BFM-space `CoeffSequence`s (channels exp00..exp63, model "bfm") at the file's fps.
"""

import numpy as np
import scipy.io

from a2e_jax.core import channels
from a2e_jax.core.errors import UserError
from a2e_jax.face import coeffs as layouts
from a2e_jax.formats.sequence import CoeffSequence

# Row width -> layout, for arrays that carry no other description.
_BY_WIDTH = {70: "sadtalker", 73: "pirenderer", 257: "deep3d", 260: "deep3d+crop"}


def read_mat(path: str, fps: float = 25.0) -> CoeffSequence:
  """Reads any `.mat` of the table above."""
  data = _loadmat(path)
  if "coeff_3dmm" in data:
    seq = from_array(data["coeff_3dmm"], f"{path}: key 'coeff_3dmm'", fps)
    if "full_3dmm" in data:
      # SadTalker's preprocess (reference) file: its first frame gives the reference expression and identity.
      full = _rows(data["full_3dmm"], f"{path}: key 'full_3dmm'", (layouts.width("deep3d"),
                                                                    layouts.width("deep3d+crop")))
      seq.id_coeffs = full[:, layouts.slices("deep3d")["id"]].mean(axis=0).astype(np.float32)
      seq.beta0 = seq.coeffs[0].copy()
    return seq
  if "exp" in data:
    return _read_deep3d_test_output(path, data, fps)
  keys = sorted(k for k in data if not k.startswith("__"))
  raise UserError(f"{path}: no key 'coeff_3dmm' (SadTalker/DreamTalk [T,70|73|257]) or 'exp' "
                  f"(Deep3DFaceRecon [T,64]); the file has {keys}")


def read_npy(path: str, fps: float = 25.0) -> CoeffSequence:
  """Reads a PIRenderer/DreamTalk `.npy` ([T,73], or [T,70|257|260])."""
  try:
    array = np.load(path, allow_pickle=False)
  except (OSError, ValueError, EOFError) as e:
    raise UserError(f"{path}: not a readable .npy file ({e})") from None
  return from_array(array, f"{path}", fps)


def from_array(array, source: str, fps: float = 25.0) -> CoeffSequence:
  """[T,70|73|257|260] -> CoeffSequence, the layout chosen by the row width."""
  rows = _rows(array, source, tuple(_BY_WIDTH))
  blocks = layouts.split(rows, _BY_WIDTH[rows.shape[1]], source)
  return CoeffSequence(
    coeffs=blocks["exp"].astype(np.float32),
    channel_names=channels.BFM_CHANNELS,
    fps=float(fps),
    pose=np.concatenate([blocks["angles"], blocks["trans"]], axis=1).astype(np.float32),
    id_coeffs=blocks["id"].mean(axis=0).astype(np.float32) if "id" in blocks else None,
    crop=blocks["crop"].astype(np.float32) if "crop" in blocks else None,
    model="bfm",
  )


def write_sadtalker(path: str, seq: CoeffSequence) -> None:
  """SadTalker's audio2coeff `.mat`: coeff_3dmm [T,70] (BFM-space `seq` at 25 fps)."""
  scipy.io.savemat(path, {"coeff_3dmm": _merge(seq, "sadtalker")})


def write_sadtalker_reference(path: str, seq: CoeffSequence) -> None:
  """SadTalker's preprocess `.mat`: coeff_3dmm [T,73] and full_3dmm [T,257] (tex and gamma zero)."""
  full = _merge(seq, "deep3d")
  scipy.io.savemat(path, {"coeff_3dmm": _merge(seq, "pirenderer"), "full_3dmm": full})


def write_pirenderer(path: str, seq: CoeffSequence) -> None:
  """PIRenderer/DreamTalk `.npy` [T,73] float32."""
  with open(path, "wb") as f:
    np.save(f, _merge(seq, "pirenderer"))


def _merge(seq: CoeffSequence, layout: str) -> np.ndarray:
  t = seq.num_frames
  pose = np.zeros((t, 6), np.float32) if seq.pose is None else np.asarray(seq.pose, np.float32)
  blocks = {"exp": seq.coeffs, "angles": pose[:, :3], "trans": pose[:, 3:], "crop": seq.crop}
  if seq.id_coeffs is not None:
    blocks["id"] = np.broadcast_to(np.asarray(seq.id_coeffs, np.float32), (t, layouts.NUM_ID))
  return layouts.merge(blocks, layout)


def _read_deep3d_test_output(path: str, data: dict, fps: float) -> CoeffSequence:
  widths = {"exp": layouts.NUM_EXP, "angle": 3, "trans": 3, "id": layouts.NUM_ID}
  arrays = {}
  for key, w in widths.items():
    if key in data:
      arrays[key] = _rows(data[key], f"{path}: key {key!r}", (w,))
    elif key != "id":
      raise UserError(f"{path}: Deep3DFaceRecon coefficients lack the key {key!r} (expected [T,{w}])")
  t = arrays["exp"].shape[0]
  for key in ("angle", "trans"):
    if arrays[key].shape[0] != t:
      raise UserError(f"{path}: key {key!r} has {arrays[key].shape[0]} rows, 'exp' has {t}")
  return CoeffSequence(
    coeffs=arrays["exp"].astype(np.float32), channel_names=channels.BFM_CHANNELS, fps=float(fps),
    pose=np.concatenate([arrays["angle"], arrays["trans"]], axis=1).astype(np.float32),
    id_coeffs=arrays["id"].mean(axis=0).astype(np.float32) if "id" in arrays else None,
    beta0=arrays["exp"][0].astype(np.float32), model="bfm",
  )


def _loadmat(path: str) -> dict:
  try:
    return scipy.io.loadmat(path)
  except NotImplementedError:
    raise UserError(f"{path}: MATLAB v7.3 (HDF5) .mat is not supported; re-save it with "
                    "scipy.io.savemat or MATLAB's -v7 option") from None
  except (OSError, ValueError, TypeError, scipy.io.matlab.MatReadError) as e:
    raise UserError(f"{path}: not a readable .mat file ({e})") from None


def _rows(array, source: str, widths: tuple) -> np.ndarray:
  """A float [T,D] view of `array` ([D] counts as one row) with D in `widths`, else a UserError."""
  array = np.asarray(array)
  if array.ndim == 1:
    array = array[None]
  expected = " or ".join(f"[T,{w}]" for w in widths)
  if array.ndim != 2 or array.shape[1] not in widths or array.shape[0] == 0:
    raise UserError(f"{source}: shape {array.shape}, expected {expected}")
  if not np.issubdtype(array.dtype, np.number):
    raise UserError(f"{source}: dtype {array.dtype} is not numeric; expected {expected} floats")
  array = array.astype(np.float64)
  if not np.all(np.isfinite(array)):
    raise UserError(f"{source}: contains NaN or inf")
  return array
