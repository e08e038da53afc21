"""Rendering fitted (or true) coefficient tracks at the pictures' size, batch by batch."""

import numpy as np

from a2e_jax.render.pipeline import FaceRenderer


def render_batches(model, exp_tk, pose_t6, id_k, gamma_t27, tex_k, size, batch: int = 8, antialias=False):
  """Yields (start, images [b,H,W,3] float, mask [b,H,W]) over the T frames, `batch` at a time.

  size: (H, W). The last batch is padded with its last frame for the fixed-shape render and cut again.
  """
  height, width = size
  renderer = FaceRenderer(model, size=height, width=width, batch=batch, antialias=antialias)
  tex = None if tex_k is None or np.size(tex_k) == 0 else tex_k
  num = len(exp_tk)
  for start in range(0, num, batch):
    stop = min(start + batch, num)
    index = np.minimum(np.arange(start, start + batch), stop - 1)
    images, mask = renderer.render(
      np.asarray(exp_tk)[index], np.asarray(pose_t6)[index], id_k, np.asarray(gamma_t27)[index], tex
    )
    yield start, np.asarray(images)[: stop - start], np.asarray(mask)[: stop - start]
