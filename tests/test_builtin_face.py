"""The built-in procedural face: mesh validity, symmetry, landmarks, regions and what each channel does."""

import time

import numpy as np
import pytest
from scipy.spatial import cKDTree

from a2e_jax.core.channels import ICT_CHANNELS
from a2e_jax.face import builtin
from a2e_jax.face.builtin import mesh as builtin_mesh
from a2e_jax.face.model import REGION_NAMES, load_model, validate

# Multi-PIE 68-point mirror pairs (the subject's right <-> left); the rest lie on the midline.
_MIRROR_PAIRS = (
  [(i, 16 - i) for i in range(8)] + [(17 + i, 26 - i) for i in range(5)] + [(31, 35), (32, 34)]
  + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]
  + [(48, 54), (49, 53), (50, 52), (59, 55), (58, 56), (60, 64), (61, 63), (67, 65)]
)  # fmt: skip
_MIDLINE = (8, 27, 28, 29, 30, 33, 51, 57, 62, 66)


@pytest.fixture(scope="module")
def model():
  return builtin.builtin_model()


@pytest.fixture(scope="module")
def mean(model):
  return np.asarray(model.mean, np.float64)


@pytest.fixture(scope="module")
def mesh():
  """The mesh with its bookkeeping (parts, lid margins, eye centres), as builtin_model() used it."""
  return builtin_mesh.build_mesh()


def _posed(model, **weights):
  """Vertices [N,3] (float64) for the named channel weights."""
  w = np.zeros(len(ICT_CHANNELS))
  for name, value in weights.items():
    w[ICT_CHANNELS.index(name)] = value
  return np.asarray(model.mean, np.float64) + np.asarray(model.exp_basis, np.float64) @ w


def _lip_gap(model, verts):
  """Vertical distance between the inner-lip landmarks 62 (upper) and 66 (lower)."""
  lm = np.asarray(model.landmarks)
  return verts[lm[62], 1] - verts[lm[66], 1]


def test_sizes_names_and_determinism(model):
  validate(model, source="builtin")
  assert 5_000 <= model.num_vertices <= 20_000
  assert model.channel_names == ICT_CHANNELS
  assert model.num_exp == 53 and model.num_id >= 10
  assert model.name == "builtin"
  builtin.builtin_model.cache_clear()
  again = builtin.builtin_model()
  for field in ("mean", "id_basis", "exp_basis", "triangles", "landmarks", "color_mean"):
    np.testing.assert_array_equal(getattr(model, field), getattr(again, field))
  assert builtin.builtin_model() is again  # cached
  assert not np.asarray(again.mean).flags.writeable


def test_saves_and_loads(model, tmp_path):
  path = tmp_path / "builtin.npz"
  model.save(str(path))
  loaded = load_model(str(path))
  assert loaded.channel_names == model.channel_names and loaded.name == "builtin"
  for field in ("mean", "id_basis", "exp_basis", "triangles", "landmarks", "color_mean"):
    np.testing.assert_array_equal(getattr(loaded, field), getattr(model, field))
  assert loaded.regions.keys() == model.regions.keys()
  for name, indices in model.regions.items():
    np.testing.assert_array_equal(loaded.regions[name], indices)


def test_builds_fast():
  start = time.perf_counter()
  builtin.builtin_model.__wrapped__()
  assert time.perf_counter() - start < 3.0


def test_framing_matches_deep3dfacerecon_units(model, mean):
  lm = np.asarray(model.landmarks)
  face_width = mean[lm[16], 0] - mean[lm[0], 0]
  assert 1.2 < face_width < 1.6  # 1 unit = 10 cm
  assert np.abs(mean[model.regions["face"]].mean(0)[:2]).max() < 0.3  # centred near the origin
  # Deep3DFaceRecon's camera (z = 10, focal 1015, 224 px): the face spans most of the image.
  z = mean[lm, 2]
  u = 112 + 1015 * mean[lm, 0] / (10 - z)
  v = 112 - 1015 * mean[lm, 1] / (10 - z)
  assert 20 < u.min() and u.max() < 204 and 10 < v.min() and v.max() < 214
  assert u.max() - u.min() > 120 and v.max() - v.min() > 120


