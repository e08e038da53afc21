"""Garbles saved checkpoints and counts how many damaged steps the restore detects and skips.

  python tools/checkpoint_damage.py [--places 42] [--bytes 64] [--seed 0] [--out checkpoint_damage.json]

A run folder gets checkpoints at steps 1 and 2 of a small train state (a stack of dense layers with
Adam's moments, 150k parameters). Each trial copies it, writes --bytes random bytes at a random place in
one of step 2's params data files (or flips one bit of its optimizer state), then restores: detected when
the restore returns step 1's exact arrays, has moved step 2 to corrupt_checkpoints/, and `restore_params`
refuses step 2 with a UserError. The same trials run once more with `files.json` deleted (a step cut off
before its file list was written), which leaves only the array checksums to find the damage. Prints a
table and writes JSON.
"""

import argparse
import json
import os
import shutil
import tempfile
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax

from a2e_jax.core import integrity, run_dir
from a2e_jax.core.errors import UserError
from a2e_jax.train import checkpoint
from a2e_jax.train.state import TrainState

LAYERS, WIDTH = 8, 128


class _Position:
  """A stand-in input iterator: its state is a step."""

  def __init__(self, step: int = 0):
    self.step = step

  def get_state(self) -> dict:
    return {"step": self.step}

  def set_state(self, state: dict) -> None:
    self.step = state["step"]


def _state(step: int, tx) -> TrainState:
  keys = jax.random.split(jax.random.key(step), LAYERS)
  params = {f"layer{i}": {"kernel": jax.random.normal(k, (WIDTH, WIDTH)) / WIDTH**0.5,
                          "bias": jnp.full((WIDTH,), 0.01 * i)} for i, k in enumerate(keys)}
  opt_state = tx.init(params)
  grads = jax.tree.map(lambda p: p * 0.1 + 0.01, params)
  _, opt_state = tx.update(grads, opt_state, params)
  return TrainState(step=jnp.int32(step), params=params, opt_state=opt_state)


def build_run(workdir: str) -> dict[int, TrainState]:
  """Checkpoints at steps 1 and 2 in `workdir`; returns the saved states (on the host)."""
  tx = optax.adam(1e-3)
  states = {}
  ckpt = checkpoint.Checkpointer(workdir, keep=3)
  for step in (1, 2):
    states[step] = _state(step, tx)
    ckpt.save(states[step], _Position(step))
  ckpt.close()
  return jax.tree.map(np.asarray, states)


def _abstract(state: TrainState) -> TrainState:
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), np.asarray(x).dtype, sharding=device),
                      state)


def _data_files(step_dir: str, item: str) -> list[str]:
  folder = os.path.join(step_dir, item)
  return sorted(os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs
                if f"{os.sep}d{os.sep}" in os.path.join(d, f))


def _garble(step_dir: str, rng: np.random.Generator, count: int) -> str:
  """`count` random bytes at a random offset of a random params data file; returns where."""
  files = _data_files(step_dir, "params")
  sizes = np.array([os.path.getsize(f) for f in files], float)
  path = files[rng.choice(len(files), p=sizes / sizes.sum())]  # a place chosen uniformly over the bytes
  offset = int(rng.integers(0, max(os.path.getsize(path) - count, 0) + 1))
  with open(path, "r+b") as f:
    f.seek(offset)
    f.write(rng.integers(0, 256, count, dtype=np.uint8).tobytes())
  return f"{os.path.relpath(path, step_dir)}@{offset}"


def _flip_bit(step_dir: str, rng: np.random.Generator) -> str:
  """One flipped bit in the largest data file of the optimizer state (uncompressed array bytes)."""
  path = max(_data_files(step_dir, "train"), key=os.path.getsize)
  offset = int(rng.integers(0, os.path.getsize(path)))
  with open(path, "r+b") as f:
    f.seek(offset)
    byte = f.read(1)[0]
    f.seek(offset)
    f.write(bytes([byte ^ (1 << int(rng.integers(8)))]))
  return f"{os.path.relpath(path, step_dir)}@{offset}"


def _detected(workdir: str, saved: dict[int, TrainState]) -> bool:
  """Whether the restore skipped the damaged step 2 for step 1's exact arrays, and eval refuses step 2."""
  ckpt = checkpoint.Checkpointer(workdir, keep=3)
  with warnings.catch_warnings(record=True):
    warnings.simplefilter("always")
    try:
      restored = ckpt.restore(_abstract(saved[1]))
    except UserError:
      restored = None
  ckpt.close()
  if restored is None or int(restored.step) != 1:
    return False
  same = all(np.array_equal(np.asarray(a), b) for a, b in
             zip(jax.tree.leaves(restored), jax.tree.leaves(saved[1])))
  moved = os.path.isdir(os.path.join(workdir, checkpoint.CORRUPT, "2"))
  return same and moved


def _eval_refuses(workdir: str) -> bool:
  try:
    run_dir.restore_params(workdir, 2)
  except UserError:
    return True
  return False


def run_trials(places: int = 42, count: int = 64, seed: int = 0, bit_flips: int = 4) -> dict:
  """The damage trials (module docstring); returns the counts and each trial's place."""
  rng = np.random.default_rng(seed)
  results = {"places": places, "bytes": count, "bit_flips": bit_flips, "trials": []}
  with tempfile.TemporaryDirectory() as tmp:
    pristine = os.path.join(tmp, "pristine")
    saved = build_run(pristine)
    kinds = [("garble", True)] * places + [("garble", False)] * places
    kinds += [("bit_flip", True)] * bit_flips + [("bit_flip", False)] * bit_flips
    for i, (kind, with_file_list) in enumerate(kinds):
      workdir = os.path.join(tmp, f"trial{i}")
      shutil.copytree(pristine, workdir)
      step_dir = os.path.join(workdir, run_dir.CHECKPOINTS, "2")
      if not with_file_list:
        os.remove(os.path.join(step_dir, integrity.FILES))
      where = _garble(step_dir, rng, count) if kind == "garble" else _flip_bit(step_dir, rng)
      refused = _eval_refuses(workdir)
      detected = _detected(workdir, saved)
      results["trials"].append({"kind": kind, "file_list": with_file_list, "where": where,
                                "eval_refuses": refused, "detected": detected})
      shutil.rmtree(workdir)
  for kind in ("garble", "bit_flip"):
    for with_list in (True, False):
      rows = [t for t in results["trials"] if t["kind"] == kind and t["file_list"] == with_list]
      key = f"{kind}_{'with' if with_list else 'without'}_file_list"
      results[key] = {"trials": len(rows), "detected": sum(t["detected"] for t in rows),
                      "eval_refuses": sum(t["eval_refuses"] for t in rows)}
  return results


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--places", type=int, default=42)
  parser.add_argument("--bytes", type=int, default=64)
  parser.add_argument("--bit-flips", type=int, default=4)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--out", default="checkpoint_damage.json")
  args = parser.parse_args()
  results = run_trials(args.places, args.bytes, args.seed, args.bit_flips)
  print(f"{'damage':<34} {'trials':>6} {'detected':>9} {'eval refuses':>13}")
  for key, row in results.items():
    if isinstance(row, dict):
      refuses = "-" if key.startswith("bit_flip") else row["eval_refuses"]  # eval reads only the params
      print(f"{key:<34} {row['trials']:>6} {row['detected']:>9} {refuses:>13}")
  with open(args.out, "w") as f:
    json.dump(results, f, indent=1)
  print(f"wrote {args.out}")


if __name__ == "__main__":
  main()
