"""The `a2e` command: a thin dispatcher over subcommands, one module per command group.

Each module in `_SUBCOMMAND_MODULES` (this package) defines `register(subparsers)`, adding one or more
subcommands whose parsers set `func(args) -> int | None`. Those modules import the packages that do the
work (JAX, librosa and the like behind them) inside the functions, so `a2e --help` stays fast.
"""

import argparse
import contextlib
import importlib
import importlib.util
import logging
import sys
import warnings

from a2e_jax import __version__
from a2e_jax.core.errors import UserError

_SUBCOMMAND_MODULES = (
  "a2e_jax.cli.models",  # models, export
  "a2e_jax.cli.render",  # render
  "a2e_jax.cli.data",  # data
  "a2e_jax.cli.train",  # train
  "a2e_jax.cli.track",  # track
  "a2e_jax.cli.generate",  # generate, demo
  "a2e_jax.cli.eval",  # eval
  "a2e_jax.cli.landmarks",  # landmarks
  "a2e_jax.cli.bench",  # bench
)


class _Parser(argparse.ArgumentParser):
  """argparse that raises UserError instead of exiting, so every user error looks the same."""

  def error(self, message):
    raise UserError(f"{self.prog}: {message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
  parser = _Parser(prog="a2e", description=__doc__.splitlines()[0])
  parser.add_argument("--version", action="version", version=f"a2e_jax {__version__}")
  parser.add_argument("--verbose", action="store_true",
                      help="show the libraries' log records (absl, Orbax, TensorStore, JAX) and whole "
                           "warnings; may come anywhere on the line")
  subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
  subparsers.required = True
  for name in _SUBCOMMAND_MODULES:
    if importlib.util.find_spec(name) is not None:
      importlib.import_module(name).register(subparsers)
  return parser


# Libraries that log at INFO/WARNING on every save, retry or fallback; their records stay off the console
# unless --verbose (the exception or the warning that follows says what matters).
_CHATTY_LOGGERS = ("absl", "orbax", "tensorstore", "jax", "asyncio", "grain")


@contextlib.contextmanager
def console(verbose: bool):
  """One line per warning (`a2e: warning: ...`) and quiet libraries, or, with `verbose`, everything."""
  loggers = [logging.getLogger(name) for name in _CHATTY_LOGGERS]
  levels = [logger.level for logger in loggers]
  with warnings.catch_warnings():  # restores the filters and showwarning on the way out
    if verbose:
      logging.basicConfig(level=logging.INFO)
      for logger in loggers:
        logger.setLevel(logging.INFO)
    else:
      for logger in loggers:
        logger.setLevel(logging.ERROR)
      for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
        warnings.simplefilter("ignore", category)  # addressed to the libraries' developers, not to users
      warnings.showwarning = _one_line
    try:
      yield
    finally:
      for logger, level in zip(loggers, levels):
        logger.setLevel(level)


def _one_line(message, category, filename, lineno, file=None, line=None):
  del category, filename, lineno, line
  print(f"a2e: warning: {' '.join(str(message).split())}", file=file or sys.stderr)


def main(argv: list[str] | None = None) -> int:
  argv = sys.argv[1:] if argv is None else argv
  verbose = "--verbose" in argv
  argv = [a for a in argv if a != "--verbose"]
  try:
    args, extra = build_parser().parse_known_args(argv)
    if extra and not getattr(args, "accepts_config_overrides", False):
      raise UserError(f"a2e {args.command}: unrecognized arguments: {' '.join(extra)}")
    args.config_overrides = extra
    with console(verbose):
      status = args.func(args)
  except UserError as e:
    print(f"a2e: error: {e}", file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print("a2e: interrupted", file=sys.stderr)
    return 130
  return int(status or 0)
