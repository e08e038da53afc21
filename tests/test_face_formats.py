"""Coefficient layouts, importers and exporters: every format round-trips through CoeffSequence."""

import csv

import numpy as np
import pytest
import scipy.io

from a2e_jax.core import channels
from a2e_jax.core.errors import UserError
from a2e_jax.face import coeffs
from a2e_jax.face.model import MorphableModel
from a2e_jax.formats.arkit import HEADER
from a2e_jax.formats.files import EXPORT_FORMATS, read_sequence, resample, write_sequence
from a2e_jax.formats.gltf import euler_angles, read_glb_mesh, rotation_matrices
from a2e_jax.formats.sequence import CoeffSequence

RNG = np.random.default_rng(0)


def bfm_sequence(t=30):
  return CoeffSequence(
    coeffs=RNG.normal(size=(t, 64)).astype(np.float32), channel_names=channels.BFM_CHANNELS,
    pose=(RNG.normal(size=(t, 6)) * 0.1).astype(np.float32), model="bfm",
  )


def ict_sequence(t=30):
  values = RNG.uniform(size=(t, 53)).astype(np.float32)
  for base in ("browInnerUp", "cheekPuff"):  # ARKit has one channel for both halves
    values[:, channels.ICT_CHANNELS.index(base + "_R")] = values[:, channels.ICT_CHANNELS.index(base + "_L")]
  return CoeffSequence(
    coeffs=values, channel_names=channels.ICT_CHANNELS, model="tiny",
    pose=np.concatenate([RNG.normal(size=(t, 3)) * 0.2, np.zeros((t, 3))], axis=1).astype(np.float32),
    eye=np.concatenate([RNG.uniform(size=(t, 2)), RNG.normal(size=(t, 2)) * 0.1], axis=1).astype(np.float32),
  )


def grid_model(num_exp=53, names=channels.ICT_CHANNELS, n=12, name="tiny"):
  """A small curved sheet with 68 'landmarks' and random bases (units like our models)."""
  u, v = np.meshgrid(np.linspace(-0.8, 0.8, n), np.linspace(-1.0, 1.0, n))
  mean = np.stack([u, v, 0.3 * np.cos(u) * np.cos(v)], axis=-1).reshape(-1, 3)
  quads = np.array([[i * n + j, i * n + j + 1, (i + 1) * n + j + 1, (i + 1) * n + j]
                    for i in range(n - 1) for j in range(n - 1)])
  triangles = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])
  rng = np.random.default_rng(1)
  return MorphableModel(
    mean=mean.astype(np.float32), id_basis=(rng.normal(size=(n * n, 3, 4)) * 0.01).astype(np.float32),
    exp_basis=(rng.normal(size=(n * n, 3, num_exp)) * 0.01).astype(np.float32),
    triangles=triangles.astype(np.int32), landmarks=rng.choice(n * n, 68, replace=False).astype(np.int32),
    regions={"face": np.arange(n * n, dtype=np.int32)}, channel_names=tuple(names), name=name,
  )


def test_deep3d_layout_slices_and_merge():
  s = coeffs.slices("deep3d")
  assert (s["id"], s["exp"], s["tex"], s["angles"], s["gamma"], s["trans"]) == (
    slice(0, 80), slice(80, 144), slice(144, 224), slice(224, 227), slice(227, 254), slice(254, 257))
  assert coeffs.width("sadtalker") == 70 and coeffs.width("pirenderer") == 73
  full = RNG.normal(size=(5, 257))
  assert np.array_equal(coeffs.merge(coeffs.split(full, "deep3d"), "deep3d"), full.astype(np.float32))
  with pytest.raises(UserError, match=r"expected \[\.\.\., 70\]"):
    coeffs.split(full, "sadtalker", "x.mat")


@pytest.mark.parametrize("ext", ["mat", "npy", "npz"])
def test_bfm_formats_round_trip(tmp_path, ext):
  seq = bfm_sequence()
  path = str(tmp_path / f"c.{ext}")
  write_sequence(path, seq)
  back = read_sequence(path)
  assert back.channel_names == channels.BFM_CHANNELS and back.fps == 25 and back.model == "bfm"
  np.testing.assert_array_equal(back.coeffs, seq.coeffs)
  np.testing.assert_array_equal(back.pose, seq.pose)


def test_sadtalker_file_layout(tmp_path):
  seq = bfm_sequence(7)
  write_sequence(str(tmp_path / "c.mat"), seq)
  stored = scipy.io.loadmat(str(tmp_path / "c.mat"))["coeff_3dmm"]
  assert stored.shape == (7, 70)
  np.testing.assert_array_equal(stored[:, :64], seq.coeffs)
  np.testing.assert_array_equal(stored[:, 64:], seq.pose)


def test_pirenderer_keeps_crop(tmp_path):
  rows = RNG.normal(size=(9, 73)).astype(np.float32)
  np.save(tmp_path / "c.npy", rows)
  back = read_sequence(str(tmp_path / "c.npy"))
  write_sequence(str(tmp_path / "d.npy"), back)
  np.testing.assert_array_equal(np.load(tmp_path / "d.npy"), rows)


