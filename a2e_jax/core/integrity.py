"""Proof that a checkpoint reads back as it was written: array checksums, file checksums, a finite check.

Orbax and TensorStore check only the shard index of a checkpoint (a CRC32C of the zarr3 index), not the
array bytes: garbled data files restore silently with changed values. So a checkpoint step carries two
records of its own:

  arrays  written with the step: for every array of the saved trees, two 32-bit sums of its bits,
          computed on the devices. Integer sums wrap modulo 2^32, so they do not depend on the order of
          the reduction, hence not on the mesh: a checkpoint saved on 8 devices verifies on 1. A flipped
          bit changes an element by +-2^k, and both sums weight every element by an odd factor, so any
          single flipped bit changes them.
  files   `files.json` in the step folder, written once the (asynchronous) save has finished: size and
          CRC32 of every file of the step. It also catches damage to bytes that no array reads.

`verify_files` and `verify_arrays` return a short reason, or None when the checkpoint is intact; the
finite check belongs to `verify_arrays`, since a trainer never saves a NaN parameter.
"""

import json
import os
import zlib

import jax
import jax.numpy as jnp
import numpy as np
from etils import epath

FILES = "files.json"
_CHUNK = 1 << 22


def _bits_u32(x: jax.Array) -> jax.Array:
  """The bits of `x`, flattened, as uint32 words (narrower types widened, 64-bit types split)."""
  if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
    x = jax.random.key_data(x)
  x = jnp.ravel(x)
  if x.dtype == jnp.bool_:
    return x.astype(jnp.uint32)
  width = x.dtype.itemsize * 8
  if width == 64:
    return jnp.ravel(jax.lax.bitcast_convert_type(x, jnp.uint32))
  return jax.lax.bitcast_convert_type(x, jnp.dtype(f"uint{width}")).astype(jnp.uint32)


def _leaf_record(x: jax.Array) -> jax.Array:
  """[3] uint32: position-weighted sum of the bits, sum of the bits xor a position key, all finite."""
  bits = _bits_u32(x)
  index = jax.lax.iota(jnp.uint32, bits.size)
  weighted = jnp.sum(bits * (index * jnp.uint32(0x9E3779B1) | jnp.uint32(1)), dtype=jnp.uint32)
  keyed = jnp.sum(bits ^ (index * jnp.uint32(0x85EBCA6B)), dtype=jnp.uint32)
  finite = jnp.all(jnp.isfinite(x)) if jnp.issubdtype(x.dtype, jnp.inexact) else jnp.bool_(True)
  return jnp.stack([weighted, keyed, finite.astype(jnp.uint32)])


_records = jax.jit(lambda tree: jax.tree.map(_leaf_record, tree))


def _paths_and_records(tree) -> list[tuple[str, np.ndarray]]:
  records = jax.device_get(_records(tree))
  leaves = jax.tree_util.tree_leaves_with_path(records)
  return [(jax.tree_util.keystr(path), np.asarray(r)) for path, r in leaves]


def array_checksums(tree) -> dict[str, str]:
  """{key path: 16 hex digits} for every array leaf of `tree` (all processes call this together)."""
  return {path: f"{int(r[0]):08x}{int(r[1]):08x}" for path, r in _paths_and_records(tree)}


def verify_arrays(name: str, tree, saved: dict[str, str] | None) -> str | None:
  """Why the restored `tree` (item `name`) differs from its saved checksums or holds NaN/inf, or None.

  `saved` None (a checkpoint older than the checksums) checks only finiteness.
  """
  rows = _paths_and_records(tree)
  nonfinite = [path for path, r in rows if not r[2]]
  if saved is not None:
    changed = [path for path, r in rows if saved.get(path) != f"{int(r[0]):08x}{int(r[1]):08x}"]
    if changed:
      more = f" and {len(changed) - 1} more" if len(changed) > 1 else ""
      return f"{name}{changed[0]}{more} differ from their checksums"
  if nonfinite:
    more = f" and {len(nonfinite) - 1} more" if len(nonfinite) > 1 else ""
    return f"{name}{nonfinite[0]}{more} hold NaN or inf"
  return None


def _crc32(path: str) -> int:
  crc = 0
  with open(path, "rb") as f:
    while chunk := f.read(_CHUNK):
      crc = zlib.crc32(chunk, crc)
  return crc


def _files(step_dir: str) -> list[str]:
  found = []
  for folder, _, names in os.walk(step_dir):
    found += [os.path.relpath(os.path.join(folder, n), step_dir) for n in names]
  return sorted(f for f in found if f != FILES)


def write_file_digests(step_dir) -> None:
  """Writes `step_dir/files.json` ({relative path: [size, crc32]}) under a temporary name, then renames."""
  step_dir = os.fspath(step_dir)
  digests = {f: [os.path.getsize(os.path.join(step_dir, f)), _crc32(os.path.join(step_dir, f))]
             for f in _files(step_dir)}
  path = epath.Path(step_dir) / FILES
  partial = path.parent / f".{FILES}.partial"
  partial.write_text(json.dumps(digests, indent=0, sort_keys=True))
  partial.rename(path)


def has_file_digests(step_dir) -> bool:
  return (epath.Path(step_dir) / FILES).exists()


def verify_files(step_dir, prefixes: tuple[str, ...] = ("",)) -> str | None:
  """Why a file of `step_dir` under one of `prefixes` differs from `files.json`, or None (also when the
  step has no `files.json`: it was cut off before its save finished, and its arrays are checked instead)."""
  step_dir = os.fspath(step_dir)
  path = os.path.join(step_dir, FILES)
  if not os.path.exists(path):
    return None
  try:
    digests = json.loads(epath.Path(path).read_text())
  except (OSError, ValueError, UnicodeDecodeError):
    return f"its {FILES} is unreadable"
  for name, (size, crc) in sorted(digests.items()):
    if not name.startswith(prefixes):
      continue
    full = os.path.join(step_dir, name)
    if not os.path.exists(full):
      return f"{name} is missing"
    if os.path.getsize(full) != size:
      return f"{name} has {os.path.getsize(full)} bytes, {size} were written"
    if _crc32(full) != crc:
      return f"{name} differs from its CRC32"
  return None
