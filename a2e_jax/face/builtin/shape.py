"""The built-in face's neutral surface: a head of stacked horizontal cross-sections plus facial relief.

Units and axes are those of `a2e_jax.face.model`: 1 unit = 10 cm, +y up, +z towards the camera (the face
looks along +z), +x the subject's left (the image's right in Deep3DFaceRecon's camera).

The head is a stack of horizontal cross-sections, each a Lamé curve (superellipse) described by a profile
table: the height y, the front z on the midline, the z of the widest point, the back z, the half-width
and the front exponent (flat forehead, pointed chin). On the front half the skin is a height field
z = front_z(x, y): the cross-section plus smooth relief bumps (nose, brow ridge, cheekbones, lips, chin),
with the eyelids draped over spherical eyeballs by a smooth maximum. Expression channels slide vertices
over this height field, so lids and lips stay on the face while they move.
"""

import numpy as np
from scipy.interpolate import PchipInterpolator

# Anatomical anchors (units of 10 cm). Rows of the mesh are snapped so that EYE_Y and MOUTH_Y are rows.
EYE_X = 0.315  # eyeball centre, |x|; interpupillary distance 6.3 cm
EYE_Y = 0.30
EYE_R = 0.12  # eyeball radius 1.2 cm
EYE_APEX_BEHIND = 0.045  # the eyeball's front lies this far behind the relief-free head surface
EYE_HALF_WIDTH = 0.106  # half the projected width of the palpebral fissure
LID_UP = 0.043  # neutral opening above EYE_Y (covers the top of the iris a little)
LID_LO = 0.050  # neutral opening below EYE_Y
LID_T = 0.009  # lid thickness: the lid margin sits this far in front of the eyeball
CANTHAL_TILT = 0.014  # the outer corner sits this much higher than the inner one
MOUTH_Y = -0.46
MOUTH_X = 0.245  # mouth corners, |x|
UPPER_LIP_H = 0.064  # vermilion heights on the midline
LOWER_LIP_H = 0.072
NOSE_TIP_Y = -0.11
SUBNASALE_Y = -0.245
BROW_Y = 0.50
CHIN_Y = -0.80
MENTON_Y = -0.93
HINGE_YZ = (0.05, -0.25)  # jaw hinge (temporomandibular joint), in front of the ears
HAIRLINE_Y = 0.98

# Cross-sections from the neck to the crown: y, front z, z of the widest point, back z, half-width,
# front Lamé exponent.
_PROFILE = np.array([
  [-1.60, 0.20, -0.30, -0.76, 0.47, 2.0],
  [-1.30, 0.22, -0.30, -0.76, 0.46, 2.0],
  [-1.12, 0.30, -0.28, -0.78, 0.47, 1.8],
  [-1.02, 0.50, -0.24, -0.82, 0.49, 1.4],
  [-0.94, 0.68, -0.20, -0.86, 0.51, 1.3],
  [-0.85, 0.77, -0.16, -0.91, 0.53, 1.45],
  [-0.70, 0.80, -0.14, -0.97, 0.58, 1.75],
  [-0.50, 0.81, -0.14, -1.03, 0.635, 1.95],
  [-0.25, 0.81, -0.14, -1.09, 0.70, 2.1],
  [0.05, 0.81, -0.14, -1.15, 0.73, 2.3],
  [0.35, 0.79, -0.13, -1.20, 0.765, 2.4],
  [0.65, 0.74, -0.12, -1.22, 0.77, 2.4],
  [0.95, 0.62, -0.12, -1.20, 0.73, 2.3],
  [1.20, 0.42, -0.14, -1.06, 0.63, 2.2],
  [1.40, 0.13, -0.17, -0.74, 0.43, 2.1],
  [1.50, -0.10, -0.20, -0.42, 0.20, 2.0],
])  # fmt: skip
CROWN = np.array([0.0, 1.525, -0.24])
_SECTION = PchipInterpolator(_PROFILE[:, 0], _PROFILE[:, 1:], axis=0, extrapolate=True)
BACK_EXPONENT = 2.0


