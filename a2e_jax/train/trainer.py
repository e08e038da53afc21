"""`train_and_evaluate(config, workdir)`: the training loop, resumable, with evaluation and summaries.

One run lives in one workdir: `config.json`, `checkpoints/`, `metrics.jsonl`, `tensorboard/`. Starting a
run in a workdir that has checkpoints resumes from the latest readable one: the train state, the input
pipeline's position and the per-step keys (`fold_in(key, step)`) all continue where they were, so the
loss trajectory is the one an uninterrupted run would have followed.

Stopping: SIGTERM (a preemption notice; with several processes JAX's preemption service agrees on a step)
saves a checkpoint at the next step and returns cleanly. A non-finite loss or gradient stops the run with
a `TrainingDivergedError` before anything is saved from the diverged state, so the last checkpoint is the
last good one. The step's metrics are fetched one step late, so the host never stalls the devices
except where a save or an evaluation needs them.
"""

import dataclasses
import json
import math
import os
import signal
import threading
import time

import jax
import numpy as np
import tqdm
from etils import epath
from jax.experimental import multihost_utils

from a2e_jax.core import run_dir
from a2e_jax.core.errors import UserError
from a2e_jax.data import batching, pipeline
from a2e_jax.train import checkpoint, runtime, sharding, summary
from a2e_jax.train import perf as perf_lib
from a2e_jax.train import state as state_lib
from a2e_jax.train import step as step_lib
from a2e_jax.train.task import Task, build_task


class TrainingDivergedError(UserError):
  """The loss or gradient became NaN/inf; the last checkpoint is from before it."""


class _Preemption:
  """Whether to save and stop now: SIGTERM seen (one process) or the agreed sync step (several)."""

  def __init__(self):
    self._signalled = False
    self._previous = None
    if jax.process_count() == 1 and threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._handle)

  def _handle(self, signum, frame):
    del signum, frame
    self._signalled = True

  def reached(self, step: int) -> bool:
    if jax.process_count() > 1:
      try:
        return multihost_utils.reached_preemption_sync_point(step)
      except RuntimeError:  # JAX's preemption service is off (jax_enable_preemption_service).
        return False
    return self._signalled

  def close(self) -> None:
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
      self._previous = None


def _say(message: str) -> None:
  if jax.process_index() == 0:
    tqdm.tqdm.write(message)


def validate(config, mesh) -> None:
  """Raises UserError for settings that cannot work on `mesh`, naming the key."""
  train, divisor = config.train, batching.batch_divisor(mesh)
  checks = [
    (train.steps >= 1, f"train.steps={train.steps} must be >= 1"),
    (train.batch_size >= 1, f"train.batch_size={train.batch_size} must be >= 1"),
    (train.log_every >= 1, f"train.log_every={train.log_every} must be >= 1"),
    (train.grad_accum_steps >= 1, f"train.grad_accum_steps={train.grad_accum_steps} must be >= 1"),
    (config.eval.every >= 0, f"eval.every={config.eval.every} must be >= 0 (0: no evaluation)"),
    (config.checkpoint.every >= 1, f"checkpoint.every={config.checkpoint.every} must be >= 1"),
    (train.batch_size % (divisor * max(train.grad_accum_steps, 1)) == 0,
     f"train.batch_size={train.batch_size} must be a multiple of {divisor * train.grad_accum_steps} "
     f"(data x fsdp = {divisor} devices x grad_accum_steps = {train.grad_accum_steps})"),
  ]
  for ok, message in checks:
    if not ok:
      raise UserError(f"config: {message}")


def _run_path(workdir) -> tuple[epath.Path, bool]:
  """(the run folder, whether it exists yet): a local folder made absolute, or a URL (gs://, s3://, ...)
  kept a URL, so that every host of a pod writes to the same bucket and never to a folder named 'gs:' on
  its own disk."""
  text = os.fspath(workdir)
  path = epath.Path(text if "://" in text else os.path.abspath(text))
  try:
    exists = path.exists()
  except ImportError as e:  # epath names the fsspec package a URL scheme needs
    scheme = text.split("://")[0]
    raise UserError(f"workdir {text}: {e} (the filesystem package for {scheme}:// is not installed); "
                    "install it or pass a local --workdir") from None
  if exists and not path.is_dir():
    raise UserError(f"workdir {text} is a file; pass a folder with --workdir")
  return path, exists


def _make_dir(path: epath.Path) -> None:
  try:
    path.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise UserError(f"cannot create workdir {path}: {e.strerror or e}") from None


