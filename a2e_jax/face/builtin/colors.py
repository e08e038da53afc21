"""Albedo of the built-in face: skin, redder lips, brows, short hair, lash lines, mouth, teeth, eyes.

Colours are linear RGB in [0, 1] per vertex (the renderer shades and gamma-encodes them). Every boundary is
a smooth step a vertex or two wide, so the painted features follow the mesh when it deforms.
"""

import numpy as np
from scipy.interpolate import PchipInterpolator

from a2e_jax.face.builtin import mesh as bm
from a2e_jax.face.builtin import shape
from a2e_jax.face.model import SKIN_ALBEDO

LIPS = np.array([0.62, 0.30, 0.29])
LIP_CORNER_H = 0.01
BROWS = np.array([0.16, 0.10, 0.07])
HAIR = np.array([0.13, 0.085, 0.055])
LASHES = np.array([0.10, 0.07, 0.06])
NOSTRILS = np.array([0.22, 0.10, 0.08])
CAVITY_FRONT, CAVITY_BACK = np.array([0.30, 0.09, 0.09]), np.array([0.03, 0.008, 0.008])
TONGUE = np.array([0.55, 0.22, 0.22])
TEETH, GUMS = np.array([0.90, 0.87, 0.78]), np.array([0.62, 0.28, 0.28])
SCLERA, IRIS, PUPIL = np.array([0.88, 0.85, 0.80]), np.array([0.30, 0.17, 0.08]), np.array([0.02, 0.02, 0.02])

# Brow centre line and half-thickness against |x|.
_BROW_Y = PchipInterpolator([0.07, 0.15, 0.3, 0.42, 0.54], [-0.045, -0.025, 0.015, 0.005, -0.035])
_BROW_HALF = PchipInterpolator([0.07, 0.15, 0.3, 0.42, 0.54], [0.030, 0.030, 0.022, 0.016, 0.008])


def _blend(colors, weight, target):
  weight = np.clip(weight, 0.0, 1.0)[:, None]
  return colors * (1 - weight) + np.asarray(target) * weight


def vertex_colors(mesh: bm.Mesh) -> np.ndarray:
  """[N,3] float32 albedo for the mesh's neutral vertices."""
  v = mesh.vertices
  x, y = v[:, 0], v[:, 1]
  ax = np.abs(x)
  skin = mesh.part == bm.SKIN
  colors = np.tile(np.asarray(SKIN_ALBEDO, np.float64), (len(v), 1))
  # Warmer cheeks and nose tip, the way blood flow tints them.
  flush = 0.7 * shape.gauss(ax, y, 0.33, -0.12, 0.12, 0.12) + 0.4 * shape.gauss(x, y, 0, -0.1, 0.06, 0.05)
  colors = _blend(colors, 0.25 * flush * skin, [0.78, 0.45, 0.40])

  # The red wraps round the mouth corners (at least LIP_CORNER_H thick, a little past them), so the tip of
  # an open mouth ends inside it instead of poking out into the skin.
  h_up, h_lo = np.maximum(shape.lip_heights(x), LIP_CORNER_H)
  dy = y - shape.MOUTH_Y
  upper = shape.smoothstep(h_up + 0.012, h_up - 0.004, dy) * (dy >= -1e-9) * (mesh.mouth_side >= 0)
  lower = shape.smoothstep(h_lo + 0.012, h_lo - 0.004, -dy) * (dy <= 1e-9) * (mesh.mouth_side <= 0)
  lips = np.maximum(upper, lower) * shape.smoothstep(shape.MOUTH_X + 0.035, shape.MOUTH_X + 0.005, ax)
  colors = _blend(colors, lips * skin, LIPS)

  in_brow = (ax > 0.05) & (ax < 0.58)
  brow_dy = np.abs(y - (shape.BROW_Y + _BROW_Y(np.clip(ax, 0.07, 0.54))))
  half = _BROW_HALF(np.clip(ax, 0.07, 0.54))
  brows = np.exp(-((brow_dy / (half + 0.004)) ** 4)) * shape.smoothstep(0.06, 0.12, ax)
  brows *= shape.smoothstep(0.6, 0.5, ax) * in_brow * (mesh.front > 0.5)
  colors = _blend(colors, 0.8 * brows * skin, BROWS)

  colors = _blend(colors, shape.hair(mesh.angle, mesh.row_height) * skin, HAIR)

  for upper_ids in mesh.eye_upper:
    rim = v[upper_ids]
    order = np.argsort(rim[:, 0])
    rim_y = np.interp(x, rim[order, 0], rim[order, 1], left=np.nan, right=np.nan)
    lash = shape.smoothstep(0.02, 0.006, y - np.nan_to_num(rim_y, nan=-9.0)) * (mesh.eye_side > 0)
    colors = _blend(colors, 0.85 * lash * skin * (y >= np.nan_to_num(rim_y, nan=9.0) - 1e-9), LASHES)

  nostrils = shape.gauss(ax, y, 0.052, -0.205, 0.026, 0.014)
  colors = _blend(colors, shape.smoothstep(0.3, 0.7, nostrils) * skin, NOSTRILS)

  ears = mesh.part == bm.EAR
  colors[ears] = _blend(colors, 0.35 * np.ones(len(v)), [0.78, 0.45, 0.40])[ears]
  cavity = mesh.part == bm.CAVITY
  depth = np.sqrt(mesh.cavity_depth)[:, None]
  colors[cavity] = (CAVITY_FRONT * (1 - depth) + CAVITY_BACK * depth)[cavity]
  tongue = (mesh.mouth_side < 0) * np.sin(np.pi * np.clip((mesh.cavity_depth - 0.2) / 0.75, 0, 1))
  colors = np.where(cavity[:, None], _blend(colors, 0.8 * tongue * (1 - mesh.cavity_depth), TONGUE), colors)
  teeth = (mesh.part == bm.TEETH_UPPER) | (mesh.part == bm.TEETH_LOWER)
  gum = shape.smoothstep(0.06, 0.08, np.abs(dy))
  # Faint shadows between the teeth: incisors, laterals, canines, premolars from the midline outwards.
  gaps = sum(shape.gauss(ax, 0, g, 0, 0.005, 1) for g in (0.0, 0.07, 0.125, 0.165, 0.195))
  teeth_color = _blend(_blend(np.tile(TEETH, (len(v), 1)), 0.5 * gaps, GUMS * 0.6), gum, GUMS)
  shade = 1 - 0.8 * shape.smoothstep(0.12, 0.25, ax)  # the back teeth lie in the mouth's shadow
  colors[teeth] = (teeth_color * shade[:, None])[teeth]

  for part, centre in ((bm.EYE_LEFT, mesh.eye_centres[0]), (bm.EYE_RIGHT, mesh.eye_centres[1])):
    eye = mesh.part == part
    d = v[eye] - centre
    theta = np.arccos(np.clip(d[:, 2] / np.linalg.norm(d, axis=1), -1, 1))
    c = np.tile(SCLERA, (len(d), 1))
    c = _blend(c, shape.smoothstep(bm.IRIS_ANGLE + 0.02, bm.IRIS_ANGLE - 0.02, theta), IRIS)
    c = _blend(c, 0.5 * shape.gauss(theta, 0, bm.IRIS_ANGLE - 0.04, 0, 0.05, 1), PUPIL)  # limbal ring
    c = _blend(c, shape.smoothstep(bm.PUPIL_ANGLE + 0.015, bm.PUPIL_ANGLE - 0.015, theta), PUPIL)
    colors[eye] = c
  return colors.astype(np.float32)
