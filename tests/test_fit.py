"""The fit against ground truth from our own renderer (fit/synthetic.py), and its geometric pieces.

Synthetic clips here are short (24 frames) to keep the suite fast; tools/bench_track.py runs the same
checks over 200 frames for BENCHMARKS.md. The landmarks are the true projections of the landmark points
plus detector-like noise (1 % of the inter-ocular distance), except in the test through the real
landmarker at the end.
"""

import dataclasses

import numpy as np
import pytest

from a2e_jax.face.builtin import builtin_model
from a2e_jax.fit import correspondence as corr_lib
from a2e_jax.fit import find_points, quality, solve, synthetic
from a2e_jax.render import camera as cam_lib


def test_from_vertices_puts_points_on_the_vertices():
  model = builtin_model()
  corr = corr_lib.from_vertices(model.landmarks, model.triangles)
  verts = np.asarray(model.vertices(None, np.zeros((1, model.num_exp))))
  np.testing.assert_allclose(
    np.asarray(corr_lib.surface_points(verts, model.triangles, corr))[0],
    verts[0][np.asarray(model.landmarks)],
    atol=1e-6,
  )
  pts = corr_lib.point_model(model, corr)
  exp = np.random.default_rng(0).uniform(0, 1, (2, model.num_exp)).astype(np.float32)
  ident = np.random.default_rng(1).normal(size=model.num_id).astype(np.float32)
  full = np.asarray(model.vertices(ident, exp))[:, np.asarray(model.landmarks)]
  rot = np.zeros((2, 3), np.float32)
  np.testing.assert_allclose(np.asarray(pts.points(ident, exp, rot)), full, atol=1e-5)


def test_closest_point_on_triangle_matches_brute_force():
  rng = np.random.default_rng(0)
  tri = rng.normal(size=(200, 3, 3))
  points = rng.normal(size=(200, 3)) * 2
  bary = find_points._closest_barycentric(points, tri)
  closest = np.einsum("pc,pcd->pd", bary, tri)
  # Brute force: a dense grid of barycentric samples.
  g = np.linspace(0, 1, 121)
  u, v = np.meshgrid(g, g)
  keep = u + v <= 1
  samples = np.stack([1 - u[keep] - v[keep], u[keep], v[keep]], -1)  # [S,3]
  dense = np.einsum("sc,pcd->psd", samples, tri)
  brute = np.linalg.norm(dense - points[:, None], axis=-1).min(1)
  found = np.linalg.norm(closest - points, axis=-1)
  assert np.all(found <= brute + 1e-9)
  assert np.all(bary >= -1e-9) and np.allclose(bary.sum(1), 1)


def test_triangulation_recovers_points_from_known_views():
  model = builtin_model()
  poses, camera = find_points.view_poses(model)
  points = np.asarray(model.mean)[np.asarray(model.landmarks)].astype(np.float64)
  posed = cam_lib.transform(points[None], poses[:, :3], poses[:, 3:])
  observed = np.asarray(cam_lib.to_pixels(camera, cam_lib.project(camera, posed)), np.float64)
  rot = np.asarray(cam_lib.rotation_matrix(poses[:, :3]), np.float64)
  found = find_points._triangulate(observed, rot, poses[:, 3:].astype(np.float64), camera)
  np.testing.assert_allclose(found, points, atol=1e-4)
  assert find_points._reprojection_rms(found, observed, rot, poses[:, 3:], camera).max() < 1e-2


