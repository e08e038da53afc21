"""Benchmark: A2ENet training-step and inference cost per model size and compute dtype.

  python tools/bench_model.py [--sizes tiny,base] [--dtypes float32,bfloat16] [--batch 8] [--frames 32]
  (or: a2e bench model ...)

Rows: for each size and dtype, one training step (`compute_losses` forward + backward over the four views
of a batch, no optimizer: the model's share of a step) and inference (encode + decode a 10 s clip, 250
frames, batch 1). Reported: parameters, XLA's FLOP count per training example, median seconds after
warm-up, examples/s and frames/s, and the achieved GFLOP/s. Writes a table and JSON.
"""

import argparse
import json
import platform
import statistics
import time

import numpy as np


def _median_seconds(fn, repeats: int, warmup: int) -> float:
  for _ in range(warmup):
    fn()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def _flops(compiled) -> float:
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, list | tuple) else cost
  return float(cost.get("flops", float("nan"))) if cost else float("nan")


def bench(size: str, dtype: str, batch: int, frames: int, repeats: int, warmup: int) -> dict:
  import flax.linen as nn
  import jax

  from a2e_jax.models import a2enet
  from a2e_jax.tasks import losses
  from a2e_jax.tasks.random_batches import VIEWS, random_clip_view

  config = a2enet.model_config(size)
  config.dtype = dtype
  module = a2enet.A2ENet(config)
  params = nn.unbox(jax.jit(module.init)(jax.random.key(0), a2enet.example_view(config)))["params"]
  rng = np.random.default_rng(0)
  rows = [{v: random_clip_view(rng, frames, config.num_coeffs) for v in VIEWS} for _ in range(batch)]
  train_batch = jax.tree.map(lambda *xs: np.stack(xs), *rows)
  loss_cfg = losses.loss_config()

  def loss(p, b, key):
    return losses.compute_losses(module, p, b, key, loss_cfg)[0]

  grad = jax.jit(jax.value_and_grad(loss)).lower(params, train_batch, jax.random.key(1)).compile()
  train_s = _median_seconds(lambda: jax.block_until_ready(grad(params, train_batch, jax.random.key(1))),
                            repeats, warmup)
  train_flops = _flops(grad)

  clip = jax.tree.map(lambda x: np.asarray(x)[None], random_clip_view(rng, 250, config.num_coeffs))
  clip["mask"] = np.ones_like(clip["mask"])

  def infer(p, view):
    variables = {"params": p}
    content = module.apply(variables, view["mel"], view["mask"], method="encode_content")
    _, emotion, _, _ = module.apply(variables, view["mel"], view["mask"], method="encode_emotion")
    return module.apply(variables, content, emotion, view["beta0"], view["eye"], view["mask"],
                        method="decode_expression")

  infer_c = jax.jit(infer).lower(params, clip).compile()
  infer_s = _median_seconds(lambda: jax.block_until_ready(infer_c(params, clip)), repeats, warmup)
  return {
    "size": size, "dtype": dtype, "batch": batch, "frames": frames,
    "params": int(sum(x.size for x in jax.tree.leaves(params))),
    "train_step_s": train_s, "train_examples_per_s": batch / train_s,
    "train_gflop_per_example": train_flops / batch / 1e9, "train_gflop_per_s": train_flops / train_s / 1e9,
    "infer_250_frames_s": infer_s, "infer_frames_per_s": 250 / infer_s,
    "infer_realtime_factor": 250 / 25 / infer_s, "infer_gflop": _flops(infer_c) / 1e9,
  }


def main(argv=None) -> list[dict]:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--sizes", default="tiny,base")
  parser.add_argument("--dtypes", default="float32,bfloat16")
  parser.add_argument("--batch", type=int, default=8, help="training batch (each row holds four views)")
  parser.add_argument("--frames", type=int, default=32, help="training window T")
  parser.add_argument("--repeats", type=int, default=10)
  parser.add_argument("--warmup", type=int, default=2)
  parser.add_argument("--json", default="bench_model.json")
  args = parser.parse_args(argv)

  import jax

  results = [bench(size, dtype, args.batch, args.frames, args.repeats, args.warmup)
             for size in args.sizes.split(",") for dtype in args.dtypes.split(",")]
  header = ("size", "dtype", "params", "train step s", "train ex/s", "GFLOP/ex", "train GFLOP/s",
            "infer 250 fr s", "infer x realtime")
  print(" | ".join(header))
  for r in results:
    print(" | ".join([r["size"], r["dtype"], f"{r['params'] / 1e6:.2f} M", f"{r['train_step_s']:.3f}",
                      f"{r['train_examples_per_s']:.1f}", f"{r['train_gflop_per_example']:.2f}",
                      f"{r['train_gflop_per_s']:.1f}", f"{r['infer_250_frames_s']:.4f}",
                      f"{r['infer_realtime_factor']:.0f}"]))
  meta = {"machine": platform.processor() or platform.machine(), "devices": str(jax.devices()),
          "jax": jax.__version__}
  with open(args.json, "w") as f:
    json.dump({"meta": meta, "results": results}, f, indent=2)
  return results


if __name__ == "__main__":
  main()