# Model settings that change how the step computes, not its parameters: a run may resume with others.
_COMPUTE_ONLY = ("remat",)


def _check_same_model(config, workdir) -> None:
  """A workdir resumes only the model it was started with."""
  saved = run_dir.load_run_config(workdir)
  if saved is None:
    return
  now = json.loads(config.to_json())
  for k in _COMPUTE_ONLY:
    now.get("model", {}).pop(k, None)
  for key in ("task", "model"):
    before = saved.to_dict().get(key) if key in saved else None
    if isinstance(before, dict):
      before = {k: v for k, v in before.items() if k not in _COMPUTE_ONLY}
    if before is not None and before != now.get(key):
      diff = sorted(k for k in before if before.get(k) != now[key].get(k)) if isinstance(before, dict) else []
      raise UserError(f"workdir {workdir} holds a run with another {key} config"
                      + (f" ({', '.join(diff)} differ)" if diff else "")
                      + "; pass a new --workdir or the config it was started with")


@dataclasses.dataclass
class _Window:
  """Train metrics summed over a logging window, and the time its steps took (evaluations and saves
  excluded: the clock stops for them and restarts at the next step)."""

  sums: dict = dataclasses.field(default_factory=dict)
  steps: int = 0
  timed_steps: int = 0
  seconds: float = 0.0
  data_seconds: float = 0.0  # host time spent waiting for the next batch (the input pipeline's share)
  clock: float | None = None

  def add(self, metrics: dict) -> None:
    for k, v in metrics.items():
      self.sums[k] = self.sums.get(k, 0.0) + v
    self.steps += 1
    now = time.perf_counter()
    if self.clock is not None:
      self.seconds += now - self.clock
      self.timed_steps += 1
    self.clock = now

  def means(self) -> dict:
    return {k: v / max(self.steps, 1) for k, v in self.sums.items()}