def test_linearised_projection_recovers_a_points_offset():
  """The behaviour model's equations: for points projected exactly from surface + d, rows · d = residual."""
  model = builtin_model()
  poses, camera = find_points.view_poses(model)
  surface = np.asarray(model.mean)[np.asarray(model.landmarks)].astype(np.float64)
  offset = np.random.default_rng(0).normal(0, 0.02, surface.shape)  # 2 mm off the surface
  posed = cam_lib.transform((surface + offset)[None].astype(np.float32), poses[:, :3], poses[:, 3:])
  observed = np.asarray(cam_lib.to_pixels(camera, cam_lib.project(camera, posed)), np.float64)
  iod = np.full(len(poses), 50.0)
  rows, residual = find_points._linear_rows(
    observed, poses.astype(np.float64), np.broadcast_to(surface, (len(poses),) + surface.shape), iod
  )
  np.testing.assert_allclose(np.einsum("vpkc,pc->vpk", rows, offset), residual, atol=2e-4)
  # In IOD units: a 1-pixel move of an observed point changes its residual by about 1/50.
  moved = observed.copy()
  moved[:, :, 0] += 1.0
  _, shifted = find_points._linear_rows(
    moved, poses.astype(np.float64), np.broadcast_to(surface, (len(poses),) + surface.shape), iod
  )
  np.testing.assert_allclose(np.abs(shifted - residual)[..., 0], 1 / 50, rtol=0.1)


def test_pose_dependent_offsets_move_the_points():
  model = builtin_model()
  corr = corr_lib.multipie68(model)
  offsets = np.zeros((68, 3, corr_lib.NUM_POSE_FEATURES), np.float32)
  offsets[:, 2, 1] = 0.1  # 1 cm forward per radian of yaw
  moved = corr_lib.point_model(model, dataclasses.replace(corr, offsets=offsets))
  plain = corr_lib.point_model(model, corr)
  ident = np.zeros(model.num_id, np.float32)
  exp = np.zeros((2, model.num_exp), np.float32)
  rot = np.array([[0.0, 0.0, 0.0], [0.0, 0.5, 0.0]], np.float32)
  delta = np.asarray(moved.points(ident, exp, rot)) - np.asarray(plain.points(ident, exp, rot))
  np.testing.assert_allclose(delta[0], 0, atol=1e-7)
  np.testing.assert_allclose(delta[1], np.tile([0, 0, 0.05], (68, 1)), atol=1e-6)


def test_skin_is_the_landmarks_part_of_the_mesh():
  model = builtin_model()
  skin = find_points.skin_triangles(model)
  assert 0.3 * len(model.triangles) < len(skin) < len(model.triangles)  # eyeballs and teeth are apart
  on_skin = np.zeros(model.mean.shape[0], bool)
  on_skin[np.asarray(model.triangles)[skin].ravel()] = True
  assert on_skin[np.asarray(model.landmarks)].mean() > 0.9


def test_opening_expression_opens_the_inner_lips():
  """The open-mouth renders' expression (find_points.opening_expression): the model's inner-lip gap (68
  landmarks 62-66) opens to OPEN_GAP mouth widths, with blendshape channels in [0, 1], the jaw leading."""
  model = builtin_model()
  exp = find_points.opening_expression(model)
  assert exp.min() >= 0 and exp.max() <= 1
  assert model.channel_names[int(np.argmax(exp))] == "jawOpen"
  lmk = np.asarray(model.vertices(None, exp[None]))[0][np.asarray(model.landmarks)]
  width = np.linalg.norm(lmk[54] - lmk[48])
  np.testing.assert_allclose(lmk[62, 1] - lmk[66, 1], find_points.OPEN_GAP * width, rtol=0.15)
  # Read as a PCA model (no channel names: coefficients of either sign) the gradient is taken whole.
  pca = dataclasses.replace(model, channel_names=())
  exp = find_points.opening_expression(pca)
  assert exp.min() < 0
  lmk = np.asarray(pca.vertices(None, exp[None]))[0][np.asarray(model.landmarks)]
  np.testing.assert_allclose(lmk[62, 1] - lmk[66, 1], find_points.OPEN_GAP * width, rtol=0.15)
  # A model whose modes move both lips alike has no open mouth: its lips' points come from the neutral face.
  assert find_points.opening_expression(synthetic.bfm_shaped_model()) is None


