"""Coefficient layouts of the Deep3DFaceRecon family: the 257-vector, SadTalker's 70 and PIRenderer's 73.

Every layout is a run of named column blocks; `split` cuts a [..., D] array into a dict of blocks and
`merge` joins blocks back (missing optional blocks become zeros or their documented default). The meaning,
units and ranges of each column are tabulated in docs/formats.md.
"""

import numpy as np

from a2e_jax.core.errors import UserError

NUM_ID = 80
NUM_EXP = 64
NUM_TEX = 80
NUM_GAMMA = 27

# (block, width) in column order.
DEEP3D_257 = (("id", NUM_ID), ("exp", NUM_EXP), ("tex", NUM_TEX), ("angles", 3), ("gamma", NUM_GAMMA),
              ("trans", 3))
# Deep3DFaceRecon + the crop of the aligned image, as PIRenderer's preprocessing stores it per frame.
DEEP3D_260 = DEEP3D_257 + (("crop", 3),)
SADTALKER_70 = (("exp", NUM_EXP), ("angles", 3), ("trans", 3))
PIRENDERER_73 = SADTALKER_70 + (("crop", 3),)

LAYOUTS = {"deep3d": DEEP3D_257, "deep3d+crop": DEEP3D_260, "sadtalker": SADTALKER_70,
           "pirenderer": PIRENDERER_73}

# The crop block (s, tx, ty) of Deep3DFaceRecon's align_img: scale and the face centre in pixels. Written
# when a sequence carries none: a face centred in a 256-pixel crop at unit scale.
DEFAULT_CROP = (1.0, 128.0, 128.0)

def width(layout) -> int:
  """Number of columns of a layout (a name in LAYOUTS or a tuple of (block, width))."""
  return sum(w for _, w in _blocks(layout))


def slices(layout) -> dict[str, slice]:
  """Block name -> column slice, e.g. slices("deep3d")["exp"] == slice(80, 144)."""
  out, start = {}, 0
  for name, w in _blocks(layout):
    out[name] = slice(start, start + w)
    start += w
  return out


def split(coeffs, layout, source: str = "coefficients") -> dict[str, np.ndarray]:
  """Cuts [..., D] into {block: [..., width]}; a wrong D is a UserError naming `source`."""
  coeffs = np.asarray(coeffs)
  d = width(layout)
  if coeffs.ndim < 1 or coeffs.shape[-1] != d:
    raise UserError(f"{source}: shape {coeffs.shape}, expected [..., {d}] for the {_name(layout)} layout")
  return {name: coeffs[..., s] for name, s in slices(layout).items()}


def merge(blocks: dict, layout) -> np.ndarray:
  """Joins {block: [..., width]} into [..., D] float32; absent blocks are zeros (crop: DEFAULT_CROP)."""
  present = [np.asarray(v) for v in blocks.values() if v is not None]
  if not present:
    raise ValueError("merge needs at least one block")
  lead = present[0].shape[:-1]
  parts = []
  for name, w in _blocks(layout):
    value = blocks.get(name)
    if value is None:
      value = np.broadcast_to(np.asarray(DEFAULT_CROP if name == "crop" else np.zeros(w)), lead + (w,))
    value = np.asarray(value, np.float32)
    if value.shape != lead + (w,):
      raise ValueError(f"block {name!r} has shape {value.shape}, expected {lead + (w,)}")
    parts.append(value)
  return np.concatenate(parts, axis=-1).astype(np.float32)


def _blocks(layout):
  return LAYOUTS[layout] if isinstance(layout, str) else layout


def _name(layout) -> str:
  if isinstance(layout, str):
    return layout
  return next((k for k, v in LAYOUTS.items() if v == layout), "+".join(n for n, _ in layout))
