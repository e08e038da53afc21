"""Benchmark: building the built-in face procedurally vs loading the same model from its saved .npz.

  python tools/bench_builtin_face.py [--repeats 7] [--warmup 1] [--json bench_builtin_face.json]
  (or: a2e bench builtin_face ...)

Rows: `build` runs the uncached `builtin_model()` (mesh, colours, 53 channels, identity modes, landmarks,
regions; numpy only), the peer `load_npz` reads the model that `MorphableModel.save` wrote (compressed,
versioned .npz, validated by `load_model`), i.e. what shipping the face as a file would cost instead. Times
are medians over `repeats` runs after `warmup` runs, the two taking turns within each repeat. Target: the
build stays under 2 s.
"""

import argparse
import json
import os
import platform
import statistics
import tempfile

import numpy as np
from timing import timed


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--repeats", type=int, default=7)
  parser.add_argument("--warmup", type=int, default=1)
  parser.add_argument("--json", default="bench_builtin_face.json", help="where to write the results")
  args = parser.parse_args(argv)

  from a2e_jax.face.builtin import builtin_model
  from a2e_jax.face.model import load_model

  build = builtin_model.__wrapped__  # the uncached builder
  model = build()
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "builtin.npz")
    model.save(path)
    size_mb = os.path.getsize(path) / 1e6
    fns = {"build": build, "load_npz": lambda: load_model(path)}
    times = timed(fns, args.repeats, args.warmup)

  result = {
    "benchmark": "builtin_face",
    "machine": f"{platform.machine()} {platform.processor() or ''} ({os.cpu_count()} CPUs)".strip(),
    "numpy": np.__version__,
    "vertices": model.num_vertices,
    "triangles": int(np.shape(model.triangles)[0]),
    "channels": model.num_exp,
    "identity_modes": model.num_id,
    "npz_mb": round(size_mb, 2),
    "repeats": args.repeats,
    "rows": {name: {"median_s": statistics.median(t), "min_s": min(t)} for name, t in times.items()},
  }
  result["build_over_load"] = result["rows"]["build"]["median_s"] / result["rows"]["load_npz"]["median_s"]
  print(f"built-in face: {model.num_vertices} vertices, {result['triangles']} triangles, "
        f"{model.num_exp} channels, {model.num_id} identity modes; .npz {size_mb:.1f} MB")
  print(f"{'row':<10} {'median s':>9} {'min s':>7}")
  for name, row in result["rows"].items():
    print(f"{name:<10} {row['median_s']:>9.3f} {row['min_s']:>7.3f}")
  print(f"build / load_npz: {result['build_over_load']:.2f}x (target: build < 2 s)")
  with open(args.json, "w") as f:
    json.dump(result, f, indent=2)
  return result


if __name__ == "__main__":
  main()
