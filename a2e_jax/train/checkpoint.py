"""Checkpoints of a run (the only module that imports Orbax).

`WORKDIR/checkpoints/<step>/` holds four items and a file list:
  params      the model parameters (sharded arrays; restorable alone by core/run_dir.py `restore_params`)
  train       {"step", "opt_state"}
  data        the input iterator's state, one JSON file per process
  integrity   checksums of every array of params and train (core/integrity.py)
  files.json  size and CRC32 of every file, written once the step's save has finished
and `WORKDIR/config.json` the run's config (`save_run_config`), which rebuilds its model.
Saves are asynchronous (arrays are copied off the devices, then written in the background, so training goes
on). The N latest checkpoints are kept, plus the best by an eval metric when one is configured. A restore
reads onto the shardings of an abstract target tree, so a checkpoint saved on 8 devices restores on 1 or on
another mesh. A damaged latest checkpoint (unreadable, a file or an array that differs from its checksum,
a NaN parameter) is moved to `WORKDIR/corrupt_checkpoints/` with one warning, and the one before it is used.
The input iterator's state is handed to the iterator only after the arrays are restored, so a changed
input setting is reported by the iterator (one line naming the setting), never as a damaged checkpoint.
"""

import dataclasses
import json
import pathlib
import shutil
import warnings
from typing import Any

import jax
import orbax.checkpoint as ocp
from etils import epath
from jax.experimental import multihost_utils

from a2e_jax.core import integrity
from a2e_jax.core.errors import UserError
from a2e_jax.core.run_dir import CHECKPOINTS, CONFIG, ITEMS, absolute, describe, quiet_libraries
from a2e_jax.train.state import TrainState

CORRUPT = "corrupt_checkpoints"


class _DataIteratorHandler(ocp.CheckpointHandler):
  """Saves the input iterator's state (JSON-able, or bytes) of every process to its own file; restores
  this process's saved state (the iterator receives it from `Checkpointer.restore`)."""

  @staticmethod
  def _path(directory: epath.Path, index: int, count: int) -> epath.Path:
    return directory / f"process_{index}-of-{count}.json"

  def save(self, directory: epath.Path, args: "DataSave"):
    state = args.state
    record = {"utf8": state.decode()} if isinstance(state, bytes) else {"state": state}
    self._path(directory, jax.process_index(), jax.process_count()).write_text(json.dumps(record))

  def restore(self, directory: epath.Path, args: "DataRestore"):
    """This process's saved state; with another process count, process 0's when it is a position that
    any process can take up (a dict: the built-in pipelines' global step); else None."""
    del args
    path = self._path(directory, jax.process_index(), jax.process_count())
    if not path.exists():
      first = sorted(directory.glob("process_0-of-*.json"))
      state = _read_record(first[0]) if first else None
      if isinstance(state, dict):
        return state
      saved = sorted(p.name for p in directory.glob("process_*.json"))
      warnings.warn(f"the input pipeline state in {directory} was saved by other processes ({saved}); "
                    f"with {jax.process_count()} processes the input pipeline starts afresh", stacklevel=2)
      return None
    return _read_record(path)

  def metadata(self, directory: epath.Path):
    return None

  def finalize(self, directory: epath.Path):
    pass

  def close(self):
    pass


def _read_record(path: epath.Path):
  record = json.loads(path.read_text())
  return record["utf8"].encode() if "utf8" in record else record["state"]


@ocp.args.register_with_handler(_DataIteratorHandler, for_save=True)
@dataclasses.dataclass
class DataSave(ocp.args.CheckpointArgs):
  state: Any


