"""Joining a multi-process run: `jax.distributed.initialize` when several processes are configured.

Where the processes come from, in order:
  explicit  coordinator address, process count and id from flags or the environment variables
            A2E_COORDINATOR_ADDRESS, A2E_NUM_PROCESSES, A2E_PROCESS_ID (launch/multiprocess_cpu.sh)
  auto      A2E_DISTRIBUTED=auto: JAX's own cluster detection (launch/tpu_pod.sh: a TPU VM's metadata)
  SLURM     a job step with SLURM_NTASKS > 1 (launch/slurm_gpu.sbatch); JAX reads the rest, and gives
            each process the GPU of its SLURM_LOCALID (so: one task per GPU)
  TPU pod   a slice with several hosts listed in TPU_WORKER_HOSTNAMES (GKE); JAX reads the rest
Anything else is one process, which needs no initialisation.
"""

import os

import jax

from a2e_jax.core.errors import UserError

ENV_COORDINATOR = "A2E_COORDINATOR_ADDRESS"
ENV_NUM_PROCESSES = "A2E_NUM_PROCESSES"
ENV_PROCESS_ID = "A2E_PROCESS_ID"


def detect(coordinator_address: str | None = None, num_processes: int | None = None,
           process_id: int | None = None, env=None) -> tuple[str, dict]:
  """(kind, keyword arguments for jax.distributed.initialize); kind is one of
  "single", "explicit", "auto", "slurm", "tpu"."""
  env = os.environ if env is None else env
  coordinator_address = coordinator_address or env.get(ENV_COORDINATOR) or None
  num_processes = num_processes if num_processes is not None else _int(env, ENV_NUM_PROCESSES)
  process_id = process_id if process_id is not None else _int(env, ENV_PROCESS_ID)
  given = [x is not None for x in (coordinator_address, num_processes, process_id)]
  if any(given):
    if not all(given):
      raise UserError("a multi-process run needs all of --coordinator_address, --num_processes and "
                      f"--process_id (or {ENV_COORDINATOR}, {ENV_NUM_PROCESSES}, {ENV_PROCESS_ID})")
    if num_processes < 1 or not 0 <= process_id < num_processes:
      raise UserError(f"process id {process_id} must be in [0, {num_processes}) and the count >= 1")
    if num_processes == 1:
      return "single", {}
    return "explicit", dict(coordinator_address=coordinator_address, num_processes=num_processes,
                            process_id=process_id)
  if env.get("A2E_DISTRIBUTED") == "auto":
    return "auto", {}
  slurm_tasks = max(_int(env, "SLURM_NTASKS") or 1, _int(env, "SLURM_STEP_NUM_TASKS") or 1)
  if "SLURM_JOB_ID" in env and slurm_tasks > 1:
    return "slurm", {}
  if len([h for h in env.get("TPU_WORKER_HOSTNAMES", "").split(",") if h.strip()]) > 1:
    return "tpu", {}
  return "single", {}


def _int(env, name: str) -> int | None:
  value = env.get(name)
  if value in (None, ""):
    return None
  try:
    return int(value)
  except ValueError:
    raise UserError(f"environment variable {name}={value!r} must be an integer") from None


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> str:
  """Calls `jax.distributed.initialize` when `detect` finds several processes; returns the kind."""
  kind, kwargs = detect(coordinator_address, num_processes, process_id)
  if kind != "single":
    jax.distributed.initialize(**kwargs)
  return kind
