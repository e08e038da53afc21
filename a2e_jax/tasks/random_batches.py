"""Random training batches shaped like `core/schema.py`: for throughput benchmarks and launcher smoke runs.

Row r of the global batch at step s is drawn from `numpy.random.default_rng((seed, s, r))`, so every
process draws only the rows its devices hold and the global batch is the same for any number of processes
or devices. The iterator state is the step, saved with checkpoints like the real input pipeline's.
"""

import jax
import numpy as np

from a2e_jax.core import schema
from a2e_jax.data import batching

VIEWS = ("a", "b", "ab", "ba")


def random_clip_view(rng: np.random.Generator, frames: int, num_coeffs: int) -> dict:
  """One clip view (no batch dimension) with plausible ranges: mel in [-4,4], coefficients in [0,1]."""
  lengths = rng.integers(frames // 2, frames + 1)
  return {
    "mel": rng.uniform(-4, 4, (frames, schema.MEL_WINDOW, schema.MEL_BANDS)).astype(np.float32),
    "coeffs": rng.uniform(0, 1, (frames, num_coeffs)).astype(np.float32),
    "beta0": rng.uniform(0, 0.2, (num_coeffs,)).astype(np.float32),
    "eye": rng.uniform(0, 1, (frames, schema.EYE)).astype(np.float32),
    "emotion": np.int32(rng.integers(len(schema.EMOTIONS))),
    "intensity": np.int32(rng.integers(1, 4)),
    "mask": (np.arange(frames) < lengths).astype(np.float32),
  }


class RandomBatches:
  """Iterator of global batches {view: {field: jax.Array [B,...]}} with `get_state`/`set_state`."""

  def __init__(self, global_batch_size: int, frames: int, num_coeffs: int, mesh, seed: int = 0):
    self._shape = (global_batch_size, frames, num_coeffs)
    self._shard = batching.host_shard(mesh, global_batch_size)
    self._seed = seed
    self._step = 0

  def __iter__(self):
    return self

  def __next__(self) -> dict:
    batch_size, frames, num_coeffs = self._shape
    rows = [{v: random_clip_view(rng, frames, num_coeffs) for v, rng in
             zip(VIEWS, np.random.default_rng((self._seed, self._step, r)).spawn(len(VIEWS)))}
            for r in range(self._shard.rows.start, self._shard.rows.stop)]
    self._step += 1
    return batching.to_global(jax.tree.map(lambda *xs: np.stack(xs), *rows), self._shard)

  def get_state(self) -> dict:
    return {"step": self._step}

  def set_state(self, state: dict) -> None:
    self._step = int(state["step"])
