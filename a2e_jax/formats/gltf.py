"""glTF 2.0 binary (`.glb`): the face mesh, one morph target per expression channel, and an animation.

Layout written (pygltflib):
  mesh 0      one triangle primitive: POSITION (metres: our units x 0.1), NORMAL, uint32 indices; one
              morph target (POSITION deltas) per channel, named in `mesh.extras.targetNames` (the
              convention Blender and three.js read)
  node 0      the mesh; the head pose as the node's rotation (quaternion of R = Rz·Ry·Rx) and translation
  animation 0 LINEAR samplers at the clip's frame times: morph weights [T*K] -> node 0 "weights", and
              when a pose is given rotation [T,4] and translation [T,3]
  scene.extras.a2e  {model, fps, channel_names} so that reading back is lossless
glTF's axes match ours (+y up, the face looking along +z); glTF's unit is the metre.
"""

import numpy as np
import pygltflib
from scipy.spatial.transform import Rotation

from a2e_jax.core.errors import UserError
from a2e_jax.formats.sequence import CoeffSequence

METRES_PER_UNIT = 0.1  # 1 model unit = 10 cm


def write_glb(path: str, seq: CoeffSequence, model) -> None:
  """Writes `seq` (channels == model.channel_names) animating `model`'s mesh."""
  model = model.to_numpy()
  neutral = model.mean.astype(np.float64)
  if seq.id_coeffs is not None and len(seq.id_coeffs) == model.num_id:
    neutral = neutral + model.id_basis.astype(np.float64) @ np.asarray(seq.id_coeffs, np.float64)
  builder = _Builder()
  position = builder.add(neutral * METRES_PER_UNIT, pygltflib.ARRAY_BUFFER, with_bounds=True)
  normal = builder.add(vertex_normals(neutral, model.triangles), pygltflib.ARRAY_BUFFER)
  indices = builder.add(model.triangles.astype(np.uint32).reshape(-1), pygltflib.ELEMENT_ARRAY_BUFFER)
  targets = [
    pygltflib.Attributes(POSITION=builder.add(model.exp_basis[:, :, k].astype(np.float64) * METRES_PER_UNIT,
                                              pygltflib.ARRAY_BUFFER, with_bounds=True))
    for k in range(model.num_exp)
  ]
  primitive = pygltflib.Primitive(attributes=pygltflib.Attributes(POSITION=position, NORMAL=normal),
                                  indices=indices, targets=targets)
  mesh = pygltflib.Mesh(primitives=[primitive], weights=[0.0] * model.num_exp, name=model.name,
                        extras={"targetNames": list(model.channel_names)})

  times = builder.add(np.arange(seq.num_frames) / seq.fps, with_bounds=True)
  samplers = [pygltflib.AnimationSampler(input=times, output=builder.add(seq.coeffs.reshape(-1)))]
  targets_of_samplers = ["weights"]
  if seq.pose is not None:
    pose = np.asarray(seq.pose, np.float64)
    quat = Rotation.from_matrix(rotation_matrices(pose[:, :3])).as_quat()  # x, y, z, w as glTF wants
    translation = pose[:, 3:] * METRES_PER_UNIT
    samplers.append(pygltflib.AnimationSampler(input=times, output=builder.add(quat)))
    samplers.append(pygltflib.AnimationSampler(input=times, output=builder.add(translation)))
    targets_of_samplers += ["rotation", "translation"]
  animation = pygltflib.Animation(
    name="a2e", samplers=samplers,
    channels=[pygltflib.AnimationChannel(sampler=i, target=pygltflib.AnimationChannelTarget(node=0, path=p))
              for i, p in enumerate(targets_of_samplers)],
  )
  gltf = pygltflib.GLTF2(
    asset=pygltflib.Asset(generator="a2e_jax", version="2.0"),
    scene=0,
    scenes=[pygltflib.Scene(nodes=[0], extras={"a2e": {"model": seq.model or model.name, "fps": seq.fps,
                                                       "channel_names": list(seq.channel_names)}})],
    nodes=[pygltflib.Node(mesh=0, name="face")],
    meshes=[mesh],
    animations=[animation],
  )
  builder.finish(gltf)
  gltf.save_binary(path)


