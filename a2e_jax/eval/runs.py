"""Evaluating training runs on a built dataset: restore, pick the data and face model, get an emotion
classifier, and run `evaluate` for the run, its baselines and other runs on the same clips."""

import json
import os

import jax
import ml_collections
import numpy as np

from a2e_jax.core import channels, run_dir
from a2e_jax.core.errors import UserError
from a2e_jax.data import pipeline
from a2e_jax.eval import emotion_classifier, evaluate
from a2e_jax.face import registry
from a2e_jax.models.a2enet import A2ENet, example_view
from a2e_jax.train import sharding

CLASSIFIER_FILE = "emotion_classifier.npz"
CLASSIFIER_CLIPS = 4000  # ground-truth training clips the classifier sees at most
SWAP_PAIR_CLIPS = 512  # training-style windows for the swap-against-the-true-rendition check
HEADLINE = ("lve_mm2", "fdd_mm2", "emotion_accuracy", "emotion_swap_accuracy", "lve_swap_true_ratio",
            "blink_precision", "blink_recall", "identity_error", "identity_transfer")


def _run_config(workdir: str) -> ml_collections.ConfigDict:
  config = run_dir.load_run_config(workdir)
  if config is None:
    raise UserError(f"{workdir} has no config.json; pass the folder given to 'a2e train --workdir'")
  return config


def one_device_mesh():
  """A (data, fsdp, model) = (1, 1, 1) mesh on the first device: evaluation runs one clip batch at a time."""
  return sharding.make_mesh(ml_collections.ConfigDict(dict(data=1, fsdp=1, model=1)), jax.devices()[:1])


def eval_mesh(batch_size: int):
  """A data-parallel mesh over as many of this process's devices as divide `batch_size` evenly: each
  batch of clips is split over them."""
  devices = jax.local_devices()
  count = max(k for k in range(1, len(devices) + 1) if batch_size % k == 0)
  return sharding.make_mesh(ml_collections.ConfigDict(dict(data=count, fsdp=1, model=1)), devices[:count])


def _restore_on(workdir: str, step, model_cfg, mesh):
  """A2ENet predicting with the run's parameters, restored replicated onto every device of `mesh`."""
  module = A2ENet(model_cfg)
  shapes = sharding.unbox(jax.eval_shape(module.init, jax.random.key(0), example_view(model_cfg))["params"])
  abstract = sharding.with_shardings(shapes, jax.tree.map(lambda _: sharding.replicated(mesh), shapes))
  return evaluate.ModelPredictor(module, run_dir.restore_params(workdir, step, abstract), mesh)


def _face_model(name: str | None, config):
  ict = config.model.channel_layout == "ict"
  name = name or config.get("face_model") or ("builtin" if ict else "")
  if not name:
    raise UserError("this run has no face model for the vertex metrics; pass --face-model FILE.npz")
  model = registry.resolve_model(name)
  if model.num_exp != config.model.num_coeffs:
    raise UserError(f"face model {name!r} has {model.num_exp} expression channels, the run predicts "
                    f"{config.model.num_coeffs}; pass the matching --face-model")
  return model


def get_classifier(path: str, data_cfg, num_coeffs: int, seed: int = 0):
  """Loads the classifier at `path`, or trains one on the training split's ground truth and saves it."""
  if os.path.isfile(path):
    return emotion_classifier.load_classifier(path)
  source, _ = pipeline.open_split(data_cfg, data_cfg.train_split)
  rng = np.random.default_rng(seed)
  picks = rng.permutation(len(source))[:CLASSIFIER_CLIPS]
  clips = [{k: source[int(i)][k] for k in ("coeffs", "beta0", "emotion")} for i in picks]
  classifier = emotion_classifier.train_emotion_classifier(clips, num_coeffs, seed=seed)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  classifier.save(path)
  return classifier


class ClipSample:
  """A random-access view of clips `picks` of a data source (what the eval iterator takes as `source`)."""

  def __init__(self, source, picks):
    self.source, self.picks = source, [int(i) for i in picks]

  def __len__(self) -> int:
    return len(self.picks)

  def __getitem__(self, i):
    return self.source[self.picks[i]]


