"""Output files that are whole or absent: a checked path, a temporary name while writing, a rename at the end.

A command that fails half-way (a bad input found late, a full disk, Ctrl-C) leaves no partial file and no
folder it created behind; the rename is atomic on one file system, so a reader never sees half a file.
"""

import contextlib
import os

from a2e_jax.core.errors import UserError


def check_output_file(path: str, flag: str = "--out") -> str:
  """`path`, unless it cannot be a file to write: a folder, or under a file. Creates nothing."""
  if not path:
    raise UserError(f"{flag} is empty; give a file name")
  if os.path.isdir(path):
    raise UserError(f"{flag} {path!r} is a folder; give a file name inside it")
  parent = os.path.dirname(os.path.abspath(path))
  while not os.path.exists(parent):
    parent = os.path.dirname(parent)
  if not os.path.isdir(parent):
    raise UserError(f"{flag} {path!r}: {parent} is a file, not a folder")
  return path


@contextlib.contextmanager
def atomic_output(path: str, flag: str = "--out"):
  """Yields a temporary path beside `path` (same extension, so writers that go by it still do); renames it to
  `path` when the block succeeds, and removes it and any folder it created when the block raises."""
  check_output_file(path, flag)
  folder = os.path.dirname(os.path.abspath(path))
  created = []
  probe = folder
  while not os.path.exists(probe):
    created.append(probe)
    probe = os.path.dirname(probe)
  os.makedirs(folder, exist_ok=True)
  stem, ext = os.path.splitext(os.path.basename(path))
  temporary = os.path.join(folder, f".{stem}.partial-{os.getpid()}{ext}")
  try:
    yield temporary
    os.replace(temporary, path)
  except BaseException:
    with contextlib.suppress(FileNotFoundError):
      os.remove(temporary)
    for made in created:  # deepest first
      with contextlib.suppress(OSError):
        os.rmdir(made)
    raise
