"""Benchmark: the JAX rasterizer vs OpenGL (moderngl on EGL; Mesa's llvmpipe on a CPU-only machine).

  python tools/bench_render.py [--sizes 224 256 512] [--batches 1 32] [--repeats 5] [--json bench_render.json]
  (or: a2e bench render ...)

Meshes: a BFM-sized face-like mesh (35,709 vertices, 70,789 triangles; tests/synthetic_meshes.py) and the
built-in face (18,887 vertices, 37,232 triangles), in random head poses with Deep3DFaceRecon's camera.
Each row turns B frames of screen vertices into per-pixel triangle id, barycentrics and depth on the host:
  jax      `rasterize` under jit (visibility + differentiable barycentrics and depth), result as numpy
  gl_same  OpenGL with the same outputs (unindexed draw with barycentric attributes, 2 float targets)
  gl_fast  OpenGL's quickest route to id and depth only (indexed draw, no barycentrics)
Times are medians over `repeats` after a warm-up (which compiles), the three taking turns within each
repeat so that load from other processes hits them alike; frames/s = B / median wall time. Ratios are JAX
frames/s over each OpenGL row's. The JSON also has the process CPU time per call (XLA's and llvmpipe's
threads both run in this process), which other processes' load disturbs less than wall time.
"""

import argparse
import json
import pathlib
import platform
import statistics
import sys
import time

import numpy as np
from timing import timed_runs

# The mesh generator and the OpenGL reference renderer are test fixtures (tests/), shared with this benchmark.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))


def meshes(names):
  import synthetic_meshes as synthetic

  out = {}
  if "bfm_sized" in names:
    out["bfm_sized"] = synthetic.face_like_mesh()
  if "builtin" in names:
    from a2e_jax.face.builtin import builtin_model

    model = builtin_model()
    out["builtin"] = (np.asarray(model.mean), np.asarray(model.triangles))
  return out


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--sizes", type=int, nargs="+", default=[224, 256, 512])
  parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
  parser.add_argument("--meshes", nargs="+", default=["bfm_sized", "builtin"],
                      choices=["bfm_sized", "builtin"])
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--json", default="bench_render.json", help="where to write the results")
  args = parser.parse_args(argv)

  import jax
  import jax.numpy as jnp
  import reference_gl
  import synthetic_meshes as synthetic

  from a2e_jax.render import camera
  from a2e_jax.render.rasterize import rasterize

  ctx = reference_gl.context()
  rows = []
  header = (f"{'mesh':10s} {'size':>5s} {'batch':>5s} {'jax f/s':>9s} {'gl_same f/s':>12s} "
            f"{'gl_fast f/s':>12s} {'jax/gl_same':>12s} {'jax/gl_fast':>12s}")
  print(header)
  for mesh_name, (verts, triangles) in meshes(args.meshes).items():
    for size in args.sizes:
      cam = camera.deep3d_camera(size)
      for batch in args.batches:
        angles, trans = synthetic.random_poses(batch, seed=size + batch)
        screen = camera.project(cam, camera.transform(jnp.asarray(verts)[None], angles, trans))
        screen_np = np.asarray(screen)
        fn = jax.jit(lambda s, h=size, t=triangles: rasterize(s, t, h, h))
        gl_same = reference_gl.GLRasterizer(triangles, size, size, far=30.0)
        gl_fast = reference_gl.GLRasterizer(triangles, size, size, far=30.0, barycentrics=False)

        def run_jax(fn=fn, screen=screen):
          frags = fn(screen)
          return np.asarray(frags.tri_id), np.asarray(frags.bary), np.asarray(frags.depth)

        runs = timed_runs({"jax": run_jax, "gl_same": lambda g=gl_same, s=screen_np: g(s),
                           "gl_fast": lambda g=gl_fast, s=screen_np: g(s)}, args.repeats, warmup=1)
        times = {k: [r.wall for r in v] for k, v in runs.items()}
        cpu = {k: [r.cpu for r in v] for k, v in runs.items()}
        gl_same.release()
        gl_fast.release()
        fps = {k: batch / statistics.median(v) for k, v in times.items()}
        row = dict(mesh=mesh_name, vertices=int(len(verts)), triangles=int(len(triangles)), size=size,
                   batch=batch, fps=fps, median_s={k: statistics.median(v) for k, v in times.items()},
                   min_s={k: min(v) for k, v in times.items()},
                   cpu_median_s={k: statistics.median(v) for k, v in cpu.items()},
                   ratio_vs_gl_same=fps["jax"] / fps["gl_same"], ratio_vs_gl_fast=fps["jax"] / fps["gl_fast"])
        rows.append(row)
        print(f"{mesh_name:10s} {size:5d} {batch:5d} {fps['jax']:9.1f} {fps['gl_same']:12.1f} "
              f"{fps['gl_fast']:12.1f} {row['ratio_vs_gl_same']:12.2f} {row['ratio_vs_gl_fast']:12.2f}",
              flush=True)
  result = dict(
    benchmark="render", rows=rows, repeats=args.repeats,
    machine=dict(platform=platform.platform(), processor=platform.processor(), jax=jax.__version__,
                 devices=[str(d) for d in jax.devices()], gl_renderer=ctx.info["GL_RENDERER"]),
    date=time.strftime("%Y-%m-%d"))
  with open(args.json, "w") as f:
    json.dump(result, f, indent=2)
  print(f"wrote {args.json}")
  return result


if __name__ == "__main__":
  main()