def test_triangles_valid_and_outward(model, mean, mesh):
  tri = np.asarray(model.triangles)
  a, b, c = mean[tri[:, 0]], mean[tri[:, 1]], mean[tri[:, 2]]
  normal = np.cross(b - a, c - a)
  area = 0.5 * np.linalg.norm(normal, axis=1)
  assert area.min() > 1e-8  # no degenerate triangles
  assert len(np.unique(np.sort(tri, axis=1), axis=0)) == len(tri)
  # Every directed edge appears once: a consistently oriented manifold (with boundaries).
  edges = np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]])
  assert len(np.unique(edges, axis=0)) == len(edges)
  undirected, counts = np.unique(np.sort(edges, axis=1), axis=0, return_counts=True)
  assert counts.max() == 2
  # The skin of the face region looks along +z: nearly all its triangles face forward.
  part = mesh.part
  face_skin = np.intersect1d(model.regions["face"], np.flatnonzero(part == builtin_mesh.SKIN))
  front = np.isin(tri, face_skin).all(1)
  assert (normal[front, 2] > 0).mean() > 0.97
  assert normal[front, 2].sum() > 0.5 * np.linalg.norm(normal[front], axis=1).sum()
  # Eyeballs are closed spheres with outward normals.
  for eye in (builtin_mesh.EYE_LEFT, builtin_mesh.EYE_RIGHT):
    ids = np.flatnonzero(part == eye)
    ball = np.isin(tri, ids).all(1)
    centre = mean[ids].mean(0)
    outward = np.einsum("fc,fc->f", normal[ball], (a + b + c)[ball] / 3 - centre)
    assert (outward > 0).all()
  # The ears are closed shells: positive signed volume means they wind outwards.
  ears = np.flatnonzero(part == builtin_mesh.EAR)
  for side in (ears[mean[ears, 0] > 0], ears[mean[ears, 0] < 0]):
    shell = np.isin(tri, side).all(1)
    volume = np.einsum("fc,fc->f", a[shell], np.cross(b[shell], c[shell])).sum() / 6
    assert volume > 1e-3
    closed = np.unique(np.sort(edges[np.tile(shell, 3)], axis=1), axis=0, return_counts=True)[1]
    assert (closed == 2).all()


def test_inner_parts_stay_behind_the_skin(mean, mesh):
  """Teeth, mouth cavity and eyeballs lie behind the skin's front surface at rest."""
  part = mesh.part
  inner = np.isin(part, [builtin_mesh.CAVITY, builtin_mesh.TEETH_UPPER, builtin_mesh.TEETH_LOWER,
                         builtin_mesh.EYE_LEFT, builtin_mesh.EYE_RIGHT])
  inner &= part != builtin_mesh.CAVITY  # the cavity's first ring lies on the lip edges
  x, y, z = mean[inner].T
  assert (z < builtin.shape.front_z(x, y) - 1e-3).all()
  deep = (part == builtin_mesh.CAVITY) & (mesh.cavity_depth > 0)
  x, y, z = mean[deep].T
  assert (z < builtin.shape.front_z(x, y) - 0.02).all()


def test_mesh_is_mirror_symmetric(mean):
  reflected = mean * [-1, 1, 1]
  dist, _ = cKDTree(mean).query(reflected)
  assert dist.max() < 1e-5


def test_landmarks_symmetric_and_in_order(model, mean):
  lm = np.asarray(model.landmarks)
  assert lm.shape == (68,) and len(np.unique(lm)) >= 66  # 60/64 may share the commissure only with 48/54
  p = mean[lm]
  for right, left in _MIRROR_PAIRS:
    np.testing.assert_allclose(p[left], p[right] * [-1, 1, 1], atol=1e-5)
    assert p[right, 0] < 0 < p[left, 0]
  np.testing.assert_allclose(p[list(_MIDLINE), 0], 0, atol=1e-6)
  y = p[:, 1]
  assert y[8] < y[57] < y[66] <= y[62] < y[51] < y[33] < y[30] < y[27] < y[19]  # chin to brow
  assert y[37] > y[41] and y[44] > y[46]  # upper lids above lower lids
  assert p[36, 0] < p[39, 0] < 0 < p[42, 0] < p[45, 0]  # eye corners from the image's left to right
  np.testing.assert_array_less(np.diff(p[0:9, 1]), 0)  # the jaw line descends to the chin


def test_regions(model, mean):
  regions = {k: set(np.asarray(v).tolist()) for k, v in model.regions.items()}
  assert set(REGION_NAMES) <= set(regions)
  assert all(regions[name] for name in REGION_NAMES)
  assert regions["lips"] <= regions["mouth"] <= regions["face"]
  assert regions["eye_left"] <= regions["upper_face"] <= regions["face"]
  assert regions["eye_right"] <= regions["upper_face"]
  assert not regions["eye_left"] & regions["eye_right"]
  assert mean[list(regions["eye_left"]), 0].min() > 0 > mean[list(regions["eye_right"]), 0].max()
  lm = np.asarray(model.landmarks)
  assert set(lm[48:68].tolist()) <= regions["mouth"]
  assert set(lm[49:60].tolist()) - {lm[48], lm[54]} <= regions["lips"]