def test_found_points_cache_key_follows_the_algorithm_and_the_model(monkeypatch):
  """A cached correspondence is read only for the same model arrays, search settings and algorithm
  (find_points.VERSION): a changed algorithm or model never gets a stale file."""
  model = builtin_model()
  key = find_points._key(model)
  assert find_points._key(model) == key
  monkeypatch.setattr(find_points, "VERSION", find_points.VERSION + 1)
  assert find_points._key(model) != key
  monkeypatch.undo()
  monkeypatch.setattr(find_points, "OPEN_GAP", find_points.OPEN_GAP + 0.1)
  assert find_points._key(model) != key
  monkeypatch.undo()
  other = dataclasses.replace(model, exp_basis=np.asarray(model.exp_basis) * 1.01)
  assert find_points._key(other) != key


# MediaPipe's inner lip contours, corner (78) to corner (308): the upper and the lower lip.
INNER_UPPER = (191, 80, 81, 82, 13, 312, 311, 310, 415)
INNER_LOWER = (95, 88, 178, 87, 14, 317, 402, 318, 324)


def test_concurrent_callers_search_the_points_once(tmp_path, monkeypatch):
  """Two callers asking for an uncached correspondence at once: one searches, the other waits for its file
  and reads it (the cache's lock), so the minutes-long search is not repeated and no file is half-written."""
  import threading
  import time

  monkeypatch.setenv("A2E_CACHE_DIR", str(tmp_path))
  model = builtin_model()
  searches = []
  points = 468

  def slow_search(model, landmarker=None):
    searches.append(1)
    time.sleep(0.5)
    return corr_lib.Correspondence(np.zeros((points,), np.int32), np.full((points, 3), 1 / 3, np.float32),
                                   np.ones((points,), np.float32), name="mediapipe468",
                                   offsets=np.zeros((points, 3, 1), np.float32),
                                   exp_delta=np.zeros((points, 3, model.num_exp), np.float32))

  monkeypatch.setattr(find_points, "solve_correspondence", slow_search)
  monkeypatch.setattr(find_points, "learn_behaviour", lambda model, corr, landmarker=None: corr)
  results = [None, None]

  def ask(i):
    results[i] = find_points.mesh_correspondence(model)

  threads = [threading.Thread(target=ask, args=(i,)) for i in range(2)]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join()
  assert len(searches) == 1
  np.testing.assert_array_equal(results[0].bary, results[1].bary)
  assert [p.name for p in (tmp_path / "fit").iterdir() if p.suffix == ".npz"] == [
    f"mediapipe468-builtin-{find_points._key(model)}.npz"]


@pytest.mark.slow
def test_found_inner_lip_points_land_on_their_own_lip():
  """The found correspondence's upper inner-lip points lie on the upper lip and the lower ones on the lower
  lip, not on one triangle at the lips' seam: with the jaw open the points 13-14 open as far as the
  model's own inner lip (its 68 landmarks 62-66) and every upper point is above its lower partner."""
  model = builtin_model()
  corr = find_points.mesh_correspondence(model)
  exp = np.zeros((1, model.num_exp), np.float32)
  exp[0, model.channel_names.index("jawOpen")] = 0.5
  verts = np.asarray(model.vertices(None, exp))
  points = np.asarray(corr_lib.surface_points(verts, model.triangles, corr))[0]
  lmk = verts[0][np.asarray(model.landmarks)]
  model_gap = lmk[62, 1] - lmk[66, 1]
  assert model_gap > 0.1  # model units: the jaw is open
  gap = points[list(INNER_UPPER), 1] - points[list(INNER_LOWER), 1]
  assert 0.75 * model_gap <= points[13, 1] - points[14, 1] <= 1.25 * model_gap
  assert gap.min() > 0.2 * model_gap, gap


