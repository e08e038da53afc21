"""Benchmark: MorphableModel.vertices() on a BFM-sized model, jitted JAX vs a numpy einsum baseline.

  python tools/bench_face.py [--frames 250] [--repeats 20] [--json bench_face.json]
  (or: a2e bench face ...)

A random model with BFM's sizes (35,709 vertices, 80 identity and 64 expression modes) turns one identity
and `frames` expression vectors into [frames, 35709, 3] vertices. Rows: `jax_jit` is MorphableModel.vertices
under jax.jit (what the project runs), `numpy_einsum` the baseline. Both compute the same float32 result;
times are medians over `repeats` runs after `warmup` runs (the first JAX call compiles), interleaved.
"""

import argparse
import json
import platform
import statistics

import numpy as np
from timing import timed


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--frames", type=int, default=250)
  parser.add_argument("--vertices", type=int, default=35_709)
  parser.add_argument("--num-id", type=int, default=80)
  parser.add_argument("--num-exp", type=int, default=64)
  parser.add_argument("--repeats", type=int, default=20)
  parser.add_argument("--warmup", type=int, default=3)
  parser.add_argument("--json", default="bench_face.json", help="where to write the results")
  args = parser.parse_args(argv)

  import jax
  import jax.numpy as jnp

  from a2e_jax.face.model import MorphableModel

  rng = np.random.default_rng(0)
  n = args.vertices
  arrays = {
    "mean": rng.normal(size=(n, 3)).astype(np.float32),
    "id_basis": (rng.normal(size=(n, 3, args.num_id)) * 1e-2).astype(np.float32),
    "exp_basis": (rng.normal(size=(n, 3, args.num_exp)) * 1e-2).astype(np.float32),
  }
  id_k = rng.normal(size=(args.num_id,)).astype(np.float32)
  exp_tk = rng.normal(size=(args.frames, args.num_exp)).astype(np.float32)
  model = MorphableModel(**{k: jnp.asarray(v) for k, v in arrays.items()},
                         triangles=jnp.zeros((1, 3), jnp.int32), landmarks=jnp.zeros((68,), jnp.int32),
                         regions={})
  # The model is an argument, not a closure constant, as in real use (face/model.py).
  vertices = jax.jit(lambda m, i, e: m.vertices(i, e))
  id_dev, exp_dev = jax.device_put(id_k), jax.device_put(exp_tk)

  def run_jax():
    return vertices(model, id_dev, exp_dev).block_until_ready()

  def run_numpy():
    shape = arrays["mean"] + np.einsum("k,nck->nc", id_k, arrays["id_basis"], optimize=True)
    return shape[None] + np.einsum("tk,nck->tnc", exp_tk, arrays["exp_basis"], optimize=True)

  expected = run_numpy()
  max_diff = max(float(np.abs(np.asarray(fn()) - expected).max()) for fn in (run_jax,))
  results = {}
  all_times = timed({"jax_jit": run_jax, "numpy_einsum": run_numpy},
                    args.repeats, args.warmup)
  for name, times in all_times.items():
    median = statistics.median(times)
    results[name] = {"median_ms": 1e3 * median, "min_ms": 1e3 * min(times),
                     "frames_per_s": args.frames / median}
  ratio = results["numpy_einsum"]["median_ms"] / results["jax_jit"]["median_ms"]
  report = {
    "benchmark": "face.vertices",
    "config": vars(args) | {"output_shape": [args.frames, n, 3]},
    "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                "jax_backend": jax.default_backend(), "device": str(jax.devices()[0].device_kind),
                "jax": jax.__version__, "numpy": np.__version__},
    "results": results,
    "speedup_jax_over_numpy": ratio,
    "max_abs_diff": max_diff,
  }
  print(f"vertices(): {args.frames} frames x {n:,} vertices ({args.num_id} id, {args.num_exp} exp), "
        f"median of {args.repeats} after {args.warmup} warm-up, on {report['machine']['device']}")
  print(f"{'implementation':<16}{'median ms':>12}{'min ms':>10}{'frames/s':>12}")
  for name, r in results.items():
    print(f"{name:<16}{r['median_ms']:>12.2f}{r['min_ms']:>10.2f}{r['frames_per_s']:>12,.0f}")
  print(f"JAX / numpy speed-up: {ratio:.2f}x   (max |difference| {max_diff:.2e})")
  with open(args.json, "w") as f:
    json.dump(report, f, indent=2)
  print(f"wrote {args.json}")
  return report


if __name__ == "__main__":
  main()
