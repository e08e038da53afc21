"""The 468 face-mesh points on a model's surface, found by rendering the model and running the landmarker.

No hand-made table, in two steps.

Where: the model's mean face (neutral expression) is rendered in 15 known poses, the vision pipeline
measures its 468 points in every render, each point is triangulated from the views (a linear least-squares
solve per point with the known cameras), and the 3D point is moved to the closest spot on the model's skin
(the connected part of the mesh that holds its landmark vertices, so no point lands on an eyeball or a
tooth). The lips' 40 points are placed the same way from a second set of renders with the mouth open
(`opening_expression`) and snapped onto the open mesh: on a closed mouth the upper and lower inner lip
meet at a seam, and the inner contour's points snapped onto whichever lip's triangle was nearest there
(on the built-in face points 13 and 14 shared one triangle of the lower lip), so the fit could not see the
landmarks' inner-lip opening. With the mouth open each inner-lip point lands on its own lip's edge.

How the landmarker behaves there: MediaPipe's mesh places its points by its own idea of a face, so on a
face model that is not a real face they are not fixed places on the skin. Measured on the built-in face,
fixed surface points lie 3–8 % IOD from the landmarker's (more as the head turns) and a fit to them gets
the pose wrong by ~6°. So the landmarker is run on synthetic clips of the model (fit/synthetic.py: random
identity, expression, pose up to ±30°, lighting and background, like the checks) with known coefficients,
and per point a 3D offset linear in pose features of pitch and yaw, plus a correction of the expression
basis for the channels the clips move, is fitted by linear least squares (the projection linearised as
in the triangulation; frames where the landmarker failed are dropped). Points the landmarker places
inconsistently (silhouette points, the eyebrows) get a lower weight, w = 1 / (1 + (r / 2r̃)²) with r their
RMS residual after the fit and r̃ its median over the points. The lips' points keep their surface places:
what the network does at our procedural mouth is not what it does at a real one — with the learned lip
offsets the fitted inner-lip gap of the shared talking-head video followed the landmarks' own with r 0.68
(0.36 with the offsets alone), with the lips on the surface 0.925, while the synthetic pose error is the
same either way (3.3°).

The result is cached per model under <cache>/fit/ (keyed by the mesh, the landmark network's weights and
VERSION, which changes with the algorithm so that no stale file is read); it takes a few minutes on a
2-core CPU.
"""

import contextlib
import hashlib
import os

import numpy as np

from a2e_jax.fit.correspondence import Correspondence

VIEW_YAW = (-24.0, -12.0, 0.0, 12.0, 24.0)
VIEW_PITCH = (-12.0, 0.0, 12.0)
SIZE = 512
FACE_PIXELS = 260.0  # rendered face width
# The behaviour model's training clips: seeds, frames each; the expression channels it corrects (the
# ones the clips move, at most MAX_CHANNELS); its ridge weight per unknown (model units², per frame).
TRAIN_SEEDS = (1001, 1002, 1003, 1004)
TRAIN_FRAMES = 64
MAX_CHANNELS = 16
RIDGE = 1e-3
# The open-mouth renders that place the lips' points: the inner-lip gap in mouth widths.
OPEN_GAP = 0.3
# Part of the cache key: bumped whenever the found points change (4: the lips from open-mouth renders).
VERSION = 4


def mesh_correspondence(model, landmarker=None, cache: bool = True) -> Correspondence:
  """The 468-point correspondence of `model` (cached)."""
  from a2e_jax.core.paths import cache_dir

  if not cache:
    return learn_behaviour(model, solve_correspondence(model, landmarker), landmarker)
  path = os.path.join(cache_dir(), "fit", f"mediapipe468-{model.name}-{_key(model)}.npz")
  os.makedirs(os.path.dirname(path), exist_ok=True)
  # Minutes of work: when several processes ask at once (pytest workers, a pod's hosts on a shared disk),
  # one finds the points and the others wait for its file instead of repeating the search.
  with _exclusive(path + ".lock"):
    if os.path.exists(path):
      with np.load(path) as data:
        return Correspondence(**{k: data[k] for k in FIELDS}, name="mediapipe468")
    corr = learn_behaviour(model, solve_correspondence(model, landmarker), landmarker)
    tmp = f"{path}.{os.getpid()}.tmp.npz"
    np.savez(tmp, **{k: getattr(corr, k) for k in FIELDS})
    os.replace(tmp, path)
  return corr


