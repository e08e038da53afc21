"""One process of the two-process pipeline test (tests/test_pipeline_multiprocess.py).

  python tests/pipeline_worker.py PORT PROCESS_ID OUT.npz

Joins a 2-process JAX run on localhost with 4 CPU devices per process, builds the fake clip set, takes
STEPS training batches on a (4, 2, 1) mesh, and saves the rows of every global batch that this process
holds and the global example ids it built.
"""

import os
import sys

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
os.environ["JAX_PLATFORMS"] = "cpu"

STEPS = 3
GLOBAL_BATCH = 16


def main(port: int, process_id: int, out: str) -> None:
  import jax

  jax.distributed.initialize(coordinator_address=f"localhost:{port}", num_processes=2, process_id=process_id)
  import fake_clips
  import numpy as np

  from a2e_jax.data import align, pipeline

  built = []
  original = pipeline._Setup.draws

  def recording(self, first, rows):
    built.extend(range(first, first + rows))
    return original(self, first, rows)

  pipeline._Setup.draws = recording
  clips = fake_clips.make_clips(sentences=2)
  index = align.build_pair_index(clips)
  cfg = pipeline.data_config()
  cfg.prefetch = 1
  mesh = jax.make_mesh((4, 2, 1), ("data", "fsdp", "model"), axis_types=(jax.sharding.AxisType.Explicit,) * 3)
  iterator = pipeline.make_batch_iterator(cfg, "train", GLOBAL_BATCH, mesh, seed=7, source=clips, index=index)
  arrays = {}
  for step in range(STEPS):
    batch = next(iterator)
    for view, leaves in batch.items():
      for key, array in leaves.items():
        shards = sorted(array.addressable_shards, key=lambda s: s.index[0].start or 0)
        starts = [s.index[0].start or 0 for s in shards]
        arrays[f"{step}/{view}/{key}"] = np.concatenate([np.asarray(s.data) for s in shards])
        arrays[f"{step}/{view}/{key}/first_row"] = np.array(min(starts))
  arrays["built"] = np.array(sorted(set(built)))
  np.savez(out, **arrays)
  jax.distributed.shutdown()


if __name__ == "__main__":
  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
  main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