def section(y):
  """Cross-section parameters at heights y [...]: (front z, widest z, back z, half-width, exponent)."""
  return np.moveaxis(_SECTION(np.clip(y, _PROFILE[0, 0], _PROFILE[-1, 0])), -1, 0)


def profile_rows(num_rows: int) -> np.ndarray:
  """[num_rows] row heights from the neck to the crown, denser over the face, snapped to the anchors."""
  y = np.linspace(_PROFILE[0, 0], _PROFILE[-1, 0], 4000)
  zf = section(y)[0]
  arc = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(y), np.diff(zf)))])
  face = _smoothstep(-1.12, -0.95, y) * (1 - _smoothstep(0.62, 0.9, y))
  density = 0.3 + 0.4 * _smoothstep(-1.25, -1.05, y) * (1 - _smoothstep(0.75, 1.15, y)) + 0.3 * face
  density += 0.45 * np.exp(-(((y - EYE_Y - 0.08) / 0.2) ** 2)) + 0.7 * np.exp(-(((y - MOUTH_Y) / 0.12) ** 2))
  weighted = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(arc))])
  rows = np.interp(np.linspace(0, weighted[-1], num_rows), weighted, y)
  # A monotone piecewise-linear remap moves the nearest rows exactly onto the anchors.
  anchors = np.array([MOUTH_Y, EYE_Y])
  nearest = np.array([np.argmin(np.abs(rows - a)) for a in anchors])
  src = np.concatenate([[rows[0]], rows[nearest], [rows[-1]]])
  dst = np.concatenate([[rows[0]], anchors, [rows[-1]]])
  return np.interp(rows, src, dst)


def _smoothstep(e0, e1, v):
  t = np.clip((np.asarray(v, np.float64) - e0) / (e1 - e0), 0.0, 1.0)
  return t * t * (3 - 2 * t)


def smoothstep(e0, e1, v):
  """Hermite step from 0 at e0 to 1 at e1 (e1 < e0 gives a falling step)."""
  return _smoothstep(e0, e1, v)


def gauss(x, y, cx, cy, sx, sy):
  """Anisotropic Gaussian bump exp(-((x-cx)/sx)^2 - ((y-cy)/sy)^2)."""
  return np.exp(-(((x - cx) / sx) ** 2) - ((y - cy) / sy) ** 2)


def smooth_max(a, b, k):
  """Polynomial smooth maximum of a and b with blend width k."""
  h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
  return a + (b - a) * h + k * h * (1 - h)


def _soft_abs(x, delta=0.08):
  return np.sqrt(x * x + delta * delta) - delta


def base_front_z(x, y):
  """z of the relief-free head surface on its front half at (x, y)."""
  zf, z0, _, a, p = section(y)
  # A softened |x| keeps pointed (p < 2) sections smooth on the midline instead of creased.
  t = np.clip(_soft_abs(x) / _soft_abs(a), 0.0, 1.0)
  return z0 + (zf - z0) * (1 - t**p) ** (1 / p)


def eye_centres() -> np.ndarray:
  """[2,3] eyeball centres: the subject's left (+x) first, then right."""
  apex = base_front_z(EYE_X, EYE_Y) - EYE_APEX_BEHIND
  return np.array([[EYE_X, EYE_Y, apex - EYE_R], [-EYE_X, EYE_Y, apex - EYE_R]])


def eyeball_dome(x, y):
  """z of the front of the nearer eyeball at (x, y); far behind the face outside the eyeball's disk."""
  centre = eye_centres()[0]
  rho2 = (np.abs(x) - centre[0]) ** 2 + (y - centre[1]) ** 2
  inside = np.sqrt(np.maximum(EYE_R**2 - rho2, 0.0))
  outside = -4.0 * np.maximum(np.sqrt(rho2) - EYE_R, 0.0)
  return centre[2] + np.where(rho2 < EYE_R**2, inside, outside)


