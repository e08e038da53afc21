"""The 468-point face mesh from a crop rectangle, as MediaPipe's FaceLandmarkCpu graph does it.

The rect (from a detection or from the previous frame's landmarks) is cut out of the image as a 192×192
crop in [0, 1] (edges replicated), Face Mesh gives 468 points in crop pixels and a face-presence logit,
and the points go back to image pixels through the same rect. z is in pixels too: MediaPipe scales the
network's z like x (by the rect's width over 192); it is depth relative to the face's centre, smaller
towards the camera.
"""

import jax
import jax.numpy as jnp

from a2e_jax.vision import geometry

INPUT_SIZE = 192
NUM_POINTS = 468
MIN_PRESENCE = 0.5
# Crop rects (MediaPipe's face_detection_front_detection_to_roi and face_landmark_landmarks_to_roi): 1.5×
# the box, levelled by the detector's eye keypoints or by the outer eye corners of the mesh.
RECT_SCALE = 1.5
EYE_KEYPOINTS = (0, 1)
EYE_CORNERS = (33, 263)


def rect_from_detection(box_b4, keypoints_bk2):
  """[B,5] the crop rect around detections (boxes and keypoints in image pixels)."""
  start, end = EYE_KEYPOINTS
  return geometry.rect_from_box(box_b4, keypoints_bk2[:, start], keypoints_bk2[:, end], RECT_SCALE)


def rect_from_landmarks(points_bn3):
  """[B,5] the next frame's crop rect from this frame's landmarks (image pixels)."""
  return geometry.rect_from_points(points_bn3[..., :2], *EYE_CORNERS, RECT_SCALE)


def landmarks(module, variables, images_bhwc, rects_b5):
  """(points [B,468,3] in image pixels, presence [B] in [0, 1]) for the given crop rects."""
  crops = geometry.crop_batch(images_bhwc, rects_b5, INPUT_SIZE) / 255.0
  raw, logit = module.apply(variables, crops)
  raw = raw.reshape(-1, NUM_POINTS, 3)
  xy = geometry.crop_to_image(rects_b5, raw[..., :2], INPUT_SIZE)
  z = raw[..., 2] * (rects_b5[:, None, geometry.W] / INPUT_SIZE)
  return jnp.concatenate([xy, z[..., None]], -1), jax.nn.sigmoid(logit[:, 0])
