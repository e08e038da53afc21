"""Checkpoints of a run (the only module that imports Orbax).

`WORKDIR/checkpoints/<step>/` holds three items:
  params   the model parameters (sharded arrays; restorable alone by `restore_params`)
  train    {"step", "opt_state"}
  data     the input iterator's state, one JSON file per process
and `WORKDIR/config.json` the run's config (`save_run_config`), which rebuilds its model.
Saves are asynchronous (arrays are copied off the devices, then written in the background, so training goes
on). The N latest checkpoints are kept, plus the best by an eval metric when one is configured. A restore
reads onto the shardings of an abstract target tree, so a checkpoint saved on 8 devices restores on 1 or on
another mesh. An unreadable latest checkpoint (a crash mid-write on a file system without atomic renames, a
truncated file) is moved to `WORKDIR/corrupt_checkpoints/` with a warning, and the one before it is used.
"""

import dataclasses
import json
import logging
import os
import pathlib
import shutil
import warnings
from typing import Any

import jax
import ml_collections
import orbax.checkpoint as ocp
from etils import epath
from jax.experimental import multihost_utils

from a2e_jax.errors import UserError
from a2e_jax.train.state import TrainState

CHECKPOINTS = "checkpoints"
CORRUPT = "corrupt_checkpoints"
ITEMS = ("params", "train", "data")
CONFIG = "config.json"


class _DataIteratorHandler(ocp.CheckpointHandler):
  """Saves `iterator.get_state()` (JSON-able, or bytes) of every process to its own file."""

  @staticmethod
  def _path(directory: epath.Path, index: int, count: int) -> epath.Path:
    return directory / f"process_{index}-of-{count}.json"

  def save(self, directory: epath.Path, args: "DataSave"):
    state = args.iterator.get_state()
    record = {"utf8": state.decode()} if isinstance(state, bytes) else {"state": state}
    self._path(directory, jax.process_index(), jax.process_count()).write_text(json.dumps(record))

  def restore(self, directory: epath.Path, args: "DataRestore"):
    path = self._path(directory, jax.process_index(), jax.process_count())
    if not path.exists():
      saved = sorted(p.name for p in directory.glob("process_*.json"))
      warnings.warn(f"the input pipeline state in {directory} was saved by other processes ({saved}); "
                    f"with {jax.process_count()} processes the input pipeline starts afresh", stacklevel=2)
      return False
    record = json.loads(path.read_text())
    args.iterator.set_state(record["utf8"].encode() if "utf8" in record else record["state"])
    return True

  def metadata(self, directory: epath.Path):
    return None

  def finalize(self, directory: epath.Path):
    pass

  def close(self):
    pass


@ocp.args.register_with_handler(_DataIteratorHandler, for_save=True)
@dataclasses.dataclass
class DataSave(ocp.args.CheckpointArgs):
  iterator: Any


@ocp.args.register_with_handler(_DataIteratorHandler, for_restore=True)
@dataclasses.dataclass
class DataRestore(ocp.args.CheckpointArgs):
  iterator: Any