class _Run:
  """The loop of one `train_and_evaluate` call (all processes run it in lockstep)."""

  def __init__(self, config, workdir: epath.Path, task: Task, mesh):
    self.config, self.workdir, self.task, self.mesh = config, workdir, task, mesh
    self.total = config.train.steps
    self.tx, self.schedule = state_lib.make_optimizer(config.optim, self.total)
    init_rng, self.step_key, self.eval_key = jax.random.split(jax.random.key(config.seed), 3)
    self.shardings = state_lib.state_shardings(task.init_variables, self.tx, init_rng, mesh)
    self.train_iter = task.train_batches(mesh, config.seed)
    # Placed on every device once, instead of being copied in at each step.
    self.constants = jax.device_put(task.constants, sharding.replicated(mesh))
    ckpt = config.checkpoint
    best = ckpt.best_metric if config.eval.every and ckpt.best_metric else None
    self.ckpt = checkpoint.Checkpointer(workdir, keep=ckpt.keep, best_metric=best, best_mode=ckpt.best_mode,
                                        async_save=ckpt.async_save)
    abstract = state_lib.abstract_state(task.init_variables, self.tx, init_rng, self.shardings)
    self.state = self.ckpt.restore(abstract, self.train_iter,
                                   reset_data_state=config.get("data", {}).get("reset_state", False))
    self.resumed_from = None if self.state is None else int(self.state.step)
    if self.state is None:
      self.state = state_lib.create_state(task.init_variables, self.tx, init_rng, self.shardings, mesh)
    self.train_step = step_lib.make_train_step(task.loss_fn, self.tx, self.schedule, self.shardings, mesh,
                                               config.train.grad_accum_steps)
    self.eval_step = step_lib.make_eval_step(task.loss_fn, self.shardings.params, mesh)
    self.predict = jax.jit(task.predict) if task.predict is not None else None
    self.summary = summary.Summary(workdir, tensorboard=config.summary.tensorboard)
    self.window = _Window()
    self.flops = None  # per device and step, from the compiled step (first step)
    self.peak = perf_lib.peak_flops(jax.devices()[0].device_kind, config.model.get("dtype", "float32"))
    profile = config.get("profile", {})
    self.profiler = perf_lib.Profiler(workdir / "profile", profile.get("start_step", 0),
                                      profile.get("steps", 1))
    self.last_train: dict = {}
    self.last_eval: dict = {}

  # -- metrics -------------------------------------------------------------------------------------------

  def finish_step(self, step: int, metrics) -> None:
    """Host side of step `step`: check, record, log. Raises TrainingDivergedError on NaN/inf."""
    host = {k: float(v) for k, v in jax.device_get(metrics).items()}
    bad = [k for k in ("loss", "grad_norm") if not math.isfinite(host.get(k, 0.0))]
    if bad:
      self.ckpt.wait()
      what = f"{' and '.join(bad)} became {host[bad[0]]} at step {step}"
      if self.resumed_from is not None and step == self.resumed_from + 1:
        # The restored state passed its checksums, so a NaN straight away points at the checkpoint as it
        # was saved (or at the input that follows it), not at the learning rate.
        suspect = self.workdir / checkpoint.CHECKPOINTS / str(self.resumed_from)
        raise TrainingDivergedError(
          f"{what}, the first step after restoring checkpoint {self.resumed_from}: that checkpoint is the "
          f"suspect; move {suspect} to {self.workdir / checkpoint.CORRUPT}/ and rerun to resume from the one "
          "before it")
      last = self.ckpt.latest_step()
      kept = f"the last checkpoint (step {last}) is from before it" if last is not None else \
        "no checkpoint was saved yet"
      raise TrainingDivergedError(
        f"{what}; training stopped and {kept} in "
        f"{self.workdir}; lower --config.optim.learning_rate or check the data, then rerun to resume")
    self.last_train = host
    self.summary.record(step, "train", host)
    self.window.add(host)
    self.progress.update(step - self.progress.n)
    if step % self.config.train.log_every == 0 or step == self.total:
      self.log_window(step)

  def log_window(self, step: int) -> None:
    window = self.window
    self.summary.scalars(step, window.means(), prefix="train/")
    postfix = {"loss": f"{self.last_train['loss']:.4g}"}
    if window.timed_steps:
      rate = window.timed_steps / window.seconds
      perf = {"steps_per_s": rate, "examples_per_s": rate * self.config.train.batch_size,
              "step_ms": 1e3 / rate, "data_wait_ms": 1e3 * window.data_seconds / window.steps,
              "data_wait_fraction": min(window.data_seconds / window.steps * rate, 1.0),
              **perf_lib.device_memory()}
      if self.flops and self.peak:
        perf["mfu"] = self.flops * rate / self.peak
      self.summary.scalars(step, perf, prefix="perf/")
      self.summary.record(step, "perf", perf)
      postfix["ex/s"] = f"{perf['examples_per_s']:.1f}"
      if "mfu" in perf:
        postfix["mfu"] = f"{perf['mfu']:.1%}"
    self.progress.set_postfix(postfix)
    self.window = _Window(clock=window.clock)

  # -- evaluation ----------------------------------------------------------------------------------------

  def evaluate(self, step: int) -> dict:
    params, results, first_batch = self.state.params, {}, None
    for split in self.task.eval_splits:
      totals, count = None, 0
      for batch in self.task.eval_batches(self.mesh, split):
        first_batch = batch if first_batch is None else first_batch
        metrics = self.eval_step(params, batch, self.eval_key, self.constants)
        totals = metrics if totals is None else jax.tree.map(lambda a, b: a + b, totals, metrics)
        count += 1
      if count:
        results.update({f"eval/{split}/{k}": float(v) / count for k, v in jax.device_get(totals).items()})
    losses = [results[f"eval/{s}/loss"] for s in self.task.eval_splits if f"eval/{s}/loss" in results]
    if losses:
      results["eval/loss"] = float(np.mean(losses))
    if self.task.evaluate is not None:
      results.update({f"eval/{k}": float(v) for k, v in self.task.evaluate(params, self.mesh).items()})
    self.summary.record(step, "eval", results)
    self.summary.scalars(step, results)
    if self.config.summary.plots and self.predict is not None and first_batch is not None:
      self.plot(step, first_batch)
    self.summary.flush()
    self.last_eval = results
    if "eval/loss" in results:
      _say(f"step {step}: eval loss {results['eval/loss']:.4g}")
    return results

  def plot(self, step: int, batch) -> None:
    """Coefficient curves, and (with a face renderer) a filmstrip of predicted over true faces, of the
    first eval clip."""
    view = pipeline.unpack_view(batch["a"] if "a" in batch else batch)
    pred = self.predict(self.state.params, view, self.constants)
    pred = multihost_utils.process_allgather(pred, tiled=True)
    true, mask = (multihost_utils.process_allgather(view[k], tiled=True) for k in ("coeffs", "mask"))
    if jax.process_index() != 0:
      return
    image = summary.plot_coefficients(pred[0], true[0], self.task.channel_names, mask[0],
                                      title=f"step {step}: first eval clip")
    self.summary.image(step, "eval/coefficient_curves", image)
    if self.task.render_faces is not None and self.config.summary.faces:
      frames = max(int(mask[0].sum()), 1)
      picks = np.linspace(0, frames - 1, min(frames, 8)).round().astype(int)
      render = self.task.render_faces
      strip = summary.filmstrip(render(pred[0][picks]), render(true[0][picks]))
      self.summary.image(step, "eval/faces_predicted_over_true", strip)

  # -- the loop ------------------------------------------------------------------------------------------

  def compile_step(self, batch) -> None:
    """Compiles the train step for the batch's shapes once, and reads its FLOPs for the MFU."""
    compiled = self.train_step.lower(self.state, batch, self.step_key, self.constants).compile()
    self.train_step = compiled
    self.flops = perf_lib.step_flops(compiled) or 0.0

  def save(self, metrics: dict | None = None, force: bool = False) -> None:
    self.ckpt.save(self.state, self.train_iter, metrics=metrics, force=force)

  def run(self) -> dict:
    config, start = self.config, int(self.state.step)
    where = f"resuming at step {start}" if self.resumed_from is not None else "starting"
    _say(f"a2e train: {state_lib.count_params(self.state.params):,} parameters, mesh "
         f"{sharding.describe(self.mesh)}, global batch {config.train.batch_size}, {where} -> {self.total}")
    self.progress = tqdm.tqdm(total=self.total, initial=start, unit="step", dynamic_ncols=True,
                              disable=jax.process_index() != 0 or not config.summary.progress_bar)
    preemption = _Preemption()
    pending = None
    preempted = False
    try:
      for step in range(start + 1, self.total + 1):
        self.profiler.before(step)
        waited = time.perf_counter()
        batch = next(self.train_iter)
        self.window.data_seconds += time.perf_counter() - waited
        if self.flops is None:
          self.compile_step(batch)
        self.state, metrics = self.train_step(self.state, batch, self.step_key, self.constants)
        self.profiler.after(step, metrics)
        if pending is not None:
          self.finish_step(*pending)
        pending = (step, metrics)
        preempted = preemption.reached(step)
        do_eval = config.eval.every and (step % config.eval.every == 0 or step == self.total)
        do_save = step % config.checkpoint.every == 0 or step == self.total or preempted
        if do_eval or do_save:
          self.finish_step(*pending)
          pending = None
        eval_metrics = self.evaluate(step) if do_eval and not preempted else None
        if do_save:
          self.save(eval_metrics, force=preempted)
        if do_eval or do_save:
          self.window.clock = None
        if preempted:
          _say(f"a2e train: preempted at step {step}; checkpoint saved in {self.workdir}. "
               "Run the same command to resume.")
          break
      if pending is not None:
        self.finish_step(*pending)
    finally:
      if hasattr(self.train_iter, "close"):  # e.g. the grain pipeline's worker processes
        self.train_iter.close()
      self.profiler.close()
      preemption.close()
      self.progress.close()
      self.summary.close()
      self.ckpt.close()
    return {"step": int(self.state.step), "preempted": preempted, "train": self.last_train,
            "eval": self.last_eval}


def train_and_evaluate(config, workdir, task: Task | None = None) -> dict:
  """Trains (or resumes) the run in `workdir` to `config.train.steps`, evaluating along the way.

  Args:
    config: a config as in configs/*.py (locked ConfigDict).
    workdir: the run's folder; created if missing, resumed if it has checkpoints.
    task: what to train; by default `build_task(config)` (A2ENet on the configured data).
  Returns:
    {"step", "preempted", "train": last step's metrics, "eval": last evaluation's metrics}.
  Raises:
    UserError for bad settings or workdirs; TrainingDivergedError when the loss becomes NaN/inf.
  """
  for warning in runtime.check(config):
    _say(f"a2e train: warning: {warning}")
  workdir, exists = _run_path(workdir)
  mesh = sharding.make_mesh(config.mesh)
  validate(config, mesh)
  _check_same_model(config, workdir)
  task = build_task(config) if task is None else task
  _make_dir(workdir)
  try:
    run = _Run(config, workdir, task, mesh)
  except UserError:
    if not exists:  # a setting refused on the way in leaves no empty run folder behind
      workdir.rmtree(missing_ok=True)
    raise
  checkpoint.save_run_config(workdir, config)
  return run.run()

