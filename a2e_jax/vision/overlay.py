"""Drawing landmarks over the picture, so that a person can check them at a glance.

All 468 points as dots; the face outline, brows, eyes and lips as lines (MediaPipe's FACEMESH_CONTOURS
paths from mediapipe/python/solutions/face_mesh_connections.py, Apache-2.0); irises as circles; the crop
rect the mesh saw as a thin box. Frames without a face get a red "no face" label instead.
"""

import numpy as np

CONTOURS = (
  # face oval
  (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176,
   149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109, 10),
  # brows (right, left; upper and lower edges)
  (46, 53, 52, 65, 55), (70, 63, 105, 66, 107), (276, 283, 282, 295, 285), (300, 293, 334, 296, 336),
  # eyes (lower, upper lid each)
  (33, 7, 163, 144, 145, 153, 154, 155, 133), (33, 246, 161, 160, 159, 158, 157, 173, 133),
  (263, 249, 390, 373, 374, 380, 381, 382, 362), (263, 466, 388, 387, 386, 385, 384, 398, 362),
  # lips (outer lower, outer upper, inner lower, inner upper)
  (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291), (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291),
  (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308), (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308),
)
POINT_COLOR = (80, 220, 255)
LINE_COLOR = (60, 255, 90)
IRIS_COLOR = (255, 80, 200)
RECT_COLOR = (255, 220, 0)


def draw(image_hw3, found: bool, points_n3=None, iris_253=None, rect_5=None) -> np.ndarray:
  """[H,W,3] uint8: one picture with its face drawn over it."""
  from PIL import Image, ImageDraw, ImageFont

  image = Image.fromarray(np.asarray(image_hw3, np.uint8))
  pen = ImageDraw.Draw(image)
  scale = max(1.0, min(image.size) / 400)
  if not found:
    font = ImageFont.load_default(size=max(12, int(18 * scale)))
    pen.rectangle((0, 0, int(110 * scale), int(26 * scale)), fill=(0, 0, 0))
    pen.text((int(6 * scale), int(4 * scale)), "no face", fill=(255, 60, 60), font=font)
    return np.asarray(image)
  if rect_5 is not None:
    cx, cy, w, h, angle = (float(v) for v in rect_5)
    axes = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    corners = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5], [-0.5, -0.5]]) * [w, h]
    pen.line([tuple(p) for p in corners @ axes + [cx, cy]], fill=RECT_COLOR, width=1)
  xy = np.asarray(points_n3)[:, :2]
  radius = 0.8 * scale
  for x, y in xy:
    pen.ellipse((x - radius, y - radius, x + radius, y + radius), fill=POINT_COLOR)
  for path in CONTOURS:
    pen.line([tuple(p) for p in xy[list(path)]], fill=LINE_COLOR, width=max(1, int(round(scale))))
  if iris_253 is not None and np.isfinite(iris_253).all():
    for eye in np.asarray(iris_253):
      centre = eye[0, :2]
      r = np.linalg.norm(eye[1:, :2] - centre, axis=-1).mean()
      pen.ellipse((*(centre - r), *(centre + r)), outline=IRIS_COLOR, width=max(1, int(round(scale))))
      pen.ellipse((*(centre - radius * 1.5), *(centre + radius * 1.5)), fill=IRIS_COLOR)
  return np.asarray(image)


def draw_batch(frames_bhw3, faces, start: int = 0) -> np.ndarray:
  """[b,H,W,3] frames drawn with FaceLandmarks rows start … start+b."""
  return np.stack([draw(frame, faces.found[start + i], faces.points[start + i], faces.iris[start + i],
                        faces.rect[start + i]) for i, frame in enumerate(frames_bhw3)])
