"""Normals, Deep3DFaceRecon's spherical-harmonics lighting, vertex colours and UV textures.

Lighting follows Deep3DFaceRecon_pytorch (`ParametricFaceModel.compute_color`): 27 coefficients γ per frame
are 9 SH bands × RGB (laid out [3 colours, 9 bands]), 0.8 is added to band 0 (ambient), and with
a = [π, 2π/√3, 2π/√8], c = [1/√(4π), √3/√(4π), 3√5/√(12π)] and the unit normal n = (x, y, z) in camera
orientation (after the head rotation), the basis is
  Y = [a0c0, −a1c1·y, a1c1·z, −a1c1·x, a2c2·xy, −a2c2·yz, ½a2c2/√3·(3z²−1), −a2c2·xz, ½a2c2·(x²−y²)],
the irradiance per colour is Y·γ_colour, and the colour is albedo × irradiance, computed per vertex
(Gouraud, as Deep3DFaceRecon renders it) for vertex colours and per pixel for textures.
"""

import math

import jax.numpy as jnp
import numpy as np

from a2e_jax.render.rasterize import Fragments, interpolate

SH_A = (math.pi, 2 * math.pi / math.sqrt(3.0), 2 * math.pi / math.sqrt(8.0))
SH_C = (1 / math.sqrt(4 * math.pi), math.sqrt(3.0) / math.sqrt(4 * math.pi),
        3 * math.sqrt(5.0) / math.sqrt(12 * math.pi))
AMBIENT = 0.8  # Deep3DFaceRecon's init_lit, added to band 0 of every colour

# A soft studio light for previews: Deep3DFaceRecon's ambient plus a key light from the upper front-left
# (bands 1-3 are the linear terms: −y, z, −x), the same for R, G and B.
_KEY = np.array([0.0, -0.12, 0.22, 0.10, 0.0, 0.0, -0.05, 0.0, 0.0], np.float32)
DEFAULT_GAMMA = np.tile(_KEY, 3)


def face_normals(verts_bn3, triangles_f3):
  """[..., F, 3] unit normals of counter-clockwise triangles (Deep3DFaceRecon's (v1−v2)×(v2−v3))."""
  v = verts_bn3[..., triangles_f3, :]  # [..., F, 3 corners, 3]
  normal = jnp.cross(v[..., 0, :] - v[..., 1, :], v[..., 1, :] - v[..., 2, :])
  return normal / jnp.maximum(jnp.linalg.norm(normal, axis=-1, keepdims=True), 1e-12)


def vertex_normals(verts_bn3, triangles_f3):
  """[..., N, 3] unit vertex normals: the sum of the adjacent triangles' unit normals, normalised.

  Deep3DFaceRecon sums the same unit face normals through its `point_buf` adjacency table.
  """
  triangles_f3 = jnp.asarray(triangles_f3, jnp.int32)
  faces = face_normals(verts_bn3, triangles_f3)  # [..., F, 3]
  corners = jnp.broadcast_to(faces[..., None, :], faces.shape[:-1] + (3, 3))  # [..., F, 3 corners, 3]
  summed = jnp.zeros(verts_bn3.shape, verts_bn3.dtype).at[..., triangles_f3.reshape(-1), :].add(
    corners.reshape(corners.shape[:-3] + (-1, 3)))
  return summed / jnp.maximum(jnp.linalg.norm(summed, axis=-1, keepdims=True), 1e-12)


def sh_basis(normals_n3):
  """[..., 9] Deep3DFaceRecon's SH basis (with its a·c factors) of unit normals [..., 3]."""
  x, y, z = normals_n3[..., 0], normals_n3[..., 1], normals_n3[..., 2]
  a, c = SH_A, SH_C
  return jnp.stack([
    jnp.full_like(x, a[0] * c[0]),
    -a[1] * c[1] * y,
    a[1] * c[1] * z,
    -a[1] * c[1] * x,
    a[2] * c[2] * x * y,
    -a[2] * c[2] * y * z,
    0.5 * a[2] * c[2] / math.sqrt(3.0) * (3 * z**2 - 1),
    -a[2] * c[2] * x * z,
    0.5 * a[2] * c[2] * (x**2 - y**2),
  ], -1)


