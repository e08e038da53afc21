"""`a2e train`: train A2ENet from a config file, or resume the run in --workdir; `a2e env`: what JAX sees."""

import argparse
import json
import logging

EPILOG = """Any config value can be overridden: --config.KEY=VALUE (repeatable).

examples:
  a2e train --config configs/synthetic.py --workdir runs/synthetic
  a2e train --config configs/synthetic.py:tiny --workdir /tmp/tiny --config.train.steps=20
Rerunning the same command resumes from the latest checkpoint. Several processes: launch/ (docs/training.md).
"""


def register(subparsers) -> None:
  parser = subparsers.add_parser(
    "train", help="train A2ENet (resumes the run in --workdir)",
    description="Train A2ENet from a config file, or resume the run in --workdir.",
    epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--config", required=True, metavar="FILE.py[:VARIANT]",
                      help="config file and variant, e.g. configs/synthetic.py:tiny")
  parser.add_argument("--workdir", required=True, metavar="DIR",
                      help="run folder: checkpoints, metrics.jsonl, tensorboard/ (resumed when present)")
  parser.set_defaults(func=run, accepts_config_overrides=True)

  env = subparsers.add_parser(
    "env", help="JAX platform, devices, processes, versions, and the mesh a config would build",
    description="What JAX sees here (platform, devices, processes, package versions) and, with --config, "
                "the mesh that config would build on it, or why it cannot.")
  env.add_argument("--config", metavar="FILE.py[:VARIANT]", help="also resolve this config's mesh")
  env.add_argument("--json", action="store_true", help="print JSON instead of a table")
  env.set_defaults(func=run_env, accepts_config_overrides=True)


def run_env(args) -> int:
  # Deferred: the command's packages load JAX, TFDS or SciPy, which `a2e --help` must not.
  from a2e_jax.core.config import load_config
  from a2e_jax.train import runtime

  config = None
  if args.config:
    config = load_config(args.config, args.config_overrides)
  info = runtime.report(config)
  print(json.dumps(info, indent=2) if args.json else runtime.format_report(info))
  return 0


def run(args) -> int:
  from a2e_jax.core.config import load_config  # absl and ml_collections: not for `a2e --help`

  config = load_config(args.config, args.config_overrides)
  return train_main(config, args.workdir)


def train_main(config, workdir, **distributed_args) -> int:
  """Joins a multi-process run if one is configured (`distributed.initialize(**distributed_args)`), trains,
  and prints where the results are."""
  # Deferred: the command's packages load JAX, TFDS or SciPy, which `a2e --help` must not.
  import jax

  from a2e_jax.train import distributed

  quiet_libraries()
  distributed.initialize(**distributed_args)
  from a2e_jax.train.trainer import train_and_evaluate  # deferred too: the trainer after joining the run

  result = train_and_evaluate(config, workdir)
  if jax.process_index() == 0:
    last = result["eval"].get("eval/loss", result["train"].get("loss"))
    if result["preempted"]:
      print(f"a2e train: stopped at step {result['step']} (SIGTERM); rerun the command to resume")
    elif last is None:
      print(f"a2e train: the run in {workdir} is already at step {result['step']}; raise "
            "--config.train.steps to train on")
    else:
      print(f"a2e train: done at step {result['step']} (loss {last:.4g}); run folder {workdir} "
            f"(tensorboard --logdir {workdir}/tensorboard)")
  return 0


def quiet_libraries() -> None:
  """Orbax and absl log every save at INFO/WARNING; keep the console for the progress bar and errors."""
  logging.getLogger("absl").setLevel(logging.ERROR)
  logging.getLogger("jax").setLevel(logging.WARNING)