def test_sadtalker_reference_gives_beta0_pose_and_identity(tmp_path):
  full = RNG.normal(size=(1, 257))
  crop = np.array([[0.9, 120.0, 131.0]])
  semantic = np.concatenate([full[:, 80:144], full[:, 224:227], full[:, 254:257], crop], axis=1)
  scipy.io.savemat(str(tmp_path / "ref.mat"), {"coeff_3dmm": semantic, "full_3dmm": full})
  ref = read_sequence(str(tmp_path / "ref.mat"))
  np.testing.assert_allclose(ref.beta0, full[0, 80:144], rtol=1e-6)
  np.testing.assert_allclose(ref.id_coeffs, full[0, :80], rtol=1e-6)
  np.testing.assert_allclose(ref.pose[0], np.concatenate([full[0, 224:227], full[0, 254:257]]), rtol=1e-6)
  write_sequence(str(tmp_path / "again.mat"), ref, fmt="sadtalker-ref")
  again = scipy.io.loadmat(str(tmp_path / "again.mat"))
  np.testing.assert_allclose(again["coeff_3dmm"], semantic, rtol=1e-6)
  np.testing.assert_allclose(again["full_3dmm"][:, :144], full[:, :144], rtol=1e-6)


def test_deep3d_test_output_mat(tmp_path):
  widths = {"id": 80, "exp": 64, "tex": 80, "angle": 3, "gamma": 27, "trans": 3}
  arrays = {key: RNG.normal(size=(1, w)) for key, w in widths.items()}
  scipy.io.savemat(str(tmp_path / "img.mat"), arrays)
  seq = read_sequence(str(tmp_path / "img.mat"))
  np.testing.assert_allclose(seq.beta0, arrays["exp"][0], rtol=1e-6)
  np.testing.assert_allclose(seq.pose[0, 3:], arrays["trans"][0], rtol=1e-6)


def test_live_link_face_csv_round_trip(tmp_path):
  seq = ict_sequence(60)
  path = str(tmp_path / "take.csv")
  write_sequence(path, seq)
  with open(path, newline="") as f:
    rows = list(csv.reader(f))
  assert tuple(rows[0]) == HEADER and len(HEADER) == 2 + 61
  assert rows[1][:2] == ["00:00:00:00.000", "61"] and rows[26][0] == "00:00:01:00.000"
  assert "EyeBlinkLeft" in rows[0] and "TongueOut" in rows[0]
  back = read_sequence(path)
  assert back.channel_names == channels.ICT_CHANNELS and back.fps == 25 and back.num_frames == 60
  np.testing.assert_allclose(back.coeffs, seq.coeffs, atol=1e-6)
  np.testing.assert_allclose(back.pose[:, :3], seq.pose[:, :3], atol=1e-6)
  np.testing.assert_allclose(back.eye[:, 2:], seq.eye[:, 2:], atol=1e-6)  # gaze
  blink = [channels.ICT_CHANNELS.index(n) for n in ("eyeBlink_L", "eyeBlink_R")]
  np.testing.assert_allclose(back.eye[:, :2], seq.coeffs[:, blink], atol=1e-6)  # CSV blink = the channels


