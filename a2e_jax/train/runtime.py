"""What the JAX runtime offers against what a config asks: platform, devices, processes, versions, mesh.

`a2e env [--config FILE.py[:VARIANT]]` prints `report(config)`; the trainer calls `check(config)` before
building anything, which stops with one line when the config's mesh needs more devices than JAX sees and
warns when a config meant for GPUs or TPUs (`config.platform`) runs on another platform, the usual sign of
a CPU-only JAX in the venv (`pip install -e '.[cuda]'` or `'.[tpu]'`).
"""

import importlib.metadata
import math
import sys

import jax

from a2e_jax.core.errors import UserError
from a2e_jax.data import batching
from a2e_jax.train import sharding

PLATFORMS = ("", "cpu", "gpu", "tpu")  # config.platform: "" runs anywhere
_EXTRA = {"gpu": "cuda", "tpu": "tpu"}
_PACKAGES = ("jax", "jaxlib", "jax-cuda12-plugin", "libtpu", "flax", "optax", "orbax-checkpoint", "grain",
             "etils", "numpy")


def versions() -> dict[str, str]:
  """Installed versions of the packages a run depends on (absent ones left out)."""
  out = {"python": sys.version.split()[0]}
  for name in _PACKAGES:
    try:
      out[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      pass
  return out


def _platform_hint(platform: str) -> str:
  extra = _EXTRA.get(platform)
  return f"; install JAX for it with pip install -e '.[{extra}]' (README, scale)" if extra else ""


def check(config) -> list[str]:
  """Raises UserError when `config.mesh` needs more devices than JAX sees; returns warnings (lines) for a
  config whose `platform` differs from JAX's backend."""
  asked = config.get("platform", "")
  if asked not in PLATFORMS:
    raise UserError(f"config platform={asked!r}; choose one of {', '.join(repr(p) for p in PLATFORMS)}")
  backend, count = jax.default_backend(), jax.device_count()
  sizes = [int(config.mesh[name]) for name in sharding.MESH_AXES]
  needed = math.prod(s for s in sizes if s > 0)
  if needed > count:
    spec = " x ".join(f"{n}={s}" for n, s in zip(sharding.MESH_AXES, sizes))
    raise UserError(f"the mesh {spec} needs {needed} devices but JAX sees {count} {backend} device"
                    f"{'s' if count > 1 else ''} on {jax.process_count()} process"
                    f"{'es' if jax.process_count() > 1 else ''}"
                    + (_platform_hint(asked) if asked and asked != backend else
                       "; lower --config.mesh.* or set one of them to -1"))
  if asked and asked != backend:
    return [f"the config asks for {asked} but JAX runs on {backend} ({count} device(s)): expect it to be slow"
            f"{_platform_hint(asked)}"]
  return []


def report(config=None) -> dict:
  """JSON-able description of the runtime, and of the mesh `config` would build on it (or why not)."""
  devices = jax.devices()
  kinds = sorted({d.device_kind for d in devices})
  out = {
    "platform": jax.default_backend(),
    "device_kinds": kinds,
    "devices": len(devices),
    "local_devices": jax.local_device_count(),
    "processes": jax.process_count(),
    "process_index": jax.process_index(),
    "versions": versions(),
  }
  if config is not None:
    out["config_platform"] = config.get("platform", "") or "any"
    try:
      out["warnings"] = check(config)
      mesh = sharding.make_mesh(config.mesh)
      out["mesh"] = dict(mesh.shape)
      out["batch_per_device"] = config.train.batch_size / batching.batch_divisor(mesh)
    except UserError as e:
      out["mesh_error"] = str(e)
  return out


def format_report(info: dict) -> str:
  lines = [
    f"platform   {info['platform']} ({', '.join(info['device_kinds'])})",
    f"devices    {info['devices']} ({info['local_devices']} local)",
    f"processes  {info['processes']} (this is process {info['process_index']})",
    "versions   " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()),
  ]
  if "config_platform" in info:
    lines.append(f"config     platform {info['config_platform']}")
    if "mesh" in info:
      lines.append("mesh       " + " ".join(f"{k}={v}" for k, v in info["mesh"].items())
                   + f", {info['batch_per_device']:g} examples per device and step")
    else:
      lines.append(f"mesh       cannot be built: {info['mesh_error']}")
    lines += [f"warning    {w}" for w in info.get("warnings", [])]
  return "\n".join(lines)
