"""How good a fit is against known truth: the measures of the synthetic checks and benchmarks."""

import numpy as np

from a2e_jax.fit.rendering import landmark_pixels, render_batches
from a2e_jax.render import camera as cam_lib

MM_PER_UNIT = 100.0  # 1 model unit = 10 cm


def pose_error_deg(pose_a, pose_b) -> np.ndarray:
  """[T] angle of the rotation between two poses' rotations, in degrees."""
  ra = np.asarray(cam_lib.rotation_matrix(np.asarray(pose_a)[:, :3]))
  rb = np.asarray(cam_lib.rotation_matrix(np.asarray(pose_b)[:, :3]))
  cos = (np.einsum("tij,tij->t", ra, rb) - 1) / 2
  return np.rad2deg(np.arccos(np.clip(cos, -1, 1)))


def _face_vertices(model, id_k) -> np.ndarray:
  """[V,3] the neutral face-region vertices (all, if the model has no face region) of identity id_k [Ki]."""
  face = np.asarray(model.regions.get("face", np.arange(model.mean.shape[0])))
  return np.asarray(model.vertices(np.asarray(id_k, np.float32)))[face]


def identity_error_mm(model, id_a, id_b) -> float:
  """Mean distance between the two identities' neutral face-region vertices, in mm."""
  return float(np.linalg.norm(_face_vertices(model, id_a) - _face_vertices(model, id_b), axis=-1).mean()
               * MM_PER_UNIT)


def landmark_vertex_error(model, image_size, fit, true_landmarks_tl2) -> np.ndarray:
  """[T] mean distance between the fitted 68 landmark vertices' projections and the true ones, / IOD."""
  from a2e_jax.fit.solve import inter_ocular

  px = landmark_pixels(model, fit.id, fit.exp, fit.pose, cam_lib.deep3d_camera(*image_size))
  iod = np.asarray(inter_ocular(true_landmarks_tl2))
  return np.linalg.norm(px - true_landmarks_tl2, axis=-1).mean(1) / iod


# The middle of the upper and lower inner lip in the Multi-PIE 68-point scheme (0-based).
INNER_LIP_68 = (62, 66)


def fitted_lip_gap(model, fit) -> np.ndarray:
  """[T] the fitted model's inner-lip gap over its inter-ocular distance, both measured in the picture.

  The model's own inner-lip vertices (its 68 landmarks' 62 and 66) and eye centres, projected through the
  fit's pose and camera: the counterpart of Track.lip_gap (vision/measures: the landmarks' inner-lip points
  13–14 over their IOD). The model's own vertices rather than the 468-point correspondence's points 13 and
  14, so the measure does not depend on where the correspondence search put them (before VERSION 4 both
  sat on one triangle at the mouth's seam and stayed together however far the jaw opened).
  """
  from a2e_jax.fit.solve import inter_ocular

  px = landmark_pixels(model, fit.id, fit.exp, fit.pose, cam_lib.deep3d_camera(*fit.image_size))
  upper, lower = INNER_LIP_68
  return np.linalg.norm(px[:, upper] - px[:, lower], axis=-1) / np.asarray(inter_ocular(px))


