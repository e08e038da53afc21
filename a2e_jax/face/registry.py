"""Resolving a face-model spec (`--model builtin|ict|bfm|PATH`) to a MorphableModel.

  builtin       the procedural face shipped with the package (a2e_jax.face.builtin)
  ict, bfm      the model converted by `a2e models convert --from ict|bfm`: $A2E_ICT_MODEL / $A2E_BFM_MODEL
                if set, else <cache>/models/ict.npz / bfm.npz, where <cache> is $A2E_CACHE_DIR or
                $XDG_CACHE_HOME/a2e_jax (default ~/.cache/a2e_jax)
  PATH          our .npz; a BFM_model_front.mat; an ICT-FaceKit FaceXModel folder (converted on the fly)
Resolved models are cached per process (keyed by file and modification time): they are tens of MB.
"""

import functools
import os

from a2e_jax.core.errors import UserError
from a2e_jax.core.paths import cache_dir
from a2e_jax.face.bfm import load_bfm
from a2e_jax.face.builtin import builtin_model
from a2e_jax.face.ict import load_ict
from a2e_jax.face.model import load_model

NAMED = ("builtin", "ict", "bfm")
ENV_VARS = {"ict": "A2E_ICT_MODEL", "bfm": "A2E_BFM_MODEL"}


def default_model_path(kind: str) -> str:
  """Where `a2e models convert --from KIND` writes by default: <cache>/models/KIND.npz."""
  return os.path.join(cache_dir(), "models", f"{kind}.npz")


def model_path(spec: str) -> str | None:
  """The file behind `spec` (None for builtin); raises UserError when a named model was never converted."""
  if spec == "builtin":
    return None
  if spec in ENV_VARS:
    env = os.environ.get(ENV_VARS[spec])
    if env:
      if not os.path.exists(env):
        raise UserError(f"${ENV_VARS[spec]}={env!r} does not exist; point it at a converted .npz")
      return env
    path = default_model_path(spec)
    if not os.path.exists(path):
      source = "BFM_model_front.mat" if spec == "bfm" else "ICT-FaceKit/FaceXModel"
      raise UserError(f"no converted {spec.upper()} model at {path}; run 'a2e models convert --from {spec} "
                      f"PATH/{source}' once (or set ${ENV_VARS[spec]})")
    return path
  if not os.path.exists(spec):
    raise UserError(f"face model {spec!r} not found; use builtin, ict, bfm or a path to a .npz, "
                    "BFM_model_front.mat or FaceXModel folder")
  return spec


def resolve_model(spec: str | None = "builtin"):
  """The MorphableModel named by `spec` (None or "" mean builtin)."""
  spec = spec or "builtin"
  path = model_path(spec)
  if path is None:
    return builtin_model()
  return _load(os.path.abspath(path), os.path.getmtime(path))


@functools.lru_cache(maxsize=4)
def _load(path: str, mtime: float):
  del mtime  # part of the cache key only
  if os.path.isdir(path):
    return load_ict(path)
  if path.lower().endswith(".mat"):
    return load_bfm(path)

  return load_model(path)
