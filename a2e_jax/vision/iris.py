"""Eye contours and irises from the face mesh, as MediaPipe's IrisLandmarkLeftAndRightCpu graph does it.

Each eye's crop is the square 2.3× the span of its two corners (mesh points 33–133 for the subject's
right eye, 362–263 for the left), levelled along them, resampled to 64×64 in [0, 1]. The network knows
one eye only: the left eye's crop is mirrored (MediaPipe's IS_RIGHT_EYE flip; here a rect of negative
width, which also mirrors the points back). Outputs per eye: 71 contour and brow points and 5 iris points
(centre, then 4 on its rim), x, y in image pixels and z scaled like x.
"""

import typing

import jax
import jax.numpy as jnp

from a2e_jax.vision import geometry

INPUT_SIZE = 64
RECT_SCALE = 2.3
# Subject's right eye (image left in a frontal view), then left eye: (outer/inner corner pair, mirrored).
EYES = (((33, 133), False), ((362, 263), True))


class Eyes(typing.NamedTuple):
  """iris [B,2,5,3] and contour [B,2,71,3] in image pixels; eye 0 is the subject's right eye."""

  iris: jax.Array
  contour: jax.Array


def eye_rects(points_bn3):
  """[B,2,5] the two eye crop rects."""
  rects = []
  for (start, end), mirrored in EYES:
    corners = points_bn3[:, (start, end), :2]
    rect = geometry.rect_from_points(corners, 0, 1, RECT_SCALE)
    if mirrored:
      rect = rect.at[:, geometry.W].multiply(-1.0)
    rects.append(rect)
  return jnp.stack(rects, 1)


def eyes(module, variables, images_bhwc, points_bn3) -> Eyes:
  """Iris and eye contour of both eyes, from the images and their face mesh points."""
  batch = images_bhwc.shape[0]
  rects_b25 = eye_rects(points_bn3)
  crop_two = lambda image, rects: jnp.stack([geometry.crop(image, r, INPUT_SIZE) for r in rects])  # noqa: E731
  crops = jax.vmap(crop_two)(images_bhwc, rects_b25).reshape(batch * 2, INPUT_SIZE, INPUT_SIZE, 3) / 255.0
  rects = rects_b25.reshape(batch * 2, 5)
  contour, iris = module.apply(variables, crops)

  def to_image(raw, count):
    raw = raw.reshape(batch * 2, count, 3)
    xy = geometry.crop_to_image(rects, raw[..., :2], INPUT_SIZE)
    z = raw[..., 2] * (jnp.abs(rects[:, None, geometry.W]) / INPUT_SIZE)
    return jnp.concatenate([xy, z[..., None]], -1).reshape(batch, 2, count, 3)

  return Eyes(iris=to_image(iris, 5), contour=to_image(contour, 71))
