"""MediaPipe's three face networks in Flax, layer for layer as in their .tflite graphs.

- `FaceDetector` (BlazeFace short range, face_detection_short_range.tflite): [B,128,128,3] in [-1,1] →
  regressors [B,896,16] (box centre offset, size, 6 keypoints; pixels of the 128 input relative to the
  anchor) and classificators [B,896,1] (logits).
- `FaceMesh` (face_landmark.tflite): [B,192,192,3] in [0,1] → landmarks [B,1404] (468 × x,y,z in pixels of
  the 192 crop; z on the x scale) and a face-presence logit [B,1].
- `Iris` (iris_landmark.tflite): [B,64,64,3] in [0,1] (a left eye; MediaPipe mirrors right eyes) → eye
  contour and brow [B,213] (71 × x,y,z) and iris [B,15] (centre then 4 contour points, x,y,z), pixels of 64.

`load(name)` gives (module, variables) with MediaPipe's weights.
"""

import flax.linen as nn
import jax.numpy as jnp

from a2e_jax.vision.layers import (
  DepthwiseConv,
  PReLU,
  blaze_block,
  check_params,
  conv,
  load_weights,
  residual,
  stem,
  tflite_name,
)

_DETECTOR_WIDTHS = (24, 28, 32, 36, 42, 48, 56, 64, 72, 80, 88, 96, 96, 96, 96, 96)
_DETECTOR_STRIDE2 = (2, 5, 11)
_MESH_WIDTHS = (16, 16, 32, 32, 32, 64, 64, 64, 128, 128, 128, 128, 128, 128, 128, 128, 128)
_MESH_STRIDE2 = (3, 6, 9, 12, 15)


class FaceDetector(nn.Module):
  """BlazeFace: 16 ReLU blocks; heads on the 16×16 (2 anchors per cell) and 8×8 (6 per cell) maps."""

  @nn.compact
  def __call__(self, image_bhwc):
    x = nn.relu(stem("conv2d", 24, 5)(image_bhwc))
    for i, width in enumerate(_DETECTOR_WIDTHS):
      stride = 2 if i in _DETECTOR_STRIDE2 else 1
      x = blaze_block(x, width, stride, tflite_name("depthwise_conv2d", i), f"conv2d_{i + 1}", nn.relu)
      if i == 10:
        x16 = x
    batch = image_bhwc.shape[0]
    scores = [conv("classificator_8", 2)(x16).reshape(batch, -1, 1),
              conv("classificator_16", 6)(x).reshape(batch, -1, 1)]
    boxes = [conv("regressor_8", 32)(x16).reshape(batch, -1, 16),
             conv("regressor_16", 96)(x).reshape(batch, -1, 16)]
    return jnp.concatenate(boxes, 1), jnp.concatenate(scores, 1)


class FaceMesh(nn.Module):
  """Face Mesh: 17 PReLU blocks to 3×3, then a landmark head and, from the 6×6 map, a face-score head."""

  @nn.compact
  def __call__(self, image_bhwc):
    x = PReLU(name="p_re_lu_1")(stem("conv2d_1", 16, 3)(image_bhwc))
    for i, width in enumerate(_MESH_WIDTHS, start=1):
      stride = 2 if i in _MESH_STRIDE2 else 1
      if i == 15:
        branch = x
      act = PReLU(name=f"p_re_lu_{i + 1}")
      x = blaze_block(x, width, stride, f"depthwise_conv2d_{i}", f"conv2d_{i + 1}", act)
    x = PReLU(name="p_re_lu_19")(conv("conv2d_19", 32)(x))
    x = blaze_block(x, 32, 1, "depthwise_conv2d_18", "conv2d_20", PReLU(name="p_re_lu_20"))
    landmarks = conv("conv2d_21", 1404, 3, 3)(x)

    y = blaze_block(branch, 128, 2, "depthwise_conv2d_23", "conv2d_28", PReLU(name="p_re_lu_26"))
    y = PReLU(name="p_re_lu_27")(conv("conv2d_29", 32)(y))
    y = blaze_block(y, 32, 1, "depthwise_conv2d_24", "conv2d_30", PReLU(name="p_re_lu_28"))
    score = conv("conv2d_31", 1, 3, 3)(y)
    batch = image_bhwc.shape[0]
    return landmarks.reshape(batch, 1404), score.reshape(batch, 1)


def _bottleneck(x_bhwc, i: int, width: int, stride: int):
  """The iris network's block i: 1×1 (2×2 stride 2) down to half width → PReLU → depthwise → 1×1 → + skip."""
  half = 32 if width == 64 else 64
  y = conv(tflite_name("conv2d", 2 * i + 1), half, stride, stride)(x_bhwc)
  y = PReLU(name=tflite_name("p_re_lu", 2 * i + 1))(y)
  y = conv(f"conv2d_{2 * i + 2}", width)(DepthwiseConv(1, name=tflite_name("depthwise_conv2d", i))(y))
  return PReLU(name=f"p_re_lu_{2 * i + 2}")(residual(x_bhwc, y, stride))


class Iris(nn.Module):
  """Iris landmark: a 10-block trunk to 8×8, then two 8-block branches (eye contour, iris) to 1×1."""

  @nn.compact
  def __call__(self, image_bhwc):
    x = PReLU(name="p_re_lu")(stem("conv2d", 64, 3)(image_bhwc))
    for i in range(10):
      x = _bottleneck(x, i, 64 if i < 4 else 128, 2 if i in (4, 9) else 1)
    outputs = []
    for first, head, size in ((10, "conv_eyes_contours_and_brows", 213), (18, "conv_iris", 15)):
      y = x
      for j in range(8):
        y = _bottleneck(y, first + j, 128, 2 if j in (2, 5) else 1)
      outputs.append(conv(head, size, 2)(y).reshape(x.shape[0], size))
    return tuple(outputs)


_MODELS = {"face_detection_short_range": (FaceDetector, 128), "face_landmark": (FaceMesh, 192),
           "iris_landmark": (Iris, 64)}


def load(name: str):
  """(module, variables) for `face_detection_short_range`, `face_landmark` or `iris_landmark`."""
  cls, size = _MODELS[name]
  module = cls()
  variables, _ = load_weights(name)
  check_params(module, variables, 1, size, size, 3)
  return module, variables
