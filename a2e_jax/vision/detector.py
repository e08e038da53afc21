"""Face detection as MediaPipe's FaceDetectionShortRange graph does it, for a batch of images.

1. Letterbox: the whole image, padded with black to a centred square, resampled to 128×128 in [−1, 1].
2. BlazeFace (networks.FaceDetector) scores 896 anchors: 2 per cell of a 16×16 grid and 6 per cell of an
   8×8 grid, all of size 1 ("fixed_anchor_size") at the cell centres (SsdAnchorsCalculator with strides
   8, 16, 16, 16, one aspect ratio plus the interpolated scale).
3. Decoding (TensorsToDetectionsCalculator): offsets and sizes divided by 128 around the anchor centre,
   6 keypoints likewise (0 right eye, 1 left eye, 2 nose tip, 3 mouth, 4 right ear, 5 left ear, the
   subject's sides); score = sigmoid of the logit clipped to ±100.
4. Weighted non-maximum suppression (IoU > 0.3, score ≥ 0.5): the best anchor's box and keypoints become
   the score-weighted mean over the anchors overlapping it. Only the best face is kept (MediaPipe's face
   mesh default, max_num_faces=1), so the shapes stay fixed.
5. Letterbox removal: back to image pixels.
"""

import typing

import jax
import jax.numpy as jnp
import numpy as np

from a2e_jax.vision import geometry

INPUT_SIZE = 128
MIN_SCORE = 0.5
NMS_IOU = 0.3


class Detection(typing.NamedTuple):
  """The best face per image. found [B] bool; score [B]; box [B,4] (xmin, ymin, xmax, ymax) and keypoints
  [B,6,2] in image pixels (undefined where not found)."""

  found: jax.Array
  score: jax.Array
  box: jax.Array
  keypoints: jax.Array


def anchors() -> np.ndarray:
  """[896, 2] anchor centres in [0, 1] of the 128 input, in the network's output order."""
  centres = []
  for cells, per_cell in ((16, 2), (8, 6)):
    grid = (np.arange(cells, dtype=np.float32) + 0.5) / cells
    x, y = np.meshgrid(grid, grid)
    centres.append(np.repeat(np.stack([x.ravel(), y.ravel()], -1), per_cell, axis=0))
  return np.concatenate(centres)


def letterbox_rect(height: int, width: int) -> np.ndarray:
  """[5] the centred square around the whole image that the detector sees."""
  side = max(height, width)
  return np.array([width / 2, height / 2, side, side, 0.0], np.float32)


def letterbox(images_bhwc):
  """[B,128,128,3] float32 in [−1, 1]: each image padded with black to a square and resized."""
  rect = letterbox_rect(*images_bhwc.shape[1:3])
  return geometry.upright_crop_batch(images_bhwc, rect, INPUT_SIZE) / 127.5 - 1.0


def decode(regressors_bn16, logits_bn1):
  """(scores [B,896], boxes [B,896,4], keypoints [B,896,6,2]) in [0, 1] of the 128 input."""
  centre = jnp.asarray(anchors())
  raw = regressors_bn16 / INPUT_SIZE
  xy = raw[..., 0:2] + centre
  half = raw[..., 2:4] / 2
  boxes = jnp.concatenate([xy - half, xy + half], -1)
  keypoints = raw[..., 4:16].reshape(raw.shape[:-1] + (6, 2)) + centre[:, None, :]
  scores = jax.nn.sigmoid(jnp.clip(logits_bn1[..., 0], -100.0, 100.0))
  return scores, boxes, keypoints


def iou(box_4, boxes_n4):
  """[N] intersection over union of one box with many."""
  lo = jnp.maximum(box_4[:2], boxes_n4[:, :2])
  hi = jnp.minimum(box_4[2:], boxes_n4[:, 2:])
  inter = jnp.prod(jnp.clip(hi - lo, 0.0), -1)
  area = jnp.prod(box_4[2:] - box_4[:2])
  areas = jnp.prod(boxes_n4[:, 2:] - boxes_n4[:, :2], -1)
  return inter / jnp.maximum(area + areas - inter, 1e-12)


def best_face(scores_n, boxes_n4, keypoints_nk2):
  """Weighted NMS for the top face of one image: (found, score, box [4], keypoints [6,2])."""
  top = jnp.argmax(scores_n)
  overlap = iou(boxes_n4[top], boxes_n4)
  weight = jnp.where((scores_n >= MIN_SCORE) & (overlap > NMS_IOU), scores_n, 0.0)
  weight = weight.at[top].set(scores_n[top])
  weight = weight / weight.sum()
  box = weight @ boxes_n4
  keypoints = jnp.einsum("n,nkc->kc", weight, keypoints_nk2)
  return scores_n[top] >= MIN_SCORE, scores_n[top], box, keypoints


def detect(module, variables, images_bhwc) -> Detection:
  """The best face in each image of a batch [B,H,W,3] (uint8 or float 0–255)."""
  height, width = images_bhwc.shape[1:3]
  regressors, logits = module.apply(variables, letterbox(images_bhwc))
  found, score, box, keypoints = jax.vmap(best_face)(*decode(regressors, logits))
  rect = jnp.asarray(letterbox_rect(height, width))
  to_image = lambda p: geometry.crop_to_image(rect, p * INPUT_SIZE, INPUT_SIZE)  # noqa: E731
  corners = to_image(box.reshape(-1, 2, 2)).reshape(-1, 4)
  return Detection(found, score, corners, to_image(keypoints))
