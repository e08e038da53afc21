"""In-memory filesystems standing in for cloud storage packages (gcsfs, s3fs) in fsspec's registry, so that
etils.epath reads and writes gs:// or s3:// URLs in a test, with files held in memory under their full
URLs."""

import contextlib
import sys

import fsspec
from etils.epath import backend
from fsspec.implementations.memory import MemoryFileSystem


@contextlib.contextmanager
def registered(*protocols: str):
  """Registers a fresh in-memory filesystem for `protocols` (e.g. "gs", "gcs"); yields its class (its
  `store` maps URLs to files). The registration and the files go away on exit."""

  class FakeBucket(MemoryFileSystem):
    protocol = protocols
    store: dict = {}
    pseudo_dirs: list = [""]

    def __init__(self, *args, finalize_on_close=False, **kwargs):
      del finalize_on_close  # a gcsfs option epath passes
      super().__init__(*args, **kwargs)

  # epath keeps one filesystem per scheme (an lru_cache): without clearing it, a bucket registered by an
  # earlier test in the same process would still receive this test's files.
  backend.fsspec_backend._get_filesystem.cache_clear()
  for name in protocols:
    fsspec.register_implementation(name, FakeBucket, clobber=True)
  try:
    yield FakeBucket
  finally:
    for name in protocols:
      sys.modules["fsspec.registry"]._registry.pop(name, None)
    backend.fsspec_backend._get_filesystem.cache_clear()
    FakeBucket.store.clear()