@pytest.mark.slow
def test_face_masks_are_the_face_regions_pixels():
  """Against an independent reference: the model rendered white on its face-region vertices, black
  elsewhere, under a light that makes the irradiance 1 — a pixel is white only inside a face triangle."""
  from a2e_jax.fit.rendering import face_masks, render_batches
  from a2e_jax.render import shading

  model = builtin_model()
  truth_pose = np.array([[0.1, 0.4, 0.05, 0.02, -0.01, 0.0], [-0.2, -0.3, 0.0, 0.0, 0.03, 0.0]], np.float32)
  exp = np.zeros((2, model.num_exp), np.float32)
  mask = face_masks(model, exp, truth_pose, None, (96, 80))
  inside = np.zeros((model.mean.shape[0], 3), np.float32)
  inside[np.asarray(model.regions["face"])] = 1.0
  white = dataclasses.replace(model, color_mean=inside)
  gamma = np.zeros((2, 27), np.float32)
  gamma[:, [0, 9, 18]] = 1 / (shading.SH_A[0] * shading.SH_C[0]) - shading.AMBIENT
  _, images, head = next(render_batches(white, exp, truth_pose, None, gamma, None, (96, 80), batch=2))
  reference = head & (images.min(-1) > 0.999)
  assert mask.shape == (2, 96, 80) and reference.sum() > 500
  assert not (mask & ~head).any()
  assert (mask != reference).mean() < 0.002, (mask != reference).sum()
  assert mask.sum() < 0.9 * head.sum()  # the hair, ears and neck are not the face region


def _noisy(truth, rng, sigma=0.01):
  iod = np.asarray(solve.inter_ocular(truth.landmarks))
  return truth.landmarks + rng.normal(0, sigma, truth.landmarks.shape) * iod[:, None, None]


def _channel(model, fit_exp, truth_exp, name):
  i = [k for k, c in enumerate(model.channel_names) if c in (name, name + "_L")][0]
  return quality.correlation(fit_exp[:, i], truth_exp[:, i])


@pytest.mark.slow
def test_builtin_face_clip_from_landmarks():
  """Landmarks only (no photometric stage): pose, identity, landmark error, jaw and blinks."""
  model = builtin_model()
  truth = synthetic.clip(model, 40, seed=3)
  fit = solve.fit_clip(
    model,
    truth.frames,
    _noisy(truth, np.random.default_rng(0)),
    corr_lib.multipie68(model),
    solve.FitConfig(photo_steps=0),
  )
  assert np.median(quality.pose_error_deg(fit.pose, truth.pose)) <= 3.0
  zero = quality.identity_error_mm(model, np.zeros_like(truth.id), truth.id)
  assert quality.identity_error_mm(model, fit.id, truth.id) <= min(2.0, 0.5 * zero)
  assert np.median(quality.landmark_vertex_error(model, fit.image_size, fit, truth.landmarks)) <= 0.02
  assert _channel(model, fit.exp, truth.exp, "jawOpen") >= 0.9
  blink = fit.exp[:, [model.channel_names.index("eyeBlink_L"), model.channel_names.index("eyeBlink_R")]]
  assert truth.blink.any()
  precision, recall = quality.event_precision_recall(blink.mean(1) > 0.5, truth.blink)
  assert precision >= 0.9 and recall >= 0.9


@pytest.mark.slow
def test_photometric_stage_renders_back_and_survives_an_occluder():
  """With pixels, at the default settings: the re-rendered fit beats the mean face by half over the face
  region; a grey block over the mouth and a corrupted mouth landmark group do not drag the pose."""
  model = builtin_model()
  truth = synthetic.clip(model, 6, seed=4, face_px=(150, 260))
  rng = np.random.default_rng(1)
  lmk = _noisy(truth, rng)
  frames = truth.frames.copy()
  # An occluder over the mouth in the first frame: a flat patch, and its landmarks thrown off.
  mouth = truth.landmarks[0, 48:68]
  (x0, y0), (x1, y1) = mouth.min(0).astype(int) - 4, mouth.max(0).astype(int) + 4
  frames[0, y0:y1, x0:x1] = 128
  iod = float(solve.inter_ocular(truth.landmarks[:1])[0])
  lmk[0, 48:68] += rng.normal(0, 0.4 * iod, (20, 2))
  # The default settings (60 photometric steps): 0.42 of the mean face's error over the face region.
  fit = solve.fit_clip(model, frames, lmk, corr_lib.multipie68(model), solve.FitConfig())
  fitted, mean_face = quality.rerender_errors(model, truth.frames, truth.face_mask, fit)
  assert fitted[1:].mean() <= 0.5 * mean_face[1:].mean()  # the clean frames
  assert fitted[0] < mean_face[0]  # the occluded one still fits better than the mean face
  assert quality.pose_error_deg(fit.pose, truth.pose).max() <= 3.0