class Checkpointer:
  """Saves and restores one run's train state and input-pipeline state under `workdir/checkpoints`.

  Args:
    workdir: the run's folder.
    keep: how many of the latest checkpoints to keep.
    best_metric: an eval metric name (e.g. "eval/loss"); the best checkpoint by it is kept as well.
    best_mode: "min" or "max".
    async_save: write in a background thread.
  """

  def __init__(self, workdir, keep: int = 3, best_metric: str | None = None, best_mode: str = "min",
               async_save: bool = True):
    if keep < 1 or best_mode not in ("min", "max"):
      raise UserError(f"checkpoint: keep={keep} must be >= 1 and best_mode={best_mode!r} 'min' or 'max'")
    self.workdir = _absolute(workdir)
    self.best_metric = best_metric
    policies = [ocp.checkpoint_managers.LatestN(n=keep)]
    best_fn = None
    if best_metric:
      best_fn = lambda metrics: metrics[best_metric]  # noqa: E731
      policies.append(ocp.checkpoint_managers.BestN(
        get_metric_fn=best_fn, reverse=best_mode == "min", n=1, keep_checkpoints_without_metrics=False))
    self._options = ocp.CheckpointManagerOptions(
      best_fn=best_fn, best_mode=best_mode, enable_async_checkpointing=async_save,
      cleanup_tmp_directories=True,
      preservation_policy=ocp.checkpoint_managers.AnyPreservationPolicy(policies))
    self._manager = self._open()

  def _open(self) -> ocp.CheckpointManager:
    return ocp.CheckpointManager(self.workdir / CHECKPOINTS, options=self._options, item_names=ITEMS)

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return sorted(self._manager.all_steps())

  def best_step(self) -> int | None:
    return self._manager.best_step() if self.best_metric else None

  def save(self, state: TrainState, data_iterator, metrics: dict | None = None,
           force: bool = False) -> bool:
    """Starts saving `state` at its step (all processes call this); returns whether a save began.

    `metrics` (host floats) must hold `best_metric` for this checkpoint to compete for "best".
    """
    step = int(state.step)
    if step in self._manager.all_steps():
      return False
    if metrics is not None and self.best_metric not in metrics:
      metrics = None
    args = ocp.args.Composite(
      params=ocp.args.StandardSave(state.params),
      train=ocp.args.StandardSave({"step": state.step, "opt_state": state.opt_state}),
      data=DataSave(data_iterator))
    return self._manager.save(step, args=args, metrics=metrics, force=force)

  def restore(self, abstract_state: TrainState, data_iterator=None) -> TrainState | None:
    """The latest readable checkpoint onto `abstract_state`'s shardings, or None when there is none.

    `data_iterator.set_state` receives the saved input-pipeline state. Unreadable checkpoints newer than
    the one restored are moved aside with a warning; when none is readable, a UserError says so.
    """
    self.wait()
    steps = sorted(self._manager.all_steps(), reverse=True)
    bad = []
    for step in steps:
      items = dict(params=ocp.args.StandardRestore(abstract_state.params),
                   train=ocp.args.StandardRestore({"step": abstract_state.step,
                                                   "opt_state": abstract_state.opt_state}))
      if data_iterator is not None:
        items["data"] = DataRestore(data_iterator)
      try:
        restored = self._manager.restore(step, args=ocp.args.Composite(**items))
      except Exception as e:  # noqa: BLE001 - Orbax and TensorStore raise many kinds for damaged files.
        warnings.warn(f"checkpoint {self.workdir / CHECKPOINTS / str(step)} is unreadable "
                      f"({type(e).__name__}: {_first_line(e)}); trying an earlier one", stacklevel=2)
        bad.append(step)
        continue
      self._quarantine(bad)
      train = restored["train"]
      return TrainState(step=train["step"], params=restored["params"], opt_state=train["opt_state"])
    if bad:
      raise UserError(f"no readable checkpoint in {self.workdir / CHECKPOINTS} (steps {sorted(bad)}); "
                      "move that folder away to start afresh")
    return None

  def _quarantine(self, steps: list[int]) -> None:
    """Moves unreadable step folders out of the manager's sight, so later saves reuse their steps."""
    if not steps:
      return
    if jax.process_index() == 0:
      target = pathlib.Path(self.workdir / CORRUPT)
      target.mkdir(parents=True, exist_ok=True)
      for step in steps:
        source = pathlib.Path(self.workdir / CHECKPOINTS / str(step))
        destination = target / str(step)
        if destination.exists():
          shutil.rmtree(destination)
        shutil.move(source, destination)
        logging.warning("moved unreadable checkpoint %s to %s", source, destination)
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices("a2e_quarantine_checkpoints")
    self._manager.close()
    self._manager = self._open()

  def wait(self) -> None:
    """Blocks until background writes have finished (call before exiting)."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()


def _absolute(path) -> epath.Path:
  """Orbax needs absolute paths; URLs (gs://...) already are."""
  text = os.fspath(path)
  return epath.Path(text if "://" in text else os.path.abspath(text))


def _first_line(e: Exception) -> str:
  text = str(e).strip()
  return text.splitlines()[0][:200] if text else ""


def _read_only_manager(workdir, best_metric: str | None, best_mode: str) -> ocp.CheckpointManager:
  directory = _absolute(workdir) / CHECKPOINTS
  if not directory.exists():
    raise UserError(f"no checkpoints in {directory}; train first (a2e train --workdir {workdir})")
  best_fn = (lambda metrics: metrics[best_metric]) if best_metric else None
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
  directory = _absolute(workdir) / CHECKPOINTS
  try:
    chosen = _pick_step(manager, directory, step)
    if abstract_params is None:
      device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
      tree = manager.item_metadata(chosen)["params"].tree
      abstract_params = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), tree)
    restored = manager.restore(chosen, args=ocp.args.Composite(
      params=ocp.args.StandardRestore(abstract_params)))
  except UserError:
    raise
  except Exception as e:  # noqa: BLE001 - see Checkpointer.restore.
    raise UserError(f"checkpoint {directory / str(chosen)} is unreadable ({type(e).__name__}: "
                    f"{_first_line(e)}); pass another step") from None
  finally:
    manager.close()
  return restored["params"]


def save_run_config(workdir, config) -> None:
  """Writes `WORKDIR/config.json` (process 0), which `load_run_config` reads back."""
  if jax.process_index() == 0:
    path = epath.Path(workdir) / CONFIG
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config.to_json(indent=2))


def load_run_config(workdir) -> ml_collections.ConfigDict | None:
  """The config a run was trained with (`WORKDIR/config.json`), or None when it has none."""
  path = epath.Path(workdir) / CONFIG
  if not path.exists():
    return None
  return ml_collections.ConfigDict(json.loads(path.read_text()))
