"""Face measures from the landmarks: eye openness (blinks), gaze, inner-lip gap and mouth width.

Lengths are divided by the inter-ocular distance (IOD: between the eye centres, each the mean of its two
corners), so they do not depend on the face's size in the picture. Eye 0 / "right" is the subject's right
eye (image left in a frontal view), as MediaPipe names them.

- openness [.., 2]: the lid gap over the eye's corner-to-corner width, per eye. From the iris network's
  eye contour when it ran (its points 12–4 over 0–8: about 0.45 open, under 0.2 closed on the built-in
  face): the 468-point mesh alone barely closes its eyes (lids 159–145, 386–374 over the corners: about
  0.39 open, still 0.35 with the eye shut), so use it only without the iris network.
- gaze [.., 2]: (x, y) of the iris centre relative to the eye's centre, in eye widths, in the eye's own
  frame (x along the corners, towards the subject's left; y down), averaged over both eyes.
- lip_gap: inner lips 13–14 over the IOD; mouth_width: corners 61–291 over the IOD.
"""

import numpy as np

RIGHT_EYE = (33, 133)  # outer, inner corner
LEFT_EYE = (263, 362)
LIDS = ((159, 145), (386, 374))  # (upper, lower) per eye
# The iris network's 71-point eye contour: corners 0 (outer) and 8 (inner), lids 12 (upper) and 4 (lower).
CONTOUR_CORNERS, CONTOUR_LIDS = (0, 8), (12, 4)
INNER_LIPS = (13, 14)
MOUTH_CORNERS = (61, 291)


def _dist(points, a, b):
  return np.linalg.norm(points[..., a, :2] - points[..., b, :2], axis=-1)


def interocular(points_n2) -> np.ndarray:
  """[...] distance between the two eye centres, in the points' units."""
  right = points_n2[..., RIGHT_EYE, :2].mean(-2)
  left = points_n2[..., LEFT_EYE, :2].mean(-2)
  return np.linalg.norm(right - left, axis=-1)


def measures(points_bn3, iris_b253=None, eye_contour_b2713=None) -> dict:
  """{name: array [B] or [B,2]} from FaceLandmarks' points, iris (for gaze) and eye_contour (openness)."""
  points = np.asarray(points_bn3, np.float64)
  iod = interocular(points)
  corners = (RIGHT_EYE, LEFT_EYE)
  width = np.stack([_dist(points, *c) for c in corners], -1)
  out = {
    "interocular": iod,
    "openness": np.stack([_dist(points, *lids) for lids in LIDS], -1) / width,
    "lip_gap": _dist(points, *INNER_LIPS) / iod,
    "mouth_width": _dist(points, *MOUTH_CORNERS) / iod,
  }
  if eye_contour_b2713 is not None and np.isfinite(eye_contour_b2713).all():
    contour = np.asarray(eye_contour_b2713, np.float64)
    out["openness"] = _dist(contour, *CONTOUR_LIDS) / _dist(contour, *CONTOUR_CORNERS)
  if iris_b253 is not None:
    gazes = []
    for eye, (outer, inner) in enumerate(corners):
      a, b = points[..., outer, :2], points[..., inner, :2]
      if eye == 1:
        a, b = b, a  # both eyes' x axis points towards the subject's left
      axis = (b - a) / np.linalg.norm(b - a, axis=-1, keepdims=True)
      normal = np.stack([-axis[..., 1], axis[..., 0]], -1)
      offset = np.asarray(iris_b253, np.float64)[..., eye, 0, :2] - (a + b) / 2
      gazes.append(np.stack([(offset * axis).sum(-1), (offset * normal).sum(-1)], -1) / width[..., eye, None])
    out["gaze"] = np.mean(gazes, 0)
  return out
