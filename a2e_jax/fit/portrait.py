"""Photo mode: where the face in a portrait is, what it looks like and which way it turns.

`fit_portrait` fits the model to a picture (any size, the face anywhere) with the camera that
render/photo.py uses for the same picture (Deep3DFaceRecon's, scaled to the picture as load_photo crops it
to even sizes), so the fitted identity, expression (the portrait's β0) and pose put the animated mesh
exactly on the face. Fits are kept per process (by file, modification time and model), since `a2e
generate` needs the β0 before generating and the placement when rendering.
"""

import os

import numpy as np

_CACHE: dict = {}


def fit_portrait(model, path: str):
  """The fit.track.Track of a portrait file; raises fit.track.NoFace (a UserError) without a face."""
  from a2e_jax.render.photo import load_photo

  key = (
    os.path.abspath(path),
    os.path.getmtime(path) if os.path.exists(path) else 0.0,
    model.name,
    model.num_vertices,
  )
  if key not in _CACHE:
    from a2e_jax.fit.track import Tracker

    image = (np.clip(load_photo(path), 0, 1) * 255 + 0.5).astype(np.uint8)
    _CACHE.clear()
    _CACHE[key] = Tracker(model).image(image, name=path)
  return _CACHE[key]


def placement(model, path: str, pose_t6=None, num_frames: int = 1) -> dict:
  """{"id": [Ki], "ref_exp": [Ke], "pose": [T,6], "gamma": [27], "tex": [Kt]} that put a clip on the
  portrait's face (gamma and tex: its fitted lighting and albedo, for the surface the portrait hides).

  The clip's own head motion (pose_t6 relative to its first frame, if it has one) is added to the
  portrait's fitted pose.
  """
  track = fit_portrait(model, path)
  base = track.fit.pose[0]
  if pose_t6 is None:
    pose = np.repeat(base[None], num_frames, 0)
  else:
    pose_t6 = np.asarray(pose_t6, np.float32)
    pose = base[None] + (pose_t6 - pose_t6[:1])
  return {
    "id": track.fit.id,
    "ref_exp": track.fit.exp[0],
    "pose": pose.astype(np.float32),
    "gamma": track.fit.gamma[0],
    "tex": track.fit.tex,
  }
