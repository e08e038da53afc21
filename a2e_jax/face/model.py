"""`MorphableModel`: a linear 3D face model (mean + identity basis + expression basis) as a JAX pytree.

Coordinates follow Deep3DFaceRecon: right-handed, +y up, +z towards the camera, the face centred near the
origin, in BFM-like units (1 unit ≈ 10 cm; a face is about 1.5 units wide) so that Deep3DFaceRecon's camera
(focal 1015, distance 10, 224 px) frames every model the same way. Converters rescale to these units.

The model is a `flax.struct` dataclass: arrays are pytree leaves (pass the model into `jax.jit`ted
functions as an argument instead of baking 40 MB of bases into the program as constants); names and other
metadata are static. Saved as a versioned `.npz`, never pickled.
"""

import dataclasses
import os

import flax.struct
import jax.numpy as jnp
import numpy as np

from a2e_jax.core.channels import channel_index
from a2e_jax.core.errors import UserError

FORMAT = "a2e_morphable_model"
VERSION = 1

# Vertex regions the losses and metrics use. Every model provides these (possibly empty) index arrays.
REGION_NAMES = ("lips", "mouth", "eye_left", "eye_right", "upper_face", "face")

_ARRAY_FIELDS = (
  "mean", "id_basis", "exp_basis", "triangles", "landmarks", "uvs", "uv_triangles", "texture",
  "color_mean", "color_basis",
)  # fmt: skip


@flax.struct.dataclass
class MorphableModel:
  """A linear face model. Shapes: N vertices, F triangles, Ki identity and Ke expression modes.

  Attributes:
    mean: [N,3] float32 neutral shape.
    id_basis: [N,3,Ki] identity basis (a displacement per unit coefficient).
    exp_basis: [N,3,Ke] expression basis.
    triangles: [F,3] int32 vertex indices, 0-based, counter-clockwise seen from outside.
    landmarks: [68] int32 vertex indices of the 68 Multi-PIE landmarks.
    regions: name -> int32 vertex indices (see REGION_NAMES).
    uvs: [U,2] texture coordinates in [0,1] (origin bottom-left; ICT: UDIM tiles, u in [k, k+1)), or None.
    uv_triangles: [F,3] int32 indices into `uvs` per triangle corner, or None.
    texture: [H,W,3] uint8 texture image or None.
    color_mean: [N,3] float32 albedo in [0,1] or None; color_basis: [N,3,Kt] or None.
    channel_names: Ke expression channel names (ICT/ARKit names where the model has them).
    name: short id stored in coefficient files ("builtin", "bfm", "ict", ...).
    units: a note on the coordinate units.
  """

  mean: jnp.ndarray
  id_basis: jnp.ndarray
  exp_basis: jnp.ndarray
  triangles: jnp.ndarray
  landmarks: jnp.ndarray
  regions: dict
  uvs: jnp.ndarray | None = None
  uv_triangles: jnp.ndarray | None = None
  texture: jnp.ndarray | None = None
  color_mean: jnp.ndarray | None = None
  color_basis: jnp.ndarray | None = None
  channel_names: tuple = flax.struct.field(pytree_node=False, default=())
  name: str = flax.struct.field(pytree_node=False, default="model")
  units: str = flax.struct.field(pytree_node=False, default="BFM-like, 1 unit = 10 cm")

  @property
  def num_vertices(self) -> int:
    return self.mean.shape[0]

  @property
  def num_id(self) -> int:
    return self.id_basis.shape[-1]

  @property
  def num_exp(self) -> int:
    return self.exp_basis.shape[-1]

  def vertices(self, id_coeffs=None, exp_coeffs=None):
    """Mesh vertices for identity and expression coefficients.

    Args:
      id_coeffs: [..., Ki] or None (mean identity).
      exp_coeffs: [..., Ke] or None (neutral); its leading dims broadcast against id_coeffs' after
        id_coeffs gains the frame axes, e.g. id [B,Ki] with exp [B,T,Ke].
    Returns:
      [..., N, 3] float32 vertices; for id [B,Ki] and exp [B,T,Ke], [B,T,N,3].
    """
    shape = self.mean
    if id_coeffs is not None:
      id_coeffs = jnp.asarray(id_coeffs, jnp.float32)
      shape = shape + jnp.einsum("...k,nck->...nc", id_coeffs, self.id_basis)
    if exp_coeffs is not None:
      exp_coeffs = jnp.asarray(exp_coeffs, jnp.float32)
      if shape.ndim == 2:
        # One identity for every frame: fold the neutral shape into the GEMM as one more basis column.
        # XLA on CPU does not fuse a broadcast add into a dot, and the extra pass over the [..., N, 3]
        # output (107 MB for 250 BFM frames) costs as much as the product itself.
        n = shape.shape[0]
        basis = jnp.concatenate([self.exp_basis.reshape(n * 3, -1), shape.reshape(n * 3, 1)], axis=1)
        ones = jnp.ones(exp_coeffs.shape[:-1] + (1,), jnp.float32)
        flat = jnp.concatenate([exp_coeffs, ones], axis=-1) @ basis.T
        return flat.reshape(exp_coeffs.shape[:-1] + (n, 3))
      if id_coeffs is not None:
        # id [B,Ki] -> [B,1,N,3] so that it broadcasts over exp's frame axes.
        extra = exp_coeffs.ndim - id_coeffs.ndim
        shape = shape.reshape(shape.shape[:-2] + (1,) * extra + shape.shape[-2:])
      shape = shape + jnp.einsum("...k,nck->...nc", exp_coeffs, self.exp_basis)
    return shape

  def colors(self, tex_coeffs=None):
    """[..., N, 3] per-vertex albedo from texture coefficients [..., Kt] (BFM), or a neutral skin tone."""
    if self.color_mean is None:
      return jnp.broadcast_to(jnp.asarray(SKIN_ALBEDO, jnp.float32), self.mean.shape)
    if tex_coeffs is None or self.color_basis is None:
      return self.color_mean
    return self.color_mean + jnp.einsum("...k,nck->...nc", tex_coeffs, self.color_basis)

  def region(self, name: str):
    """int32 vertex indices of a named region."""
    if name not in self.regions:
      raise KeyError(f"model {self.name!r} has no region {name!r}; it has {sorted(self.regions)}")
    return self.regions[name]

  def channel(self, name: str) -> int:
    """Index of the expression channel `name`."""
    return channel_index(self.channel_names, name)

  def save(self, path: str) -> None:
    """Writes the versioned `.npz` (no pickled objects)."""
    arrays = {"format": np.array(FORMAT), "version": np.array(VERSION)}
    for field in _ARRAY_FIELDS:
      value = getattr(self, field)
      if value is not None:
        arrays[field] = np.asarray(value)
        if np.issubdtype(arrays[field].dtype, np.floating) and not np.all(np.isfinite(arrays[field])):
          raise UserError(f"{path}: the face model's {field} holds NaN or inf; its source files are damaged")
    for region, indices in self.regions.items():
      arrays["region/" + region] = np.asarray(indices, np.int32)
    arrays["channel_names"] = np.array(self.channel_names, dtype=np.str_)
    arrays["name"] = np.array(self.name)
    arrays["units"] = np.array(self.units)
    with open(path, "wb") as f:
      np.savez_compressed(f, **arrays)

  def to_numpy(self) -> "MorphableModel":
    """The same model with every array as numpy (host copies)."""
    return dataclasses.replace(
      self,
      **{f: None if getattr(self, f) is None else np.asarray(getattr(self, f)) for f in _ARRAY_FIELDS},
      regions={k: np.asarray(v) for k, v in self.regions.items()},
    )


