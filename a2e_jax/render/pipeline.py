"""Coefficients → images: face model, pose, camera, rasterizer and shading in one jitted function.

`FaceRenderer` renders batches of frames of one face model at one size (one compilation per batch size;
the last partial batch is padded), and streams a whole clip batch by batch as uint8 frames so that long
clips never sit in memory. Colour comes from the model's texture (through its UVs), its vertex colours, or
the neutral skin albedo, lit with Deep3DFaceRecon's SH lighting; or, with a photo, from the photo itself
(render/photo.py).
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from a2e_jax.core.errors import UserError
from a2e_jax.render import camera as cam_lib
from a2e_jax.render import photo as photo_lib
from a2e_jax.render import shading
from a2e_jax.render.antialias import antialias, edge_neighbours
from a2e_jax.render.rasterize import rasterize

DEFAULT_BACKGROUND = (0.0, 0.0, 0.0)


@dataclasses.dataclass(frozen=True)
class RenderOptions:
  """Static choices baked into the compiled render function."""

  camera: cam_lib.Camera
  antialias: bool = False
  textured: bool = False
  photo: bool = False


class FaceRenderer:
  """Renders frames of one face model.

  Args:
    model: a MorphableModel.
    size: image height (and width unless `width` is given); Deep3DFaceRecon's camera scaled to it.
    width: image width (default: size).
    camera: a Camera (overrides size/width).
    batch: frames per compiled call.
    background: RGB in [0,1] behind the face.
    antialias: smooth silhouette edges (render/antialias.py); also gives silhouette gradients.
    photo: an optional render.photo.PhotoTexture; the face is then coloured from the photo and composited
      over it, and the image takes the photo's size.
  """

  def __init__(self, model, size: int = 256, width: int | None = None, camera=None, batch: int = 16,
               background=DEFAULT_BACKGROUND, antialias: bool = False, photo=None):
    if photo is not None:
      camera = photo.camera
    camera = camera or cam_lib.deep3d_camera(size, width)
    self.model = model
    self.batch = int(batch)
    textured = model.texture is not None and model.uvs is not None and model.uv_triangles is not None
    self.options = RenderOptions(camera=camera, antialias=antialias, textured=textured and photo is None,
                                 photo=photo is not None)
    self.background = jnp.asarray(background, jnp.float32).reshape(3)
    self.photo = photo
    self._model = jax.tree.map(jnp.asarray, model)
    self._neighbours = None
    if antialias:
      self._neighbours = jnp.asarray(edge_neighbours(np.asarray(model.triangles)))

  @property
  def camera(self) -> cam_lib.Camera:
    return self.options.camera

  def render(self, exp_bk=None, pose_b6=None, id_k=None, gamma_b27=None, tex_k=None):
    """(images [B,H,W,3] float32 in [0,1], mask [B,H,W]) for B frames.

    Args:
      exp_bk: [B,Ke] expression coefficients (None: neutral, one frame).
      pose_b6: [B,6] angles (radians, R = Rz·Ry·Rx) + translation, or None (frontal, centred).
      id_k: [Ki] identity coefficients or None.
      gamma_b27: [B,27] or [27] SH lighting, or None (shading.DEFAULT_GAMMA).
      tex_k: texture (albedo) coefficients for models with a colour basis (BFM), or None.
    """
    if exp_bk is None:
      exp_bk = np.zeros((1, self.model.num_exp), np.float32)
    exp_bk = np.asarray(exp_bk, np.float32)
    num = exp_bk.shape[0]
    pose_b6 = np.zeros((num, 6), np.float32) if pose_b6 is None else np.asarray(pose_b6, np.float32)
    gamma = shading.DEFAULT_GAMMA if gamma_b27 is None else np.asarray(gamma_b27, np.float32)
    gamma = np.broadcast_to(gamma, (num, 27))
    id_k = np.zeros((self.model.num_id,), np.float32) if id_k is None else np.asarray(id_k, np.float32)
    if exp_bk.shape[1] != self.model.num_exp:
      raise UserError(f"{exp_bk.shape[1]} expression coefficients for face model {self.model.name!r} with "
                      f"{self.model.num_exp} channels; render with the model the coefficients belong to")
    albedo = self.model.colors(None if tex_k is None else jnp.asarray(tex_k, jnp.float32))
    photo_args = self.photo.arrays() if self.photo is not None else None
    return _render(self._model, jnp.asarray(exp_bk), jnp.asarray(pose_b6), jnp.asarray(id_k),
                   jnp.asarray(gamma), jnp.asarray(albedo, jnp.float32), self.background, photo_args,
                   self._neighbours, options=self.options)

  def iter_frames(self, exp_tk, pose_t6=None, id_k=None, gamma=None, tex_k=None):
    """Yields uint8 frame batches [b,H,W,3] for a clip of T frames, `batch` at a time (padded, then cut)."""
    exp_tk = np.asarray(exp_tk, np.float32)
    total = exp_tk.shape[0]
    for start in range(0, total, self.batch):
      stop = min(start + self.batch, total)
      pad = self.batch - (stop - start)
      exp = np.pad(exp_tk[start:stop], ((0, pad), (0, 0)), mode="edge")
      pose = None if pose_t6 is None else _pad_rows(pose_t6, start, stop, pad)
      g = _pad_rows(gamma, start, stop, pad) if gamma is not None and np.ndim(gamma) == 2 else gamma
      images, _ = self.render(exp, pose, id_k, g, tex_k)
      yield shading.to_uint8(images[: stop - start])


def _pad_rows(array, start, stop, pad):
  return np.pad(np.asarray(array, np.float32)[start:stop], ((0, pad), (0, 0)), mode="edge")


@functools.partial(jax.jit, static_argnames=("options",))
def _render(model, exp_bk, pose_b6, id_k, gamma_b27, albedo_n3, background, photo_args, neighbours, *,
            options: RenderOptions):
  cam = options.camera
  verts = model.vertices(id_k, exp_bk)  # [B,N,3]
  posed = cam_lib.transform(verts, pose_b6[:, :3], pose_b6[:, 3:])
  screen = cam_lib.project(cam, posed)
  triangles = model.triangles
  frags = rasterize(screen, triangles, cam.height, cam.width, perspective=cam.perspective, near=cam.near)
  mask = frags.mask
  if options.photo:
    image = photo_lib.composite(photo_lib.photo_colors(frags, triangles, photo_args), mask, photo_args)
  else:
    normals = shading.vertex_normals(posed, triangles)
    color = shading.shade(frags, triangles, normals, gamma_b27, vertex_albedo_bn3=albedo_n3,
                          texture=model.texture.astype(jnp.float32) / 255.0 if options.textured else None,
                          uvs=model.uvs, uv_triangles=model.uv_triangles)
    image = jnp.where(mask[..., None], color, background)
  if options.antialias:
    image = antialias(image, frags, screen, triangles, neighbours, perspective=cam.perspective)
  return jnp.clip(image, 0.0, 1.0), mask
