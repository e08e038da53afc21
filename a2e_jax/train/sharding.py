"""The device mesh and the one table that maps the model's logical axis names onto it.

The mesh has three axes: `data` (pure data parallelism), `fsdp` (data parallelism whose parameters and
optimizer state are sharded too, ZeRO-3 style) and `model` (tensor parallelism over attention heads and MLP
hidden units). Any factorisation of the devices works, a single device included; with several processes
the mesh spans all of their devices. Batches are split over `data` × `fsdp` (data/batching.py).

Parameters carry logical axis names (`nn.with_logical_partitioning`); `LOGICAL_RULES` maps them onto mesh
axes in priority order. A dimension whose size does not divide by its mesh axes is replicated instead, so
every mesh shape accepts every model size (tiny models on 8 devices included).
"""

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from a2e_jax.core.errors import UserError
from a2e_jax.data.batching import BATCH_AXES

MESH_AXES = ("data", "fsdp", "model")

# Logical axis name -> mesh axes, highest priority first. A mesh axis is used at most once per array, so an
# activation named ("batch", "time", "embed") takes data×fsdp for the batch and leaves "embed" replicated,
# while a parameter named ("embed", "mlp") is sharded over fsdp and model. The small dimensions (mel bands,
# stem channels, coefficients, classes) stay replicated; names not listed are replicated too.
LOGICAL_RULES = (
  ("batch", BATCH_AXES),
  ("heads", "model"),
  ("mlp", "model"),
  ("embed", "fsdp"),
  ("kv", None),
  ("time", None),
  ("mel", None),
  ("stem", None),
  ("stem_in", None),
  ("conv", None),
  ("coeffs", None),
  ("eye", None),
  ("vocab", None),
  ("scalar", None),
)


def mesh_shape(mesh_cfg, num_devices: int) -> tuple[int, int, int]:
  """Resolves `mesh_cfg.{data,fsdp,model}` (one of them may be -1: the rest) against `num_devices`."""
  sizes = [int(mesh_cfg[name]) for name in MESH_AXES]
  spec = " x ".join(f"{n}={s}" for n, s in zip(MESH_AXES, sizes))
  if sizes.count(-1) > 1 or any(s == 0 or s < -1 for s in sizes):
    raise UserError(f"mesh {spec}: give positive sizes, at most one of them -1 (the remaining devices)")
  known = math.prod(s for s in sizes if s != -1)
  if -1 in sizes:
    if num_devices % known:
      raise UserError(f"mesh {spec}: {num_devices} devices do not divide by {known}; change --config.mesh")
    sizes[sizes.index(-1)] = num_devices // known
  if math.prod(sizes) != num_devices:
    raise UserError(f"mesh {spec} needs {math.prod(sizes)} devices but {num_devices} are available; "
                    "set one of --config.mesh.data/fsdp/model to -1")
  return tuple(sizes)


def make_mesh(mesh_cfg, devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A (data, fsdp, model) mesh over `devices` (default: all devices of all processes).

  Axes are `Auto`: shardings are given at jit boundaries and propagated by XLA inside, which is what the
  logical-axis rules of Linen modules expect.
  """
  devices = list(jax.devices() if devices is None else devices)
  shape = mesh_shape(mesh_cfg, len(devices))
  return jax.make_mesh(shape, MESH_AXES, axis_types=(AxisType.Auto,) * len(MESH_AXES), devices=devices)




def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())




def _axis_size(mesh: Mesh, axes) -> int:
  if axes is None:
    return 1
  axes = (axes,) if isinstance(axes, str) else axes
  return math.prod(mesh.shape[a] for a in axes)


def spec_for(shape: Sequence[int], names: Sequence[str | None] | None, mesh: Mesh,
             rules=LOGICAL_RULES) -> PartitionSpec:
  """Mesh PartitionSpec of an array of `shape` with logical `names`; non-dividing dimensions replicate."""
  if not names:
    return PartitionSpec()
  mesh_axes = nn.logical_to_mesh_axes(tuple(names), rules)
  fitted = [axes if dim % _axis_size(mesh, axes) == 0 else None for dim, axes in zip(shape, mesh_axes)]
  return PartitionSpec(*fitted)


def _is_box(x) -> bool:
  return isinstance(x, nn.Partitioned)


def logical_shardings(boxed_tree, mesh: Mesh, rules=LOGICAL_RULES):
  """NamedShardings for an (abstract) tree whose leaves may be `nn.LogicallyPartitioned` boxes.

  Returns the tree with boxes removed (the structure `unbox(boxed_tree)` has). Unboxed leaves replicate.
  """

  def one(x):
    if _is_box(x):
      return NamedSharding(mesh, spec_for(x.value.shape, x.names, mesh, rules))
    return NamedSharding(mesh, PartitionSpec())

  return jax.tree.map(one, boxed_tree, is_leaf=_is_box)


def unbox(tree):
  """Strips logical-partitioning boxes without adding sharding constraints (jit out_shardings place it)."""
  return jax.tree.map(lambda x: x.value if _is_box(x) else x, tree, is_leaf=_is_box)


def with_shardings(abstract_tree, shardings):
  """ShapeDtypeStructs carrying `shardings`: the target of a sharded restore or a jitted init."""
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), abstract_tree,
                      shardings)


def describe(mesh: Mesh) -> str:
  """'data=2 fsdp=2 model=2 over 8 devices (2 processes)'."""
  axes = " ".join(f"{name}={size}" for name, size in mesh.shape.items())
  devices, processes = mesh.devices.size, jax.process_count()
  return (f"{axes} over {devices} device{'s' if devices > 1 else ''} "
          f"({processes} process{'es' if processes > 1 else ''})")
