"""Live Link Face CSV: ARKit blendshape weights per frame, as Epic's Live Link Face app records them.

Header (61 values, the app's order): `Timecode,BlendShapeCount,EyeBlinkLeft,...,TongueOut,HeadYaw,HeadPitch,
HeadRoll,LeftEyeYaw,LeftEyePitch,LeftEyeRoll,RightEyeYaw,RightEyePitch,RightEyeRoll`. Timecode is
`HH:MM:SS:FF.fff`, FF counting frames at the recording rate (60 by default in the app) and .fff a fraction
of a frame; BlendShapeCount is 61. Rotations are written in radians. A file's frame rate is the smallest
common rate above its largest frame number (a take shorter than a second: 25 if its frame numbers stay
below 25, else the app's default 60), unless given.

We write the 53 ICT channels folded into ARKit's 52 (`channels.ict_to_arkit_matrix`: the split browInnerUp
and cheekPuff halves averaged; tongueOut zero), head pitch/yaw/roll from the pose angles (x, y, z; head
translation has no column and is dropped) and eye yaw/pitch from the gaze control. Reading maps the 52 back
onto the 53 ICT channels (a combined channel drives both halves).
"""

import csv
import re

import numpy as np

from a2e_jax.core import channels
from a2e_jax.core.errors import UserError
from a2e_jax.formats.sequence import MAX_MAGNITUDE, CoeffSequence

# The 52 blendshape columns in Live Link Face's order.
LIVE_LINK_FACE_BLENDSHAPES = (
  "EyeBlinkLeft", "EyeLookDownLeft", "EyeLookInLeft", "EyeLookOutLeft", "EyeLookUpLeft", "EyeSquintLeft",
  "EyeWideLeft", "EyeBlinkRight", "EyeLookDownRight", "EyeLookInRight", "EyeLookOutRight", "EyeLookUpRight",
  "EyeSquintRight", "EyeWideRight", "JawForward", "JawRight", "JawLeft", "JawOpen", "MouthClose",
  "MouthFunnel", "MouthPucker", "MouthRight", "MouthLeft", "MouthSmileLeft", "MouthSmileRight",
  "MouthFrownLeft", "MouthFrownRight", "MouthDimpleLeft", "MouthDimpleRight", "MouthStretchLeft",
  "MouthStretchRight", "MouthRollLower", "MouthRollUpper", "MouthShrugLower", "MouthShrugUpper",
  "MouthPressLeft", "MouthPressRight", "MouthLowerDownLeft", "MouthLowerDownRight", "MouthUpperUpLeft",
  "MouthUpperUpRight", "BrowDownLeft", "BrowDownRight", "BrowInnerUp", "BrowOuterUpLeft", "BrowOuterUpRight",
  "CheekPuff", "CheekSquintLeft", "CheekSquintRight", "NoseSneerLeft", "NoseSneerRight", "TongueOut",
)  # fmt: skip
ROTATION_COLUMNS = ("HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
                    "RightEyeYaw", "RightEyePitch", "RightEyeRoll")
HEADER = ("Timecode", "BlendShapeCount") + LIVE_LINK_FACE_BLENDSHAPES + ROTATION_COLUMNS

# Frame rates a recording may use; the rate of a file is the smallest above its largest frame number.
_RATES = (24, 25, 30, 48, 50, 60, 100, 120, 240)
_APP_DEFAULT_FPS = 60
_TIMECODE = re.compile(r"^\s*(\d+):(\d+):(\d+)[:;.](\d+(?:\.\d*)?)\s*$")