@ocp.args.register_with_handler(_DataIteratorHandler, for_restore=True)
@dataclasses.dataclass
class DataRestore(ocp.args.CheckpointArgs):
  pass


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
    if keep < 1:
      raise UserError(f"config: checkpoint.keep={keep} must be >= 1")
    if best_mode not in ("min", "max"):
      raise UserError(f"config: checkpoint.best_mode={best_mode!r} must be 'min' or 'max'")
    self.workdir = absolute(workdir)
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
    self._unlisted: list[int] = []  # saved steps whose files.json is still to be written

  def _open(self) -> ocp.CheckpointManager:
    with quiet_libraries():
      return ocp.CheckpointManager(self.workdir / CHECKPOINTS, options=self._options, item_names=ITEMS)

  def _step_dir(self, step: int) -> epath.Path:
    return self.workdir / CHECKPOINTS / str(step)

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
    self.wait()  # Orbax waits for the previous save anyway; this also lists its files.
    if step in self._manager.all_steps():
      return False
    if metrics is not None and self.best_metric not in metrics:
      metrics = None
    train = {"step": state.step, "opt_state": state.opt_state}
    checksums = {"params": integrity.array_checksums(state.params), "train": integrity.array_checksums(train)}
    args = ocp.args.Composite(
      params=ocp.args.StandardSave(state.params),
      train=ocp.args.StandardSave(train),
      data=DataSave(data_iterator.get_state()),
      integrity=ocp.args.JsonSave(checksums))
    started = self._manager.save(step, args=args, metrics=metrics, force=force)
    if started:
      self._unlisted.append(step)
    return started

  def restore(self, abstract_state: TrainState, data_iterator=None,
              reset_data_state: bool = False) -> TrainState | None:
    """The latest intact checkpoint onto `abstract_state`'s shardings, or None when there is none.

    Intact: its files match `files.json`, Orbax reads it, its arrays match their checksums and are finite.
    Damaged checkpoints newer than the one restored are moved aside with one warning each; when none is
    intact, a UserError says so. Then `data_iterator.set_state` receives the saved input-pipeline state
    (with `reset_data_state`, only its position, without the settings it was saved with), and may raise
    a UserError naming a changed input setting.
    """
    self.wait()
    bad: dict[int, str] = {}
    for step in sorted(self._manager.all_steps(), reverse=True):
      restored, problem = self._restore_step(step, abstract_state, data_iterator is not None)
      if problem is not None:
        bad[step] = problem
        continue
      self._quarantine(bad, step)
      data = restored.get("data")
      if reset_data_state and data is not None:
        data = _position_only(data)
      if data is not None:
        data_iterator.set_state(data)
      train = restored["train"]
      return TrainState(step=train["step"], params=restored["params"], opt_state=train["opt_state"])
    if bad:
      reasons = "; ".join(f"step {s}: {r}" for s, r in sorted(bad.items()))
      raise UserError(f"no intact checkpoint in {self.workdir / CHECKPOINTS} ({reasons}); the parameters "
                      f"are lost: train afresh in a new --workdir")
    return None

  def _restore_step(self, step: int, abstract_state: TrainState, with_data: bool):
    """(restored items, None) or (None, why step `step` is damaged)."""
    step_dir = self._step_dir(step)
    problem = integrity.verify_files(step_dir)
    if problem is not None:
      return None, problem
    train_target = {"step": abstract_state.step, "opt_state": abstract_state.opt_state}
    items = dict(params=ocp.args.StandardRestore(abstract_state.params),
                 train=ocp.args.StandardRestore(train_target))
    if with_data and (step_dir / "data").exists():
      items["data"] = DataRestore()
    has_checksums = (step_dir / "integrity").exists()
    if has_checksums:
      items["integrity"] = ocp.args.JsonRestore()
    try:
      with quiet_libraries():
        restored = self._manager.restore(step, args=ocp.args.Composite(**items))
    except Exception as e:  # noqa: BLE001 - Orbax and TensorStore raise many kinds for damaged files.
      return None, f"unreadable ({describe(e)})"
    saved = restored["integrity"] if has_checksums else {}
    for name in ("params", "train"):
      problem = integrity.verify_arrays(name, restored[name], saved.get(name) if has_checksums else None)
      if problem is not None:
        return None, problem
    return {name: restored[name] for name in items}, None

  def _quarantine(self, bad: dict[int, str], restored_step: int) -> None:
    """Moves damaged step folders out of the manager's sight (so later saves reuse their steps), with one
    warning each."""
    if not bad:
      return
    target = pathlib.Path(self.workdir / CORRUPT)
    if jax.process_index() == 0:
      target.mkdir(parents=True, exist_ok=True)
      for step in bad:
        destination = target / str(step)
        if destination.exists():
          shutil.rmtree(destination)
        shutil.move(pathlib.Path(self._step_dir(step)), destination)
    for step, problem in sorted(bad.items(), reverse=True):
      warnings.warn(f"checkpoint {self._step_dir(step)} is damaged ({problem}); moved it to "
                    f"{target / str(step)} and resumed from step {restored_step}", stacklevel=3)
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices("a2e_quarantine_checkpoints")
    self._manager.close()
    self._manager = self._open()

  def wait(self) -> None:
    """Blocks until background writes have finished, then lists the files of the steps they wrote."""
    self._manager.wait_until_finished()
    unlisted, self._unlisted = self._unlisted, []
    if jax.process_index() == 0:
      for step in unlisted:
        step_dir = self._step_dir(step)
        if step_dir.exists() and not integrity.has_file_digests(step_dir):
          integrity.write_file_digests(step_dir)

  def close(self) -> None:
    self.wait()
    self._manager.close()


def _position_only(state):
  """A saved input state without the settings it was saved with (dict states); others start afresh."""
  if isinstance(state, dict):
    return {k: v for k, v in state.items() if k != "settings"}
  warnings.warn("data.reset_state: this checkpoint's input state has no position to keep; the input "
                "pipeline starts afresh", stacklevel=3)
  return None


def save_run_config(workdir, config) -> None:
  """Writes `WORKDIR/config.json` (process 0), which core/run_dir.py `load_run_config` reads back."""
  if jax.process_index() == 0:
    path = epath.Path(workdir) / CONFIG
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config.to_json(indent=2))