@contextlib.contextmanager
def _exclusive(lock_path: str):
  """Holds an exclusive advisory lock on `lock_path` (fcntl.flock; no lock where fcntl is missing)."""
  try:
    import fcntl
  except ImportError:  # Windows: no cross-process lock; at worst two processes both do the search
    yield
    return
  with open(lock_path, "a") as handle:
    fcntl.flock(handle, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(handle, fcntl.LOCK_UN)


FIELDS = ("triangles", "bary", "weights", "offsets", "exp_delta")


def _key(model) -> str:
  """The cache key: what the found points depend on — the model's arrays the renders, the open mouth and the
  training clips use, the landmark network, the search's settings and VERSION (the algorithm)."""
  digest = hashlib.sha256()
  for array in (model.mean, model.triangles, model.landmarks, model.id_basis, model.exp_basis):
    digest.update(np.ascontiguousarray(np.asarray(array)).tobytes())
  from importlib import resources

  weights = resources.files("a2e_jax") / "assets" / "mediapipe" / "face_landmark.npz"
  digest.update(str(weights.stat().st_size if hasattr(weights, "stat") else 0).encode())
  settings = (
    VIEW_YAW,
    VIEW_PITCH,
    SIZE,
    FACE_PIXELS,
    TRAIN_SEEDS,
    TRAIN_FRAMES,
    MAX_CHANNELS,
    RIDGE,
    OPEN_GAP,
  )
  digest.update(repr((settings, VERSION)).encode())
  return digest.hexdigest()[:16]


def view_poses(model) -> tuple[np.ndarray, object]:
  """([V,6] poses, camera) of the renders: the face FACE_PIXELS wide, centred, yaw × pitch grid."""
  from a2e_jax.render import camera as cam_lib

  camera = cam_lib.deep3d_camera(SIZE)
  mean = np.asarray(model.mean)
  lmk = mean[np.asarray(model.landmarks)]
  width = np.linalg.norm(lmk[16] - lmk[0])
  depth = camera.focal * width / FACE_PIXELS
  centre = lmk.mean(0)
  poses = []
  for pitch in VIEW_PITCH:
    for yaw in VIEW_YAW:
      angles = np.deg2rad([pitch, yaw, 0.0])
      rotated = np.asarray(cam_lib.rotation_matrix(angles)) @ centre
      trans = np.array([-rotated[0], -rotated[1], camera.distance - depth - rotated[2]])
      poses.append(np.concatenate([angles, trans]))
  return np.asarray(poses, np.float32), camera


def solve_correspondence(model, landmarker=None) -> Correspondence:
  """Renders, measures, triangulates and snaps (see module doc): the lips' points from renders with the
  mouth open (`opening_expression`), snapped onto the open mesh, the rest from the neutral face."""
  from a2e_jax import vision
  from a2e_jax.render import camera as cam_lib
  from a2e_jax.render.pipeline import FaceRenderer

  poses, camera = view_poses(model)
  views = len(poses)
  opening = opening_expression(model)
  faces_exp = [np.zeros(model.num_exp, np.float32)] + ([] if opening is None else [opening])
  exp = np.repeat(np.stack(faces_exp), views, 0)  # [S·V,Ke]: every face in every view
  renderer = FaceRenderer(model, size=SIZE, batch=len(exp), background=(0.45, 0.45, 0.45), antialias=True)
  images, _ = renderer.render(exp, np.tile(poses, (len(faces_exp), 1)))
  images = (np.clip(np.asarray(images), 0, 1) * 255 + 0.5).astype(np.uint8)
  landmarker = landmarker or vision.Landmarker(eyes=False, batch=len(exp))
  faces = landmarker.images(images)
  found = np.asarray(faces.found, bool).reshape(len(faces_exp), views)
  if found.sum(1).min() < 3:
    raise RuntimeError(
      f"the landmarker found model {model.name!r} in only {found.sum(1).tolist()} of {views} renders of "
      "its neutral face (and open mouth); cannot place the 468 points"
    )
  tri = np.asarray(model.triangles)
  skin = skin_triangles(model)
  triangles, bary, residual = [], [], []
  for k, seen in enumerate(found):
    # The landmarker puts pixel centres at integers; ours are at +0.5.
    observed = np.asarray(faces.points[k * views + np.flatnonzero(seen), :, :2], np.float64) + 0.5  # [V,P,2]
    rot = np.asarray(cam_lib.rotation_matrix(poses[seen, :3]), np.float64)
    trans = poses[seen, 3:].astype(np.float64)
    points = _triangulate(observed, rot, trans, camera)
    verts = np.asarray(model.vertices(None, faces_exp[k][None]), np.float64)[0]
    t, b = _snap(points, verts, tri, skin)
    triangles.append(t)
    bary.append(b)
    residual.append(_reprojection_rms(points, observed, rot, trans, camera))
  lips = lip_points()
  for part in (triangles, bary, residual):  # the lips' points from the open mouth (the last face)
    part[0][lips] = part[-1][lips]
  weights = (1.0 / (1.0 + (residual[0] / (2 * np.median(residual[0]))) ** 2)).astype(np.float32)
  return Correspondence(
    triangles[0].astype(np.int32), bary[0].astype(np.float32), weights, name="mediapipe468"
  )


def opening_expression(model) -> np.ndarray | None:
  """[Ke] the expression of the open-mouth renders: along the gradient of the inner-lip gap (the vertical
  distance of the 68 landmarks' 62 and 66) in the expression coefficients, its positive part for a
  blendshape model (channels in [0, 1]), scaled so that the gap opens OPEN_GAP mouth widths (48–54).

  None when the neutral face's lips are that far apart already, or when no expression parts them (a
  model whose modes move both lips alike, such as synthetic.bfm_shaped_model's smooth fields): then the
  neutral renders place the lips' points too.
  """
  basis = np.asarray(model.exp_basis, np.float64)
  mean = np.asarray(model.mean, np.float64)
  lmk = np.asarray(model.landmarks)
  direction = basis[lmk[62], 1] - basis[lmk[66], 1]  # d(gap)/d(exp); +y is up
  if "jawOpen" in model.channel_names:  # blendshapes, as fit/track.py decides
    direction = np.maximum(direction, 0.0)
  norm = np.linalg.norm(direction)
  width = np.linalg.norm(mean[lmk[54]] - mean[lmk[48]])
  wanted = OPEN_GAP * width - (mean[lmk[62], 1] - mean[lmk[66], 1])
  if wanted <= 0 or norm < 1e-6 * width:
    return None
  return (direction / norm * wanted / norm).astype(np.float32)


def learn_behaviour(model, corr: Correspondence, landmarker=None) -> Correspondence:
  """`corr` with the landmarker's offsets, expression corrections and weights learned on synthetic clips."""
  import dataclasses

  from a2e_jax import vision
  from a2e_jax.fit import correspondence as corr_lib
  from a2e_jax.fit import synthetic
  from a2e_jax.fit.solve import inter_ocular

  landmarker = landmarker or vision.Landmarker(eyes=False, batch=16)
  design, target, channels = [], [], None
  for seed in TRAIN_SEEDS:
    truth = synthetic.clip(model, TRAIN_FRAMES, seed=seed)
    faces = landmarker.video(truth.frames)
    if channels is None:  # the channels the clips move (the same generator for every seed)
      spread = truth.exp.std(0)
      channels = np.argsort(-spread)[: min(MAX_CHANNELS, int((spread > 1e-6).sum()))]
    seen = np.asarray(faces.found, bool)
    observed = np.asarray(faces.points[seen, :, :2], np.float64) + 0.5
    features = np.concatenate(
      [np.asarray(corr_lib.pose_features(truth.pose[seen, :3]), np.float64), truth.exp[seen][:, channels]], 1
    )
    surface = np.asarray(
      corr_lib.surface_points(model.vertices(truth.id, truth.exp[seen]), model.triangles, corr)
    )
    rows, residual = _linear_rows(
      observed,
      truth.pose[seen].astype(np.float64),
      surface.astype(np.float64),
      np.asarray(inter_ocular(truth.landmarks[seen])),
    )
    design.append(np.einsum("vpkc,vz->pvkcz", rows, features).reshape(len(corr), -1, 3 * features.shape[1]))
    target.append(residual.transpose(1, 0, 2).reshape(len(corr), -1))
  design, target = np.concatenate(design, 1), np.concatenate(target, 1)  # [P,2V,U], [P,2V]
  num_f = corr_lib.NUM_POSE_FEATURES
  ridge = np.full((3, num_f + len(channels)), RIDGE)
  ridge[:, 0] = 1e-6  # the constant offset (a point off the surface) is free
  frames = design.shape[1] // 2
  keep = np.ones(frames, bool)
  for _ in range(3):  # frames where the landmarker failed (error far beyond the rest) are dropped
    w = np.repeat(keep, 2).astype(np.float64)
    lhs = np.einsum("pvi,v,pvj->pij", design, w, design) + keep.sum() * np.diag(ridge.ravel())
    coef = np.linalg.solve(lhs, np.einsum("pvi,v,pv->pi", design, w, target)[..., None])[..., 0]
    error = np.sqrt(
      ((np.einsum("pvi,pi->pv", design, coef) - target) ** 2).reshape(len(corr), frames, 2).sum(-1)
    )
    per_frame = np.median(error, 0)
    keep = per_frame < 3 * np.median(per_frame)
  rms = np.sqrt((error[:, keep] ** 2).mean(1))
  coef = coef.reshape(len(corr), 3, -1).astype(np.float32)
  coef[lip_points()] = 0.0
  exp_delta = np.zeros((len(corr), 3, model.exp_basis.shape[-1]), np.float32)
  exp_delta[:, :, channels] = coef[:, :, num_f:]
  weights = (1.0 / (1.0 + (rms / (2 * np.median(rms))) ** 2)).astype(np.float32)
  return dataclasses.replace(corr, weights=weights, offsets=coef[:, :, :num_f], exp_delta=exp_delta)


def lip_points() -> np.ndarray:
  """Indices of the 468-point mesh's lip contours (the contours through the mouth corners 61 and 78)."""
  from a2e_jax.vision.overlay import CONTOURS

  return np.unique(np.concatenate([c for c in CONTOURS if 61 in c or 78 in c]))


def _linear_rows(observed_vp2, pose_v6, surface_vp3, iod_v):
  """(rows [V,P,2,3], residual [V,P,2]): the projection of X = surface + d linearised in d, in IOD units.

  `_pixel_equations` divided by w at the surface point and by the IOD.
  """
  from a2e_jax.render import camera as cam_lib

  camera = cam_lib.deep3d_camera(SIZE)
  rot = np.asarray(cam_lib.rotation_matrix(pose_v6[:, :3]), np.float64)
  trans = pose_v6[:, 3:]
  rows, rhs = _pixel_equations(observed_vp2, rot, trans, camera)
  posed = np.einsum("vij,vpj->vpi", rot, surface_vp3) + trans[:, None]
  scale = 1.0 / ((camera.distance - posed[..., 2]) * iod_v[:, None])
  residual = rhs - np.einsum("vpkc,vpc->vpk", rows, surface_vp3)
  return rows * scale[..., None, None], residual * scale[..., None]


def _pixel_equations(observed_vp2, rot_v33, trans_v3, camera):
  """(rows [V,P,2,3], rhs [V,P,2]): rows · X = rhs ⇔ X projects to the observed pixel.

  cx + f·x'/w = u, cy − f·y'/w = v for x' = R X + t, w = d − z', multiplied by w:
  (u − cx)(d − z') = f x'  →  [(u−cx) R_z + f R_x] X = (u−cx)(d − t_z) − f t_x ; likewise for v with −f.
  """
  f, cx, cy, d = camera.focal, camera.cx, camera.cy, camera.distance
  du, dv = observed_vp2[..., 0] - cx, observed_vp2[..., 1] - cy  # [V,P]
  rows_u = du[..., None] * rot_v33[:, None, 2] + f * rot_v33[:, None, 0]  # [V,P,3]
  rows_v = dv[..., None] * rot_v33[:, None, 2] - f * rot_v33[:, None, 1]
  rhs_u = du * (d - trans_v3[:, None, 2]) - f * trans_v3[:, None, 0]
  rhs_v = dv * (d - trans_v3[:, None, 2]) + f * trans_v3[:, None, 1]
  return np.stack([rows_u, rows_v], 2), np.stack([rhs_u, rhs_v], 2)


def _triangulate(observed_vp2, rot_v33, trans_v3, camera) -> np.ndarray:
  """[P,3] least-squares points from their pixels in views of known cameras (`_pixel_equations`)."""
  rows, rhs = _pixel_equations(observed_vp2, rot_v33, trans_v3, camera)
  a = rows.transpose(1, 0, 2, 3).reshape(rows.shape[1], -1, 3)  # [P,2V,3]
  b = rhs.transpose(1, 0, 2).reshape(rhs.shape[1], -1)  # [P,2V]
  return np.linalg.solve(np.einsum("pvi,pvj->pij", a, a), np.einsum("pvi,pv->pi", a, b)[..., None])[..., 0]


def _reprojection_rms(points_p3, observed_vp2, rot_v33, trans_v3, camera) -> np.ndarray:
  posed = np.einsum("vij,pj->vpi", rot_v33, points_p3) + trans_v3[:, None]
  w = camera.distance - posed[..., 2]
  px = np.stack(
    [camera.cx + camera.focal * posed[..., 0] / w, camera.cy - camera.focal * posed[..., 1] / w], -1
  )
  return np.sqrt(((px - observed_vp2) ** 2).sum(-1).mean(0))


def skin_triangles(model) -> np.ndarray:
  """Indices of the triangles in the mesh's connected part that holds the most landmark vertices."""
  from scipy.sparse import coo_matrix
  from scipy.sparse.csgraph import connected_components

  tri = np.asarray(model.triangles)
  n = model.mean.shape[0]
  edges = np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]])
  graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
  _, label = connected_components(graph, directed=False)
  skin = np.bincount(label[np.asarray(model.landmarks)]).argmax()
  return np.flatnonzero(label[tri[:, 0]] == skin)