def read_glb(path: str, fps: float | None = None) -> CoeffSequence:
  """Reads the animation of a `.glb` (ours, or any with one morph-weight animation) back."""
  try:
    return _read_animation(path, fps)
  except (ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
    # A truncated or inconsistent file: accessors that point past the buffer, missing or odd fields.
    raise UserError(f"{path}: a truncated or malformed glTF binary ({type(e).__name__}: "
                    f"{str(e).splitlines()[0][:120] if str(e) else ''})") from None


def _read_animation(path: str, fps: float | None) -> CoeffSequence:
  gltf, blob = _load(path)
  if not gltf.meshes or not gltf.animations:
    raise UserError(f"{path}: no mesh or no animation; expected a .glb written by 'a2e export --to glb'")
  names = (gltf.meshes[0].extras or {}).get("targetNames")
  count = len(gltf.meshes[0].primitives[0].targets or [])
  if not names or len(names) != count:
    raise UserError(f"{path}: mesh 0 has {count} morph targets but extras.targetNames lists "
                    f"{len(names or [])} names; expected one name per target")
  by_path = {c.target.path: gltf.animations[0].samplers[c.sampler] for c in gltf.animations[0].channels}
  if "weights" not in by_path:
    raise UserError(f"{path}: animation 0 has no 'weights' channel (morph-target animation)")
  times = accessor_array(gltf, blob, by_path["weights"].input).reshape(-1)
  weights = accessor_array(gltf, blob, by_path["weights"].output)
  if weights.size != times.size * count:
    raise UserError(f"{path}: {weights.size} morph weights for {times.size} key frames x {count} targets")
  meta = ((gltf.scenes[gltf.scene or 0].extras or {}) if gltf.scenes else {}).get("a2e", {})
  if fps is None and "fps" in meta:
    fps = float(meta["fps"])
  elif fps is None:
    fps = 1.0 / np.median(np.diff(times)) if times.size > 1 else 25.0
  seq = CoeffSequence(coeffs=weights.reshape(times.size, count).astype(np.float32),
                      channel_names=tuple(names), fps=float(fps), model=str(meta.get("model", "")))
  if "rotation" in by_path and "translation" in by_path:
    quat = accessor_array(gltf, blob, by_path["rotation"].output).reshape(-1, 4)
    trans = accessor_array(gltf, blob, by_path["translation"].output).reshape(-1, 3) / METRES_PER_UNIT
    angles = euler_angles(Rotation.from_quat(quat).as_matrix())
    seq.pose = np.concatenate([angles, trans], axis=1).astype(np.float32)
  return seq


def read_glb_mesh(path: str):
  """(neutral vertices [N,3] in model units, triangles [F,3], morph deltas [K,N,3], target names)."""
  gltf, blob = _load(path)
  primitive = gltf.meshes[0].primitives[0]
  vertices = accessor_array(gltf, blob, primitive.attributes.POSITION) / METRES_PER_UNIT
  triangles = accessor_array(gltf, blob, primitive.indices).reshape(-1, 3)
  # pygltflib gives morph targets back as plain dicts.
  deltas = np.stack([accessor_array(gltf, blob, t["POSITION"]) for t in primitive.targets]) / METRES_PER_UNIT
  return vertices, triangles, deltas, list(gltf.meshes[0].extras["targetNames"])


def rotation_matrices(angles):
  """[T,3] Deep3DFaceRecon angles (x, y, z radians) -> [T,3,3] R = Rz·Ry·Rx."""
  return Rotation.from_euler("ZYX", np.asarray(angles)[:, ::-1]).as_matrix()


def euler_angles(matrices):
  """Inverse of `rotation_matrices`: [T,3,3] -> [T,3] angles (x, y, z)."""
  return Rotation.from_matrix(matrices).as_euler("ZYX")[:, ::-1]


def vertex_normals(vertices, triangles) -> np.ndarray:
  """[N,3] unit normals: area-weighted sums of the adjacent faces' normals."""
  vertices = np.asarray(vertices, np.float64)
  corners = vertices[triangles]
  face = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
  normals = np.zeros_like(vertices)
  for j in range(3):
    np.add.at(normals, triangles[:, j], face)
  length = np.linalg.norm(normals, axis=1, keepdims=True)
  return np.where(length > 0, normals / np.maximum(length, 1e-30), [0.0, 0.0, 1.0])


def accessor_array(gltf, blob: bytes, index: int) -> np.ndarray:
  """The data of accessor `index` as [count, components] (or [count]) numpy array (tightly packed views)."""
  accessor = gltf.accessors[index]
  view = gltf.bufferViews[accessor.bufferView]
  dtype = {pygltflib.FLOAT: np.float32, pygltflib.UNSIGNED_INT: np.uint32,
           pygltflib.UNSIGNED_SHORT: np.uint16}[accessor.componentType]
  components = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}[accessor.type]
  start = (view.byteOffset or 0) + (accessor.byteOffset or 0)
  end = start + accessor.count * components * np.dtype(dtype).itemsize
  if end > len(blob):
    raise ValueError(f"accessor {index} ends at byte {end}, the buffer has {len(blob)}")
  array = np.frombuffer(blob, dtype, accessor.count * components, start)
  return array.reshape(accessor.count, components) if components > 1 else array


def _load(path: str):
  try:
    gltf = pygltflib.GLTF2().load(path)
    blob = gltf.binary_blob()
  except Exception as e:  # noqa: BLE001 - pygltflib raises many kinds on malformed files.
    raise UserError(f"{path}: not a readable glTF binary ({type(e).__name__}: {e})") from None
  if gltf is None or blob is None:
    raise UserError(f"{path}: not a glTF binary (.glb) with an embedded buffer")
  return gltf, blob


class _Builder:
  """Packs arrays into one binary buffer, one bufferView and accessor each."""

  def __init__(self):
    self.chunks, self.offset, self.views, self.accessors = [], 0, [], []

  def add(self, array, target=None, with_bounds=False) -> int:
    array = np.asarray(array)
    array = array.astype(np.uint32 if np.issubdtype(array.dtype, np.integer) else np.float32)
    data = np.ascontiguousarray(array).tobytes()
    self.views.append(pygltflib.BufferView(buffer=0, byteOffset=self.offset, byteLength=len(data),
                                           target=target))
    self.chunks.append(data + b"\0" * (-len(data) % 4))
    self.offset += len(data) + (-len(data) % 4)
    components = 1 if array.ndim == 1 else array.shape[1]
    accessor = pygltflib.Accessor(
      bufferView=len(self.views) - 1, byteOffset=0, count=array.shape[0],
      componentType=pygltflib.UNSIGNED_INT if array.dtype == np.uint32 else pygltflib.FLOAT,
      type={1: "SCALAR", 2: "VEC2", 3: "VEC3", 4: "VEC4"}[components],
    )
    if with_bounds:
      flat = array.reshape(array.shape[0], -1)
      accessor.min, accessor.max = flat.min(0).tolist(), flat.max(0).tolist()
    self.accessors.append(accessor)
    return len(self.accessors) - 1

  def finish(self, gltf) -> None:
    blob = b"".join(self.chunks)
    gltf.buffers = [pygltflib.Buffer(byteLength=len(blob))]
    gltf.bufferViews = self.views
    gltf.accessors = self.accessors
    gltf.set_binary_blob(blob)