def sh_irradiance(normals_bn3, gamma_b27):
  """[B,N,3] RGB irradiance for unit normals [B,N,3] and Deep3DFaceRecon gammas [B,27]."""
  gamma = jnp.asarray(gamma_b27, jnp.float32).reshape(-1, 3, 9) + jnp.array([AMBIENT] + [0.0] * 8)
  return jnp.einsum("bnk,bck->bnc", sh_basis(normals_bn3), gamma)


def lit_vertex_colors(albedo_bn3, normals_bn3, gamma_b27):
  """[B,N,3] albedo × SH irradiance (Deep3DFaceRecon's `compute_color`)."""
  return albedo_bn3 * sh_irradiance(normals_bn3, gamma_b27)


def sample_texture(texture_hwc, uv_bhw2, wrap: bool = True):
  """Bilinear lookup of `texture_hwc` [H,W,C] (float) at uv [..., 2] in [0,1], origin bottom-left.

  With `wrap`, coordinates repeat (UDIM tiles of the ICT model all read the one texture); otherwise they
  clamp to the border. Differentiable in uv and texture.
  """
  height, width = texture_hwc.shape[:2]
  u, v = uv_bhw2[..., 0], uv_bhw2[..., 1]
  if wrap:
    u, v = jnp.mod(u, 1.0), jnp.mod(v, 1.0)
  return sample_pixels(texture_hwc, u * width, (1.0 - v) * height, wrap=wrap)


def sample_pixels(image_hwc, x, y, wrap: bool = False):
  """Bilinear lookup of `image_hwc` [H,W,C] at continuous pixel coordinates x, y [...] (origin top-left)."""
  height, width = image_hwc.shape[:2]
  u, v = x - 0.5, y - 0.5
  u0, v0 = jnp.floor(u), jnp.floor(v)
  fu, fv = (u - u0)[..., None], (v - v0)[..., None]
  u0, v0 = u0.astype(jnp.int32), v0.astype(jnp.int32)

  def texel(vv, uu):
    uu = jnp.mod(uu, width) if wrap else jnp.clip(uu, 0, width - 1)
    return image_hwc[jnp.clip(vv, 0, height - 1), uu]

  top = texel(v0, u0) * (1 - fu) + texel(v0, u0 + 1) * fu
  bottom = texel(v0 + 1, u0) * (1 - fu) + texel(v0 + 1, u0 + 1) * fu
  return top * (1 - fv) + bottom * fv


def interpolate_uv(uvs_u2, uv_triangles_f3, frags: Fragments):
  """[B,H,W,2] texture coordinates at each pixel (UVs have their own per-corner index, as in OBJ files)."""
  uv_corner = jnp.asarray(uvs_u2)[jnp.asarray(uv_triangles_f3)[jnp.maximum(frags.tri_id, 0)]]  # [B,H,W,3,2]
  return jnp.einsum("bhwk,bhwkc->bhwc", frags.bary, uv_corner)


def shade(frags: Fragments, triangles_f3, normals_bn3, gamma_b27, *, vertex_albedo_bn3=None, texture=None,
          uvs=None, uv_triangles=None):
  """[B,H,W,3] lit colour: vertex albedo lit per vertex, or a texture lit per pixel; 0 on background.

  Args:
    frags: the rasterizer's output.
    triangles_f3: the mesh's triangles.
    normals_bn3: [B,N,3] unit vertex normals in camera orientation.
    gamma_b27: [B,27] SH coefficients (see module doc).
    vertex_albedo_bn3: [B,N,3] or [N,3] albedo in [0,1] (used when no texture is given).
    texture, uvs, uv_triangles: a [H,W,3] float texture in [0,1] with the model's UVs.
  """
  irradiance = sh_irradiance(normals_bn3, gamma_b27)
  if texture is None:
    albedo = jnp.broadcast_to(vertex_albedo_bn3, irradiance.shape)
    return interpolate(albedo * irradiance, frags, triangles_f3)
  albedo = sample_texture(jnp.asarray(texture, jnp.float32), interpolate_uv(uvs, uv_triangles, frags))
  lit = albedo * interpolate(irradiance, frags, triangles_f3)
  return jnp.where(frags.mask[..., None], lit, 0.0)


def to_uint8(image):
  """Float image in [0,1] → uint8 (sRGB-agnostic: values are written as they are)."""
  return np.asarray(jnp.clip(jnp.round(jnp.asarray(image) * 255.0), 0, 255)).astype(np.uint8)