def _snap(points_p3, verts_n3, triangles_f3, candidates, neighbours: int = 12):
  """(triangle [P], barycentrics [P,3]) of the closest point on the candidate triangles to each point."""
  from scipy.spatial import cKDTree

  cand = triangles_f3[candidates]
  centroids = verts_n3[cand].mean(1)
  _, near = cKDTree(centroids).query(points_p3, k=neighbours)  # [P,k]
  corners = verts_n3[cand[near]]  # [P,k,3,3]
  bary = _closest_barycentric(points_p3[:, None], corners)
  closest = np.einsum("pkc,pkcd->pkd", bary, corners)
  best = np.linalg.norm(closest - points_p3[:, None], axis=-1).argmin(1)
  rows = np.arange(len(points_p3))
  return candidates[near[rows, best]], bary[rows, best]


def _closest_barycentric(p, tri):
  """Barycentrics of the closest point on triangles tri [...,3,3] to points p [...,3] (Ericson's regions)."""
  a, b, c = tri[..., 0, :], tri[..., 1, :], tri[..., 2, :]
  ab, ac, ap = b - a, c - a, p - a
  d1, d2 = (ab * ap).sum(-1), (ac * ap).sum(-1)
  bp, cp = p - b, p - c
  d3, d4 = (ab * bp).sum(-1), (ac * bp).sum(-1)
  d5, d6 = (ab * cp).sum(-1), (ac * cp).sum(-1)
  va = d3 * d6 - d5 * d4
  vb = d5 * d2 - d1 * d6
  vc = d1 * d4 - d3 * d2
  with np.errstate(divide="ignore", invalid="ignore"):
    denom = va + vb + vc
    v_in, w_in = vb / denom, vc / denom
    t_ab = np.clip(d1 / (d1 - d3), 0, 1)
    t_ac = np.clip(d2 / (d2 - d6), 0, 1)
    t_bc = np.clip((d4 - d3) / ((d4 - d3) + (d5 - d6)), 0, 1)
  out = np.stack([1 - v_in - w_in, v_in, w_in], -1)
  one = np.ones_like(d1)
  zero = np.zeros_like(d1)
  cases = [  # (condition, barycentrics), later ones win, so the interior case is the default
    ((vc <= 0) & (d1 >= 0) & (d3 <= 0), np.stack([1 - t_ab, t_ab, zero], -1)),
    ((vb <= 0) & (d2 >= 0) & (d6 <= 0), np.stack([1 - t_ac, zero, t_ac], -1)),
    ((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0), np.stack([zero, 1 - t_bc, t_bc], -1)),
    ((d1 <= 0) & (d2 <= 0), np.stack([one, zero, zero], -1)),
    ((d3 >= 0) & (d4 <= d3), np.stack([zero, one, zero], -1)),
    ((d6 >= 0) & (d5 <= d6), np.stack([zero, zero, one], -1)),
  ]
  for cond, value in cases:
    out = np.where(cond[..., None], value, out)
  return np.nan_to_num(out, nan=1.0 / 3)
