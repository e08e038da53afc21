"""Per-user folders: the cache for converted face models and other files worth keeping between runs."""

import os


def cache_dir() -> str:
  """$A2E_CACHE_DIR, else $XDG_CACHE_HOME/a2e_jax (default ~/.cache/a2e_jax)."""
  if os.environ.get("A2E_CACHE_DIR"):
    return os.environ["A2E_CACHE_DIR"]
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(base, "a2e_jax")
