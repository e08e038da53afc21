"""Named vertex regions (model.REGION_NAMES) derived from the 68 landmarks of a face model's neutral mesh.

For models that come without region masks (BFM, ICT-FaceKit), regions are cut in the frontal (x, y)
plane by polygons through the landmarks (Multi-PIE 68-point numbering), keeping only vertices near the
front surface so that the inside of the mouth or the back of the head does not leak in:
  lips        inside the outer lip contour (48-59), widened by 15% about its centre
  mouth       the lower face: below the nose (31-35), inside the jaw line from 3 to 13
  eye_left    around the subject's left eye (42-47, +x side), the contour widened 1.8x: lids and rim
  eye_right   the same for the subject's right eye (36-41)
  upper_face  the face above the middle of the nose bridge (landmark 29): brows, eyes, forehead
  face        the candidate vertices (the whole front face)
"""

import numpy as np
from matplotlib.path import Path

LIPS = np.arange(48, 60)
JAW_LOWER = np.arange(3, 14)
NOSE_BASE = np.arange(31, 36)
EYE_LEFT = np.arange(42, 48)  # the subject's left eye: +x in our frame (the face looks along +z)
EYE_RIGHT = np.arange(36, 42)


def landmark_regions(mean, landmarks, candidates=None) -> dict[str, np.ndarray]:
  """Region name -> sorted int32 vertex indices.

  Args:
    mean: [N,3] neutral vertices (+y up, the face looking along +z).
    landmarks: [68] vertex indices.
    candidates: vertex indices the regions may use (e.g. a model's face area), default all.
  """
  mean = np.asarray(mean, np.float64)
  points = mean[np.asarray(landmarks)]
  candidates = np.arange(len(mean)) if candidates is None else np.asarray(candidates, np.int64)
  face_width = np.linalg.norm(points[16] - points[0])
  xy = mean[candidates, :2]
  z = mean[candidates, 2]

  def inside(polygon_xy, depth_from):
    """Candidates inside the polygon and at most 0.25 face widths behind the `depth_from` landmarks."""
    mask = Path(polygon_xy).contains_points(xy)
    mask &= z >= points[depth_from, 2].min() - 0.25 * face_width
    return np.sort(candidates[mask]).astype(np.int32)

  def widened(indices, factor):
    contour = points[indices, :2]
    centre = contour.mean(axis=0)
    return centre + factor * (contour - centre)

  lower_face = np.concatenate([points[JAW_LOWER, :2], points[NOSE_BASE[::-1], :2]])
  upper = z >= points[[36, 45, 27], 2].min() - 0.25 * face_width
  upper &= xy[:, 1] >= points[29, 1]
  return {
    "lips": inside(widened(LIPS, 1.15), LIPS),
    "mouth": inside(lower_face, np.concatenate([LIPS, JAW_LOWER])),
    "eye_left": inside(widened(EYE_LEFT, 1.8), EYE_LEFT),
    "eye_right": inside(widened(EYE_RIGHT, 1.8), EYE_RIGHT),
    "upper_face": np.sort(candidates[upper]).astype(np.int32),
    "face": np.sort(candidates).astype(np.int32),
  }