@pytest.mark.slow
def test_bfm_shaped_model_clip():
  """The same fit on a model with BFM's layout (80 identity, 64 PCA expression, 80 albedo modes)."""
  model = synthetic.bfm_shaped_model()
  truth = synthetic.clip(model, 16, seed=5)
  config = solve.FitConfig(bounded_exp=False, photo_steps=40, photo_frames=4)
  fit = solve.fit_clip(
    model, truth.frames, _noisy(truth, np.random.default_rng(2)), corr_lib.multipie68(model), config
  )
  assert np.median(quality.pose_error_deg(fit.pose, truth.pose)) <= 3.0
  zero = quality.identity_error_mm(model, np.zeros_like(truth.id), truth.id)
  assert quality.identity_error_mm(model, fit.id, truth.id) <= min(2.0, 0.5 * zero)
  assert np.median(quality.landmark_vertex_error(model, fit.image_size, fit, truth.landmarks)) <= 0.02
  corr = [quality.correlation(fit.exp[:, i], truth.exp[:, i]) for i in range(4)]
  assert min(corr) >= 0.8, corr
  fitted, mean_face = quality.rerender_errors(model, truth.frames, truth.face_mask, fit)
  assert fitted.mean() <= 0.5 * mean_face.mean()


@pytest.mark.slow
def test_a_later_chunk_keeps_the_clips_albedo():
  """A video's later chunk (fix_identity) keeps the identity and albedo it is given and renders back (issue
  13's >= 50 % below the mean face, where a BFM-shaped clip of several chunks missed). Its landmark stages
  once let the albedo follow its prior towards zero, so a clip lost its albedo after the first chunk (the
  BFM-shaped bench clip re-rendered at 0.63 of the mean face's error instead of 0.25)."""
  model = synthetic.bfm_shaped_model()
  truth = synthetic.clip(model, 4, seed=6, size=256, face_px=(100, 130), max_angle=20.0, batch=4)
  config = solve.FitConfig(bounded_exp=False, fix_identity=True, gn_iterations=4, polish_steps=30)
  fit = solve.fit_clip(
    model, truth.frames, truth.landmarks, corr_lib.multipie68(model), config, id_init=truth.id,
    tex_init=truth.tex
  )
  np.testing.assert_array_equal(fit.id, truth.id)
  np.testing.assert_array_equal(fit.tex, truth.tex)
  # And so the chunk renders back: each frame's lighting is solved for the albedo it keeps.
  fitted, mean_face = quality.rerender_errors(model, truth.frames, truth.face_mask, fit)
  assert fitted.mean() <= 0.5 * mean_face.mean()


@pytest.fixture(scope="module")
def landmarked_clip():
  """(truth, faces, points [T,468,2], confidence [T,468]) of a 32-frame clip through the vision pipeline."""
  from a2e_jax import vision

  truth = synthetic.clip(builtin_model(), 32, seed=8)
  faces = vision.Landmarker(eyes=True, batch=16).video(truth.frames)
  points = np.asarray(faces.points[..., :2]) + 0.5
  conf = np.repeat(np.asarray(faces.found, np.float32)[:, None], points.shape[1], 1)
  return truth, faces, points, conf


