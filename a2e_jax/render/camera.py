"""Deep3DFaceRecon's camera: head pose, perspective (or weak-perspective) projection to pixel coordinates.

Conventions (checked against Deep3DFaceRecon_pytorch's `ParametricFaceModel`):
- Pose: R = Rz(γ)·Ry(β)·Rx(α) from angles (α, β, γ) in radians, applied to column vectors, then translation:
  v' = R v + t. (Deep3DFaceRecon writes the same thing as `face_shape @ rot + trans` with rot = Rᵀ.)
- Camera: on the +z axis at `distance` (10), looking down −z; view depth w = distance − z' (> 0 in front).
- Image: pixel (row r, column c) covers [c, c+1) × [r, r+1) in continuous image coordinates, origin at the
  top-left corner, rows growing downwards; its centre (c + ½, r + ½) is where it is sampled.
  x_px = cx + f·x'/w,  y_px = cy − f·y'/w.  Deep3DFaceRecon's `to_image` returns y upwards
  (y_up = cy + f·y'/w); ours is y_px = H − y_up.
- Any output size: focal and principal point scale with the image (focal 1015 and centre 112 at 224 px).

`project` returns homogeneous pixel coordinates (X, Y, W) = (x_px·w, y_px·w, w) for the rasterizer, so
vertices behind the camera need no division; with `perspective=False` (weak perspective) it returns
(x_px, y_px, w) with x_px = cx + (f/distance)·x', which the rasterizer interpolates linearly on screen.
"""

import dataclasses

import jax.numpy as jnp

DEEP3D_SIZE = 224
DEEP3D_FOCAL = 1015.0
DEEP3D_DISTANCE = 10.0


@dataclasses.dataclass(frozen=True)
class Camera:
  """A pinhole (or weak-perspective) camera on the +z axis looking at the origin.

  Attributes:
    height, width: image size in pixels.
    focal: focal length in pixels.
    cx, cy: principal point in pixels (continuous coordinates, origin top-left).
    distance: camera position on the z axis (view depth w = distance − z).
    perspective: False for weak perspective (scale focal/distance, no foreshortening).
    near: view depth of the near clipping plane; surface closer than this is not drawn.
  """

  height: int = DEEP3D_SIZE
  width: int = DEEP3D_SIZE
  focal: float = DEEP3D_FOCAL
  cx: float = DEEP3D_SIZE / 2
  cy: float = DEEP3D_SIZE / 2
  distance: float = DEEP3D_DISTANCE
  perspective: bool = True
  near: float = 0.1


def deep3d_camera(height: int = DEEP3D_SIZE, width: int | None = None, perspective: bool = True) -> Camera:
  """Deep3DFaceRecon's camera for an image of `height`×`width` (focal scales with the height)."""
  width = height if width is None else width
  return Camera(height=height, width=width, focal=DEEP3D_FOCAL * height / DEEP3D_SIZE,
                cx=width / 2, cy=height / 2, perspective=perspective)


def rotation_matrix(angles):
  """[..., 3, 3] R = Rz·Ry·Rx for angles [..., 3] = (about x, about y, about z) in radians."""
  angles = jnp.asarray(angles, jnp.float32)
  cos, sin = jnp.cos(angles), jnp.sin(angles)
  one, zero = jnp.ones_like(cos[..., 0]), jnp.zeros_like(cos[..., 0])

  def mat(rows):
    return jnp.stack([jnp.stack(r, -1) for r in rows], -2)

  cx, cy, cz = cos[..., 0], cos[..., 1], cos[..., 2]
  sx, sy, sz = sin[..., 0], sin[..., 1], sin[..., 2]
  rot_x = mat([[one, zero, zero], [zero, cx, -sx], [zero, sx, cx]])
  rot_y = mat([[cy, zero, sy], [zero, one, zero], [-sy, zero, cy]])
  rot_z = mat([[cz, -sz, zero], [sz, cz, zero], [zero, zero, one]])
  return rot_z @ rot_y @ rot_x


def transform(verts_bn3, angles_b3=None, trans_b3=None):
  """Poses vertices: R v + t. verts [..., N, 3], angles and trans [..., 3] (None: identity)."""
  verts_bn3 = jnp.asarray(verts_bn3, jnp.float32)
  if angles_b3 is not None:
    rot = rotation_matrix(angles_b3)
    verts_bn3 = jnp.einsum("...nj,...ij->...ni", verts_bn3, rot)
  if trans_b3 is not None:
    verts_bn3 = verts_bn3 + jnp.asarray(trans_b3, jnp.float32)[..., None, :]
  return verts_bn3


def transform_normals(normals_bn3, angles_b3=None):
  """Rotates normals [..., N, 3] by the pose angles [..., 3]."""
  return transform(normals_bn3, angles_b3)


def project(camera: Camera, verts_bn3):
  """Posed vertices [..., N, 3] → the rasterizer's [..., N, 3] screen coordinates (see module doc)."""
  x, y, z = verts_bn3[..., 0], verts_bn3[..., 1], verts_bn3[..., 2]
  w = camera.distance - z
  if camera.perspective:
    return jnp.stack([camera.focal * x + camera.cx * w, camera.cy * w - camera.focal * y, w], -1)
  scale = camera.focal / camera.distance
  return jnp.stack([camera.cx + scale * x, camera.cy - scale * y, w], -1)


def to_pixels(camera: Camera, screen_bn3):
  """[..., N, 2] pixel coordinates (x right, y down) of `project`'s output."""
  if camera.perspective:
    return screen_bn3[..., :2] / screen_bn3[..., 2:3]
  return screen_bn3[..., :2]
