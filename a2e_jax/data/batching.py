"""Where a global batch lies: split along its first dimension over the mesh's batch axes (data × fsdp),
each process holding one contiguous block of rows, which it alone reads.

The input pipeline, the random batches and the train step all place batches through this module, so they
agree on which process reads which rows and on the sharding the step is compiled for.
"""

import dataclasses
import math
from collections.abc import Sequence

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from a2e_jax.core.errors import UserError

BATCH_AXES = ("data", "fsdp")


def batch_sharding(mesh: Mesh, axes: Sequence[str] = BATCH_AXES) -> NamedSharding:
  """Leading (batch) dimension split over `axes`, the rest replicated."""
  return NamedSharding(mesh, PartitionSpec(tuple(axes)))


def batch_divisor(mesh: Mesh, axes: Sequence[str] = BATCH_AXES) -> int:
  """How many ways a global batch is split: its size must be a multiple of this."""
  return math.prod(mesh.shape[a] for a in axes)


@dataclasses.dataclass(frozen=True)
class HostShard:
  """This process's part of a global batch.

  Attributes:
    sharding: the batch's sharding (`batch_sharding`).
    global_batch: rows of the global batch.
    rows: the rows this process holds and feeds (`jax.make_array_from_process_local_data` takes exactly
      these).
    index, count: this block's position among the `count` equal blocks of the global batch.
  """

  sharding: NamedSharding
  global_batch: int
  rows: slice
  index: int
  count: int


def host_shard(mesh: Mesh, global_batch: int, axes: Sequence[str] = BATCH_AXES) -> HostShard:
  """The rows of a `global_batch`-row batch that this process's devices hold.

  Raises UserError when `axes` are not the mesh's or the batch does not divide over them.
  """
  missing = [a for a in axes if a not in mesh.axis_names]
  if missing:
    raise UserError(f"data axes {missing} are not axes of the mesh {tuple(mesh.axis_names)}")
  ways = batch_divisor(mesh, axes)
  if global_batch % ways:
    raise UserError(f"global batch size {global_batch} is not divisible by the {ways} devices of the mesh's "
                    f"data axes {tuple(axes)}; choose a multiple of {ways}")
  sharding = batch_sharding(mesh, axes)
  blocks = sorted({index[0].indices(global_batch)[:2]
                   for index in sharding.addressable_devices_indices_map((global_batch,)).values()})
  start, stop = blocks[0][0], blocks[-1][1]
  size = stop - start
  if sum(b - a for a, b in blocks) != size or global_batch % size or start % size:
    raise ValueError(f"process {jax.process_index()} holds batch rows {blocks}, not one equal contiguous "
                     "block")
  return HostShard(sharding, global_batch, slice(start, stop), start // size, global_batch // size)


def to_global(local_tree, shard: HostShard):
  """The global batch (a tree of jax.Arrays [global_batch, ...]) from this process's rows [rows, ...]."""

  def spec(x):
    return NamedSharding(shard.sharding.mesh, PartitionSpec(*shard.sharding.spec, *([None] * (x.ndim - 1))))

  if jax.process_count() == 1:  # the local rows are the whole batch: one batched transfer of all arrays
    return jax.device_put(local_tree, jax.tree.map(spec, local_tree))
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(spec(x), x, (shard.global_batch,
                                                                                   *x.shape[1:])), local_tree)


def process_items(count: int, mesh: Mesh | None = None, axes: Sequence[str] = ("data",)) -> slice:
  """Which of `count` whole items (clips, files) this process handles: its rows of a batch of `count` rows
  padded to a multiple of the devices, split as `host_shard` splits a global batch (so processes take
  contiguous blocks, in process order, and none overlap). `mesh` defaults to all devices on one axis."""
  import numpy as np

  if mesh is None:
    mesh = Mesh(np.array(jax.devices()), tuple(axes))
  ways = batch_divisor(mesh, axes)
  rows = host_shard(mesh, max(1, -(-count // ways)) * ways, axes).rows
  return slice(min(rows.start, count), min(rows.stop, count))
