"""How well a run uses its devices: FLOPs of the compiled step, model FLOPs utilisation, device memory, and
the profiler window.

MFU = (XLA's FLOP count of one step on one device) / (step seconds × the device's peak FLOP/s). The count
comes from XLA's cost analysis of the compiled, partitioned step (replicated work, such as the optimizer
update under data parallelism, counts on every device). Peaks are dense matrix-unit figures from the
vendors' data sheets; float32 on GPUs counts TF32 (XLA's default precision for float32 matmuls on
Ampere and later) and on TPUs bfloat16 (its default passes). Devices not in the table get no MFU.
"""

import jax

# device_kind substring -> (bfloat16 peak, float32 peak) FLOP/s per JAX device. Longest match wins.
PEAK_FLOPS = {
  "H200": (989e12, 494e12),
  "H100": (989e12, 494e12),  # SXM; the PCIe card is lower (756e12 / 378e12)
  "H100 PCIe": (756e12, 378e12),
  "A100": (312e12, 156e12),
  "L4": (121e12, 60e12),
  "A10G": (70e12, 35e12),
  "V100": (125e12, 15.7e12),  # tensor cores take float16; bfloat16 runs at the float32 rate there
  "TPU v2": (22.5e12, 22.5e12),  # per core (a JAX device)
  "TPU v3": (61.5e12, 61.5e12),  # per core
  "TPU v4": (275e12, 275e12),
  "TPU v5 lite": (197e12, 197e12),
  "TPU v5e": (197e12, 197e12),
  "TPU v5p": (459e12, 459e12),
  "TPU v5": (459e12, 459e12),
  "TPU v6 lite": (918e12, 918e12),
  "TPU v6e": (918e12, 918e12),
}


def peak_flops(device_kind: str, dtype: str = "float32") -> float | None:
  """The peak FLOP/s of one device of `device_kind` for `dtype` compute, or None when unknown."""
  matches = [k for k in PEAK_FLOPS if k.lower() in device_kind.lower()]
  if not matches:
    return None
  bf16, f32 = PEAK_FLOPS[max(matches, key=len)]
  return bf16 if dtype == "bfloat16" else f32


def step_flops(compiled) -> float | None:
  """FLOPs of one call of a compiled (partitioned) program on one device, from XLA's cost analysis."""
  try:
    cost = compiled.cost_analysis()
  except Exception:  # noqa: BLE001 - backends without a cost model raise various errors
    return None
  cost = cost[0] if isinstance(cost, list | tuple) else cost
  flops = float((cost or {}).get("flops", 0.0))
  return flops or None


def device_memory() -> dict[str, float]:
  """Bytes in use and their peak on this process's first device, where the backend reports them (GPU,
  TPU; not the CPU), in GB."""
  stats = jax.local_devices()[0].memory_stats() or {}
  out = {}
  for key, name in (("bytes_in_use", "device_memory_gb"), ("peak_bytes_in_use", "device_memory_peak_gb"),
                    ("bytes_limit", "device_memory_limit_gb")):
    if key in stats:
      out[name] = stats[key] / 1e9
  return out


class Profiler:
  """A `jax.profiler` trace of steps start .. start + steps - 1 into `directory` (TensorBoard's profile
  plugin or Perfetto read it); start 0 traces nothing."""

  def __init__(self, directory, start: int, steps: int):
    self.directory, self.start, self.stop = str(directory), start, start + max(steps, 1)
    self.active = False

  def before(self, step: int) -> None:
    if self.start and step == self.start and not self.active:
      jax.profiler.start_trace(self.directory)
      self.active = True

  def after(self, step: int, outputs) -> None:
    if self.active and step + 1 >= self.stop:
      jax.block_until_ready(outputs)
      self.close()

  def close(self) -> None:
    if self.active:
      jax.profiler.stop_trace()
      self.active = False