def sample_clips(data_cfg, split: str, max_clips: int, seed: int = 0) -> ClipSample:
  """`max_clips` clips of `split` drawn at random with `seed` (every emotion and length), in file order;
  all of them when `max_clips` is 0 or at least the split's size."""
  source, _ = pipeline.open_split(data_cfg, split)
  n = len(source)
  if not max_clips or max_clips >= n:
    return ClipSample(source, range(n))
  return ClipSample(source, np.sort(np.random.default_rng(seed).permutation(n)[:max_clips]))


def pair_batches(data_cfg, split: str, batch_size: int, count: int, mesh, seed: int = 0):
  """`count` training-style batches (views a, b, ab, ba) of `split` from a fixed seed."""
  iterator = pipeline.make_batch_iterator(data_cfg, split, batch_size, mesh, seed=seed)
  return (next(iterator) for _ in range(count))


def evaluate_runs(workdir: str, compare=(), baselines=(), step="best", data_dir=None, dataset=None,
                  splits=None, face_model=None, classifier_path=None, batch_size: int = 16,
                  max_clips: int = 0, out_dir=None) -> dict:
  """{split: {name: metrics}} for the run in `workdir`, each `baselines` entry ("beta0") and each run
  in `compare`, all on the same clips; written to OUT/eval.json with one plot per split and predictor."""
  config = _run_config(workdir)
  data_cfg = ml_collections.ConfigDict(config.data.to_dict())
  if data_dir:
    data_cfg.data_dir = data_dir
  if dataset:
    data_cfg.dataset = dataset
  splits = tuple(splits or data_cfg.eval_splits)
  out_dir = out_dir or os.path.join(workdir, "eval")
  face = _face_model(face_model, config)
  names = channels.layout_channels(config.model.channel_layout, config.model.num_coeffs)
  classifier = get_classifier(classifier_path or os.path.join(workdir, CLASSIFIER_FILE), data_cfg,
                              config.model.num_coeffs)
  mesh = eval_mesh(batch_size)
  predictors = {"model": _restore_on(workdir, step, config.model, mesh)}
  for other in compare:
    other_cfg = _run_config(other)
    if other_cfg.model.num_coeffs != config.model.num_coeffs:
      raise UserError(f"run {other} predicts {other_cfg.model.num_coeffs} channels, {workdir} "
                      f"{config.model.num_coeffs}; compare runs on the same data")
    predictors[os.path.basename(os.path.normpath(other))] = _restore_on(other, step, other_cfg.model, mesh)
  if "beta0" in baselines:
    predictors["beta0"] = evaluate.Beta0Predictor()
  results = {}
  pair_count = max(1, (max_clips or SWAP_PAIR_CLIPS) // batch_size)
  for split in splits:
    results[split] = {}
    for name, predictor in predictors.items():
      clips = sample_clips(data_cfg, split, max_clips) if max_clips else None  # None: the split's own index
      batches = pipeline.make_eval_iterator(data_cfg, split, batch_size, mesh, source=clips)
      results[split][name] = evaluate.evaluate(predictor, batches, face, classifier,
                                               os.path.join(out_dir, split), names, name)
      pairs = pair_batches(data_cfg, split, batch_size, pair_count, mesh)
      results[split][name].update(evaluate.evaluate_swap_pairs(predictor, pairs, face))
      with open(os.path.join(out_dir, split, f"metrics_{name}.json"), "w") as f:
        json.dump(results[split][name], f, indent=2)
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, "eval.json"), "w") as f:
    json.dump(results, f, indent=2)
  return results


def format_table(results: dict) -> str:
  """A plain-text table of the headline metrics: one row per split and predictor."""
  header = ["split", "predictor", *HEADLINE]
  rows = [header]
  for split, by_name in results.items():
    for name, r in by_name.items():
      rows.append([split, name, *(f"{r[k]:.4g}" if k in r else "-" for k in HEADLINE)])
  widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
  return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows)