def lip_heights(x):
  """Vermilion heights (upper, lower) at x [...]; zero at and beyond the mouth corners."""
  s = np.clip(np.abs(x) / MOUTH_X, 0.0, 1.0)
  bow = 1 + 0.12 * np.exp(-(((np.abs(x) - 0.05) / 0.03) ** 2)) - 0.08 * np.exp(-((x / 0.02) ** 2))
  return UPPER_LIP_H * (1 - s**2) ** 0.55 * bow, LOWER_LIP_H * (1 - s**2) ** 0.5


_UPPER_LIP = PchipInterpolator(  # protrusion over the upper lip against (y - MOUTH_Y) / upper lip height
  [0.0, 0.25, 0.6, 1.0, 1.7, 2.8, 3.6], [0.060, 0.088, 0.100, 0.094, 0.070, 0.030, 0.0], extrapolate=False)
_LOWER_LIP = PchipInterpolator(  # the same below the mouth, against (MOUTH_Y - y) / lower lip height
  [0.0, 0.25, 0.55, 1.0, 1.5, 2.0, 2.6], [0.060, 0.090, 0.102, 0.080, 0.020, -0.008, 0.0], extrapolate=False)
_NOSE_RIDGE = PchipInterpolator(  # dorsum height over the face against y
  [-0.27, SUBNASALE_Y, -0.23, -0.20, -0.16, NOSE_TIP_Y, -0.03, 0.08, 0.22, 0.33, 0.40],
  [0.0, 0.02, 0.07, 0.17, 0.245, 0.265, 0.20, 0.12, 0.045, 0.005, 0.0], extrapolate=False)
_NOSE_WIDTH = PchipInterpolator(  # dorsum half-width against y
  [-0.27, -0.15, -0.08, 0.05, 0.25, 0.40], [0.07, 0.085, 0.082, 0.07, 0.065, 0.06], extrapolate=True)


def relief(x, y):
  """Protrusion of the facial features over the relief-free head at (x, y), before the eyelids."""
  ax = np.abs(x)
  mouth_dy = y - MOUTH_Y
  h_up, h_lo = lip_heights(x)
  lateral = np.clip(1 - (ax / (1.25 * MOUTH_X)) ** 2, 0.0, 1.0) ** 1.5
  lips = np.where(
    mouth_dy >= 0,
    np.nan_to_num(_UPPER_LIP(mouth_dy / np.maximum(h_up, 0.02))),
    np.nan_to_num(_LOWER_LIP(-mouth_dy / np.maximum(h_lo, 0.02))),
  ) * lateral
  philtrum = 0.004 * gauss(ax, y, 0.05, -0.35, 0.035, 0.06) - 0.004 * gauss(x, y, 0, -0.35, 0.04, 0.06)
  nose = np.nan_to_num(_NOSE_RIDGE(y)) * np.exp(-((x / _NOSE_WIDTH(y)) ** 2))
  nose += 0.085 * gauss(ax, y, 0.105, -0.175, 0.055, 0.045)  # alae
  nose += 0.025 * gauss(x, y, 0.0, NOSE_TIP_Y - 0.01, 0.06, 0.05)  # rounded tip
  nose -= 0.03 * gauss(ax, y, 0.052, -0.205, 0.028, 0.016)  # nostrils
  # The nasolabial fold runs from the wing of the nose down and out past the mouth corner; the cheek
  # bulges a little above it.
  fold_x = 0.14 + 0.17 * np.clip((-0.17 - y) / 0.37, 0.0, 1.0) ** 0.8
  fold_d = ax - fold_x
  fold = _smoothstep(-0.12, -0.2, y) * _smoothstep(-0.56, -0.42, y)
  fold *= 0.01 * np.exp(-(((fold_d - 0.045) / 0.045) ** 2)) - 0.004 * np.exp(-((fold_d / 0.016) ** 2))
  # The upper lid crease arches over the lid margin.
  dx_eye = ax - EYE_X
  crease_y = EYE_Y + LID_UP + 0.032 - 0.9 * dx_eye**2
  crease = -0.015 * np.exp(-(((y - crease_y) / 0.015) ** 2)) * np.clip(1 - (dx_eye / 0.13) ** 2, 0, 1)
  brow_arc = BROW_Y - 0.03 - 0.25 * (ax - 0.27) ** 2
  return (
    lips + philtrum + nose + fold + crease
    + 0.055 * gauss(x, y, 0.0, MOUTH_Y + 0.02, 0.32, 0.22)  # the dental arch under the lips
    + 0.07 * gauss(x, y, 0.0, CHIN_Y, 0.16, 0.10)  # chin
    + 0.04 * gauss(ax, y, 0.27, brow_arc, 0.2, 0.065)  # brow ridges
    + 0.025 * gauss(x, y, 0.0, BROW_Y - 0.06, 0.09, 0.07)  # glabella
    - 0.11 * gauss(ax, y, EYE_X, EYE_Y + 0.02, 0.16, 0.12)  # eye sockets
    + 0.05 * gauss(ax, y, 0.45, 0.03, 0.14, 0.10)  # cheekbones
    + 0.03 * gauss(ax, y, 0.33, -0.30, 0.12, 0.13)  # cheeks
    - 0.03 * gauss(ax, y, 0.62, 0.50, 0.10, 0.15)  # temples
  )


