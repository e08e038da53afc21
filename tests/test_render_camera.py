"""Camera: pose and projection against a float64 numpy transcription of Deep3DFaceRecon_pytorch's code."""

import numpy as np
import pytest

from a2e_jax.render import camera


def deep3d_rotation(angles):
  """ParametricFaceModel.compute_rotation: rot = (Rz·Ry·Rx)ᵀ, used as `face_shape @ rot`."""
  rows = []
  for x, y, z in np.asarray(angles, np.float64):
    rot_x = np.array([[1, 0, 0], [0, np.cos(x), -np.sin(x)], [0, np.sin(x), np.cos(x)]])
    rot_y = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rot_z = np.array([[np.cos(z), -np.sin(z), 0], [np.sin(z), np.cos(z), 0], [0, 0, 1]])
    rows.append((rot_z @ rot_y @ rot_x).T)
  return np.stack(rows)


def deep3d_project(shape, angles, trans, focal=1015.0, center=112.0, distance=10.0):
  """transform → to_camera → to_image: (N,2) image points with y upwards, and camera-space depth."""
  shape = shape @ deep3d_rotation(angles) + trans[:, None, :]
  shape[..., 2] = distance - shape[..., 2]
  persc = np.array([[focal, 0, center], [0, focal, center], [0, 0, 1]], np.float64).T
  proj = shape @ persc
  return proj[..., :2] / proj[..., 2:], shape[..., 2]


@pytest.mark.slow
def test_pose_and_projection_match_deep3dfacerecon():
  rng = np.random.default_rng(0)
  verts = rng.normal(size=(2, 50, 3)) * 0.6
  angles = rng.uniform(-0.6, 0.6, (2, 3))
  trans = rng.uniform(-0.3, 0.3, (2, 3))
  posed = camera.transform(verts.astype(np.float32), angles, trans)
  np.testing.assert_allclose(np.asarray(posed), verts @ deep3d_rotation(angles) + trans[:, None], atol=1e-5)

  ref_xy_up, ref_depth = deep3d_project(verts, angles, trans)
  cam = camera.deep3d_camera()
  screen = np.asarray(camera.project(cam, posed))
  pixels = np.asarray(camera.to_pixels(cam, screen))
  np.testing.assert_allclose(screen[..., 2], ref_depth, rtol=1e-5)
  np.testing.assert_allclose(pixels[..., 0], ref_xy_up[..., 0], atol=2e-3)
  np.testing.assert_allclose(pixels[..., 1], 224 - ref_xy_up[..., 1], atol=2e-3)  # our rows grow downwards


def test_rotation_is_rz_ry_rx():
  rot = np.asarray(camera.rotation_matrix(np.array([0.0, 0.0, np.pi / 2])))
  np.testing.assert_allclose(rot @ [1, 0, 0], [0, 1, 0], atol=1e-6)  # yaw-free roll: x turns into y
  rot = np.asarray(camera.rotation_matrix(np.array([0.3, -0.2, 0.1])))
  np.testing.assert_allclose(rot, deep3d_rotation([[0.3, -0.2, 0.1]])[0].T, atol=1e-6)
  np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-6)


def test_camera_scales_with_image_size():
  verts = np.array([[[0.5, 0.4, 0.2], [-0.3, -0.6, 0.0]]], np.float32)
  small, large = camera.deep3d_camera(224), camera.deep3d_camera(512)
  p_small = np.asarray(camera.to_pixels(small, camera.project(small, verts)))
  p_large = np.asarray(camera.to_pixels(large, camera.project(large, verts)))
  np.testing.assert_allclose(p_large, p_small * 512 / 224, rtol=1e-5)
  wide = camera.deep3d_camera(224, 320)
  p_wide = np.asarray(camera.to_pixels(wide, camera.project(wide, verts)))
  np.testing.assert_allclose(p_wide, p_small + [48, 0], atol=1e-3)


def test_weak_perspective_has_no_foreshortening():
  cam = camera.deep3d_camera(224, perspective=False)
  near = np.array([[[0.5, 0.5, 1.0]]], np.float32)
  far = np.array([[[0.5, 0.5, -1.0]]], np.float32)
  p_near = np.asarray(camera.to_pixels(cam, camera.project(cam, near)))
  p_far = np.asarray(camera.to_pixels(cam, camera.project(cam, far)))
  np.testing.assert_allclose(p_near, p_far)
  np.testing.assert_allclose(p_near[0, 0], [112 + 101.5 * 0.5, 112 - 101.5 * 0.5], rtol=1e-6)
  assert float(camera.project(cam, near)[0, 0, 2]) < float(camera.project(cam, far)[0, 0, 2])
