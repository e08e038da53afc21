"""Benchmark: building the built-in corpus (`a2e data synth`) and synthesising one utterance.

  python tools/bench_synth.py [--preset default] [--workers N] [--out DIR] [--json bench_synth.json]
  (or: a2e bench synth ...)

Builds the preset into --out (a temporary folder by default, deleted afterwards) and reports wall time,
CPU time (this process and its workers), clips per second and speech seconds per wall second; then times
`synthesize_utterance` (the demo's call) as the median of 20 calls after one warm-up. The machine's load
average is recorded with the figures, since build times on a shared machine scale with it. Target: the
default preset in under 5 minutes on a 2-core machine.
"""

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import tempfile
import time

from a2e_jax.core.schema import SYNTHETIC_PRESETS


def _cpu_seconds() -> float:
  own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
  return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--preset", default="default", choices=SYNTHETIC_PRESETS)
  parser.add_argument("--workers", type=int, default=None, help="processes (default: all CPUs)")
  parser.add_argument("--out", default=None, help="keep the corpus here (default: a temporary folder)")
  parser.add_argument("--json", default="bench_synth.json", help="where to write the results")
  args = parser.parse_args(argv)

  from a2e_jax.data.synth import build_corpus, synthesize_utterance

  out = args.out or tempfile.mkdtemp(prefix="a2e_bench_synth_")
  load_before = os.getloadavg()
  cpu_before, start = _cpu_seconds(), time.perf_counter()
  try:
    summary = build_corpus(out, preset=args.preset, seed=0, workers=args.workers, overwrite=True)
    wall, cpu = time.perf_counter() - start, _cpu_seconds() - cpu_before
    disk_mb = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(out) for f in files) / 1e6
  finally:
    if args.out is None:
      shutil.rmtree(out, ignore_errors=True)
  load_after = os.getloadavg()

  text = "The old bridge shook when the heavy truck rolled past."
  synthesize_utterance(text, 3, "happy", 2, seed=0)
  calls = []
  for i in range(20):
    begin = time.perf_counter()
    synthesize_utterance(text, i % 16, "angry", 1 + i % 3, seed=i)
    calls.append(time.perf_counter() - begin)

  result = {
    "benchmark": "synth",
    "machine": f"{platform.machine()} {platform.processor() or ''} ({os.cpu_count()} CPUs)".strip(),
    "load_average_before_after": [round(load_before[0], 1), round(load_after[0], 1)],
    "preset": args.preset, "workers": summary["workers"], "clips": summary["clips"],
    "audio_hours": round(summary["audio_hours"], 2), "disk_mb": round(disk_mb),
    "build_wall_s": round(wall, 1), "build_cpu_s": round(cpu, 1),
    "clips_per_s": round(summary["clips"] / wall, 1),
    "speech_s_per_wall_s": round(summary["audio_hours"] * 3600 / wall),
    "utterance_median_ms": round(1000 * statistics.median(calls), 1),
  }  # fmt: skip
  print(json.dumps(result, indent=1))
  with open(args.json, "w") as f:
    json.dump(result, f, indent=1)
  return result


if __name__ == "__main__":
  main()
