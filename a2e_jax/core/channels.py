"""Expression channel vocabularies: the ICT-FaceKit / built-in 53 channels, BFM's 64 and Apple ARKit's 52.

The built-in face, the built-in corpus, the demo weights and the ICT model share the 53 ICT channel names
(ARKit names with `_L`/`_R`; `browInnerUp` and `cheekPuff` split in two; no `tongueOut`). ARKit's 52 names
are what Live Link Face CSV, Unreal and Blender use. BFM's 64 expression PCA coefficients (Deep3DFaceRecon,
SadTalker, PIRenderer) are named exp00..exp63.

A network's outputs follow a named **layout** (`LAYOUTS`): the model config carries its name as
`model.channel_layout` and so do the weights' metadata (a run's config.json, a model card), so nothing
infers the channels from their count. The empty name is a layout without names (channels c00, c01, ...).
"""

import numpy as np

from a2e_jax.core.errors import UserError

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


BFM_CHANNELS = tuple(f"exp{i:02d}" for i in range(64))

LAYOUTS = {"ict": ICT_CHANNELS, "bfm": BFM_CHANNELS}
DEFAULT_LAYOUT = "ict"


def layout_channels(layout: str, num_coeffs: int) -> tuple[str, ...]:
  """The names of the `num_coeffs` channels of `layout` (a LAYOUTS key, or "" for unnamed channels)."""
  if not layout:
    return tuple(f"c{i:02d}" for i in range(num_coeffs))
  if layout not in LAYOUTS:
    raise UserError(f"channel layout {layout!r} is unknown; choose one of {', '.join(LAYOUTS)} or '' "
                    "(unnamed channels)")
  names = LAYOUTS[layout]
  if len(names) != num_coeffs:
    raise UserError(f"channel layout {layout!r} has {len(names)} channels but num_coeffs is {num_coeffs}; "
                    "set --config.model.channel_layout to the data's layout ('' for unnamed channels)")
  return names


def with_layout(model_values: dict) -> dict:
  """A model's stored config values with `channel_layout` set. Metadata written before layouts were named
  lacks it; those runs and cards name it by their width (53: "ict", 64: "bfm"), the only place a layout
  follows from a count."""
  if "channel_layout" in model_values:
    return dict(model_values)
  width = int(model_values.get("num_coeffs", len(LAYOUTS[DEFAULT_LAYOUT])))
  named = [name for name, names in LAYOUTS.items() if len(names) == width]
  return {**model_values, "channel_layout": named[0] if named else ""}


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
