"""Face-model loaders: BFM_model_front.mat (synthetic, same keys), ICT-FaceKit (real folder), OBJ files."""

import os

import numpy as np
import pytest
import scipy.io
from conftest import require_shared

from a2e_jax.core import channels
from a2e_jax.core.errors import UserError
from a2e_jax.face import registry
from a2e_jax.face.bfm import load_bfm
from a2e_jax.face.ict import load_ict
from a2e_jax.face.model import REGION_NAMES, load_model
from a2e_jax.face.obj import read_obj

ICT = "facemodels/ict-facekit/FaceXModel"


def bfm_arrays(n=150, num_tri=200, seed=0):
  """The keys of BFM_model_front.mat with random contents, 1-based indices as in the real file."""
  rng = np.random.default_rng(seed)
  tri = np.stack([rng.permutation(n)[:3] for _ in range(num_tri)]) + 1
  return {
    "meanshape": rng.normal(size=(1, 3 * n)) + np.tile([0.5, -0.2, 8.0], n)[None],
    "idBase": rng.normal(size=(3 * n, 80)) * 0.01, "exBase": rng.normal(size=(3 * n, 64)) * 0.01,
    "meantex": rng.uniform(0, 255, size=(1, 3 * n)), "texBase": rng.normal(size=(3 * n, 80)),
    "tri": tri.astype(np.float64), "point_buf": rng.integers(1, num_tri + 2, size=(n, 8)).astype(np.float64),
    "keypoints": (rng.permutation(n)[:68] + 1)[None].astype(np.float64),
  }


def write_bfm(path, **changes):
  arrays = bfm_arrays()
  arrays.update(changes)
  scipy.io.savemat(str(path), {k: v for k, v in arrays.items() if v is not None})
  return arrays


