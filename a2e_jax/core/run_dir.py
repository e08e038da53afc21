"""The read side of a training run's folder (`a2e train --workdir DIR`): its config and its parameters.

  DIR/config.json              the run's config (train/checkpoint.py `save_run_config` writes it)
  DIR/checkpoints/<step>/      one kept checkpoint: params, train, data, integrity, metrics when it had
                               them (train/checkpoint.py)
Inference and evaluation read runs through this module alone, without the trainer and without Orbax's
CheckpointManager: it lists the finished steps, ranks them by their saved metrics and reads the `params`
item alone. Writing checkpoints and resuming training is train/checkpoint.py's, which shares the names and
helpers below.
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
METRICS = "metrics"  # the item and file where Orbax's manager keeps the metrics given to `save`


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


def _steps(directory: epath.Path) -> list[int]:
  """The run's finished checkpoint steps, oldest first.

  Orbax writes a step under a temporary name (`<step>.orbax-checkpoint-tmp-<time>`) and renames it when
  every item is on disk, or, on object stores without atomic renames (gs://), writes `commit_success.txt`
  into the step last; `ocp.utils.checkpoint_steps` applies that rule, as the trainer's manager does, so a
  step cut off mid-save is never read.
  """
  if not directory.exists():
    return []
  return sorted(ocp.utils.checkpoint_steps(directory))


def _metric(step_dir: epath.Path, name: str) -> float | None:
  """The value of eval metric `name` the trainer saved with a step (Orbax's manager keeps the metrics given
  to `save` as the JSON item `metrics/metrics`), or None when the step has none."""
  try:
    value = ocp.JsonCheckpointHandler(filename=METRICS).restore(step_dir / METRICS).get(name)
  except FileNotFoundError:
    return None
  return None if value is None else float(value)


def _best_step(directory: epath.Path, steps: list[int], metric: str | None, mode: str) -> int:
  """The step with the best `metric` ("min" or "max"; the later step on a tie), as the trainer's
  `best_fn` ranks them; the latest step when no step has the metric."""
  scored = [(value, step) for step in steps
            if metric and (value := _metric(directory / str(step), metric)) is not None]
  if not scored:
    return steps[-1]
  sign = -1.0 if mode == "min" else 1.0
  return max(scored, key=lambda vs: (sign * vs[0], vs[1]))[1]


def _pick_step(directory: epath.Path, steps: list[int], step, best_metric: str | None, best_mode: str) -> int:
  if step == "latest":
    return steps[-1]
  if step == "best":
    return _best_step(directory, steps, best_metric, best_mode)
  if not str(step).isdigit() or int(step) not in steps:
    raise UserError(f"no checkpoint {step!r} in {directory}; pick 'best', 'latest' or one of {steps}")
  return int(step)


def _read_params(params_dir: epath.Path, abstract_params):
  """The `params` item of a step, read alone by Orbax's single-item reader (no CheckpointManager)."""
  with quiet_libraries(), ocp.Checkpointer(ocp.StandardCheckpointHandler()) as reader:
    if abstract_params is None:
      device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
      tree = reader.metadata(params_dir).item_metadata.tree
      abstract_params = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), tree)
    return reader.restore(params_dir, args=ocp.args.StandardRestore(abstract_params))


def restore_params(workdir, step: int | str = "best", abstract_params=None):
  """The parameters of a run's checkpoint, for inference and evaluation.

  Reads the step's `params` item alone, with Orbax's single-item reader rather than the trainer's
  CheckpointManager, and checks it against the step's file list and array checksums (core/integrity.py).

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
  directory = absolute(workdir) / CHECKPOINTS
  if not directory.exists():
    raise UserError(f"no checkpoints in {directory}; train first (a2e train --workdir {workdir})")
  where, fix = f"the checkpoints in {directory}", "pass another --step or retrain"
  try:
    steps = _steps(directory)
    if not steps:
      raise UserError(f"no checkpoints in {directory}; train first")
    chosen = _pick_step(directory, steps, step, ckpt_cfg.get("best_metric"), ckpt_cfg.get("best_mode", "min"))
    step_dir = directory / str(chosen)
    where = f"checkpoint {step_dir}"
    others = ", ".join(str(s) for s in steps if s != chosen) or "none"
    fix = f"pass another --step (steps: {others}) or retrain"
    problem = integrity.verify_files(step_dir, prefixes=("params/", "integrity/"))
    if problem is not None:
      raise UserError(f"{where} is damaged ({problem}); {fix}")
    params = _read_params(step_dir / "params", abstract_params)
    saved = None
    if (step_dir / "integrity").exists():  # steps saved before the checksums have only the finite check
      saved = ocp.JsonCheckpointHandler().restore(step_dir / "integrity").get("params")
  except UserError:
    raise
  except Exception as e:  # noqa: BLE001 - see train/checkpoint.py Checkpointer._restore_step.
    raise UserError(f"{where} is unreadable ({describe(e)}); {fix}") from None
  problem = integrity.verify_arrays("params", params, saved)
  if problem is not None:
    raise UserError(f"{where} is damaged ({problem}); {fix}")
  return params