def correlation(a, b) -> float:
  """Pearson correlation of two [T] series (nan when either is constant)."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  if a.std() < 1e-9 or b.std() < 1e-9:
    return float("nan")
  return float(np.corrcoef(a, b)[0, 1])


def events(flags) -> list[tuple[int, int]]:
  """[(start, stop)] runs of True in a [T] bool series."""
  flags = np.concatenate([[False], np.asarray(flags, bool), [False]])
  edges = np.flatnonzero(np.diff(flags.astype(np.int8)))
  return list(zip(edges[::2], edges[1::2]))


def event_precision_recall(found, truth) -> tuple[float, float]:
  """Precision and recall of found events against true ones; an event counts when the runs overlap."""
  found_ev, true_ev = events(found), events(truth)

  def overlaps(a, runs):
    return any(a[0] < b[1] and b[0] < a[1] for b in runs)

  precision = np.mean([overlaps(e, true_ev) for e in found_ev]) if found_ev else float(not true_ev)
  recall = np.mean([overlaps(e, found_ev) for e in true_ev]) if true_ev else 1.0
  return float(precision), float(recall)


def rerender_errors(model, frames_thw3, face_mask_thw, fit, batch: int = 8) -> tuple[np.ndarray, np.ndarray]:
  """([T] fitted, [T] mean-face) mean absolute colour error over the face pixels of the input frames.

  face_mask_thw: [T,H,W] bool, where to measure: the issue's "face region" is the model's face region
  (synthetic.Truth.face_mask), the part the photometric fit explains — not the hair, ears and neck.

  The mean face (mean identity, neutral expression, mean albedo) is drawn in the fitted pose and lighting,
  so the comparison measures what the identity, expression and albedo of the fit add.
  """
  frames = np.asarray(frames_thw3, np.float32) / 255.0
  out = []
  for exp, ident, tex in ((fit.exp, fit.id, fit.tex), (np.zeros_like(fit.exp), None, None)):
    errors = []
    for start, images, mask in render_batches(
      model, exp, fit.pose, ident, fit.gamma, tex, fit.image_size, batch
    ):
      for i, t in enumerate(range(start, start + len(images))):
        shown = np.where(mask[i][..., None], images[i], frames[t])
        region = face_mask_thw[t]
        errors.append(np.abs(shown - frames[t]).sum(-1)[region].mean())
    out.append(np.asarray(errors))
  return out[0], out[1]


def mesh_regions() -> dict[str, np.ndarray]:
  """Index arrays of the 468-point mesh's regions: the face oval (a silhouette on a turned head), brows,
  eyes, lips, and the interior (every other point: nose, cheeks, forehead)."""
  from a2e_jax.fit.find_points import lip_points
  from a2e_jax.vision.overlay import CONTOURS

  regions = {
    "oval": np.unique(CONTOURS[0]),
    "brows": np.unique(np.concatenate(CONTOURS[1:5])),
    "eyes": np.unique(np.concatenate(CONTOURS[5:9])),
    "lips": lip_points(),
  }
  regions["interior"] = np.setdiff1d(np.arange(468), np.concatenate(list(regions.values())))
  return regions


def landmarker_residuals(model, corr, truth, points_tl2, image_size) -> np.ndarray:
  """[T,L,2] the landmarker's points minus the correspondence's modelled places (its surface points with
  the learned behaviour, fit/find_points.py) at the true identity, expression and pose, / the true IOD.

  What the fit cannot explain whatever it does: the floor of the landmark term on a synthetic clip.
  truth: synthetic.Truth; points_tl2: [T,L,2] the landmarker's pixels (centres at +0.5).
  """
  from a2e_jax.fit import correspondence as corr_lib
  from a2e_jax.fit.solve import inter_ocular

  camera = cam_lib.deep3d_camera(*image_size)
  pts = corr_lib.point_model(model, corr).points(truth.id, truth.exp, truth.pose[:, :3])
  posed = cam_lib.transform(pts, truth.pose[:, :3], truth.pose[:, 3:])
  px = np.asarray(cam_lib.to_pixels(camera, cam_lib.project(camera, posed)))
  return (np.asarray(points_tl2) - px) / np.asarray(inter_ocular(truth.landmarks))[:, None, None]


def bias_and_noise(residuals_tl2, groups: dict) -> dict:
  """Per group of points: medians over its points of the error |r| (over frames too), of the bias |mean
  over frames of r| (what repeats frame after frame, and so what a clip's one identity can absorb) and of
  the noise (the length of r's standard deviation over frames)."""
  r = np.asarray(residuals_tl2)
  out = {}
  for name, idx in groups.items():
    out[name] = {
      "error": float(np.median(np.linalg.norm(r[:, idx], axis=-1))),
      "bias": float(np.median(np.linalg.norm(r[:, idx].mean(0), axis=-1))),
      "noise": float(np.median(np.linalg.norm(r[:, idx].std(0), axis=-1))),
    }
  return out


def size_and_depth(model, fit, truth) -> dict:
  """How a fit trades the face's size against its distance: the fitted face region's size across (x, y)
  relative to the true one, the median ratio of fitted to true view depth, and the identity vertex error
  (mm) left after scaling the fitted face region about its centre by the best single factor."""
  true, fitted = _face_vertices(model, truth.id), _face_vertices(model, fit.id)
  true, fitted = true - true.mean(0), fitted - fitted.mean(0)
  across = float(np.sqrt((fitted[:, :2] ** 2).sum() / (true[:, :2] ** 2).sum()))
  best = (true * fitted).sum() / (fitted**2).sum()
  camera = cam_lib.deep3d_camera(*fit.image_size)
  depth = (camera.distance - fit.pose[:, 5]) / (camera.distance - truth.pose[: len(fit.pose), 5])
  return {
    "face_size": across,
    "depth_ratio": float(np.median(depth)),
    "identity_mm_rescaled": float(np.linalg.norm(best * fitted - true, axis=-1).mean() * MM_PER_UNIT),
  }