def test_bfm_vertices_match_deep3dfacerecon_formula(tmp_path):
  arrays = write_bfm(tmp_path / "bfm.mat")
  model = load_bfm(str(tmp_path / "bfm.mat"))
  rng = np.random.default_rng(1)
  id_bk, exp_btk, tex_bk = rng.normal(size=(2, 80)), rng.normal(size=(2, 5, 64)), rng.normal(size=(2, 80))
  # float64 transcription of ParametricFaceModel.compute_shape / compute_texture (recentred mean shape).
  mean = arrays["meanshape"].reshape(-1, 3)
  mean = (mean - mean.mean(axis=0)).reshape(1, -1)
  shape = (mean + id_bk @ arrays["idBase"].T)[:, None] + np.einsum("btk,ik->bti", exp_btk, arrays["exBase"])
  expected = shape.reshape(2, 5, -1, 3)
  np.testing.assert_allclose(model.vertices(id_bk, exp_btk), expected, rtol=1e-5, atol=1e-5)
  texture = ((tex_bk @ arrays["texBase"].T + arrays["meantex"]) / 255.0).reshape(2, -1, 3)
  np.testing.assert_allclose(model.colors(tex_bk), texture, rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(model.triangles, arrays["tri"] - 1)
  np.testing.assert_array_equal(model.landmarks, arrays["keypoints"][0] - 1)
  assert model.channel_names[0] == "exp00" and model.channel_names[-1] == "exp63" and model.name == "bfm"
  assert set(REGION_NAMES) <= set(model.regions)


@pytest.mark.parametrize("changes, pattern", [
  ({"exBase": None}, r"missing key 'exBase' \(expected shape \(3N, 64\)\)"),
  ({"idBase": np.zeros((450, 79))}, r"key 'idBase' has shape \(450, 79\).*expected \(3N, 80\).*N = 150"),
  ({"keypoints": np.ones((1, 67))}, r"key 'keypoints' has shape \(1, 67\).*expected \(1, 68\)"),
  ({"tri": np.zeros((5, 3))}, r"key 'tri' has indices outside 1\.\.150"),
])
def test_bad_bfm_file_names_file_key_and_shape(tmp_path, changes, pattern):
  path = tmp_path / "broken_bfm.mat"
  write_bfm(path, **changes)
  with pytest.raises(UserError, match=pattern) as info:
    load_bfm(str(path))
  assert "broken_bfm.mat" in str(info.value) and "\n" not in str(info.value)


def test_bfm_with_a_nan_names_the_key_row_and_column(tmp_path):
  exp = bfm_arrays()["exBase"].copy()
  exp[7, 3] = np.nan
  write_bfm(tmp_path / "bfm.mat", exBase=exp)
  pattern = r"bfm\.mat: key 'exBase', row 7, column 3: nan is not finite; the file is damaged$"
  with pytest.raises(UserError, match=pattern):
    load_bfm(str(tmp_path / "bfm.mat"))


def test_model_npz_round_trip(tmp_path):
  write_bfm(tmp_path / "bfm.mat")
  model = load_bfm(str(tmp_path / "bfm.mat"))
  model.save(str(tmp_path / "bfm.npz"))
  again = load_model(str(tmp_path / "bfm.npz"))
  np.testing.assert_array_equal(again.exp_basis, model.exp_basis)
  np.testing.assert_array_equal(again.regions["lips"], model.regions["lips"])
  assert again.channel_names == model.channel_names


def test_obj_quads_become_triangles_with_uvs(tmp_path):
  path = tmp_path / "quad.obj"
  path.write_text("# a quad and a triangle\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nv 2 0 0\n"
                  "vt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\nusemtl M\nf 1/1 2/2 3/3 4/4\nf 2/2 5/1 3/3\n")
  mesh = read_obj(str(path))
  np.testing.assert_array_equal(mesh.triangles, [[0, 1, 2], [0, 2, 3], [1, 4, 2]])
  np.testing.assert_array_equal(mesh.uv_triangles, [[0, 1, 2], [0, 2, 3], [1, 0, 2]])
  np.testing.assert_array_equal(mesh.triangle_polygon, [0, 0, 1])


@pytest.mark.parametrize("text, pattern", [
  ("v 0 0 0\nv 1 0 0\nv 1 1", r"'v' record 2 has 2 numbers, expected 3"),
  ("v 0 0 0\nv 1 0 0\nv 1 1 0\nf 1 2 4\n", r"outside 1\.\.3"),
  ("v 0 0 0\nv 1 0 0\nv 1 1 0\n", r"no faces"),
])
def test_truncated_obj_is_a_clear_error(tmp_path, text, pattern):
  path = tmp_path / "cut.obj"
  path.write_text(text)
  with pytest.raises(UserError, match=pattern) as info:
    read_obj(str(path))
  assert "cut.obj" in str(info.value)


@pytest.fixture(scope="module")
def ict_model():
  return load_ict(str(require_shared(ICT)))


def test_ict_whole_head(ict_model):
  m = ict_model.to_numpy()
  assert m.num_vertices == 26_719 and m.channel_names == channels.ICT_CHANNELS and m.num_exp == 53
  assert m.num_id == 20 and len(m.triangles) == 548 + 2 * 25_836  # triangles + quads fanned in two
  assert m.uv_triangles.shape == m.triangles.shape
  face_uvs = m.uvs[m.uv_triangles[:18_460]]  # UDIM tiles: the face is tile 0, other materials u in [k, k+1)
  assert face_uvs.min() >= 0 and face_uvs.max() <= 1 and m.uvs[:, 0].max() > 1
  np.testing.assert_allclose(m.mean[:6706].mean(axis=0), 0, atol=1e-5)
  jaw_width = np.linalg.norm(m.mean[m.landmarks[16]] - m.mean[m.landmarks[0]])
  assert 1.0 < jaw_width < 2.0  # 10-20 cm in our units (1 unit = 10 cm)
  chin = m.landmarks[8]
  assert m.exp_basis[chin, 1, m.channel("jawOpen")] < -0.1  # jawOpen moves the chin down by > 1 cm
  # Triangles wind counter-clockwise seen from outside: the front of the face faces +z.
  corners = m.mean[m.triangles[np.all(np.isin(m.triangles, m.regions["face"]), axis=1)]]
  normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
  assert normals[:, 2].sum() > 0


def test_ict_regions_follow_the_channels(ict_model):
  m = ict_model.to_numpy()
  for region in REGION_NAMES:
    assert len(m.regions[region]) > 100, region
  motion = lambda name: np.linalg.norm(m.exp_basis[:, :, m.channel(name)], axis=1)  # noqa: E731
  blink = motion("eyeBlink_L")
  assert blink[m.regions["eye_left"]].max() > 10 * blink[m.regions["eye_right"]].max()
  assert m.mean[m.regions["eye_left"], 0].mean() > 0  # the subject's left eye is on +x
  smile = motion("mouthSmile_R")
  assert smile[m.regions["mouth"]].sum() > smile[m.regions["upper_face"]].sum()
  assert set(m.regions["lips"]) <= set(m.regions["mouth"])


def _linked_copy(tmp_path, replace: dict):
  """A FaceXModel folder of symlinks to the real files, with some files replaced by `replace` texts."""
  source = require_shared(ICT)
  folder = tmp_path / "FaceXModel"
  folder.mkdir()
  for name in os.listdir(source):
    if name in replace:
      (folder / name).write_text(replace[name])
    else:
      os.symlink(source / name, folder / name)
  return folder


@pytest.mark.parametrize("name", ["generic_neutral_mesh.obj", "browDown_L.obj"])
def test_ict_truncated_obj_names_the_file(tmp_path, name):
  text = (require_shared(ICT) / name).read_text()
  folder = _linked_copy(tmp_path, {name: text[: len(text) // 6]})  # cut inside the vertex block
  with pytest.raises(UserError, match=name.replace(".", r"\.") + ".*(truncated|malformed)"):
    load_ict(str(folder))


def test_registry_resolves_paths_env_and_cache(tmp_path, monkeypatch):
  write_bfm(tmp_path / "bfm.mat")
  monkeypatch.setenv("A2E_CACHE_DIR", str(tmp_path / "cache"))
  monkeypatch.delenv("A2E_BFM_MODEL", raising=False)
  with pytest.raises(UserError, match="a2e models convert --from bfm"):
    registry.resolve_model("bfm")
  assert registry.resolve_model(str(tmp_path / "bfm.mat")).num_vertices == 150
  os.makedirs(tmp_path / "cache" / "models")
  load_bfm(str(tmp_path / "bfm.mat")).save(registry.default_model_path("bfm"))
  assert registry.resolve_model("bfm").name == "bfm"
  monkeypatch.setenv("A2E_BFM_MODEL", str(tmp_path / "nowhere.npz"))
  with pytest.raises(UserError, match="A2E_BFM_MODEL"):
    registry.resolve_model("bfm")
  with pytest.raises(UserError, match="not found"):
    registry.resolve_model(str(tmp_path / "missing.npz"))


def test_ict_retargets_onto_a_moved_copy_of_its_face_as_identity(ict_model):
  """The full head vs. its narrow face, scaled, rotated and moved: the fitted map is the identity."""
  from scipy.spatial.transform import Rotation

  from a2e_jax.face.model import MorphableModel
  from a2e_jax.face.retarget import fit_retarget

  m = ict_model.to_numpy()
  keep = np.arange(6_706)
  triangles = m.triangles[np.all(m.triangles < len(keep), axis=1)]
  rotation = Rotation.from_euler("xyz", [0.3, 0.2, -0.1]).as_matrix()
  face = MorphableModel(
    mean=(0.8 * m.mean[keep] @ rotation.T + [0.1, 0.2, 0.3]).astype(np.float32),
    id_basis=np.zeros((len(keep), 3, 0), np.float32),
    exp_basis=(0.8 * np.einsum("ed,ndk->nek", rotation, m.exp_basis[keep])).astype(np.float32),
    triangles=triangles, landmarks=m.landmarks, regions={}, channel_names=m.channel_names, name="face",
  )
  matrix = fit_retarget(ict_model, face, reg=1e-5)
  assert np.abs(np.diag(matrix) - 1).max() < 0.03
  assert np.abs(matrix - np.diag(np.diag(matrix))).max() < 0.02
