"""Expression channel vocabularies: the ICT-FaceKit / built-in 53 channels and Apple ARKit's 52.

The built-in face, the built-in corpus, the demo weights and the ICT model share the 53 ICT channel names
(ARKit names with `_L`/`_R`; `browInnerUp` and `cheekPuff` split in two; no `tongueOut`). ARKit's 52 names
are what Live Link Face CSV, Unreal and Blender use.
"""

import numpy as np

ICT_CHANNELS = (
  "browDown_L", "browDown_R", "browInnerUp_L", "browInnerUp_R", "browOuterUp_L", "browOuterUp_R",
  "cheekPuff_L", "cheekPuff_R", "cheekSquint_L", "cheekSquint_R", "eyeBlink_L", "eyeBlink_R",
  "eyeLookDown_L", "eyeLookDown_R", "eyeLookIn_L", "eyeLookIn_R", "eyeLookOut_L", "eyeLookOut_R",
  "eyeLookUp_L", "eyeLookUp_R", "eyeSquint_L", "eyeSquint_R", "eyeWide_L", "eyeWide_R",
  "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose", "mouthDimple_L", "mouthDimple_R",
  "mouthFrown_L", "mouthFrown_R", "mouthFunnel", "mouthLeft", "mouthLowerDown_L", "mouthLowerDown_R",
  "mouthPress_L", "mouthPress_R", "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper",
  "mouthShrugLower", "mouthShrugUpper", "mouthSmile_L", "mouthSmile_R", "mouthStretch_L",
  "mouthStretch_R", "mouthUpperUp_L", "mouthUpperUp_R", "noseSneer_L", "noseSneer_R",
)  # fmt: skip

ARKIT_BLENDSHAPES = (
  "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight", "cheekPuff",
  "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft",
  "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight",
  "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight",
  "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight",
  "mouthFrownLeft", "mouthFrownRight", "mouthFunnel", "mouthLeft", "mouthLowerDownLeft",
  "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight",
  "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft",
  "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
  "noseSneerLeft", "noseSneerRight", "tongueOut",
)  # fmt: skip


def ict_to_arkit_name(name: str) -> str:
  """`mouthSmile_L` -> `mouthSmileLeft`; `browInnerUp_L` -> `browInnerUp` (one ARKit channel)."""
  base, side = name[:-2], name[-2:]
  if side not in ("_L", "_R"):
    return name
  if base in ARKIT_BLENDSHAPES:
    return base
  return base + ("Left" if side == "_L" else "Right")


def ict_to_arkit_matrix() -> np.ndarray:
  """[52, 53] matrix M with arkit = M @ ict; split channels (browInnerUp, cheekPuff) are averaged."""
  matrix = np.zeros((len(ARKIT_BLENDSHAPES), len(ICT_CHANNELS)), np.float32)
  for j, name in enumerate(ICT_CHANNELS):
    matrix[ARKIT_BLENDSHAPES.index(ict_to_arkit_name(name)), j] = 1.0
  return matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1.0)


def arkit_to_ict_matrix() -> np.ndarray:
  """[53, 52] matrix with ict = M @ arkit; a combined channel drives both of its halves."""
  return (ict_to_arkit_matrix() > 0).astype(np.float32).T


def channel_index(names, name: str) -> int:
  """Index of `name` in `names`, with a clear error listing close names."""
  try:
    return list(names).index(name)
  except ValueError:
    close = [n for n in names if name.lower()[:5] in n.lower()]
    raise KeyError(f"channel {name!r} not in this model's channels (close: {close[:5]})") from None