_JAW_LINE = PchipInterpolator([0.0, 0.15, 0.3, 0.45, 0.55, 0.7], [-0.95, -0.91, -0.83, -0.69, -0.53, -0.2])


def jaw_relief(x, y):
  """Pushes the skin below the jaw line back, so the mandible's lower border shows from the front."""
  ax = np.abs(x)
  below = _smoothstep(_JAW_LINE(np.minimum(ax, 0.7)) + 0.02, _JAW_LINE(np.minimum(ax, 0.7)) - 0.09, y)
  return -0.16 * below * _smoothstep(0.08, 0.3, ax)


def front_z(x, y):
  """z of the skin's front half at (x, y): head, relief and eyelids draped over the eyeballs."""
  _, _, _, a, _ = section(y)
  edge = np.abs(x) / a
  fade = _smoothstep(0.92, 0.7, edge) * _smoothstep(-1.05, -0.9, y)
  z = base_front_z(x, y) + relief(x, y) * fade + jaw_relief(x, y) * _smoothstep(1.0, 0.8, edge)
  return smooth_max(z, eyeball_dome(x, y) + LID_T, 0.03)


# Hairline height against |angle around the head| (degrees): high forehead, sideburns, nape at the back.
_HAIRLINE = PchipInterpolator([0, 25, 45, 60, 72, 82, 90, 100, 115, 135, 180],
                              [0.97, 0.94, 0.86, 0.74, 0.58, 0.30, 0.38, 0.46, 0.2, -0.35, -0.6])
HAIR_THICKNESS = 0.045


def hair(angle, y):
  """Hair cover in [0, 1] of the skin at `angle` around the head (radians, 0 = front) and height y."""
  degrees = np.degrees(np.abs(angle))
  line = _HAIRLINE(np.clip(degrees, 0, 180))
  # Columns thin out towards the back of the head: a wider edge there hides their steps.
  edge = 0.04 + 0.12 * _smoothstep(60, 130, degrees)
  return _smoothstep(line - edge, line + edge, y)


def eye_warp(x, y, side):
  """y offset that opens the eyes: side +1 for the upper lid, -1 for the lower lid (0 off the slit)."""
  dx = np.abs(x) - EYE_X
  s = np.clip(dx / EYE_HALF_WIDTH, -1.0, 1.0)
  envelope = np.clip(1 - s**2, 0.0, 1.0)
  # The upper lid peaks a little medially, the lower lid a little laterally, as in real eyes.
  up = LID_UP * envelope**0.8 * (1 - 0.15 * s)
  lo = LID_LO * envelope**0.9 * (1 + 0.12 * s)
  dy = y - EYE_Y
  opening = np.where(side > 0, up, -lo) * np.exp(-((dy / 0.09) ** 2))
  tilt = CANTHAL_TILT * s * np.exp(-((dx / 0.16) ** 6)) * np.exp(-((dy / 0.12) ** 2))
  return np.where(side != 0, opening, 0.0) + tilt