# A neutral skin albedo (linear RGB in [0,1]) for models without colours.
SKIN_ALBEDO = (0.78, 0.57, 0.47)


def load_model(path: str) -> MorphableModel:
  """Reads a `.npz` written by `MorphableModel.save`, with clear errors for anything else."""
  if not os.path.isfile(path):
    raise UserError(f"face model {path!r} not found; convert one with 'a2e models convert'")
  try:
    with np.load(path, allow_pickle=False) as data:
      arrays = {k: data[k] for k in data.files}
  except (OSError, ValueError) as e:
    raise UserError(f"face model {path!r} is not a readable .npz ({e})") from None
  if str(arrays.get("format", "")) != FORMAT:
    raise UserError(f"{path!r} is not an a2e face model (.npz without format={FORMAT!r})")
  if int(arrays["version"]) > VERSION:
    raise UserError(f"face model {path!r} has version {int(arrays['version'])}; "
                    f"this a2e_jax reads up to {VERSION}; upgrade a2e_jax")
  for key in ("mean", "id_basis", "exp_basis", "triangles", "landmarks"):
    if key not in arrays:
      raise UserError(f"face model {path!r} lacks the array {key!r}")
  model = MorphableModel(
    **{f: arrays.get(f) for f in _ARRAY_FIELDS},
    regions={k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("region/")},
    channel_names=tuple(str(n) for n in arrays["channel_names"]),
    name=str(arrays["name"]),
    units=str(arrays["units"]),
  )
  validate(model, source=path)
  return model


def require_finite(array: np.ndarray, describe) -> None:
  """Raises a UserError with the line `describe(index, value)` gives for the first NaN or inf of `array`
  (index: a tuple of ints), as the importers report damaged files."""
  bad = ~np.isfinite(array)
  if bad.any():
    index = tuple(int(i) for i in np.argwhere(bad)[0])
    raise UserError(describe(index, array[index]))


def validate(model: MorphableModel, source: str = "face model") -> None:
  """Checks shapes and indices; raises UserError naming `source` and the offending array."""
  n = model.mean.shape[0]
  expect = {
    "mean": (n, 3),
    "id_basis": (n, 3, None),
    "exp_basis": (n, 3, None),
    "triangles": (None, 3),
    "landmarks": (68,),
  }
  for key, shape in expect.items():
    got = np.shape(getattr(model, key))
    if len(got) != len(shape) or any(s is not None and s != g for s, g in zip(shape, got)):
      raise UserError(f"{source}: array {key!r} has shape {got}, expected {shape} (None = any)")
  tri = np.asarray(model.triangles)
  if tri.size and (tri.min() < 0 or tri.max() >= n):
    raise UserError(f"{source}: triangle indices outside [0, {n}); are they 1-based?")
  if len(model.channel_names) not in (0, model.exp_basis.shape[-1]):
    raise UserError(f"{source}: {len(model.channel_names)} channel names for "
                    f"{model.exp_basis.shape[-1]} expression modes")
  for region, idx in model.regions.items():
    idx = np.asarray(idx)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
      raise UserError(f"{source}: region {region!r} has vertex indices outside [0, {n})")
