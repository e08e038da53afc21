"""A contact sheet of a face model — neutral plus every expression channel at 1 (`a2e models preview`)."""

import dataclasses

import numpy as np

from a2e_jax.render.api import render_frames
from a2e_jax.render.camera import deep3d_camera
from a2e_jax.render.video import label, tile

SHEET_BACKGROUND = (0.93, 0.93, 0.93)
ZOOM = 0.8  # Deep3DFaceRecon's framing cuts off chin and forehead; the sheet shows the whole face


def contact_sheet(model, size: int = 256, cols: int | None = None, weight: float = 1.0, batch: int = 16):
  """[rows·size, cols·size, 3] uint8: tiles of the neutral face and each channel at `weight`, labelled."""
  names = ("neutral",) + tuple(model.channel_names or (f"exp{i:02d}" for i in range(model.num_exp)))
  exp = np.zeros((len(names), model.num_exp), np.float32)
  exp[np.arange(1, len(names)), np.arange(len(names) - 1)] = weight
  camera = deep3d_camera(size)
  camera = dataclasses.replace(camera, focal=camera.focal * ZOOM)
  frames = render_frames(model, exp, camera=camera, batch=batch, background=SHEET_BACKGROUND, antialias=True)
  tiles = [label(frame[None], name, scale=0.8) for frame, name in zip(frames, names)]
  cols = cols or int(np.ceil(np.sqrt(len(tiles) * 1.5)))
  return tile(tiles, cols=cols)[0]
