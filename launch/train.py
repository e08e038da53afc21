"""The training entry point for launchers: absl flags, then `a2e_jax.cli.train.train_main`.

  python launch/train.py --config configs/synthetic.py:tiny --workdir /tmp/a2e_tiny [--config.train.steps=20]

Several processes (launch/multiprocess_cpu.sh, launch/slurm_gpu.sbatch, launch/tpu_pod.sh) join one run
through `jax.distributed.initialize`: under SLURM and on TPU pod slices it finds its peers by itself;
elsewhere give --coordinator_address, --num_processes and --process_id (or the A2E_* variables).
"""

import sys

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "config file[:variant], e.g. configs/synthetic.py",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "run folder (created; resumed when it has checkpoints)")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multi-process runs)")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "processes in the run (multi-process runs)")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "this process's index in [0, num_processes)")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  from a2e_jax.cli import console
  from a2e_jax.cli.train import train_main
  from a2e_jax.core.errors import UserError

  try:
    with console(verbose=False):
      return train_main(_CONFIG.value, _WORKDIR.value, coordinator_address=_COORDINATOR.value,
                        num_processes=_NUM_PROCESSES.value, process_id=_PROCESS_ID.value)
  except UserError as e:
    print(f"a2e: error: {e}", file=sys.stderr)
    return 2


if __name__ == "__main__":
  app.run(main)