def test_left_right_channels_mirror(model, mean):
  basis = np.asarray(model.exp_basis, np.float64)
  _, mirror = cKDTree(mean).query(mean * [-1, 1, 1])
  # Coincident slit copies are ambiguous to a nearest-neighbour match; compare everything else.
  unique = np.bincount(mirror, minlength=len(mean))[mirror] == 1
  for k, name in enumerate(ICT_CHANNELS):
    if name.endswith("_L"):
      r = ICT_CHANNELS.index(name[:-2] + "_R")
      np.testing.assert_allclose(
        basis[mirror[unique], :, r] * [-1, 1, 1], basis[unique, :, k], atol=1e-5, err_msg=name)
  for name in ("jawOpen", "jawForward", "mouthClose", "mouthPucker", "mouthFunnel", "mouthRollLower"):
    k = ICT_CHANNELS.index(name)
    np.testing.assert_allclose(basis[mirror[unique], :, k] * [-1, 1, 1], basis[unique, :, k], atol=1e-5)
  for left, right in (("jawLeft", "jawRight"), ("mouthLeft", "mouthRight")):
    k, r = ICT_CHANNELS.index(left), ICT_CHANNELS.index(right)
    np.testing.assert_allclose(basis[mirror[unique], :, r] * [-1, 1, 1], basis[unique, :, k], atol=1e-5)
    assert basis[:, 0, k].sum() > 0  # "left" is the subject's left: +x


def test_every_channel_moves_a_plausible_amount(model):
  basis = np.asarray(model.exp_basis, np.float64)
  peak = np.linalg.norm(basis, axis=1).max(0)
  assert (peak > 0.01).all() and (peak < 0.6).all(), dict(zip(ICT_CHANNELS, peak.round(3)))


def test_jaw_open_rotates_the_jaw_down(model, mean):
  lm = np.asarray(model.landmarks)
  opened = _posed(model, jawOpen=1.0)
  chin = opened[lm[8]] - mean[lm[8]]
  assert chin[1] < -0.2 and chin[2] < 0  # down and back, about a hinge behind and above the chin
  gap = _lip_gap(model, opened)
  assert _lip_gap(model, mean) == pytest.approx(0.0, abs=1e-6)  # lips closed at rest
  assert 0.2 < gap < 0.5  # 2-5 cm
  np.testing.assert_allclose(opened[lm[27:36]], mean[lm[27:36]], atol=1e-6)  # the nose stays
  # A rotation: distances to the hinge axis are kept on the chin.
  hinge = np.array([0.0, *builtin.shape.HINGE_YZ])
  radius = np.linalg.norm((mean[lm[8]] - hinge)[1:])
  assert np.linalg.norm((opened[lm[8]] - hinge)[1:]) == pytest.approx(radius)
  half = _lip_gap(model, _posed(model, jawOpen=0.5))
  assert half == pytest.approx(gap / 2, rel=0.05)


def test_mouth_close_closes_an_open_jaw(model):
  open_gap = _lip_gap(model, _posed(model, jawOpen=1.0))
  closed_gap = _lip_gap(model, _posed(model, jawOpen=1.0, mouthClose=1.0))
  assert abs(closed_gap) < 0.1 * open_gap


@pytest.mark.parametrize("side,eye", [("L", slice(42, 48)), ("R", slice(36, 42))])
def test_blink_closes_one_eye(model, mean, mesh, side, eye):
  lm = np.asarray(model.landmarks)
  other = slice(36, 42) if side == "L" else slice(42, 48)
  closed = _posed(model, **{f"eyeBlink_{side}": 1.0})
  for verts, expect in ((mean, "open"), (closed, "closed")):
    p = verts[lm[eye]]
    gap = 0.5 * (p[1, 1] + p[2, 1]) - 0.5 * (p[4, 1] + p[5, 1])
    if expect == "open":
      assert gap > 0.06
    else:
      assert abs(gap) < 0.005
  np.testing.assert_allclose(closed[lm[other]], mean[lm[other]], atol=1e-9)
  # The whole upper margin meets the lower margin, not just the landmarks.
  k = 0 if side == "L" else 1
  np.testing.assert_allclose(closed[mesh.eye_upper[k]], closed[mesh.eye_lower[k]], atol=1e-6)


