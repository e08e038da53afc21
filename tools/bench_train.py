"""Benchmark: training throughput (examples/s) of A2ENet tiny and base, on 1 device and on 8 (fake) devices.

  python tools/bench_train.py [--sizes tiny,base] [--devices 1,8] [--batch 16] [--repeats 10]
  (or: a2e bench train ...)

Each row is the project's jitted train step (train/step.py: A2ENet, the full cross-reconstruction loss with
the built-in face's vertex terms, AdamW) on a mesh of the first D devices (data parallel), fed one fixed
random batch shaped like the input pipeline's (so input cost is excluded: see bench_data for that).
Times are medians over `repeats` steps after `warmup` steps (the first compiles), the rows taking turns
within every repeat so that load from other processes hits them alike. On a CPU the 8 devices are XLA's
fake host devices (`--xla_force_host_platform_device_count=8`): they share the same cores, so the row
measures the cost of the sharded program, not a speed-up. FLOPs are XLA's count for one step's program
on one device times the device count (so replicated work, such as the optimizer update under data
parallelism, counts once per device); temp MB is XLA's temporary buffer size of the compiled step (the
activations kept for the backward pass among them), which `--remat on|both` (`model.remat`) trades for
recomputation.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

from timing import timed

if "jax" not in sys.modules:  # fake CPU devices must be requested before JAX starts
  _flags = os.environ.get("XLA_FLAGS", "")
  os.environ["XLA_FLAGS"] = f"{_flags} --xla_force_host_platform_device_count=8".strip()



def make_row(size: str, num_devices: int, batch: int, frames: int, remat: bool = False):
  """(run one step, compile seconds, parameter count, FLOPs per step, XLA's temporary buffer bytes) for
  one configuration."""
  import jax
  import ml_collections

  from a2e_jax.tasks.a2enet import a2enet_task
  from a2e_jax.tasks.defaults import base_config
  from a2e_jax.tasks.random_batches import RandomBatches
  from a2e_jax.train import sharding, step
  from a2e_jax.train import state as state_lib

  config = base_config(size)
  config.input = "random"
  config.data.window_frames = frames
  config.train.batch_size = batch
  config.eval.metrics_clips = 0
  config.model.remat = remat
  the_task = a2enet_task(config)
  mesh = sharding.make_mesh(ml_collections.ConfigDict(dict(data=num_devices, fsdp=1, model=1)),
                            jax.devices()[:num_devices])
  tx, schedule = state_lib.make_optimizer(config.optim, 1000)
  rng = jax.random.key(0)
  shardings = state_lib.state_shardings(the_task.init_variables, tx, rng, mesh)
  holder = {"state": state_lib.create_state(the_task.init_variables, tx, rng, shardings, mesh)}
  train_step = step.make_train_step(the_task.loss_fn, tx, schedule, shardings, mesh)
  batch_arrays = next(RandomBatches(batch, frames, config.model.num_coeffs, mesh))
  constants = jax.device_put(the_task.constants, sharding.replicated(mesh))
  key = jax.random.key(1)
  start = time.perf_counter()
  compiled = train_step.lower(holder["state"], batch_arrays, key, constants).compile()
  compile_s = time.perf_counter() - start
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  flops = float(cost.get("flops", 0.0)) * num_devices if cost else 0.0
  memory = compiled.memory_analysis()
  temp_bytes = float(memory.temp_size_in_bytes) if memory is not None else float("nan")

  def run():
    holder["state"], metrics = compiled(holder["state"], batch_arrays, key, constants)
    jax.block_until_ready(metrics["loss"])

  return run, compile_s, state_lib.count_params(holder["state"].params), flops, temp_bytes


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--sizes", default="tiny,base", help="model sizes (models/a2enet.py SIZES)")
  parser.add_argument("--devices", default="1,8", help="device counts (data-parallel meshes)")
  parser.add_argument("--batch", type=int, default=16, help="global batch (a multiple of every device count)")
  parser.add_argument("--frames", type=int, default=32, help="frames per clip window (data.window_frames)")
  parser.add_argument("--repeats", type=int, default=10)
  parser.add_argument("--warmup", type=int, default=2)
  parser.add_argument("--remat", choices=("off", "on", "both"), default="off",
                      help="--config.model.remat: recompute Transformer blocks in the backward pass")
  parser.add_argument("--json", default="bench_train.json", help="where to write the results")
  args = parser.parse_args(argv)

  import jax
  import numpy as np

  sizes = args.sizes.split(",")
  counts = [int(d) for d in args.devices.split(",")]
  if max(counts) > len(jax.devices()):
    sys.exit(f"bench_train: {max(counts)} devices requested, {len(jax.devices())} available")
  rows, info = {}, {}
  remats = {"off": (False,), "on": (True,), "both": (False, True)}[args.remat]
  for size in sizes:
    for count in counts:
      for remat in remats:
        name = f"{size}/{count}dev" + ("/remat" if remat else "")
        rows[name], compile_s, params, flops, temp = make_row(size, count, args.batch, args.frames, remat)
        info[name] = {"size": size, "devices": count, "remat": remat, "compile_s": compile_s,
                      "params": params, "flops_per_step": flops, "temp_mb": temp / 2**20}
  results = {}
  for name, times in timed(rows, args.repeats, args.warmup).items():
    median = statistics.median(times)
    results[name] = {**info[name], "median_step_ms": 1e3 * median, "min_step_ms": 1e3 * min(times),
                     "examples_per_s": args.batch / median,
                     "gflops_per_s": info[name]["flops_per_step"] / median / 1e9}
  report = {
    "benchmark": "train.step",
    "config": vars(args),
    "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                "cpus": os.cpu_count(), "jax_backend": jax.default_backend(),
                "device": str(jax.devices()[0].device_kind), "jax": jax.__version__, "numpy": np.__version__,
                "load_average": os.getloadavg()},
    "results": results,
  }
  print(f"train step: batch {args.batch} x {args.frames} frames, median of {args.repeats} after "
        f"{args.warmup} warm-up, on {report['machine']['device']} ({jax.default_backend()})")
  print(f"{'row':<20}{'params':>12}{'compile s':>11}{'step ms':>10}{'examples/s':>12}{'GFLOP/s':>10}"
        f"{'temp MB':>9}")
  for name, r in results.items():
    print(f"{name:<20}{r['params']:>12,}{r['compile_s']:>11.1f}{r['median_step_ms']:>10.1f}"
          f"{r['examples_per_s']:>12.1f}{r['gflops_per_s']:>10.1f}{r['temp_mb']:>9.1f}")
  with open(args.json, "w") as f:
    json.dump(report, f, indent=2)
  print(f"wrote {args.json}")
  return report


if __name__ == "__main__":
  main()
