"""Shading: Deep3DFaceRecon's SH lighting and normals against float64 numpy transcriptions; textures."""

import jax.numpy as jnp
import numpy as np
import pytest
import synthetic_meshes as synthetic

from a2e_jax.render import camera, rasterize, shading


def deep3d_color(albedo, normals, gamma):
  """ParametricFaceModel.compute_color in float64 numpy (27 gammas laid out [3 colours, 9 bands])."""
  a = [np.pi, 2 * np.pi / np.sqrt(3.0), 2 * np.pi / np.sqrt(8.0)]
  c = [1 / np.sqrt(4 * np.pi), np.sqrt(3.0) / np.sqrt(4 * np.pi), 3 * np.sqrt(5.0) / np.sqrt(12 * np.pi)]
  gamma = gamma.reshape(-1, 3, 9) + np.array([0.8, 0, 0, 0, 0, 0, 0, 0, 0])
  gamma = gamma.transpose(0, 2, 1)  # [B, 9, 3]
  x, y, z = normals[..., :1], normals[..., 1:2], normals[..., 2:]
  basis = np.concatenate([
    a[0] * c[0] * np.ones_like(x), -a[1] * c[1] * y, a[1] * c[1] * z, -a[1] * c[1] * x,
    a[2] * c[2] * x * y, -a[2] * c[2] * y * z, 0.5 * a[2] * c[2] / np.sqrt(3.0) * (3 * z**2 - 1),
    -a[2] * c[2] * x * z, 0.5 * a[2] * c[2] * (x**2 - y**2)], -1)
  return (basis @ gamma) * albedo


def deep3d_vertex_normals(verts, triangles):
  """compute_norm: unit face normals (v1−v2)×(v2−v3) summed over each vertex's faces, normalised."""
  v1, v2, v3 = (verts[:, triangles[:, k]] for k in range(3))
  face = np.cross(v1 - v2, v2 - v3)
  face /= np.linalg.norm(face, axis=-1, keepdims=True)
  out = np.zeros_like(verts)
  for k in range(3):
    np.add.at(out, (slice(None), triangles[:, k]), face)
  return out / np.linalg.norm(out, axis=-1, keepdims=True)


def test_sh_lighting_matches_deep3dfacerecon():
  rng = np.random.default_rng(0)
  normals = rng.normal(size=(2, 100, 3))
  normals /= np.linalg.norm(normals, axis=-1, keepdims=True)
  albedo = rng.uniform(size=(2, 100, 3))
  gamma = rng.normal(scale=0.3, size=(2, 27))
  ours = shading.lit_vertex_colors(jnp.asarray(albedo, jnp.float32), jnp.asarray(normals, jnp.float32),
                                   jnp.asarray(gamma, jnp.float32))
  np.testing.assert_allclose(np.asarray(ours), deep3d_color(albedo, normals, gamma), rtol=1e-5, atol=1e-5)


def test_zero_gamma_is_ambient_only():
  normals = np.array([[[0, 0, 1.0], [1.0, 0, 0]]], np.float32)
  irr = np.asarray(shading.sh_irradiance(normals, np.zeros((1, 27), np.float32)))
  np.testing.assert_allclose(irr, 0.8 * np.pi / np.sqrt(4 * np.pi), rtol=1e-6)


@pytest.mark.slow
def test_vertex_normals_match_deep3dfacerecon():
  verts, triangles = synthetic.face_like_mesh(500, 950)
  angles, trans = synthetic.random_poses(2)
  posed = np.asarray(camera.transform(verts[None], angles, trans), np.float64)
  ours = np.asarray(shading.vertex_normals(jnp.asarray(posed, jnp.float32), triangles))
  np.testing.assert_allclose(ours, deep3d_vertex_normals(posed, triangles), atol=1e-5)
  assert (ours[..., 2].mean() > 0.5), "a dome seen from the front faces the camera (+z)"


def test_texture_sampling_is_bilinear_with_origin_bottom_left():
  texture = np.arange(4 * 6 * 1, dtype=np.float32).reshape(4, 6, 1)
  # Texel (row r, column c) has its centre at u = (c + ½)/6, v = 1 − (r + ½)/4.
  uv = np.array([[(2.5 / 6, 1 - 1.5 / 4), (3.0 / 6, 1 - 1.5 / 4), (2.5 / 6, 1 - 2.0 / 4)]], np.float32)
  out = np.asarray(shading.sample_texture(jnp.asarray(texture), jnp.asarray(uv)))[..., 0]
  np.testing.assert_allclose(out[0], [texture[1, 2, 0], (texture[1, 2, 0] + texture[1, 3, 0]) / 2,
                                      (texture[1, 2, 0] + texture[2, 2, 0]) / 2], rtol=1e-6)


@pytest.mark.slow
def test_textured_quad_shows_its_texture():
  # A square facing the camera, UV-mapped onto a 2×2 checker: the four quadrants take the four colours.
  verts = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], np.float32) * 0.5
  triangles = np.array([[0, 1, 2], [0, 2, 3]], np.int32)
  uvs = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float32)
  texture = np.array([[[1, 0, 0], [0, 1, 0]], [[0, 0, 1], [1, 1, 1]]], np.float32)  # top row first
  cam = camera.deep3d_camera(64)
  frags = rasterize.rasterize(camera.project(cam, verts[None]), triangles, 64, 64)
  uv = shading.interpolate_uv(uvs, triangles, frags)
  color = np.asarray(shading.sample_texture(jnp.asarray(texture), uv))
  assert (np.asarray(frags.mask)[0, 20:44, 20:44]).all()
  np.testing.assert_allclose(color[0, 24, 24], [1, 0, 0], atol=0.35)  # image top-left ← texture top-left
  np.testing.assert_allclose(color[0, 39, 39], [1, 1, 1], atol=0.35)
  assert color[0, 24, 39].argmax() == 1 and color[0, 39, 24].argmax() == 2


@pytest.mark.slow
def test_textured_model_renders_through_the_pipeline():
  from a2e_jax.face.model import MorphableModel
  from a2e_jax.render.pipeline import FaceRenderer

  verts = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], np.float32) * 0.5
  texture = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [255, 255, 255]]], np.uint8)
  model = MorphableModel(
    mean=verts, id_basis=np.zeros((4, 3, 1), np.float32), exp_basis=np.zeros((4, 3, 1), np.float32),
    triangles=np.array([[0, 1, 2], [0, 2, 3]], np.int32), landmarks=np.zeros(68, np.int32), regions={},
    uvs=np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float32),
    uv_triangles=np.array([[0, 1, 2], [0, 2, 3]], np.int32), texture=texture)
  # Ambient light only: the colour is texture × π·0.8/√(4π) ≈ 0.709.
  images, mask = FaceRenderer(model, size=64, batch=1).render(gamma_b27=np.zeros(27, np.float32))
  images = np.asarray(images)[0]
  assert np.asarray(mask)[0, 32, 32] and not np.asarray(mask)[0, 2, 2]
  ambient = 0.8 * np.pi / np.sqrt(4 * np.pi)
  np.testing.assert_allclose(images[24, 24], [ambient, 0, 0], atol=0.2)
  np.testing.assert_allclose(images[39, 39], [ambient] * 3, atol=0.2)