def test_csv_at_60fps_is_resampled_to_25(tmp_path):
  t = np.arange(150) / 60.0
  path = tmp_path / "take60.csv"
  with open(path, "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["Timecode", "BlendShapeCount", "JawOpen", "EyeBlinkLeft"])
    for i, ti in enumerate(t):
      code = f"10:59:59:{i:02d}.000" if i < 60 else f"11:00:{i // 60 - 1:02d}:{i % 60:02d}.000"
      writer.writerow([code, "61", f"{0.3 * ti:.6f}", "0.5"])
  seq = read_sequence(str(path))
  assert seq.fps == 25 and seq.num_frames == round(150 * 25 / 60)
  expected = 0.3 * np.minimum(np.arange(seq.num_frames) / 25, t[-1])
  np.testing.assert_allclose(seq.coeffs[:, channels.ICT_CHANNELS.index("jawOpen")], expected, atol=1e-5)
  np.testing.assert_allclose(seq.coeffs[:, channels.ICT_CHANNELS.index("eyeBlink_L")], 0.5)


def test_resample_keeps_duration_and_interpolates():
  seq = CoeffSequence(coeffs=np.arange(50, dtype=np.float32)[:, None], channel_names=("a",), fps=50.0)
  out = resample(seq, 25.0)
  assert out.num_frames == 25 and out.fps == 25
  np.testing.assert_allclose(out.coeffs[:, 0], np.arange(25) * 2.0)


def test_glb_round_trip_with_mesh_and_pose(tmp_path):
  model = grid_model()
  seq = ict_sequence(12)
  seq.pose[:, 3:] = RNG.normal(size=(12, 3)) * 0.1
  path = str(tmp_path / "anim.glb")
  write_sequence(path, seq, model=model)
  back = read_sequence(path)
  assert back.channel_names == channels.ICT_CHANNELS and back.num_frames == 12 and back.model == "tiny"
  np.testing.assert_allclose(back.coeffs, seq.coeffs, atol=1e-6)
  np.testing.assert_allclose(back.pose, seq.pose, atol=1e-5)
  vertices, triangles, deltas, names = read_glb_mesh(path)
  np.testing.assert_allclose(vertices, model.mean, atol=1e-6)
  np.testing.assert_array_equal(triangles, model.triangles)
  np.testing.assert_allclose(deltas, np.moveaxis(np.asarray(model.exp_basis), -1, 0), atol=1e-7)
  assert tuple(names) == channels.ICT_CHANNELS


def test_rotation_convention_matches_deep3dfacerecon():
  angles = RNG.uniform(-1, 1, size=(4, 3))
  for (x, y, z), r in zip(angles, rotation_matrices(angles)):
    rx = np.array([[1, 0, 0], [0, np.cos(x), -np.sin(x)], [0, np.sin(x), np.cos(x)]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rz = np.array([[np.cos(z), -np.sin(z), 0], [np.sin(z), np.cos(z), 0], [0, 0, 1]])
    np.testing.assert_allclose(r, rz @ ry @ rx, atol=1e-12)
  np.testing.assert_allclose(euler_angles(rotation_matrices(angles)), angles, atol=1e-12)


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_every_export_format_reads_back(tmp_path, fmt):
  model = grid_model(64, channels.BFM_CHANNELS, name="bfm")
  seq = bfm_sequence(10)
  ext = {"sadtalker": "mat", "pirenderer": "npy", "npz": "npz", "arkit-csv": "csv", "glb": "glb"}[fmt]
  path = str(tmp_path / f"x.{ext}")
  if fmt == "arkit-csv":
    target = grid_model(name="ictlike")
    write_sequence(path, seq, model=model, target_model=target)
    assert read_sequence(path).channel_names == channels.ICT_CHANNELS
    return
  write_sequence(path, seq, model=model)
  np.testing.assert_allclose(read_sequence(path).coeffs, seq.coeffs, atol=1e-6)


@pytest.mark.parametrize("make, pattern", [
  (lambda p: scipy.io.savemat(p, {"coeff_3dmm": np.zeros((5, 71))}), r"coeff_3dmm'.*\(5, 71\).*\[T,70\]"),
  (lambda p: scipy.io.savemat(p, {"other": np.zeros(3)}), r"no key 'coeff_3dmm'"),
  (lambda p: scipy.io.savemat(p, {"exp": np.zeros((2, 64)), "angle": np.zeros((2, 3))}),
   r"lack the key 'trans'"),
  (lambda p: open(p, "wb").write(b"garbage"), r"not a readable \.mat"),
])
def test_bad_mat_is_one_clear_error(tmp_path, make, pattern):
  path = str(tmp_path / "bad.mat")
  make(path)
  with pytest.raises(UserError, match=pattern) as info:
    read_sequence(path)
  assert "bad.mat" in str(info.value) and "\n" not in str(info.value)


def test_bad_npy_csv_npz_errors(tmp_path):
  np.save(tmp_path / "bad.npy", np.zeros((4, 72)))
  with pytest.raises(UserError, match=r"bad\.npy: shape \(4, 72\), expected \[T,70\]"):
    read_sequence(str(tmp_path / "bad.npy"))
  (tmp_path / "bad.csv").write_text("Timecode,Foo\n00:00:00:00.000,1\n")
  with pytest.raises(UserError, match="none of the 52 ARKit"):
    read_sequence(str(tmp_path / "bad.csv"))
  (tmp_path / "short.csv").write_text("Timecode,JawOpen\n00:00:00:00.000,1,2\n")
  with pytest.raises(UserError, match="row 2 has 3 values"):
    read_sequence(str(tmp_path / "short.csv"))
  np.savez(tmp_path / "bad.npz", coeffs=np.zeros((3, 2)))
  with pytest.raises(UserError, match="not an a2e coefficient .npz"):
    read_sequence(str(tmp_path / "bad.npz"))
  with pytest.raises(UserError, match="unknown coefficient file extension"):
    read_sequence(str(tmp_path / "x.txt"))


def test_channel_count_mismatch_and_missing_model_are_clear(tmp_path):
  seq = ict_sequence(5)
  with pytest.raises(UserError, match="64 expression channels, the sequence has 53"):
    write_sequence(str(tmp_path / "a.glb"), seq, model=grid_model(64, channels.BFM_CHANNELS))
  with pytest.raises(UserError, match="--bfm"):
    write_sequence(str(tmp_path / "a.mat"), seq)
  with pytest.raises(UserError, match=r"\.glb needs the face model"):
    write_sequence(str(tmp_path / "a.glb"), seq)
