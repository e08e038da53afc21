"""A2ENet as the trainer's `Task`: the model of `config.model` with the cross-reconstruction losses of
`tasks/losses.py` on the built dataset of `config.data` (or on random batches of the same shapes with
`config.input = "random"`), with lip-error metrics and rendered faces at each evaluation."""

import itertools
import math
import os
import subprocess
import sys
import zlib

import jax

from a2e_jax.core import channels
from a2e_jax.core.errors import UserError
from a2e_jax.data import pipeline
from a2e_jax.eval import evaluate
from a2e_jax.face import registry
from a2e_jax.models import a2enet
from a2e_jax.render.api import render_frames
from a2e_jax.tasks import losses
from a2e_jax.tasks.random_batches import RandomBatches
from a2e_jax.train.task import Task

INPUTS = ("dataset", "random")


def load_face_model(name: str):
  """The face model for the vertex losses: "" (none), or a spec of `face.registry.resolve_model`
  ("builtin", "ict", "bfm", or a path)."""
  if not name:
    return None
  return registry.resolve_model(name)


def ensure_dataset(data_cfg) -> None:
  """Builds the built-in corpus's dataset (`a2e_synthetic/<preset>`) on first use, so that a fresh clone
  trains with one command: `a2e data synth` into `<data_dir>/../corpus/<preset>`, then `a2e data build`.
  Other datasets, and runs of several processes, must be built beforehand (the error says how)."""
  from a2e_jax.data import builders  # imports tensorflow_datasets (seconds); random input never needs it

  try:
    builders.dataset_dir(data_cfg.data_dir, data_cfg.dataset)
    return
  except UserError:
    name, _, preset = data_cfg.dataset.partition(":")[0].partition("/")
    if name != "a2e_synthetic" or jax.process_count() > 1 or "://" in os.fspath(data_cfg.data_dir):
      raise
  corpus = os.path.join(os.path.dirname(os.path.abspath(data_cfg.data_dir)), "corpus", preset)
  commands = [["data", "build", "--synthetic", preset, "--corpus", corpus, "--data-dir", data_cfg.data_dir]]
  if not os.path.isfile(os.path.join(corpus, "manifest.jsonl")):
    commands.insert(0, ["data", "synth", "--preset", preset, "--out", corpus])
  print(f"a2e train: {data_cfg.dataset} is not built in {data_cfg.data_dir}; building it once "
        f"(corpus in {corpus})", file=sys.stderr)
  for command in commands:
    status = subprocess.call([sys.executable, "-m", "a2e_jax.cli", *command])
    if status:
      raise UserError(f"'a2e {' '.join(command)}' failed (exit {status}); run it yourself to see why")


def a2enet_task(config) -> Task:
  """A2ENet (`config.model`) with `compute_losses` (`config.loss`) on `config.data` (`config.input`)."""
  if config.input not in INPUTS:
    raise UserError(f"config input={config.input!r}; choose one of {', '.join(INPUTS)}")
  if config.model.get("emotion_input", "absolute") not in a2enet.EMOTION_INPUTS:
    raise UserError(f"config model.emotion_input={config.model.emotion_input!r}; choose one of "
                    f"{', '.join(a2enet.EMOTION_INPUTS)}")
  pipeline.check_data_config(config.data)  # before a dataset is built or a batch shaped
  names = channels.layout_channels(config.model.channel_layout, config.model.num_coeffs)
  module = a2enet.A2ENet(config.model)
  batch_size = config.train.batch_size
  eval_batches = config.eval.batches

  def init_variables(rng):
    return module.init({"params": rng, "dropout": rng}, a2enet.example_view(config.model))

  def loss_fn(params, batch, rng, train, constants):
    batch = {k: pipeline.cut_windows(v, constants["mel"]) for k, v in batch.items()}
    return losses.compute_losses(module, params, batch, rng, config.loss, face_model=constants["face"],
                                 train=train)

  def predict(params, view, constants):
    return module.apply({"params": params}, pipeline.cut_windows(view, constants["mel"]))["coeffs"]

  if config.input == "random":
    frames, coeffs = config.data.window_frames, config.model.num_coeffs

    def train_batches(mesh, seed):
      return RandomBatches(batch_size, frames, coeffs, mesh, seed=seed)

    def eval_batches_fn(mesh, split):
      iterator = RandomBatches(batch_size, frames, coeffs, mesh, seed=zlib.crc32(split.encode()))
      return (next(iterator) for _ in range(eval_batches))

    splits = ("random",)
    table = None
  else:
    ensure_dataset(config.data)
    data_cfg = config.data
    # Every split's clips are read once; with windows_on_device their log-mel goes to the devices once,
    # as one table, and batches carry window rows into it.
    opened = {s: pipeline.open_split(data_cfg, s) for s in dict.fromkeys((data_cfg.train_split,
                                                                          *data_cfg.eval_splits))}
    banks = {s: pipeline.ClipBank.read(source) for s, (source, _) in opened.items()}
    table, bases = pipeline.mel_table(banks) if data_cfg.windows_on_device else (None, {})

    def batches(mesh, split, seed):
      source, index = opened[split]
      return pipeline.make_batch_iterator(data_cfg, split, batch_size, mesh, seed=seed, source=source,
                                          index=index, bank=banks[split], mel_base=bases.get(split))

    def train_batches(mesh, seed):
      return batches(mesh, data_cfg.train_split, seed)

    def eval_batches_fn(mesh, split):
      # Windows of the held-out split, paired as in training, from a fixed seed: the same batches at
      # every evaluation, so eval losses are comparable across steps and runs.
      iterator = batches(mesh, split, config.eval.seed)
      return (next(iterator) for _ in range(eval_batches))

    splits = tuple(data_cfg.eval_splits)

  face = load_face_model(config.face_model)
  evaluate = None
  if config.eval.metrics_clips and config.input == "dataset" and face is not None:
    evaluate = _clip_metrics(module, config, face, names)
  render_faces = None
  if face is not None:

    def render_faces(exp_tk):
      return render_frames(face, exp_tk, size=96, batch=8)

  return Task(init_variables=init_variables, loss_fn=loss_fn, train_batches=train_batches,
              eval_batches=eval_batches_fn, eval_splits=splits, constants={"face": face, "mel": table},
              predict=predict,
              channel_names=names, evaluate=evaluate, render_faces=render_faces)


def _clip_metrics(module, config, face, names):
  """(params, mesh) -> the eval package's metrics (lip vertex error, FDD, blinks, identity, emotion-head
  accuracy) on the first `config.eval.metrics_clips` whole clips of each eval split. Every process reads
  its rows of each batch, all devices compute the predictions, and every process gathers the whole batch
  and its predictions for the host-side metrics, so any number of processes gives the same numbers."""
  batch_size = config.train.batch_size

  def metrics(params, mesh):
    predictor = evaluate.ModelPredictor(module, params, mesh)
    out = {}
    for split in config.data.eval_splits:
      batches = pipeline.make_eval_iterator(config.data, split, batch_size, mesh)
      first = itertools.islice(batches, math.ceil(config.eval.metrics_clips / batch_size))
      results = evaluate.evaluate(predictor, first, face, channel_names=names)
      out.update({f"{split}/{k}": v for k, v in results.items() if isinstance(v, float)})
    return out

  return metrics
