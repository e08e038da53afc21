"""The read side of a training run's folder (`a2e train --workdir DIR`): its config and its parameters.

  DIR/config.json              the run's config (train/checkpoint.py `save_run_config` writes it)
  DIR/checkpoints/<step>/      one kept checkpoint: params, train, data, integrity (train/checkpoint.py)
Inference and evaluation read runs through this module alone, without the trainer; writing checkpoints and
resuming training is train/checkpoint.py's, which shares the names and helpers below.
"""

import contextlib
import json
import logging
import os
import re

import jax
import ml_collections
import orbax.checkpoint as ocp
from etils import epath

from a2e_jax.core import integrity
from a2e_jax.core.channels import with_layout
from a2e_jax.core.errors import UserError

CHECKPOINTS = "checkpoints"
ITEMS = ("params", "train", "data", "integrity")
CONFIG = "config.json"


def absolute(path) -> epath.Path:
  """Orbax needs absolute paths; URLs (gs://...) already are."""
  text = os.fspath(path)
  return epath.Path(text if "://" in text else os.path.abspath(text))


def describe(e: BaseException) -> str:
  """`Type: first line` of an exception, at most 200 characters (TensorStore's messages run to pages)."""
  text = str(e).strip()
  first = text.splitlines()[0] if text else ""
  # TensorStore errors end in a pointer to their details, printed as a raw `<bound method ...>`.
  first = re.sub(r"\s*See full TensorStore details:.*", "", first)[:200]
  return f"{type(e).__name__}: {first}" if first else type(e).__name__


@contextlib.contextmanager
def quiet_libraries():
  """Keeps Orbax's log records (through absl) off the console while it opens or reads checkpoints: a
  failing read logs hundreds of lines of retries and TensorStore status dumps, and a read of some items
  warns about the others; the exception that follows, or the integrity check, says what failed."""
  loggers = [logging.getLogger(name) for name in ("absl", "orbax", "tensorstore", "asyncio")]
  levels = [logger.level for logger in loggers]
  for logger in loggers:
    logger.setLevel(logging.CRITICAL)
  try:
    yield
  finally:
    for logger, level in zip(loggers, levels):
      logger.setLevel(level)


def load_run_config(workdir) -> ml_collections.ConfigDict | None:
  """The config a run was trained with (`WORKDIR/config.json`), or None when it has none; its model
  section names its channel layout (core/channels.py `with_layout`)."""
  path = epath.Path(workdir) / CONFIG
  if not path.exists():
    return None
  values = json.loads(path.read_text())
  if "model" in values:
    values["model"] = with_layout(values["model"])
  return ml_collections.ConfigDict(values)


def _read_only_manager(workdir, best_metric: str | None, best_mode: str) -> ocp.CheckpointManager:
  directory = absolute(workdir) / CHECKPOINTS
  if not directory.exists():
    raise UserError(f"no checkpoints in {directory}; train first (a2e train --workdir {workdir})")
  best_fn = (lambda metrics: metrics[best_metric]) if best_metric else None
  with quiet_libraries():
    return ocp.CheckpointManager(
      directory, item_names=ITEMS, item_handlers={"params": ocp.StandardCheckpointHandler()},
      options=ocp.CheckpointManagerOptions(read_only=True, best_fn=best_fn, best_mode=best_mode))


def _pick_step(manager: ocp.CheckpointManager, directory, step) -> int:
  steps = sorted(manager.all_steps())
  if not steps:
    raise UserError(f"no checkpoints in {directory}; train first")
  if step == "latest":
    return steps[-1]
  if step == "best":
    return manager.best_step() or steps[-1]
  if not str(step).isdigit() or int(step) not in steps:
    raise UserError(f"no checkpoint {step!r} in {directory}; pick 'best', 'latest' or one of {steps}")
  return int(step)


def restore_params(workdir, step: int | str = "best", abstract_params=None):
  """The parameters of a run's checkpoint, for inference and evaluation.

  Args:
    workdir: the training run's folder (the one given to `a2e train --workdir`).
    step: "best" (by the run's `checkpoint.best_metric`; the latest when it has none), "latest", or a step.
    abstract_params: ShapeDtypeStructs with shardings to restore onto; by default every array goes whole
      to the first local device, whatever mesh saved it.
  Returns:
    The params pytree (nested dicts of jax.Arrays), as `module.apply({"params": params}, ...)` takes it.
  """
  config = load_run_config(workdir)
  ckpt_cfg = config.get("checkpoint", {}) if config is not None else {}
  manager = _read_only_manager(workdir, ckpt_cfg.get("best_metric"), ckpt_cfg.get("best_mode", "min"))
  directory = absolute(workdir) / CHECKPOINTS
  where, fix = f"the checkpoints in {directory}", "pass another --step or retrain"
  try:
    chosen = _pick_step(manager, directory, step)
    where = f"checkpoint {directory / str(chosen)}"
    others = ", ".join(str(s) for s in sorted(manager.all_steps()) if s != chosen) or "none"
    fix = f"pass another --step (steps: {others}) or retrain"
    problem = integrity.verify_files(directory / str(chosen), prefixes=("params/", "integrity/"))
    if problem is not None:
      raise UserError(f"{where} is damaged ({problem}); {fix}")
    if abstract_params is None:
      device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
      with quiet_libraries():
        tree = manager.item_metadata(chosen)["params"].tree
      abstract_params = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), tree)
    items = {"params": ocp.args.StandardRestore(abstract_params)}
    has_checksums = (directory / str(chosen) / "integrity").exists()
    if has_checksums:
      items["integrity"] = ocp.args.JsonRestore()
    with quiet_libraries():
      restored = manager.restore(chosen, args=ocp.args.Composite(**items))
  except UserError:
    raise
  except Exception as e:  # noqa: BLE001 - see train/checkpoint.py Checkpointer._restore_step.
    raise UserError(f"{where} is unreadable ({describe(e)}); {fix}") from None
  finally:
    manager.close()
  saved = restored["integrity"].get("params") if has_checksums else None
  problem = integrity.verify_arrays("params", restored["params"], saved)
  if problem is not None:
    raise UserError(f"{where} is damaged ({problem}); {fix}")
  return restored["params"]

