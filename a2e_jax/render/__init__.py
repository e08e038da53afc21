"""Rendering: Deep3DFaceRecon's camera, a pure-JAX rasterizer, SH lighting, photo texture, video with sound.

The package attributes load lazily so that `a2e --help` does not import JAX:
  render_frames, render_video, sequence_arrays   (render/api.py)
  FaceRenderer                                   (render/pipeline.py)
  Fragments                                      (render/rasterize.py)
The rasterizer itself: `from a2e_jax.render.rasterize import rasterize, interpolate`.
"""

import importlib

_ATTRIBUTES = {
  "render_frames": "a2e_jax.render.api",
  "render_video": "a2e_jax.render.api",
  "sequence_arrays": "a2e_jax.render.api",
  "FaceRenderer": "a2e_jax.render.pipeline",
  "Fragments": "a2e_jax.render.rasterize",
}

__all__ = sorted(_ATTRIBUTES)


def __getattr__(name):
  if name in _ATTRIBUTES:
    return getattr(importlib.import_module(_ATTRIBUTES[name]), name)
  raise AttributeError(f"module 'a2e_jax.render' has no attribute {name!r}")