@pytest.mark.slow
def test_builtin_face_through_the_landmarker(landmarked_clip):
  """The vision pipeline's 468 points through the found correspondence: the landmarker's learned behaviour
  on the model (fit/find_points.py) cuts the pose error of fixed surface points by a third or more. The
  issue's targets (pose <= 3 deg, mouth channels r >= 0.9) are not met this way yet: BENCHMARKS.md."""
  model = builtin_model()
  truth, _, points, conf = landmarked_clip
  learned = find_points.mesh_correspondence(model)
  fixed = dataclasses.replace(learned, offsets=None, exp_delta=None)
  from a2e_jax.fit.track import LANDMARK_NOISE

  config = solve.FitConfig(photo_steps=0, smooth_exp=2.0, smooth_pose=200.0, landmark_noise=LANDMARK_NOISE)
  errors = {}
  for name, corr in (("learned", learned), ("fixed", fixed)):
    fit = solve.fit_clip(model, truth.frames, points, corr, config, confidence_tl=conf)
    errors[name] = np.median(quality.pose_error_deg(fit.pose, truth.pose))
  assert errors["learned"] <= 4.5 and errors["learned"] <= 0.67 * errors["fixed"], errors


@pytest.mark.slow
def test_pictures_of_any_size_share_one_compiled_fit():
  """The fit's program sees fixed-size crops and canonical-camera points only: a second picture of another
  size compiles nothing, and the same picture enlarged 1.5x gives the same fit (the camera scales with it)."""
  from PIL import Image

  model = builtin_model()
  truth = synthetic.clip(model, 1, seed=21, size=192, face_px=(100, 130), max_angle=20.0, batch=1)
  config = solve.FitConfig(gn_iterations=8, polish_steps=30, photo_steps=20, photo_frames=1)
  corr = corr_lib.multipie68(model)
  small = solve.fit_clip(model, truth.frames, truth.landmarks, corr, config)
  compiled = solve._solve._cache_size()
  big_frame = np.asarray(Image.fromarray(truth.frames[0]).resize((288, 288), Image.BILINEAR))
  big = solve.fit_clip(model, big_frame[None], truth.landmarks * 1.5, corr, config)
  assert solve._solve._cache_size() == compiled
  assert big.image_size == (288, 288)
  assert quality.pose_error_deg(big.pose, small.pose).max() < 0.1  # degrees
  np.testing.assert_allclose(big.pose[:, 3:], small.pose[:, 3:], atol=1e-2)  # model units (the head ~2)
  np.testing.assert_allclose(big.exp, small.exp, atol=5e-3)
  np.testing.assert_allclose(big.id, small.id, atol=2e-2)
  assert quality.pose_error_deg(small.pose, truth.pose).max() < 3.0  # a real fit, not a trivial one


@pytest.mark.slow
def test_pixels_measure_and_remove_a_per_clip_landmark_bias():
  """Landmarks off their points by the same offsets in every frame (as the real landmarker's are on a clip,
  docs/fitting.md): a fit to them is posed wrong. With the landmarks a loose prior in the photometric stage
  (fit.track.PIXELS_DECIDE) the key frames' pose comes from the pixels, the offsets measured against that
  solution are taken off every frame's landmarks, and a later chunk given them (`landmark_bias`) gains too."""
  from a2e_jax.fit.track import PIXELS_DECIDE

  model = builtin_model()
  truth = synthetic.clip(model, 32, seed=9, size=256, face_px=(120, 150), max_angle=20.0)
  rng = np.random.default_rng(4)
  iod = np.asarray(solve.inter_ocular(truth.landmarks))[:, None, None]
  offsets = rng.normal(0, 0.04, (68, 2)).astype(np.float32)  # IOD units, the same in every frame
  lmk = _noisy(truth, rng) + offsets * iod
  corr = corr_lib.multipie68(model)
  plain = solve.FitConfig(smooth_exp=2.0, smooth_pose=200.0)
  errors, fits = {}, {}
  for name, config in (("plain", plain), ("pixels", dataclasses.replace(plain, **PIXELS_DECIDE))):
    first = solve.fit_clip(model, truth.frames[:16], lmk[:16], corr, config)
    later = dataclasses.replace(config, fix_identity=True)
    second = solve.fit_clip(
      model, truth.frames[16:], lmk[16:], corr, later, id_init=first.id, tex_init=first.tex,
      landmark_bias=first.landmark_bias,
    )
    fits[name] = first
    errors[name] = [np.median(quality.pose_error_deg(f.pose, truth.pose[s])) for f, s in
                    ((first, slice(16)), (second, slice(16, 32)))]
  assert fits["plain"].landmark_bias is None
  found = fits["pixels"].landmark_bias  # canonical-picture pixels per IOD, as the offsets
  assert np.corrcoef(found.ravel(), offsets.ravel())[0, 1] >= 0.7
  for chunk in range(2):
    assert errors["pixels"][chunk] <= 0.7 * errors["plain"][chunk], errors


