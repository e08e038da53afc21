"""One process of the sharded-evaluation test (tests/test_eval_sharded.py).

  python tests/eval_worker.py NUM_PROCESSES PROCESS_ID PORT OUT.json

Joins a run of NUM_PROCESSES JAX processes on localhost (8 CPU devices in all), evaluates A2ENet tiny
(random parameters with a live output head, created sharded on a (data, fsdp, model) mesh) on the fake
clip set, each process reading only its rows of every batch, and writes the metrics (process 0).
"""

import json
import os
import sys

NUM_PROCESSES, PROCESS_ID, PORT = (int(x) for x in sys.argv[1:4])
os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={8 // NUM_PROCESSES}"
os.environ["JAX_PLATFORMS"] = "cpu"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main(out: str) -> None:
  import jax

  if NUM_PROCESSES > 1:
    jax.distributed.initialize(coordinator_address=f"localhost:{PORT}", num_processes=NUM_PROCESSES,
                               process_id=PROCESS_ID)
  import fake_clips
  import ml_collections
  import numpy as np
  from model_helpers import random_face_model

  from a2e_jax.data import pipeline
  from a2e_jax.eval import evaluate
  from a2e_jax.models import a2enet
  from a2e_jax.train import sharding

  config = a2enet.model_config("tiny")
  config.num_coeffs = fake_clips.K
  config.channel_layout = ""  # the fake clips' unnamed channels
  module = a2enet.A2ENet(config)
  mesh = sharding.make_mesh(ml_collections.ConfigDict(dict(data=2, fsdp=2, model=2)))
  boxed = jax.eval_shape(module.init, jax.random.key(0), a2enet.example_view(config))["params"]
  shardings = sharding.logical_shardings(boxed, mesh)

  def init(rng):
    params = sharding.unbox(module.init(rng, a2enet.example_view(config))["params"])
    head = params["expression_decoder"]["out"]["kernel"]  # zero-initialised: made live
    params["expression_decoder"]["out"]["kernel"] = 0.1 * jax.random.normal(rng, head.shape)
    return params

  params = jax.jit(init, out_shardings=shardings)(jax.random.key(0))
  clips = fake_clips.make_clips(sentences=1)  # 6 clips: one batch of 8 rows, 2 of them padding
  batches = pipeline.make_eval_iterator(pipeline.data_config(), "train", 8, mesh, source=clips)
  results = evaluate.evaluate(evaluate.ModelPredictor(module, params, mesh), batches,
                              random_face_model(fake_clips.K))
  if jax.process_index() == 0:
    with open(out, "w") as f:
      json.dump({k: v for k, v in results.items() if isinstance(v, float | int)}, f)
  print("devices", jax.device_count(), "processes", jax.process_count(), "clips", results["clips"],
        "lve", np.round(results["lve_mm2"], 6))


if __name__ == "__main__":
  main(sys.argv[4])
