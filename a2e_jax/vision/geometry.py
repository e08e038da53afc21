"""Rotated rectangles in an image, the crops they cut, and points carried back (MediaPipe's conventions).

A rect is [..., 5] = (centre x, centre y, width, height, rotation) in pixels and radians. Coordinates are
continuous pixel coordinates in which pixel (i, j)'s centre lies at x = j, y = i, as in OpenCV's warps that
MediaPipe's ImageToTensorCalculator uses: a crop of size S maps its pixel (u, v) to the image point

    centre + R(rotation) · ((u/S − ½)·width, (v/S − ½)·height),

and a landmark the network puts at (u, v) in the crop goes back to the same point. The crop samples
bilinearly; outside the image it repeats the edge ("replicate", MediaPipe's default) or reads black ("zero",
the detector's letterbox).
"""

import jax
import jax.numpy as jnp

CX, CY, W, H, ANGLE = range(5)


def normalize_angle(angle):
  """Radians in [−π, π)."""
  return angle - 2 * jnp.pi * jnp.floor((angle + jnp.pi) / (2 * jnp.pi))


def rect_from_box(box_4, start_2, end_2, scale: float):
  """The square crop MediaPipe cuts around a box [xmin, ymin, xmax, ymax], turned so start→end is level.

  Rotation: the angle that brings the vector start→end (two points in pixels, e.g. the eyes) to horizontal;
  the box's centre stays, its longer side is taken for both sides ("square_long") and scaled by `scale`.
  """
  delta = end_2 - start_2
  angle = normalize_angle(-jnp.arctan2(-delta[..., 1], delta[..., 0]))
  size = jnp.maximum(box_4[..., 2] - box_4[..., 0], box_4[..., 3] - box_4[..., 1]) * scale
  centre_x = (box_4[..., 0] + box_4[..., 2]) / 2
  centre_y = (box_4[..., 1] + box_4[..., 3]) / 2
  return jnp.stack([centre_x, centre_y, size, size, angle], -1)


def rect_from_points(points_n2, start: int, end: int, scale: float):
  """rect_from_box over the bounding box of points [..., N, 2], levelled by points[start] → points[end]."""
  box = jnp.concatenate([points_n2.min(-2), points_n2.max(-2)], -1)
  return rect_from_box(box, points_n2[..., start, :], points_n2[..., end, :], scale)


def crop_to_image(rect_5, uv_n2, size: int):
  """Crop pixel coordinates [..., N, 2] (of a size×size crop) → image pixel coordinates."""
  rect = rect_5[..., None, :]
  a = (uv_n2[..., 0] / size - 0.5) * rect[..., W]
  b = (uv_n2[..., 1] / size - 0.5) * rect[..., H]
  cos, sin = jnp.cos(rect[..., ANGLE]), jnp.sin(rect[..., ANGLE])
  return jnp.stack([rect[..., CX] + a * cos - b * sin, rect[..., CY] + a * sin + b * cos], -1)


def crop(image_hwc, rect_5, size: int, border: str = "replicate"):
  """[size, size, C] float32: the rect of one image resampled bilinearly (see module doc)."""
  grid = jnp.arange(size, dtype=jnp.float32)
  u, v = jnp.meshgrid(grid, grid)
  xy = crop_to_image(rect_5, jnp.stack([u.ravel(), v.ravel()], -1), size)
  return sample(image_hwc, xy[:, 0], xy[:, 1], border).reshape(size, size, -1)


def sample(image_hwc, x, y, border: str = "replicate"):
  """[N, C] float32 bilinear samples of image at continuous pixel coordinates x, y [N]."""
  height, width = image_hwc.shape[:2]
  x0, y0 = jnp.floor(x), jnp.floor(y)
  fx, fy = (x - x0)[:, None], (y - y0)[:, None]
  x0, y0 = x0.astype(jnp.int32), y0.astype(jnp.int32)
  image = image_hwc.astype(jnp.float32)

  def at(yy, xx):
    value = image[jnp.clip(yy, 0, height - 1), jnp.clip(xx, 0, width - 1)]
    if border == "zero":
      inside = (xx >= 0) & (xx < width) & (yy >= 0) & (yy < height)
      value = jnp.where(inside[:, None], value, 0.0)
    return value

  top = at(y0, x0) * (1 - fx) + at(y0, x0 + 1) * fx
  bottom = at(y0 + 1, x0) * (1 - fx) + at(y0 + 1, x0 + 1) * fx
  return top * (1 - fy) + bottom * fy


crop_batch = jax.vmap(crop, in_axes=(0, 0, None, None))
