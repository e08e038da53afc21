"""Silhouette antialiasing: exact edge coverage, topology, and gradients against finite differences."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from a2e_jax.render import antialias, rasterize


@functools.partial(jax.jit, static_argnames=("size",))
def _image(screen, triangles, neighbours, size):
  frags = rasterize.rasterize(screen, triangles, size, size)
  image = jnp.where(frags.mask[..., None], 1.0, 0.0)
  return antialias.antialias(image, frags, screen, triangles, neighbours)


def _render(screen, triangles, size, weights=None):
  """Antialiased white-on-black image of screen vertices [1,N,3] (homogeneous), or its weighted sum."""
  image = _image(screen, jnp.asarray(triangles), antialias.edge_neighbours(triangles), size)
  return image if weights is None else jnp.sum(image * weights)


def _homogeneous(xy, w=2.0):
  xy = np.asarray(xy, np.float32)
  return jnp.asarray(np.concatenate([xy * w, np.full(xy.shape[:-1] + (1,), w, np.float32)], -1))[None]


def test_edge_neighbours():
  triangles = np.array([[0, 1, 2], [2, 1, 3], [3, 1, 4]], np.int32)
  nb = antialias.edge_neighbours(triangles)
  # Edge k joins corners k+1 and k+2: triangle 0's edge (1,2) is shared with triangle 1, and so on.
  np.testing.assert_array_equal(nb, [[1, -1, -1], [2, -1, 0], [-1, -1, 1]])


@pytest.mark.slow
def test_a_straight_edge_gets_its_exact_pixel_coverage():
  # A quad from x = −20 to x = edge, taller than the image: each row's pixel at the edge is covered by
  # the fraction of its width left of the edge.
  for edge in (10.3, 10.1, 9.8, 9.5):
    quad = [[-20, -20], [edge, -20], [edge, 40], [-20, 40]]
    triangles = np.array([[0, 1, 2], [0, 2, 3]], np.int32)
    row = np.asarray(_render(_homogeneous(quad), triangles, 32))[0, 8, :, 0]
    expected = np.clip(edge - np.arange(32), 0, 1)
    np.testing.assert_allclose(row, expected, atol=1e-5, err_msg=f"edge at x={edge}")


def test_interior_edges_are_not_blended():
  # The quad's diagonal is shared by two triangles facing the same way: no blending across it.
  quad = [[2.2, 2.4], [17.7, 2.1], [17.3, 17.6], [2.6, 17.9]]
  triangles = np.array([[0, 1, 2], [0, 2, 3]], np.int32)
  image = np.asarray(_render(_homogeneous(quad), triangles, 32))[0, ..., 0]
  np.testing.assert_allclose(image[5:15, 5:15], 1.0)
  assert 0 < image[10, 2] < 1 and 0 < image[2, 10] < 1


@pytest.mark.slow
def test_silhouette_gradients_match_finite_differences():
  rng = np.random.default_rng(0)
  xy = np.array([[3.3, 4.1], [26.2, 7.7], [12.6, 27.4], [27.1, 25.8]], np.float32)
  triangles = np.array([[0, 1, 2], [2, 1, 3]], np.int32)
  weights = jnp.asarray(rng.uniform(size=(1, 32, 32, 1)).astype(np.float32))
  # One compiled program gives the gradient and, for the finite differences, the value.
  value_and_grad = jax.jit(jax.value_and_grad(lambda s: _render(s, triangles, 32, weights)))

  def loss(s):
    return value_and_grad(s)[0]

  screen = _homogeneous(xy)
  grad = np.asarray(value_and_grad(screen)[1])[0]
  # Moving a vertex in x by δ changes X by δ·W (W = 2). The approximation is continuous only up to where
  # an edge crosses a pixel centre near a corner, so the steps stay small.
  eps = 0.003
  for vertex in range(4):
    for axis in range(2):
      step = np.zeros((4, 2), np.float32)
      step[vertex, axis] = eps
      fd = (float(loss(_homogeneous(xy + step))) - float(loss(_homogeneous(xy - step)))) / (2 * eps)
      analytic = 2.0 * grad[vertex, axis]
      assert abs(analytic) > 0.5, "every vertex lies on the silhouette here"
      assert abs(fd - analytic) <= 0.02 * abs(fd) + 0.05, (vertex, axis, fd, analytic)
  # Without antialiasing a flat-coloured mesh has no gradient at all with respect to its vertices.
  hard = jax.grad(lambda s: jnp.sum(rasterize.rasterize(s, triangles, 32, 32).mask[..., None] * weights))
  assert not np.asarray(hard(screen)).any()
