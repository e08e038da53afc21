"""Photo texture: colour the face from a reference portrait and composite the animated face back over it.

The mesh showing the photo's expression (the reference β0 of the coefficients, neutral by default) in the
clip's first pose is projected into the photo with the same camera (Deep3DFaceRecon's, scaled to the
photo), which fixes for every surface point where in the photo its colour is. In later frames
each pixel of the face looks up that frame-0 position (perspective-correct: the frame-0 homogeneous
coordinates are interpolated with the frame's barycentrics, then divided), so the still portrait moves
with the mesh. Whether the photo shows a surface point is a depth test against the frame-0 z-buffer at its
frame-0 pixel (a shadow-map test). Surface the photo does not show (a closing eyelid, the side of the head
the portrait turns away) takes the fitted albedo lit by the fitted lighting when the portrait was fitted
(fit/portrait.py gives both), else the photo's colour at the nearest vertex it does show; in the model's
"mouth" region it is drawn plain dark (MOUTH_COLOR: the mouth interior and teeth). The face is pasted
over the photo with a one-pixel feathered edge.

The photo must be framed the way the coefficients' pose expects: the aligned crop that Deep3DFaceRecon or
SadTalker fitted (a face centred in a square image, like their 224×224 crops), or, for coefficients
without a pose, a frontal face filling the frame that way. Where the head moves away from its frame-0
place, the photo's own head shows behind it; small motions (talking) look right.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image, UnidentifiedImageError
from scipy.spatial import cKDTree

from a2e_jax.core.errors import UserError
from a2e_jax.render import camera as cam_lib
from a2e_jax.render import shading
from a2e_jax.render.rasterize import Fragments, interpolate, rasterize

MOUTH_COLOR = (0.09, 0.04, 0.04)
# A point counts as seen in frame 0 when it is within this view depth of the visible surface there.
VISIBILITY_TOLERANCE = 0.03


@dataclasses.dataclass
class PhotoTexture:
  """A reference photo and the frame-0 projection of the mesh into it.

  Attributes:
    image: [H,W,3] float32 photo in [0,1].
    camera: the camera at the photo's size.
    screen0: [N,3] homogeneous frame-0 screen coordinates of the vertices (camera.project).
    depth0: [H,W] float32 frame-0 z-buffer (view depth; +inf on background).
    hidden: [N,3] float32 colour of each vertex where the photo does not show it (see module doc).
    dark: [N] float32, 1 for hidden vertices of the mouth region (drawn MOUTH_COLOR).
  """

  image: np.ndarray
  camera: cam_lib.Camera
  screen0: np.ndarray
  depth0: np.ndarray
  hidden: np.ndarray
  dark: np.ndarray

  def arrays(self) -> dict:
    return {k: jnp.asarray(getattr(self, k)) for k in ("image", "screen0", "depth0", "hidden", "dark")}


def load_photo(path: str) -> np.ndarray:
  """[H,W,3] float32 RGB in [0,1]; an odd width or height loses its last column/row (H.264 needs even)."""
  try:
    with Image.open(path) as image:
      rgb = np.asarray(image.convert("RGB"), np.float32) / 255.0
  except (OSError, UnidentifiedImageError) as e:
    raise UserError(f"reference image {path!r} cannot be read ({e}); give a PNG or JPEG portrait") from None
  height, width = rgb.shape[0] // 2 * 2, rgb.shape[1] // 2 * 2
  if min(height, width) < 32:
    raise UserError(f"reference image {path!r} is {rgb.shape[1]}x{rgb.shape[0]}; use at least 64x64")
  return rgb[:height, :width]


def photo_texture(model, image, exp_k=None, pose_6=None, id_k=None, gamma_27=None,
                  tex_k=None) -> PhotoTexture:
  """Projects the mesh with expression `exp_k` (what the photo shows), `pose_6` and `id_k` into `image`.

  `image` is [H,W,3] float in [0,1] or a path; "frame 0" below means this projection. `gamma_27` and
  `tex_k` (the portrait's fitted SH lighting and albedo coefficients; tex_k None: the mean albedo) colour
  the surface the photo does not show; without gamma_27 it borrows the nearest shown colour.
  """
  if isinstance(image, str):
    image = load_photo(image)
  image = np.asarray(image, np.float32)
  camera = cam_lib.deep3d_camera(image.shape[0], image.shape[1])
  exp = None if exp_k is None else jnp.asarray(exp_k, jnp.float32)[None]
  ident = None if id_k is None else jnp.asarray(id_k, jnp.float32)
  verts = model.vertices(ident, exp if exp is not None else jnp.zeros((1, model.num_exp)))
  pose = jnp.zeros((1, 6)) if pose_6 is None else jnp.asarray(pose_6, jnp.float32)[None]
  posed = cam_lib.transform(verts, pose[:, :3], pose[:, 3:])
  screen = cam_lib.project(camera, posed)
  frags = rasterize(screen, model.triangles, camera.height, camera.width, near=camera.near)
  screen = np.asarray(screen[0])
  depth0 = np.where(np.asarray(frags.mask[0]), np.asarray(frags.depth[0]), np.inf).astype(np.float32)
  seen = _seen(screen, depth0)
  if not seen.any():
    raise UserError("the face's first frame is not inside the reference image; check the pose/translation")

  points = np.asarray(posed[0])
  if gamma_27 is None:
    source = np.flatnonzero(seen)
    nearest = screen[source[cKDTree(points[source]).query(points)[1]]]
    hidden = shading.sample_pixels(jnp.asarray(image), jnp.asarray(nearest[:, 0] / nearest[:, 2]),
                                   jnp.asarray(nearest[:, 1] / nearest[:, 2]))
  else:
    tex = None if tex_k is None or np.size(tex_k) == 0 else jnp.asarray(tex_k, jnp.float32)
    normals = shading.vertex_normals(posed, model.triangles)
    albedo = model.colors(tex)
    hidden = shading.lit_vertex_colors(albedo, normals, jnp.asarray(gamma_27, jnp.float32)[None])[0]
    hidden = jnp.clip(hidden, 0.0, 1.0)
  dark = np.zeros(len(points), np.float32)
  mouth = np.asarray(model.regions.get("mouth", np.zeros(0, np.int32)), np.int64)
  dark[mouth] = ~seen[mouth]
  return PhotoTexture(image=image, camera=camera, screen0=screen, depth0=depth0,
                      hidden=np.asarray(hidden, np.float32), dark=dark)


def _seen(screen_n3, depth_hw):
  """[N] bool, True for vertices on the surface visible in frame 0 (`_seen_at` on the host)."""
  height, width = depth_hw.shape
  w = screen_n3[:, 2]
  safe_w = np.where(w > 0, w, 1.0)
  x, y = screen_n3[:, 0] / safe_w, screen_n3[:, 1] / safe_w
  inside = (w > 0) & (x >= 0) & (x < width) & (y >= 0) & (y < height)
  return inside & np.asarray(_seen_at(jnp.asarray(depth_hw), jnp.asarray(x), jnp.asarray(y), jnp.asarray(w)))


def photo_colors(frags: Fragments, triangles_f3, photo: dict):
  """[B,H,W,3] the photo seen through the mesh (see module doc)."""
  image, depth0 = photo["image"], photo["depth0"]
  batch = frags.tri_id.shape[0]

  def frame0(per_vertex):
    """Frame-0 pixel (x, y) and depth of each pixel's surface point, from per-vertex screen coordinates."""
    # Homogeneous coordinates are linear on each triangle, so perspective-correct barycentrics interpolate
    # them exactly; dividing afterwards gives the frame-0 pixel of the same surface point.
    xyw = interpolate(jnp.broadcast_to(per_vertex, (batch,) + per_vertex.shape), frags, triangles_f3)
    w = jnp.where(jnp.abs(xyw[..., 2]) > 1e-6, xyw[..., 2], 1.0)
    return xyw[..., 0] / w, xyw[..., 1] / w, xyw[..., 2]

  x, y, w = frame0(photo["screen0"])
  seen = _seen_at(depth0, x, y, w)
  dark = interpolate(photo["dark"][:, None], frags, triangles_f3)
  mouth = jnp.asarray(MOUTH_COLOR, jnp.float32)
  hidden = photo["hidden"]
  hidden = interpolate(jnp.broadcast_to(hidden, (batch,) + hidden.shape), frags, triangles_f3)
  fallback = (1.0 - dark) * hidden + dark * mouth
  return jnp.where(seen[..., None], shading.sample_pixels(image, x, y), fallback)


def _seen_at(depth_hw, x, y, w):
  """Whether depth w at continuous pixel (x, y) is on the frame-0 surface at one of the 4 nearest centres.

  Any of the four rather than their minimum: a point beside a depth edge (the lip line) is seen when the
  surface it belongs to covers one of its neighbouring centres.
  """
  height, width = depth_hw.shape
  row0 = jnp.floor(jnp.clip(y, -1, height) - 0.5).astype(jnp.int32)
  col0 = jnp.floor(jnp.clip(x, -1, width) - 0.5).astype(jnp.int32)
  seen = jnp.zeros(x.shape, bool)
  for dr in (0, 1):
    for dc in (0, 1):
      depth = depth_hw[jnp.clip(row0 + dr, 0, height - 1), jnp.clip(col0 + dc, 0, width - 1)]
      seen |= w <= depth + VISIBILITY_TOLERANCE
  return seen


def composite(color_bhw3, mask_bhw, photo: dict):
  """The rendered face pasted over the photo, its edge feathered over about one pixel."""
  mask = mask_bhw.astype(jnp.float32)
  soft = jax.lax.reduce_window(mask, 0.0, jax.lax.add, (1, 3, 3), (1, 1, 1), "SAME") / 9.0
  alpha = jnp.where(mask_bhw, soft, 0.0)[..., None]
  return alpha * color_bhw3 + (1.0 - alpha) * photo["image"]
