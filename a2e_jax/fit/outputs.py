"""Writing a fitted picture or clip: our coefficient `.npz`, Deep3DFaceRecon's 257-layout `.mat` for BFM
models, and the overlay (the fitted mesh drawn over the input) as PNG or mp4."""

import os

import numpy as np

from a2e_jax.face import coeffs as layouts
from a2e_jax.formats.sequence import CoeffSequence, save_npz

OVERLAY_ALPHA = 0.55
OVERLAY_TINT = (0.55, 0.95, 1.3)


def to_sequence(model, track) -> CoeffSequence:
  """The track as a CoeffSequence; β0 is the first frame with a face (a photo's own expression)."""
  fit = track.fit
  first = int(np.argmax(track.found))
  return CoeffSequence(
    coeffs=fit.exp.astype(np.float32),
    channel_names=tuple(model.channel_names),
    fps=track.fps or 25.0,
    pose=fit.pose,
    eye=track.eye,
    beta0=fit.exp[first],
    id_coeffs=fit.id,
    model=model.name,
  )


def write_npz(path: str, model, track) -> None:
  """Our `.npz` (formats/sequence.py) plus lighting [T,27], tex, found [T], landmarks [T,468,2], lip_gap [T],
  landmark_error [T] and image_size; written under a temporary name and renamed, so a file that exists is
  whole."""
  fit = track.fit
  tmp = path + ".partial.npz"
  save_npz(
    tmp,
    to_sequence(model, track),
    lighting=fit.gamma,
    tex=fit.tex,
    found=track.found,
    landmarks=track.points,
    lip_gap=track.lip_gap,
    landmark_error=fit.landmark_error,
    image_size=np.asarray(fit.image_size),
    identity=fit.id,
  )
  os.replace(tmp, path)


def write_deep3d_mat(path: str, track) -> None:
  """Deep3DFaceRecon's 257 layout per frame for a fit with a BFM-layout model: `coeff_3dmm` [T,257] (as
  SadTalker's and DreamTalk's files hold it) and the parts under the names Deep3DFaceRecon's `save_coeff`
  writes: id [T,80], exp [T,64], tex [T,80], angle [T,3], gamma [T,27], trans [T,3]."""
  import scipy.io

  fit = track.fit
  num = len(fit.exp)
  parts = {
    "id": np.broadcast_to(fit.id, (num, layouts.NUM_ID)),
    "exp": fit.exp,
    "tex": np.broadcast_to(fit.tex, (num, layouts.NUM_TEX)),
    "angles": fit.pose[:, :3],
    "gamma": fit.gamma,
    "trans": fit.pose[:, 3:],
  }
  rows = layouts.merge(parts, "deep3d")
  named = {("angle" if k == "angles" else k): np.asarray(v, np.float32) for k, v in parts.items()}
  scipy.io.savemat(path, {"coeff_3dmm": rows.astype(np.float32), **named})


def is_bfm_layout(model) -> bool:
  tex = 0 if model.color_basis is None else model.color_basis.shape[-1]
  return (model.num_id, model.num_exp, tex) == (layouts.NUM_ID, layouts.NUM_EXP, layouts.NUM_TEX)


def overlay_frames(model, track, frames_thw3, batch: int = 8):
  """Yields uint8 batches: the fitted face, shaded with its lighting, blended over the input frames."""
  from a2e_jax.fit.rendering import render_batches

  fit = track.fit
  for start, images, mask in render_batches(
    model, fit.exp, fit.pose, fit.id, fit.gamma, fit.tex, fit.image_size, batch, antialias=True
  ):
    stop = start + len(images)
    under = np.asarray(frames_thw3[start:stop], np.float32) / 255.0
    alpha = OVERLAY_ALPHA * (mask & track.found[start:stop, None, None])[..., None]
    # The fitted face's shading in one false colour, so the mesh stands out from the skin under it.
    shaded = images.mean(-1, keepdims=True) * np.asarray(OVERLAY_TINT, np.float32)
    yield (np.clip(alpha * shaded + (1 - alpha) * under, 0, 1) * 255 + 0.5).astype(np.uint8)