@pytest.mark.slow
def test_later_chunk_started_from_the_previous_one_needs_fewer_iterations():
  """A video's later chunk (identity known) started from the previous chunk's last pose and expression
  reaches with 8 Gauss–Newton iterations what a cold start reaches with 20 (fit.track.LATER_GN_ITERATIONS)."""
  from a2e_jax.fit.track import LATER_GN_ITERATIONS

  model = builtin_model()
  truth = synthetic.clip(model, 32, seed=6, size=256, face_px=(120, 170), max_angle=25.0)
  lmk = _noisy(truth, np.random.default_rng(3))
  corr = corr_lib.multipie68(model)
  config = solve.FitConfig(photo_steps=0, smooth_exp=2.0, smooth_pose=200.0)
  first = solve.fit_clip(model, truth.frames[:16], lmk[:16], corr, config)
  later = dataclasses.replace(config, fix_identity=True)
  rest = (model, truth.frames[16:], lmk[16:], corr)
  cold = solve.fit_clip(*rest, later, id_init=first.id)
  fewer = dataclasses.replace(later, gn_iterations=LATER_GN_ITERATIONS)
  warm = solve.fit_clip(*rest, fewer, id_init=first.id, start=(first.pose[-1, :3], first.exp[-1]))
  errors = {name: np.median(quality.pose_error_deg(f.pose, truth.pose[16:])) for name, f in
            (("cold", cold), ("warm", warm))}
  assert errors["warm"] <= max(1.1 * errors["cold"], errors["cold"] + 0.1) and errors["warm"] <= 3.0, errors
  assert np.median(warm.landmark_error) <= 1.1 * np.median(cold.landmark_error)
  assert _channel(model, warm.exp, truth.exp[16:], "jawOpen") >= 0.8


@pytest.mark.slow
def test_mouth_fitted_to_its_pixels_through_the_landmarker(landmarked_clip):
  """Through the landmarker the mouth channels do not come out of the landmarks (its lips scatter); fitting
  every frame's mouth to its pixels (Tracker(mouth=True)) makes jawOpen and the lips follow the truth
  better (not to the issue's r >= 0.9: BENCHMARKS.md). And the eye-control track (the iris network's eye
  contour) finds the blinks."""
  from a2e_jax.fit import track

  model = builtin_model()
  truth, faces, points, conf = landmarked_clip
  corr = find_points.mesh_correspondence(model)
  base = solve.FitConfig(photo_steps=0, landmark_noise=track.LANDMARK_NOISE)
  channels = synthetic.mouth_channels(model.channel_names)
  r = {}
  for mouth in (False, True):
    config = track.video_fit_config(base, mouth)
    fit = solve.fit_clip(model, truth.frames, points, corr, config, confidence_tl=conf)
    r[mouth] = np.array([quality.correlation(fit.exp[:, i], truth.exp[:, i]) for i in channels])
  # Measured (2026-12-03): mean r over jawOpen and the six lip channels -0.18 from the landmarks alone,
  # 0.36 with the mouth's pixels (median 0.57); the 200-frame figures are in BENCHMARKS.md.
  assert r[True].mean() >= r[False].mean() + 0.3 and np.median(r[True]) >= 0.4, r
  assert truth.blink.any()
  eye = track.eye_track(faces)
  assert min(quality.event_precision_recall(eye[:, :2].mean(1) > 0.5, truth.blink)) >= 0.9
