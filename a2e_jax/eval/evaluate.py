"""Evaluation of a coefficient predictor on whole held-out clips: lip error, upper-face dynamics, emotion
accuracy (by the coefficient classifier), blink following, identity retention and the emotion-swap check.

A predictor maps a batch view (core/schema.py: mel, beta0, eye, emotion, intensity, mask, [B,T,...]) to
coefficients [B,T,K]. `ModelPredictor` wraps A2ENet; `Beta0Predictor` is the "resting face only" baseline.
`evaluate(...)` consumes batches such as `data.pipeline.make_eval_iterator` yields and returns (and writes)
a JSON-able dict; `a2e eval` (cli/eval.py) runs it on a training run's checkpoint.
"""

import functools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils

from a2e_jax.core import schema
from a2e_jax.eval import metrics

MM2_PER_UNIT2 = 1e4  # face-model units are 10 cm (face/model.py): 1 unit² = 10^4 mm²
_BETA0_POOL = 64  # recent β0s from which the identity-transfer check picks another speaker's


def host_batch(batch) -> dict:
  """A batch (dict of arrays) as whole numpy arrays on the host; arrays that span several processes are
  gathered from all of them, so every process holds the same global batch."""
  if any(isinstance(x, jax.Array) and not x.is_fully_addressable for x in jax.tree.leaves(batch)):
    batch = multihost_utils.process_allgather(batch, tiled=True)
  return {k: np.asarray(v) for k, v in jax.device_get(batch).items()}


def _on_mesh(mesh, tree):
  """Host arrays [B,...] (the same on every process) as global arrays split over the mesh's batch axes."""
  from jax.sharding import NamedSharding, PartitionSpec

  from a2e_jax.data import batching

  def put(x):
    x = np.asarray(x)
    spec = NamedSharding(mesh, PartitionSpec(batching.BATCH_AXES))
    return jax.make_array_from_callback(x.shape, spec, lambda index: x[index])

  return jax.tree.map(put, tree)


def _to_host(x):
  if isinstance(x, jax.Array) and not x.is_fully_addressable:
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
  return np.asarray(x)


class ModelPredictor:
  """A2ENet's predictions: from the speech's own emotion, or from an emotion label (the override).

  With a `mesh`, each batch is split over the mesh's batch axes (all devices of all processes compute
  it; `params` must live on that mesh, e.g. the train state's) and the predictions are gathered whole on
  every process; its batch size must then divide by the mesh's data x fsdp devices.
  """

  def __init__(self, module, params, mesh=None):
    self.params = params
    self._put = (lambda tree: tree) if mesh is None else functools.partial(_on_mesh, mesh)
    variables = lambda p: {"params": p}  # noqa: E731

    def decode(p, view, emotion):
      content = module.apply(variables(p), view["mel"], view["mask"], method="encode_content")
      return module.apply(variables(p), content, emotion, view["beta0"], view["eye"], view["mask"],
                          method="decode_expression")

    def from_speech(p, view):
      _, pooled, logits, _ = module.apply(variables(p), view["mel"], view["mask"], method="encode_emotion")
      return decode(p, view, pooled), logits

    def from_label(p, view, label, intensity_b):
      # Labels [B] give one emotion per clip; labels [B,T] a per-frame schedule, embedded frame by frame.
      b, t = view["mask"].shape
      per_frame = label.ndim == 2
      flat_label = label.reshape(-1) if per_frame else label
      flat_intensity = jnp.repeat(intensity_b, t) if per_frame else intensity_b
      emotion = module.apply(variables(p), flat_label, flat_intensity, method="emotion_embedding")
      return decode(p, view, emotion.reshape(b, t, -1) if per_frame else emotion)

    self._speech, self._label = jax.jit(from_speech), jax.jit(from_label)

  def __call__(self, view):
    """(coeffs [B,T,K], audio emotion logits [B,E])."""
    coeffs, logits = self._speech(self.params, self._put(_model_view(view)))
    return _to_host(coeffs), _to_host(logits)

  def with_emotion(self, view, label_b, intensity_b):
    """Coefficients [B,T,K] with the emotion overridden: labels [B] (a clip each) or [B,T] (a schedule)."""
    inputs = self._put((_model_view(view), np.asarray(label_b), np.asarray(intensity_b, np.float32)))
    return _to_host(self._label(self.params, *inputs))


