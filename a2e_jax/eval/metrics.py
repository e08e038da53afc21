"""Per-clip evaluation metrics on numpy arrays (float64 inside), aggregated by `eval/evaluate.py`.

  lip vertex error (LVE)   per frame the maximum over lip vertices of the squared L2 error, averaged over
                           all frames of all clips (FaceFormer and CodeTalker pool frames, not clips)
  FDD                      upper-face dynamics deviation (CodeTalker): per upper-face vertex, the std over
                           time of the squared motion ‖v_t − template‖²; its mean over vertices for the
                           ground truth minus that of the prediction, averaged over clips (signed: > 0 means
                           the prediction moves the upper face less than the truth)
  blink precision/recall   blink events (runs where the mean eyeBlink channel is over a threshold) against
                           the events of the eye-control signal, matched within a tolerance
  identity                 the resting face: the per-clip median over frames of the coefficients, against
                           the truth's and against β0; and how a swapped β0 moves it (`identity_transfer`)

Vertices come from `region_vertices` (only the vertices a metric reads, since BFM has 35k of them).
"""

import numpy as np

BLINK_THRESHOLD = 0.5
BLINK_TOLERANCE = 2  # frames of slack when matching a detected blink to a control blink


def region_vertices(face_model, index, coeffs_tk, id_coeffs=None) -> np.ndarray:
  """[T,V,3] float64 vertices `index` of `face_model` for expression coefficients [T,K]."""
  index = np.asarray(index)
  shape = np.asarray(face_model.mean, np.float64)[index]
  if id_coeffs is not None:
    shape = shape + np.einsum("k,vck->vc", id_coeffs, np.asarray(face_model.id_basis, np.float64)[index])
  basis = np.asarray(face_model.exp_basis, np.float64)[index]
  return shape + np.einsum("tk,vck->tvc", np.asarray(coeffs_tk, np.float64), basis)


def lve_frames(pred_tv3, true_tv3) -> np.ndarray:
  """[T] per frame the maximum over vertices of the squared L2 distance (average these over all frames)."""
  diff = np.asarray(pred_tv3, np.float64) - np.asarray(true_tv3, np.float64)
  return np.sum(diff**2, axis=-1).max(axis=-1)


def _motion_std(vertices_tv3, template_v3) -> float:
  motion = np.sum((np.asarray(vertices_tv3, np.float64) - template_v3) ** 2, axis=-1)  # [T,V]
  return float(motion.std(axis=0).mean())


def fdd(pred_tv3, true_tv3, template_v3) -> float:
  """One clip's upper-face dynamics deviation: mean_v std_t ‖true − tmpl‖² − mean_v std_t ‖pred − tmpl‖²."""
  template_v3 = np.asarray(template_v3, np.float64)
  return _motion_std(true_tv3, template_v3) - _motion_std(pred_tv3, template_v3)


def blink_events(closure_t, threshold: float = BLINK_THRESHOLD) -> list[tuple[int, int]]:
  """[(start, end)] half-open frame ranges where closure [T] exceeds `threshold`."""
  above = np.concatenate([[False], np.asarray(closure_t) > threshold, [False]])
  edges = np.flatnonzero(above[1:] != above[:-1])
  return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))


def _overlaps(event, others, tolerance: int) -> bool:
  return any(event[0] < end + tolerance and start < event[1] + tolerance for start, end in others)


def blink_counts(pred_closure_t, control_closure_t, tolerance: int = BLINK_TOLERANCE,
                 threshold: float = BLINK_THRESHOLD) -> dict:
  """Counts for precision/recall: detected blinks matched to control blinks (within `tolerance` frames)
  and control blinks matched by a detected one."""
  pred, control = blink_events(pred_closure_t, threshold), blink_events(control_closure_t, threshold)
  return {
    "pred_events": len(pred),
    "pred_matched": sum(_overlaps(e, control, tolerance) for e in pred),
    "control_events": len(control),
    "control_matched": sum(_overlaps(e, pred, tolerance) for e in control),
  }


def precision_recall(counts: dict) -> tuple[float, float]:
  """(precision, recall) from summed `blink_counts`; 1.0 where there is nothing to get wrong."""
  precision = counts["pred_matched"] / counts["pred_events"] if counts["pred_events"] else 1.0
  recall = counts["control_matched"] / counts["control_events"] if counts["control_events"] else 1.0
  return float(precision), float(recall)


def identity(pred_tk, true_tk, beta0_k) -> dict:
  """Resting-face errors of one clip (mean absolute over channels of per-clip medians over frames)."""
  rest_pred = np.median(np.asarray(pred_tk, np.float64), axis=0)
  rest_true = np.median(np.asarray(true_tk, np.float64), axis=0)
  return {
    "identity_error": float(np.abs(rest_pred - rest_true).mean()),  # resting face vs the truth's
    "identity_beta0_offset": float(np.abs(rest_pred - beta0_k).mean()),  # resting face vs β0
    "identity_beta0_offset_true": float(np.abs(rest_true - beta0_k).mean()),  # the same for the truth
  }


def identity_transfer(pred_tk, pred_swapped_tk, beta0_k, beta0_swapped_k) -> float:
  """How much of a β0 change reaches the resting face: <Δrest, Δβ0> / ‖Δβ0‖² (1 = all of it)."""
  delta_rest = np.median(np.asarray(pred_swapped_tk, np.float64), 0) - np.median(np.asarray(pred_tk), 0)
  delta_beta0 = np.asarray(beta0_swapped_k, np.float64) - beta0_k
  norm = float(delta_beta0 @ delta_beta0)
  return float(delta_rest @ delta_beta0 / norm) if norm > 0 else float("nan")
