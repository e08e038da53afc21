"""Rendering fitted (or true) coefficient tracks at the pictures' size, batch by batch; the face region."""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from a2e_jax.render import camera as cam_lib
from a2e_jax.render.pipeline import FaceRenderer
from a2e_jax.render.rasterize import rasterize


def render_batches(model, exp_tk, pose_t6, id_k, gamma_t27, tex_k, size, batch: int = 8, antialias=False):
  """Yields (start, images [b,H,W,3] float, mask [b,H,W]) over the T frames, `batch` at a time.

  size: (H, W). The last batch is padded with its last frame for the fixed-shape render and cut again.
  """
  height, width = size
  renderer = FaceRenderer(model, size=height, width=width, batch=batch, antialias=antialias)
  tex = None if tex_k is None or np.size(tex_k) == 0 else tex_k
  num = len(exp_tk)
  for start in range(0, num, batch):
    stop = min(start + batch, num)
    index = np.minimum(np.arange(start, start + batch), stop - 1)
    images, mask = renderer.render(
      np.asarray(exp_tk)[index], np.asarray(pose_t6)[index], id_k, np.asarray(gamma_t27)[index], tex
    )
    yield start, np.asarray(images)[: stop - start], np.asarray(mask)[: stop - start]


def landmark_pixels(model, id_k, exp_tk, pose_t6, camera) -> np.ndarray:
  """[T,68,2] the model's 68 landmark vertices at identity id_k [Ki] and expressions exp_tk [T,Ke], posed by
  pose_t6 [T,6] and projected to `camera`'s pixels."""
  verts = np.asarray(model.vertices(id_k, exp_tk))[:, np.asarray(model.landmarks)]
  posed = cam_lib.transform(verts, pose_t6[:, :3], pose_t6[:, 3:])
  return np.asarray(cam_lib.to_pixels(camera, cam_lib.project(camera, posed)))


def face_triangles(model):
  """[F] bool, triangles whose corners all lie in the model's "face" region (all, if it has none): the part
  of the head the photometric fit sees (hair, ears, neck and the back of the head are not a face model's to
  explain in a photo)."""
  face = np.asarray(model.regions.get("face", np.zeros(0, np.int32)))
  tri = np.asarray(model.triangles)
  if face.size == 0:
    return jnp.ones(len(tri), bool)
  inside = np.zeros(model.mean.shape[0], bool)
  inside[face] = True
  return jnp.asarray(inside[tri].all(1))


def face_masks(model, exp_tk, pose_t6, id_k, size, batch: int = 8) -> np.ndarray:
  """[T,H,W] bool: the pixels where the face region (`face_triangles`) is the visible surface.

  exp_tk [T,Ke], pose_t6 [T,6], id_k [Ki] or None; size (H, W); Deep3DFaceRecon's camera scaled to it.
  """
  height, width = size
  camera = cam_lib.deep3d_camera(height, width)
  id_k = np.zeros(model.id_basis.shape[-1], np.float32) if id_k is None else np.asarray(id_k, np.float32)
  jmodel = jax.tree.map(jnp.asarray, model)
  face_tri = face_triangles(model)
  num = len(exp_tk)
  out = []
  for start in range(0, num, batch):
    stop = min(start + batch, num)
    index = np.minimum(np.arange(start, start + batch), stop - 1)
    mask = _face_mask(
      jmodel,
      face_tri,
      jnp.asarray(np.asarray(exp_tk, np.float32)[index]),
      jnp.asarray(np.asarray(pose_t6, np.float32)[index]),
      jnp.asarray(id_k),
      camera=camera,
    )
    out.append(np.asarray(mask)[: stop - start])
  return np.concatenate(out)


@functools.partial(jax.jit, static_argnames=("camera",))
def _face_mask(model, face_tri, exp_bk, pose_b6, id_k, *, camera):
  posed = cam_lib.transform(model.vertices(id_k, exp_bk), pose_b6[:, :3], pose_b6[:, 3:])
  frags = rasterize(
    cam_lib.project(camera, posed),
    model.triangles,
    camera.height,
    camera.width,
    perspective=camera.perspective,
    near=camera.near,
  )
  return frags.mask & face_tri[jnp.maximum(frags.tri_id, 0)]