class Beta0Predictor:
  """Baseline: the resting face β0 at every frame, whatever the speech says."""

  def __call__(self, view):
    mask = np.asarray(view["mask"])
    return np.broadcast_to(np.asarray(view["beta0"])[:, None], mask.shape + view["beta0"].shape[-1:]), None

  def with_emotion(self, view, label_b, intensity_b):
    return self(view)[0]


def _model_view(view):
  return {k: view[k] for k in ("mel", "beta0", "eye", "mask")}


def swap_targets(labels_b, keys_b, num_emotions: int = len(schema.EMOTIONS)):
  """An emotion other than each clip's own, cycling over the others with the clip key."""
  return (np.asarray(labels_b) + 1 + np.asarray(keys_b) % (num_emotions - 1)) % num_emotions


def evaluate(predictor, batches, face_model, classifier=None, out_dir: str | None = None,
             channel_names=(), name: str = "model") -> dict:
  """Metrics of `predictor` over `batches` (dicts of [B,T,...] arrays; rows with an all-zero mask skip).

  Args:
    predictor: `ModelPredictor`, `Beta0Predictor` or anything with the same two methods.
    batches: iterable of one-view batches (mel, coeffs, beta0, eye, emotion, intensity, mask[, clip]).
    face_model: the `MorphableModel` the coefficients drive (regions "lips" and "upper_face").
    classifier: an `EmotionClassifier` for the emotion accuracies, or None to skip them.
    out_dir: where `metrics_<name>.json` and `eval_<name>.png` go (None: nothing written).
    channel_names: names of the K channels (for the plot and the blink channels).
  Returns:
    A dict of floats (see docs/model.md, "Evaluation") plus per-emotion counts.
  """
  lips, upper = np.asarray(face_model.region("lips")), np.asarray(face_model.region("upper_face"))
  vertices = functools.partial(metrics.region_vertices, face_model)
  blink = [i for i, n in enumerate(channel_names) if n in ("eyeBlink_L", "eyeBlink_R")]
  lve, lve_swap, fdd, ident, transfer, coeff_mse, strength = [], [], [], [], [], [], []
  blinks = {"pred_events": 0, "pred_matched": 0, "control_events": 0, "control_matched": 0}
  generated, swapped, truth, labels, swap_labels, head_correct = [], [], [], [], [], []
  halves, half_labels = [], []
  example, pool = None, []
  row_key = 0
  for batch in batches:
    view = host_batch(batch)
    lengths = view["mask"].sum(1).astype(int)
    valid = np.flatnonzero(lengths > 0)
    if not valid.size:
      continue
    pred, logits = predictor(view)
    keys = view["clip"] if "clip" in view else row_key + np.arange(len(lengths))
    row_key += len(lengths)
    targets = swap_targets(view["emotion"], keys)
    intensity = np.where(view["intensity"] > 0, view["intensity"], 2)
    pred_swap = predictor.with_emotion(view, targets.astype(np.int32), intensity)
    # A schedule: the swap target over each clip's first half, its own emotion over the second.
    first_half = np.arange(view["mask"].shape[1])[None] < (lengths[:, None] // 2)
    schedule = np.where(first_half, targets[:, None], view["emotion"][:, None]).astype(np.int32)
    pred_schedule = predictor.with_emotion(view, schedule, intensity)
    # Intensity: the swap target at levels 0 (neutral), 1 and 3; distance from neutral should grow.
    label = targets.astype(np.int32)
    by_level = [predictor.with_emotion(view, label, np.full(label.shape, level, np.float32))
                for level in (0, 1, 3)]
    # Identity transfer: each clip decoded again with the most different β0 seen so far (another speaker).
    pool.extend(view["beta0"][valid])
    del pool[:-_BETA0_POOL]
    pool_array = np.asarray(pool)
    other_beta0 = pool_array[np.abs(view["beta0"][:, None] - pool_array[None]).sum(-1).argmax(1)]
    pred_beta0 = predictor({**view, "beta0": other_beta0})[0]
    for r in valid:
      n, beta0 = lengths[r], view["beta0"][r]
      p, t, ps = pred[r, :n], view["coeffs"][r, :n], pred_swap[r, :n]
      true_lips = vertices(lips, t)
      lve.append(metrics.lve_frames(vertices(lips, p), true_lips))
      lve_swap.append(metrics.lve_frames(vertices(lips, ps), true_lips))
      fdd.append(metrics.fdd(vertices(upper, p), vertices(upper, t), vertices(upper, beta0[None])[0]))
      ident.append(metrics.identity(p, t, beta0))
      coeff_mse.append(float(((p - t) ** 2).mean()))
      if np.abs(other_beta0[r] - beta0).sum() > 1e-6:
        transfer.append(metrics.identity_transfer(p, pred_beta0[r, :n], beta0, other_beta0[r]))
      if blink:
        counts = metrics.blink_counts(p[:, blink].mean(1), view["eye"][r, :n, :2].mean(1))
        blinks = {k: blinks[k] + counts[k] for k in blinks}
      generated.append((p, beta0))
      swapped.append((ps, beta0))
      halves += [(pred_schedule[r, :n // 2], beta0), (pred_schedule[r, n // 2:n], beta0)]
      strength.append([float(np.abs(level[r, :n] - by_level[0][r, :n]).mean()) for level in by_level[1:]])
      half_labels += [int(targets[r]), int(view["emotion"][r])]
      truth.append((t, beta0))
      labels.append(int(view["emotion"][r]))
      swap_labels.append(int(targets[r]))
      if logits is not None:
        head_correct.append(int(np.argmax(logits[r]) == view["emotion"][r]))
      if example is None:
        example = dict(pred=p, true=t, swap=ps, eye=view["eye"][r, :n], label=labels[-1],
                       target=swap_labels[-1])

  if not lve:
    raise ValueError("no clips to evaluate: every batch row was padding")
  frames = np.concatenate(lve)
  results = {
    "name": name,
    "clips": len(lve),
    "frames": int(frames.size),
    "lve_mm2": float(frames.mean() * MM2_PER_UNIT2),
    "lve_swap_mm2": float(np.concatenate(lve_swap).mean() * MM2_PER_UNIT2),
    "fdd_mm2": float(np.mean(fdd) * MM2_PER_UNIT2),
    "coeff_mse": float(np.mean(coeff_mse)),
    **{k: float(np.mean([d[k] for d in ident])) for k in ident[0]},
  }
  results["lve_swap_ratio"] = results["lve_swap_mm2"] / max(results["lve_mm2"], 1e-12)
  strength = np.asarray(strength)
  if strength[:, 0].max() > 0:  # predictors that ignore the emotion have no intensity to order
    results["intensity_order"] = float(np.mean(strength[:, 1] > strength[:, 0]))
    results["intensity_3_vs_1"] = float(strength[:, 1].mean() / strength[:, 0].mean())
  if transfer:
    results["identity_transfer"] = float(np.mean(transfer))
  if blink:
    results["blink_precision"], results["blink_recall"] = metrics.precision_recall(blinks)
  if head_correct:
    results["audio_emotion_accuracy"] = float(np.mean(head_correct))
  confusion = None
  if classifier is not None:
    labels_n, swap_n = np.array(labels), np.array(swap_labels)
    pred_gen, pred_swap, pred_true, pred_halves = (
      classifier.predict(c) for c in (generated, swapped, truth, halves))
    results["emotion_accuracy"] = float(np.mean(pred_gen == labels_n))
    results["emotion_swap_accuracy"] = float(np.mean(pred_swap == swap_n))
    results["emotion_schedule_accuracy"] = float(np.mean(pred_halves == np.array(half_labels)))
    results["classifier_accuracy_on_truth"] = float(np.mean(pred_true == labels_n))
    confusion = np.zeros((len(schema.EMOTIONS),) * 2, np.int64)
    np.add.at(confusion, (labels_n, pred_gen), 1)
    results["confusion"] = confusion.tolist()
  if out_dir is not None:
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, f"metrics_{name}.json"), "w") as f:
      json.dump(results, f, indent=2)
    plot(os.path.join(out_dir, f"eval_{name}.png"), results, example, channel_names, confusion)
  return results


def evaluate_swap_pairs(predictor, pair_batches, face_model) -> dict:
  """Emotion override against the true rendition: on training-style batches (views a, ab: the same
  sentence on a's timeline in b's emotion), a's speech decoded with b's emotion label is compared with ab.

  Returns lve_self_pairs_mm2 (a from its own speech vs a), lve_swap_true_mm2 (a's speech, b's label, ab's
  β0 and eyes vs ab) and their ratio: how much lip accuracy an emotion override costs when the target is
  the same sentence really spoken in that emotion.
  """
  lips = np.asarray(face_model.region("lips"))
  own, swap = [], []
  for batch in pair_batches:
    a, ab = (host_batch(batch[name]) for name in ("a", "ab"))
    mask = a["mask"] * ab["mask"]
    rows = np.flatnonzero((mask.sum(1) > 0) & (a["emotion"] != ab["emotion"]))
    if not rows.size:
      continue
    pred_own = predictor({**a, "mask": mask})[0]
    intensity = np.where(ab["intensity"] > 0, ab["intensity"], 2)
    view = {"mel": a["mel"], "beta0": ab["beta0"], "eye": ab["eye"], "mask": mask}
    pred_swap = predictor.with_emotion(view, ab["emotion"].astype(np.int32), intensity)
    for r in rows:
      valid = mask[r] > 0
      own.append(metrics.lve_frames(metrics.region_vertices(face_model, lips, pred_own[r, valid]),
                                    metrics.region_vertices(face_model, lips, a["coeffs"][r, valid])))
      swap.append(metrics.lve_frames(metrics.region_vertices(face_model, lips, pred_swap[r, valid]),
                                     metrics.region_vertices(face_model, lips, ab["coeffs"][r, valid])))
  if not own:
    return {}
  lve_own = float(np.concatenate(own).mean() * MM2_PER_UNIT2)
  lve_swap = float(np.concatenate(swap).mean() * MM2_PER_UNIT2)
  return {"swap_pairs": len(own), "lve_self_pairs_mm2": lve_own, "lve_swap_true_mm2": lve_swap,
          "lve_swap_true_ratio": lve_swap / max(lve_own, 1e-12)}


def _mouth_channel(channel_names, true_tk) -> int:
  if "jawOpen" in channel_names:
    return list(channel_names).index("jawOpen")
  return int(np.argmax(true_tk.std(0)))


def plot(path: str, results: dict, example: dict, channel_names, confusion=None) -> None:
  """A 2×2 figure: mouth channel and blink channel of one clip, the confusion matrix, headline numbers."""
  # Deferred: matplotlib takes about half a second to import and only the plots need it.
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # after use("Agg"): no display backend

  fig, axes = plt.subplots(2, 2, figsize=(11, 8))
  names = list(channel_names) or [f"c{i}" for i in range(example["true"].shape[1])]
  mouth = _mouth_channel(names, example["true"])
  ax = axes[0, 0]
  ax.plot(example["true"][:, mouth], label="truth", color="k")
  ax.plot(example["pred"][:, mouth], label=f"predicted ({schema.EMOTIONS[example['label']]})")
  ax.plot(example["swap"][:, mouth], label=f"emotion swapped ({schema.EMOTIONS[example['target']]})", ls="--")
  ax.set(title=f"{names[mouth]} of one clip", xlabel="frame")
  ax.legend(fontsize=8)
  ax = axes[0, 1]
  if "eyeBlink_L" in names:
    ax.plot(example["eye"][:, 0], label="control (left)", color="k")
    ax.plot(example["pred"][:, names.index("eyeBlink_L")], label="eyeBlink_L predicted", ls="--")
    ax.legend(fontsize=8)
  ax.set(title="blink control", xlabel="frame")
  ax = axes[1, 0]
  if confusion is not None:
    ax.imshow(confusion / np.maximum(confusion.sum(1, keepdims=True), 1), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(schema.EMOTIONS)), schema.EMOTIONS, rotation=45, fontsize=7)
    ax.set_yticks(range(len(schema.EMOTIONS)), schema.EMOTIONS, fontsize=7)
    ax.set(title="classifier on generated clips (rows: true)", xlabel="read as")
  else:
    ax.axis("off")
  ax = axes[1, 1]
  ax.axis("off")
  lines = [f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}"
           for k, v in results.items() if k != "confusion"]
  ax.text(0.0, 1.0, "\n".join(lines), va="top", family="monospace", fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)