@pytest.mark.parametrize("weights", [
  {"eyeBlink_L": 0.5}, {"eyeBlink_L": 1.0}, {"eyeLookUp_L": 1.0, "eyeBlink_L": 0.5},
  {"eyeLookOut_L": 1.0, "eyeBlink_L": 0.7}, {"eyeLookDown_L": 1.0}, {"eyeSquint_L": 1.0, "eyeWide_L": 1.0},
])
def test_lids_stay_in_front_of_the_eyeball(model, mean, mesh, weights):
  """No part of the eyeball pokes through the lids, also half-way through a blink (a linear blend)."""
  part = mesh.part
  centre = mesh.eye_centres[0]
  posed = _posed(model, **weights)
  lids = (part == builtin_mesh.SKIN) & (np.hypot(*(mean[:, :2] - centre[:2]).T) < 0.11)
  lids &= mean[:, 2] > centre[2]
  ball = posed[part == builtin_mesh.EYE_LEFT] - centre
  ball_dir = ball / np.linalg.norm(ball, axis=1, keepdims=True)
  lid = posed[lids] - centre
  lid_r = np.linalg.norm(lid, axis=1)
  nearest = cKDTree(ball_dir).query(lid / lid_r[:, None])[1]
  assert (lid_r - np.linalg.norm(ball, axis=1)[nearest]).min() > 0


def test_smile_frown_pucker(model, mean):
  lm = np.asarray(model.landmarks)
  smile = _posed(model, mouthSmile_L=1.0)
  assert smile[lm[54], 1] - mean[lm[54], 1] > 0.03  # the left corner rises
  assert abs(smile[lm[48], 1] - mean[lm[48], 1]) < 0.005  # the right one stays
  frown = _posed(model, mouthFrown_R=1.0)
  assert frown[lm[48], 1] - mean[lm[48], 1] < -0.03
  pucker = _posed(model, mouthPucker=1.0)
  assert pucker[lm[51], 2] - mean[lm[51], 2] > 0.05 and pucker[lm[57], 2] - mean[lm[57], 2] > 0.05
  assert pucker[lm[54], 0] < mean[lm[54], 0]  # corners draw in
  funnel = _posed(model, mouthFunnel=1.0)
  assert funnel[lm[62], 1] - funnel[lm[66], 1] > 0.03  # the lips part into a round opening


def test_brows_move_the_right_way(model, mean):
  lm = np.asarray(model.landmarks)
  left_brow, right_brow = lm[22:27], lm[17:22]
  down = _posed(model, browDown_L=1.0)
  assert (down[left_brow, 1] - mean[left_brow, 1]).mean() < -0.03
  assert np.abs(down[right_brow] - mean[right_brow]).max() < 0.005
  inner = _posed(model, browInnerUp_R=1.0)
  rise = inner[right_brow, 1] - mean[right_brow, 1]
  assert rise[-1] > 0.04 and rise[-1] > rise[0]  # the inner end (21) rises most
  outer = _posed(model, browOuterUp_L=1.0)
  rise = outer[left_brow, 1] - mean[left_brow, 1]
  assert rise[-1] > 0.03 and rise[-1] > rise[0]  # the outer end (26) rises most


def test_eye_look_rotates_the_eyeballs(model, mean, mesh):
  part = mesh.part
  left = part == builtin_mesh.EYE_LEFT
  centre = mesh.eye_centres[0]
  pupil = np.flatnonzero(left)[np.argmax(mean[left, 2])]  # the front pole
  expected = {"eyeLookUp_L": (1, 1), "eyeLookDown_L": (1, -1), "eyeLookIn_L": (0, -1), "eyeLookOut_L": (0, 1)}
  for name, (axis, sign) in expected.items():
    posed = _posed(model, **{name: 1.0})
    assert sign * (posed[pupil, axis] - mean[pupil, axis]) > 0.03, name
    radius = np.linalg.norm(posed[left] - centre, axis=1)
    assert np.abs(radius - np.linalg.norm(mean[left] - centre, axis=1)).max() < 1e-6  # rigid rotation
    assert np.abs(posed[part == builtin_mesh.EYE_RIGHT] - mean[part == builtin_mesh.EYE_RIGHT]).max() == 0


def test_identity_modes_are_plausible(model, mean):
  basis = np.asarray(model.id_basis, np.float64)
  peak = np.linalg.norm(basis, axis=1).max(0)
  assert (peak > 0.01).all() and (peak < 0.08).all()  # 1-8 mm per standard deviation
  coeffs = np.random.default_rng(0).normal(size=(8, model.num_id))
  faces = mean + np.einsum("nck,bk->bnc", basis, coeffs)
  lm = np.asarray(model.landmarks)
  widths = faces[:, lm[16], 0] - faces[:, lm[0], 0]
  assert widths.std() > 0.005 and np.abs(widths - (mean[lm[16], 0] - mean[lm[0], 0])).max() < 0.2


def test_colors(model, mesh):
  color = np.asarray(model.color_mean)
  assert color.shape == (model.num_vertices, 3) and color.min() >= 0 and color.max() <= 1
  lips = color[model.regions["lips"]].mean(0)
  cheek = color[model.regions["face"]].mean(0)
  assert lips[0] / lips[1] > cheek[0] / cheek[1]  # redder lips
  assert color[mesh.part == builtin_mesh.CAVITY].mean() < 0.3  # dark mouth interior
