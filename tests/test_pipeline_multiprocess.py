"""Two JAX processes on localhost (jax.distributed, CPU): each builds only the examples of its own rows, and
together they produce exactly the global batches of a one-process run."""

import os
import subprocess
import sys

import fake_clips
import jax
import numpy as np
import pytest
from conftest import REPO, free_port

from a2e_jax.data import align, pipeline

pytestmark = pytest.mark.slow  # several processes

WORKER = REPO / "tests" / "pipeline_worker.py"
STEPS, GLOBAL_BATCH, ROWS = 3, 16, 8


def test_two_processes_match_one(tmp_path):
  port = free_port()
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  outs = [tmp_path / f"process{i}.npz" for i in range(2)]
  procs = [
    subprocess.Popen(
      [sys.executable, str(WORKER), str(port), str(i), str(outs[i])],
      env=env,
      stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT,
      text=True,
    )
    for i in range(2)
  ]
  logs = [p.communicate(timeout=300)[0] for p in procs]
  for p, log in zip(procs, logs):
    assert p.returncode == 0, log[-3000:]

  clips = fake_clips.make_clips(sentences=2)
  mesh = jax.make_mesh((4, 2, 1), ("data", "fsdp", "model"), axis_types=(jax.sharding.AxisType.Explicit,) * 3)
  one = pipeline.make_batch_iterator(
    pipeline.data_config(),
    "train",
    GLOBAL_BATCH,
    mesh,
    seed=7,
    source=clips,
    index=align.build_pair_index(clips),
  )
  reference = [jax.tree.map(np.asarray, next(one)) for _ in range(STEPS)]

  for process, out in enumerate(outs):
    got = np.load(out)
    mine = {step * GLOBAL_BATCH + process * ROWS + r for step in range(STEPS) for r in range(ROWS)}
    built = set(got["built"].tolist())
    assert mine <= built  # every example of its rows
    assert all((e % GLOBAL_BATCH) // ROWS == process for e in built)  # and no other process's example
    for step in range(STEPS):
      for view in pipeline.VIEWS:
        for key, expect in reference[step][view].items():
          assert int(got[f"{step}/{view}/{key}/first_row"]) == process * ROWS
          np.testing.assert_array_equal(
            got[f"{step}/{view}/{key}"], expect[process * ROWS : (process + 1) * ROWS]
          )
