"""The benchmarks' timing loop: warm-up calls, then repeats in which the rows take turns.

Taking turns within every repeat means load from other processes hits every row alike, so the ratios
between rows stay meaningful on a shared machine even when the absolute times move.
"""

import collections
import time

Run = collections.namedtuple("Run", "wall cpu result")  # seconds of wall clock and of process CPU


def timed_runs(fns: dict, repeats: int, warmup: int) -> dict[str, list[Run]]:
  """{name: [Run] * repeats} for callables that block until their result exists."""
  for fn in fns.values():
    for _ in range(warmup):
      fn()
  runs = {name: [] for name in fns}
  for _ in range(repeats):
    for name, fn in fns.items():
      start, start_cpu = time.perf_counter(), time.process_time()
      result = fn()
      runs[name].append(Run(time.perf_counter() - start, time.process_time() - start_cpu, result))
  return runs


def timed(fns: dict, repeats: int, warmup: int) -> dict[str, list[float]]:
  """{name: wall seconds of each repeat}."""
  return {name: [r.wall for r in runs] for name, runs in timed_runs(fns, repeats, warmup).items()}
