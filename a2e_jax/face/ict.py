"""ICT-FaceKit's `FaceXModel/` folder -> MorphableModel.

The folder holds OBJ files with one topology (26,719 vertices, mostly quads, with UVs):
`generic_neutral_mesh.obj`, the 53 expression shapes named in `vertex_indices.json["expressions"]` (ARKit
names with _L/_R; channels.ICT_CHANNELS) and `identityNNN.obj` identity modes (ICT-FaceKit ships 100, the
light release 20), all absolute positions: a basis column is shape - neutral. `idx_to_landmark_verts` gives
the 68 Multi-PIE landmarks. The face area is vertices 0-9408 / polygons 0-9229 (self-contained), the
narrow face 0-6705.

UVs are kept as ICT lays them out, in UDIM tiles: u in [k, k+1) is tile k, the face (material M_Face) tile
0, the back of the head, mouth, teeth and eyes tiles 1-6; v in [0, 1].

Units: ICT is in centimetres; we scale by 0.1 (1 unit = 10 cm) and move the narrow face's centroid to the
origin, as Deep3DFaceRecon recentres the BFM front face, so that the same camera frames both.
"""

import glob
import json
import os

import numpy as np

from a2e_jax.core import channels
from a2e_jax.core.errors import UserError
from a2e_jax.face.model import MorphableModel, validate
from a2e_jax.face.obj import read_obj, read_obj_vertices
from a2e_jax.face.regions import landmark_regions

NUM_VERTICES = 26_719
FACE_VERTICES = 9_409  # vertices 0-9408
FACE_POLYGONS = 9_230  # polygons 0-9229
NARROW_FACE_VERTICES = 6_706  # vertices 0-6705
UNIT_PER_CM = 0.1
NEUTRAL = "generic_neutral_mesh.obj"


def find_folder(path: str) -> str:
  """`path` itself or its `FaceXModel/` subfolder, whichever holds the neutral mesh."""
  for folder in (path, os.path.join(path, "FaceXModel")):
    if os.path.isfile(os.path.join(folder, NEUTRAL)):
      return folder
  raise UserError(f"{path}: no {NEUTRAL} here or in {path}/FaceXModel; point at ICT-FaceKit's FaceXModel "
                  "folder (github.com/ICT-VGL/ICT-FaceKit)")


def load_ict(path: str, face_only: bool = False, num_id: int | None = None) -> MorphableModel:
  """Converts an ICT-FaceKit folder.

  Args:
    path: the FaceXModel folder or its parent.
    face_only: keep the face area (9,409 vertices) instead of the whole head with eyes, teeth and mouth.
    num_id: at most this many identity modes (default: every identityNNN.obj present).
  """
  if num_id is not None and num_id < 0:
    raise UserError(f"--num-id {num_id}: the number of identity modes to keep must be 0 or more")
  folder = find_folder(path)
  index_path = os.path.join(folder, "vertex_indices.json")
  try:
    with open(index_path) as f:
      index = json.load(f)
    names = tuple(index["expressions"])
    landmarks = np.asarray(index["idx_to_landmark_verts"], np.int64)
  except (OSError, ValueError, KeyError) as e:
    raise UserError(f"{index_path}: cannot read the expression names and landmarks "
                    f"({type(e).__name__}: {e})") from None
  if names != channels.ICT_CHANNELS:
    raise UserError(f"{index_path}: 'expressions' lists {len(names)} names that differ from the 53 ICT "
                    "channels of a2e_jax/core/channels.py; is this ICT-FaceKit's FaceXModel?")
  if landmarks.shape != (68,):
    raise UserError(f"{index_path}: 'idx_to_landmark_verts' has {landmarks.size} entries, expected 68")

  mesh = read_obj(os.path.join(folder, NEUTRAL))
  neutral = mesh.vertices
  if len(neutral) != NUM_VERTICES:
    raise UserError(f"{folder}/{NEUTRAL}: {len(neutral)} vertices, expected {NUM_VERTICES} (ICT-FaceKit's "
                    "topology); is the file truncated?")
  id_files = sorted(glob.glob(os.path.join(folder, "identity[0-9][0-9][0-9].obj")))[:num_id]
  exp_basis = np.stack([_shape(os.path.join(folder, f"{n}.obj")) - neutral for n in names], axis=-1)
  id_basis = np.stack([_shape(f) - neutral for f in id_files], axis=-1) if id_files else np.zeros(
    (NUM_VERTICES, 3, 0))

  triangles, uv_triangles, uvs = mesh.triangles, mesh.uv_triangles, mesh.uvs
  if face_only:
    keep = mesh.triangle_polygon < FACE_POLYGONS
    triangles = triangles[keep]
    uv_triangles = None if uv_triangles is None else uv_triangles[keep]
    if triangles.max() >= FACE_VERTICES or landmarks.max() >= FACE_VERTICES:
      raise UserError(f"{folder}: face polygons 0-{FACE_POLYGONS - 1} use vertices beyond "
                      f"{FACE_VERTICES - 1}; not ICT-FaceKit's topology")
    neutral, id_basis, exp_basis = (a[:FACE_VERTICES] for a in (neutral, id_basis, exp_basis))

  mean = (neutral - neutral[:NARROW_FACE_VERTICES].mean(axis=0)) * UNIT_PER_CM
  model = MorphableModel(
    mean=mean.astype(np.float32),
    id_basis=(id_basis * UNIT_PER_CM).astype(np.float32),
    exp_basis=(exp_basis * UNIT_PER_CM).astype(np.float32),
    triangles=triangles.astype(np.int32),
    landmarks=landmarks.astype(np.int32),
    regions=landmark_regions(mean, landmarks, candidates=np.arange(NARROW_FACE_VERTICES)),
    uvs=None if uvs is None else uvs.astype(np.float32),
    uv_triangles=None if uv_triangles is None else uv_triangles.astype(np.int32),
    channel_names=names,
    name="ict",
    units="ICT-FaceKit centimetres x 0.1 (1 unit = 10 cm), narrow face centred",
  )
  validate(model, source=folder)
  return model


def _shape(path: str) -> np.ndarray:
  if not os.path.isfile(path):
    raise UserError(f"{path}: missing; the ICT-FaceKit folder needs every shape listed in "
                    "vertex_indices.json")
  vertices = read_obj_vertices(path)
  if len(vertices) != NUM_VERTICES:
    raise UserError(f"{path}: {len(vertices)} vertices, expected {NUM_VERTICES} like {NEUTRAL}; "
                    "is the file truncated?")
  return vertices
