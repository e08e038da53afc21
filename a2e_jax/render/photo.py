"""Photo texture: colour the face from a reference portrait and composite the animated face back over it.

The mesh of the clip's first frame is projected into the photo with the same camera (Deep3DFaceRecon's,
scaled to the photo), which fixes for every surface point where in the photo its colour is. In later frames
each pixel of the face looks up that frame-0 position (perspective-correct: the frame-0 homogeneous
coordinates are interpolated with the frame's barycentrics, then divided), so the still portrait moves
with the mesh. Surface that the photo does not show (hidden in frame 0, found by a depth test) borrows the
colour of the nearest visible vertex — a closing eyelid takes the skin above it — except in the model's
"mouth" region: the mouth interior and teeth are drawn plain dark (MOUTH_COLOR). The face is pasted over
the photo with a one-pixel feathered edge.

The photo must be framed the way the coefficients' pose expects: the aligned crop that Deep3DFaceRecon or
SadTalker fitted (a face centred in a square image, like their 224×224 crops), or, for coefficients
without a pose, a frontal face filling the frame that way. Where the head moves away from its frame-0
place, the photo's own head shows behind it; small motions (talking) look right.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from a2e_jax.errors import UserError
from a2e_jax.render import camera as cam_lib
from a2e_jax.render import shading
from a2e_jax.render.rasterize import Fragments, interpolate, rasterize

MOUTH_COLOR = (0.09, 0.04, 0.04)
# A vertex counts as seen in frame 0 when it is within this view depth of the visible surface there.
VISIBILITY_TOLERANCE = 0.03


@dataclasses.dataclass
class PhotoTexture:
  """A reference photo and the frame-0 projection of the mesh into it.

  Attributes:
    image: [H,W,3] float32 photo in [0,1].
    camera: the camera at the photo's size.
    lookup: [N,3] per vertex, the homogeneous frame-0 screen coordinates (camera.project) where its colour
      is: its own when visible in frame 0, else the nearest visible vertex's.
    dark: [N] float32, 1 for hidden vertices of the mouth region (drawn MOUTH_COLOR).
  """

  image: np.ndarray
  camera: cam_lib.Camera
  lookup: np.ndarray
  dark: np.ndarray

  def arrays(self) -> dict:
    return {"image": jnp.asarray(self.image), "lookup": jnp.asarray(self.lookup),
            "dark": jnp.asarray(self.dark)}


def load_photo(path: str) -> np.ndarray:
  """[H,W,3] float32 RGB in [0,1]; an odd width or height loses its last column/row (H.264 needs even)."""
  from PIL import Image, UnidentifiedImageError

  try:
    with Image.open(path) as image:
      rgb = np.asarray(image.convert("RGB"), np.float32) / 255.0
  except (OSError, UnidentifiedImageError) as e:
    raise UserError(f"reference image {path!r} cannot be read ({e}); give a PNG or JPEG portrait") from None
  height, width = rgb.shape[0] // 2 * 2, rgb.shape[1] // 2 * 2
  if min(height, width) < 32:
    raise UserError(f"reference image {path!r} is {rgb.shape[1]}x{rgb.shape[0]}; use at least 64x64")
  return rgb[:height, :width]


def photo_texture(model, image, exp_k=None, pose_6=None, id_k=None) -> PhotoTexture:
  """Projects the frame-0 mesh (expression, pose, identity) into `image` [H,W,3] (or a path)."""
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
  seen = _seen(screen, np.asarray(frags.depth[0]), np.asarray(frags.mask[0]))
  if not seen.any():
    raise UserError("the face's first frame is not inside the reference image; check the pose/translation")
  from scipy.spatial import cKDTree

  points = np.asarray(posed[0])
  source = np.flatnonzero(seen)
  nearest = source[cKDTree(points[source]).query(points)[1]]
  dark = np.zeros(len(points), np.float32)
  mouth = np.asarray(model.regions.get("mouth", np.zeros(0, np.int32)), np.int64)
  dark[mouth] = ~seen[mouth]
  return PhotoTexture(image=image, camera=camera, lookup=screen[nearest], dark=dark)


def _seen(screen_n3, depth_hw, mask_hw):
  """[N] bool, True for vertices on the surface visible in frame 0.

  A vertex is seen when it is no deeper than the z-buffer at the 2×2 pixel centres around it (plus a
  tolerance); with no covered centre around it, it lies on the silhouette and is seen too.
  """
  height, width = depth_hw.shape
  w = screen_n3[:, 2]
  safe_w = np.where(w > 0, w, 1.0)
  x, y = screen_n3[:, 0] / safe_w, screen_n3[:, 1] / safe_w
  inside = (w > 0) & (x >= 0) & (x < width) & (y >= 0) & (y < height)
  row0 = np.floor(np.clip(y, -1, height) - 0.5).astype(np.int64)
  col0 = np.floor(np.clip(x, -1, width) - 0.5).astype(np.int64)
  nearest = np.full(len(w), np.inf)
  for dr in (0, 1):
    for dc in (0, 1):
      r, c = np.clip(row0 + dr, 0, height - 1), np.clip(col0 + dc, 0, width - 1)
      nearest = np.minimum(nearest, np.where(mask_hw[r, c], depth_hw[r, c], np.inf))
  return inside & (w <= nearest + VISIBILITY_TOLERANCE)


def photo_colors(frags: Fragments, triangles_f3, photo: dict):
  """[B,H,W,3] the photo seen through the mesh: frame-0 positions looked up per pixel, the mouth dark."""
  image = photo["image"]
  batch = frags.tri_id.shape[0]
  lookup = jnp.broadcast_to(photo["lookup"], (batch,) + photo["lookup"].shape)
  # Homogeneous frame-0 coordinates are linear on each triangle, so perspective-correct barycentrics
  # interpolate them exactly; dividing afterwards gives the frame-0 pixel of the same surface point.
  xyw = interpolate(lookup, frags, triangles_f3)
  w = jnp.where(jnp.abs(xyw[..., 2]) > 1e-6, xyw[..., 2], 1.0)
  color = shading.sample_pixels(image, xyw[..., 0] / w, xyw[..., 1] / w)
  dark = interpolate(photo["dark"][:, None], frags, triangles_f3)
  return (1.0 - dark) * color + dark * jnp.asarray(MOUTH_COLOR, jnp.float32)


def composite(color_bhw3, mask_bhw, photo: dict):
  """The rendered face pasted over the photo, its edge feathered over about one pixel."""
  mask = mask_bhw.astype(jnp.float32)
  soft = jax.lax.reduce_window(mask, 0.0, jax.lax.add, (1, 3, 3), (1, 1, 1), "SAME") / 9.0
  alpha = jnp.where(mask_bhw, soft, 0.0)[..., None]
  return alpha * color_bhw3 + (1.0 - alpha) * photo["image"]
