"""`a2e bench NAME [ARGS...]`: runs `tools/bench_NAME.py` of a source checkout (tools are not installed)."""

import argparse
import pathlib
import runpy
import sys

from a2e_jax.core.errors import UserError

TOOLS = pathlib.Path(__file__).resolve().parents[2] / "tools"


def available() -> list[str]:
  return sorted(p.stem.removeprefix("bench_") for p in TOOLS.glob("bench_*.py"))


def register(subparsers):
  parser = subparsers.add_parser(
    "bench", help="run a benchmark from tools/ (prints a table, writes JSON)",
    description="Runs tools/bench_NAME.py with the remaining arguments (`a2e bench NAME --help`: its flags).",
  )
  parser.add_argument("name", nargs="?", help="benchmark name; omit to list them")
  parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the benchmark")
  parser.set_defaults(func=run)


def run(args) -> int:
  names = available()
  if not args.name:
    print("benchmarks:", ", ".join(names) if names else f"none (no {TOOLS})")
    return 0
  if args.name not in names:
    choices = ", ".join(names) or f"none found in {TOOLS}"
    raise UserError(f"no benchmark {args.name!r}; choose one of: {choices}")
  script = TOOLS / f"bench_{args.name}.py"
  sys.argv = [str(script), *args.args]
  sys.path.insert(0, str(TOOLS))  # as `python tools/bench_NAME.py` would: the tools' shared modules
  runpy.run_path(str(script), run_name="__main__")
  return 0