def write_csv(path: str, seq: CoeffSequence) -> None:
  """Writes an ICT-channel `seq` (channels.ICT_CHANNELS, integer fps) as Live Link Face CSV."""
  t = seq.num_frames
  arkit = seq.coeffs.astype(np.float64) @ channels.ict_to_arkit_matrix().T.astype(np.float64)
  by_name = dict(zip((n[0].upper() + n[1:] for n in channels.ARKIT_BLENDSHAPES), arkit.T))
  rotations = np.zeros((t, len(ROTATION_COLUMNS)))
  if seq.pose is not None:
    rotations[:, 0:3] = np.asarray(seq.pose)[:, [1, 0, 2]]  # yaw = angle y, pitch = x, roll = z
  if seq.eye is not None:
    gaze = np.asarray(seq.eye)[:, 2:4]
    rotations[:, 3:5] = rotations[:, 6:8] = gaze
  fps = int(round(seq.fps))
  with open(path, "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(HEADER)
    for i in range(t):
      row = [_timecode(i, fps), str(len(LIVE_LINK_FACE_BLENDSHAPES) + len(ROTATION_COLUMNS))]
      row += [f"{by_name[name][i]:.7f}" for name in LIVE_LINK_FACE_BLENDSHAPES]
      row += [f"{v:.7f}" for v in rotations[i]]
      writer.writerow(row)


def read_csv(path: str, fps: float | None = None) -> CoeffSequence:
  """Reads a Live Link Face CSV into ICT channels at the recording's rate (`fps` overrides the guess)."""
  try:
    with open(path, newline="") as f:
      rows = list(csv.reader(f))
  except (OSError, UnicodeDecodeError) as e:
    raise UserError(f"{path}: not a readable CSV file ({e})") from None
  if len(rows) < 2:
    raise UserError(f"{path}: no frames; expected a header row and one row per frame (Live Link Face CSV)")
  header = [h.strip() for h in rows[0]]
  lower = {h.lower(): i for i, h in enumerate(header)}
  if "timecode" not in lower:
    raise UserError(f"{path}: no 'Timecode' column; expected a Live Link Face CSV header "
                    "(Timecode,BlendShapeCount,EyeBlinkLeft,...)")
  known = [n for n in channels.ARKIT_BLENDSHAPES if n.lower() in lower]
  if not known:
    raise UserError(f"{path}: none of the 52 ARKit blendshape columns (EyeBlinkLeft, JawOpen, ...) is "
                    "present")
  body = [r for r in rows[1:] if any(c.strip() for c in r)]
  for number, r in enumerate(body, start=2):
    if len(r) != len(header):
      raise UserError(f"{path}: row {number} has {len(r)} values, the header has {len(header)}")

  def column(name):
    try:
      values = np.array([float(r[lower[name.lower()]]) for r in body])
    except ValueError as e:
      raise UserError(f"{path}: column {name!r} has a non-numeric value ({e})") from None
    bad = ~np.isfinite(values) | (np.abs(values) > MAX_MAGNITUDE)
    if bad.any():
      row = int(np.argmax(bad))
      raise UserError(f"{path}: row {row + 2} (frame {row}), column {name!r}: {values[row]:g} is not a "
                      f"finite value of at most {MAX_MAGNITUDE:g}; the file is damaged")
    return values

  arkit = np.zeros((len(body), len(channels.ARKIT_BLENDSHAPES)))
  for name in known:
    arkit[:, channels.ARKIT_BLENDSHAPES.index(name)] = column(name)
  times, file_fps = _times(path, [r[lower["timecode"]] for r in body], fps)
  seq = CoeffSequence(
    coeffs=(arkit @ channels.arkit_to_ict_matrix().T.astype(np.float64)).astype(np.float32),
    channel_names=channels.ICT_CHANNELS, fps=file_fps, model="",
  )
  if all(n.lower() in lower for n in ROTATION_COLUMNS[:3]):
    yaw, pitch, roll = (column(n) for n in ROTATION_COLUMNS[:3])
    seq.pose = np.stack([pitch, yaw, roll] + [np.zeros_like(yaw)] * 3, axis=1).astype(np.float32)
  if all(n.lower() in lower for n in ROTATION_COLUMNS[3:]):
    gaze_yaw = (column("LeftEyeYaw") + column("RightEyeYaw")) / 2
    gaze_pitch = (column("LeftEyePitch") + column("RightEyePitch")) / 2
    blink = arkit[:, [channels.ARKIT_BLENDSHAPES.index(n) for n in ("eyeBlinkLeft", "eyeBlinkRight")]]
    seq.eye = np.concatenate([blink, gaze_yaw[:, None], gaze_pitch[:, None]], axis=1).astype(np.float32)
  return _on_regular_grid(seq, times)


def _timecode(frame: int, fps: int) -> str:
  seconds, ff = divmod(frame, fps)
  minutes, ss = divmod(seconds, 60)
  hh, mm = divmod(minutes, 60)
  return f"{hh:02d}:{mm:02d}:{ss:02d}:{ff:02d}.000"


def _times(path: str, codes: list[str], fps: float | None) -> tuple[np.ndarray, float]:
  """Seconds since the first row, and the recording's frame rate."""
  parsed = []
  for number, code in enumerate(codes, start=2):
    match = _TIMECODE.match(code)
    if not match:
      raise UserError(f"{path}: row {number} has timecode {code!r}; expected HH:MM:SS:FF[.fff]")
    hh, mm, ss, ff = match.groups()
    parsed.append((int(hh) * 3600 + int(mm) * 60 + int(ss), float(ff)))
  whole = np.array([p[0] for p in parsed], np.float64)
  frames = np.array([p[1] for p in parsed], np.float64)
  if fps is None:
    # Frame numbers restart every second, so the largest one seen gives the rate. A file shorter than a
    # second says little: frame numbers below 25 are read as our 25 fps, larger ones as the app's default.
    if whole.max() > whole.min():
      fps = next((r for r in _RATES if r > frames.max()), None)
    else:
      fps = 25 if frames.max() < 25 else _APP_DEFAULT_FPS
    if fps is None or frames.max() >= fps:
      raise UserError(f"{path}: frame numbers up to {frames.max():g} do not match a known frame rate; "
                      "give the rate explicitly (fps=... / the manifest's 'fps')")
  times = whole + frames / fps
  times -= times[0]
  if np.any(np.diff(times) <= 0):
    row = int(np.argmax(np.diff(times) <= 0)) + 3
    raise UserError(f"{path}: timecodes do not increase at row {row}; is fps={fps:g} right?")
  return times, float(fps)


def _on_regular_grid(seq: CoeffSequence, times: np.ndarray) -> CoeffSequence:
  """Interpolates rows sampled at `times` onto frames at seq.fps (dropped frames leave gaps)."""
  expected = np.arange(len(times)) / seq.fps
  if np.allclose(times, expected, atol=0.25 / seq.fps):
    return seq
  n = int(np.floor(times[-1] * seq.fps + 1e-6)) + 1
  grid = np.arange(n) / seq.fps

  def interp(array):
    if array is None:
      return None
    return np.stack([np.interp(grid, times, col) for col in np.asarray(array, np.float64).T],
                    axis=1).astype(np.float32)

  seq.coeffs, seq.pose, seq.eye = interp(seq.coeffs), interp(seq.pose), interp(seq.eye)
  return seq
