"""Issue 5's results: the full A2ENet against two baselines on held-out speakers, sentences and test.

  python tools/compare_baselines.py --data-dir data/tfds --steps 1500 --out runs/compare
  python tools/compare_baselines.py --data-dir /tmp/a2e_demo/tfds --steps 1500 --out /tmp/a2e_results \
      --full-from /tmp/a2e_demo/run --clips-per-split 400 --curve docs/compare_learning_curves.png

Predictors, all scored by `a2e_jax.eval.evaluate` on the same clips with one emotion classifier (trained on
the training split's ground truth, OUT/emotion_classifier.npz):
  full      configs/synthetic.py (default variant) trained for --steps, in OUT/full
  ablation  the same config, seed, data and steps with the emotion branch and cross-reconstruction off
            (ABLATION below), in OUT/ablation
  beta0     the resting face β0 at every frame
Both runs train (or resume) with `train_and_evaluate`; --full-from copies a finished run of the same config
into OUT/full instead of training the full model again (a snapshot: the source may go on changing).
Both are scored at their last step (not the best by eval loss: that is picked on the validation splits).
Held-out clips: a seeded random subset per split (the eval iterator orders clips longest first, so its first
N clips would over-represent the slow emotions). The emotion swap's lip error is given against the clip's own
truth and, on 512 training-style windows per split, against the same sentence spoken in the target emotion
(`evaluate_swap_pairs`). Writes OUT/compare.json, OUT/compare.md, the learning curves
(--curve, default OUT/learning_curves.png) and per-predictor plots in OUT/eval/<split>/.
"""

import argparse
import json
import os
import platform
import shutil
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

ABLATION = (
  "--config.model.use_emotion=False",
  "--config.model.emotion_override_rate=0.0",
  "--config.loss.audio_cross=0.0",
  "--config.loss.coeff_cross=0.0",
  "--config.loss.content_equal=0.0",
  "--config.loss.emotion_ce=0.0",
  "--config.loss.intensity=0.0",
  "--config.loss.embed_align=0.0",
)
# What must agree for --full-from's run to stand in for the full model (the rest only logs and saves).
SAME_SECTIONS = ("task", "seed", "input", "face_model", "model", "loss", "data", "optim", "train", "mesh")
IGNORED_KEYS = ("train.log_every",)
COLUMNS = (  # (metric, header, format)
  ("lve_mm2", "LVE mm²", "{:.2f}"),
  ("fdd_mm2", "FDD mm²", "{:+.3f}"),
  ("emotion_accuracy", "emotion acc", "{:.3f}"),
  ("blink_precision", "blink P", "{:.3f}"),
  ("blink_recall", "blink R", "{:.3f}"),
  ("identity_error", "identity err", "{:.4f}"),
  ("emotion_swap_accuracy", "swap acc", "{:.3f}"),
  ("lve_swap_ratio", "LVE swap/own", "{:.2f}"),
  ("lve_swap_true_ratio", "LVE swap/own vs true rendition", "{:.2f}"),
)


def run_configs(data_dir: str, steps: int, eval_every: int):
  """(full config, ablation config, the overrides of each) from configs/synthetic.py's default variant."""
  from a2e_jax.core.config import load_config

  common = [f"--config.data.data_dir={data_dir}", f"--config.train.steps={steps}",
            f"--config.eval.every={eval_every}", f"--config.checkpoint.every={eval_every}",
            "--config.eval.metrics_clips=0", "--config.summary.progress_bar=False"]
  path = os.path.join(REPO, "configs", "synthetic.py")
  return (load_config(path, common), load_config(path, common + list(ABLATION)), common,
          common + list(ABLATION))


def _flat(tree, prefix=""):
  out = {}
  for k, v in tree.items():
    out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k: v})
  return out


def config_differences(saved: dict, wanted: dict) -> list[str]:
  """Keys of SAME_SECTIONS whose values differ between two config dicts, as 'key: saved != wanted'."""
  a = _flat({k: saved.get(k) for k in SAME_SECTIONS})
  b = _flat({k: wanted.get(k) for k in SAME_SECTIONS})
  return [f"{k}: {a.get(k)!r} != {b.get(k)!r}" for k in sorted(set(a) | set(b))
          if k not in IGNORED_KEYS and _norm(a.get(k)) != _norm(b.get(k))]


def _norm(value):
  return list(value) if isinstance(value, tuple) else value


def checkpoint_steps(workdir: str) -> list[int]:
  folder = os.path.join(workdir, "checkpoints")
  return sorted(int(d) for d in os.listdir(folder) if d.isdigit()) if os.path.isdir(folder) else []


def adopt_full_run(source: str, target: str, config) -> None:
  """Copies the finished run `source` into `target` after checking that its config is `config`'s."""
  from a2e_jax.core import run_dir

  saved = run_dir.load_run_config(source)
  if saved is None:
    raise SystemExit(f"--full-from {source}: no config.json there; pass an 'a2e train --workdir' folder")
  diff = config_differences(saved.to_dict(), json.loads(config.to_json()))
  if diff:
    raise SystemExit(f"--full-from {source} was trained with another config ({'; '.join(diff)}); "
                     "drop --full-from to train the full model here")
  if config.train.steps not in checkpoint_steps(source):
    raise SystemExit(f"--full-from {source} has no checkpoint at step {config.train.steps} "
                     f"(has {checkpoint_steps(source)}); let it finish or drop --full-from")
  if os.path.isdir(target):
    if config.train.steps not in checkpoint_steps(target):
      raise SystemExit(f"{target} exists without step {config.train.steps}; remove it or drop --full-from")
    return
  shutil.copytree(source, target, ignore=shutil.ignore_patterns("eval", "emotion_classifier.npz"))


def evaluate_all(workdirs: dict, step: int, data_cfg, splits, clips: int, seed: int, batch_size: int,
                 classifier_path: str, out_dir: str) -> tuple[dict, dict, dict]:
  """({split: {name: metrics}}, {split: clips per emotion and `paired_emotion`}, {split: {name: seconds}})
  for each run in `workdirs` (named full and ablation) and β0."""
  from a2e_jax.core import run_dir, schema
  from a2e_jax.core.channels import ICT_CHANNELS
  from a2e_jax.data import pipeline
  from a2e_jax.eval import evaluate, runs
  from a2e_jax.models.a2enet import A2ENet
  from a2e_jax.tasks.a2enet import load_face_model

  configs = {name: run_dir.load_run_config(w) for name, w in workdirs.items()}
  first = next(iter(configs.values()))
  face = load_face_model(first.face_model or "builtin")
  classifier = runs.get_classifier(classifier_path, data_cfg, first.model.num_coeffs)
  predictors = {name: evaluate.ModelPredictor(A2ENet(configs[name].model), run_dir.restore_params(w, step))
                for name, w in workdirs.items()}
  predictors["beta0"] = evaluate.Beta0Predictor()
  mesh = runs.one_device_mesh()
  results, details, seconds = {}, {}, {}
  for split in splits:
    subset = runs.sample_clips(data_cfg, split, clips, seed)
    emotions = np.bincount([int(subset[i]["emotion"]) for i in range(len(subset))],
                           minlength=len(schema.EMOTIONS))
    results[split], seconds[split] = {}, {}
    for name, predictor in predictors.items():
      started = time.perf_counter()
      batches = pipeline.make_eval_iterator(data_cfg, split, batch_size, mesh, source=subset)
      results[split][name] = evaluate.evaluate(predictor, batches, face, classifier,
                                               os.path.join(out_dir, split), ICT_CHANNELS, name)
      windows = runs.pair_batches(data_cfg, split, batch_size, runs.SWAP_PAIR_CLIPS // batch_size, mesh, seed)
      results[split][name].update(evaluate.evaluate_swap_pairs(predictor, windows, face))
      seconds[split][name] = round(time.perf_counter() - started, 1)
      print(f"{split} {name}: {time.perf_counter() - started:.0f} s", flush=True)
    batches = pipeline.make_eval_iterator(data_cfg, split, batch_size, mesh, source=subset)
    details[split] = {"clips_per_emotion": emotions.tolist(),
                      "paired_emotion": paired_emotion(predictors["full"], predictors["ablation"], batches,
                                                       classifier)}
  return results, details, seconds


def paired_emotion(full, ablation, batches, classifier) -> dict:
  """McNemar's exact test of the two models' emotion accuracy on the same clips: the clips the classifier
  reads right from one model's generated sequence and wrong from the other's, and the two-sided p-value."""
  from scipy import stats

  generated, labels = {"full": [], "ablation": []}, []
  for batch in batches:
    view = {k: np.asarray(v) for k, v in batch.items()}
    lengths = view["mask"].sum(1).astype(int)
    rows = np.flatnonzero(lengths > 0)
    for name, predictor in (("full", full), ("ablation", ablation)):
      coeffs = predictor(view)[0]
      generated[name] += [(coeffs[r, :lengths[r]], view["beta0"][r]) for r in rows]
    labels += [int(view["emotion"][r]) for r in rows]
  right = {name: classifier.predict(clips) == np.array(labels) for name, clips in generated.items()}
  only_full = int(np.sum(right["full"] & ~right["ablation"]))
  only_ablation = int(np.sum(~right["full"] & right["ablation"]))
  discordant = only_full + only_ablation
  p = stats.binomtest(only_full, discordant).pvalue if discordant else 1.0
  return {"clips": len(labels), "only_full_right": only_full, "only_ablation_right": only_ablation,
          "p_value": float(p)}


def verdict(results: dict, tolerance: float) -> dict:
  """Per split: does the full model beat both baselines on emotion accuracy, and is its lip error no
  higher than theirs (strictly, and within `tolerance` relative)?"""
  out = {}
  for split, by in results.items():
    full, abl, b0 = by["full"], by["ablation"], by["beta0"]
    out[split] = {
      "emotion_beats_ablation": full["emotion_accuracy"] > abl["emotion_accuracy"],
      "emotion_beats_beta0": full["emotion_accuracy"] > b0["emotion_accuracy"],
      "lve_ratio_to_ablation": full["lve_mm2"] / abl["lve_mm2"],
      "lve_not_higher_than_ablation": full["lve_mm2"] <= abl["lve_mm2"],
      "lve_within_tolerance_of_ablation": full["lve_mm2"] <= abl["lve_mm2"] * (1 + tolerance),
      "lve_below_beta0": full["lve_mm2"] < b0["lve_mm2"],
    }
  return out


def _read_metrics(workdir: str):
  """(train {step: record}, eval {step: record}) from WORKDIR/metrics.jsonl; a resumed step keeps its last."""
  train, evals = {}, {}
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    for line in f:
      record = json.loads(line)
      if record.get("split") == "train":
        train[record["step"]] = record
      elif "eval/loss" in record:
        evals[record["step"]] = record
  return train, evals


def _binned(steps, values, width: int):
  steps, values = np.asarray(steps), np.asarray(values, np.float64)
  bins = (steps - 1) // width
  keep = np.unique(bins)
  return np.array([steps[bins == b].mean() for b in keep]), np.array([values[bins == b].mean() for b in keep])


def learning_curves(workdirs: dict, path: str, smooth: int = 50) -> None:
  """Train (means over `smooth` steps) and eval curves of each run: its own total loss, and the lip-vertex
  and coefficient terms that both objectives share (unweighted, eval over the eval splits' mean)."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  panels = (("loss", "total loss (each run's own objective)"),
            ("vertex_lip", "lip vertex term (cm², same in both)"),
            ("coeff_self", "coefficient MSE, self pairings (same in both)"))
  fig, axes = plt.subplots(1, len(panels), figsize=(13, 3.6))
  for (name, workdir), color in zip(workdirs.items(), ("C0", "C1", "C2")):
    train, evals = _read_metrics(workdir)
    steps = sorted(train)
    for ax, (key, title) in zip(axes, panels):
      x, y = _binned(steps, [train[s][key] for s in steps], smooth)
      ax.plot(x, y, color=color, lw=1.2, label=f"{name} train")
      eval_steps = sorted(evals)
      splits = sorted({k.split("/")[1] for r in evals.values() for k in r if k.count("/") == 2})
      values = [np.mean([evals[s][f"eval/{p}/{key}"] for p in splits]) for s in eval_steps]
      ax.plot(eval_steps, values, color=color, ls="--", marker="o", ms=4, label=f"{name} eval")
      ax.set(title=title, xlabel="step", yscale="log")
  axes[0].legend(fontsize=8)
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=72)
  plt.close(fig)


def markdown(results: dict, checks: dict, details: dict) -> str:
  """The table of COLUMNS, one block of rows per split, and the verdict lines."""
  from a2e_jax.core import schema

  head = "| split | predictor | " + " | ".join(h for _, h, _ in COLUMNS) + " |"
  lines = [head, "|" + "---|" * (len(COLUMNS) + 2)]
  for split, by in results.items():
    for name in ("full", "ablation", "beta0"):
      r = by[name]
      cells = [fmt.format(r[k]) if k in r else "-" for k, _, fmt in COLUMNS]
      lines.append(f"| {split} | {name} | " + " | ".join(cells) + " |")
  lines.append("")
  for split, by in results.items():
    c, full, pair = checks[split], by["full"], details[split]["paired_emotion"]
    per_emotion = ", ".join(f"{e} {n}" for e, n in zip(schema.EMOTIONS, details[split]["clips_per_emotion"]))
    lines.append(
      f"- {split}: {full['clips']} clips ({per_emotion}); classifier on ground truth "
      f"{full['classifier_accuracy_on_truth']:.3f}; full model's audio emotion head "
      f"{full.get('audio_emotion_accuracy', float('nan')):.3f}. Emotion accuracy beats the ablation: "
      f"{_yes(c['emotion_beats_ablation'])}, beats β0: {_yes(c['emotion_beats_beta0'])}; LVE full/ablation "
      f"{c['lve_ratio_to_ablation']:.3f} (not higher: {_yes(c['lve_not_higher_than_ablation'])}). Paired: "
      f"{pair['only_full_right']} clips read right only from the full model, {pair['only_ablation_right']} "
      f"only from the ablation (McNemar exact p = {pair['p_value']:.2g}).")
  return "\n".join(lines) + "\n"


def _yes(flag: bool) -> str:
  return "yes" if flag else "**no**"


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data-dir", required=True, help="TFDS data dir holding a2e_synthetic/default")
  parser.add_argument("--steps", type=int, default=1500, help="train steps of each run")
  parser.add_argument("--out", default=os.path.join(REPO, "runs", "compare"))
  parser.add_argument("--full-from", metavar="RUN_DIR",
                      help="a finished run of the full model with the same config, copied instead of trained")
  parser.add_argument("--eval-every", type=int, default=500, help="train-time eval/checkpoint interval")
  parser.add_argument("--splits", default="val_speaker,val_sentence,test")
  parser.add_argument("--clips-per-split", type=int, default=0, help="random clips per split (0: all)")
  parser.add_argument("--seed", type=int, default=0, help="seed of the held-out subset")
  parser.add_argument("--batch-size", type=int, default=16, help="eval batch size")
  parser.add_argument("--tolerance", type=float, default=0.05, help="relative LVE margin called 'within'")
  parser.add_argument("--curve", help="learning-curve PNG (default OUT/learning_curves.png)")
  parser.add_argument("--skip-train", action="store_true", help="evaluate the runs in OUT as they are")
  args = parser.parse_args(argv)

  import jax

  from a2e_jax.train.trainer import train_and_evaluate

  data_dir = os.path.abspath(args.data_dir)
  full_cfg, ablation_cfg, full_overrides, ablation_overrides = run_configs(data_dir, args.steps,
                                                                          args.eval_every)
  workdirs = {"full": os.path.join(args.out, "full"), "ablation": os.path.join(args.out, "ablation")}
  seconds = {"train": {}}
  if args.full_from:
    adopt_full_run(args.full_from, workdirs["full"], full_cfg)
  for name, config in (("full", full_cfg), ("ablation", ablation_cfg)):
    if args.skip_train or (name == "full" and args.full_from):
      continue
    started = time.perf_counter()
    train_and_evaluate(config, workdirs[name])
    seconds["train"][name] = round(time.perf_counter() - started)
  for workdir in workdirs.values():
    if args.steps not in checkpoint_steps(workdir):
      raise SystemExit(f"{workdir} has no checkpoint at step {args.steps}; run without --skip-train")

  curve = args.curve or os.path.join(args.out, "learning_curves.png")
  learning_curves(workdirs, curve)
  splits = tuple(s for s in args.splits.split(",") if s)
  results, details, seconds["eval"] = evaluate_all(
    workdirs, args.steps, full_cfg.data, splits, args.clips_per_split, args.seed, args.batch_size,
    os.path.join(args.out, "emotion_classifier.npz"), os.path.join(args.out, "eval"))
  checks = verdict(results, args.tolerance)
  summary = {
    "command": "python tools/compare_baselines.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    "full_model": (f"copied from {os.path.abspath(args.full_from)} (same config, finished)" if args.full_from
                   else "trained here"),
    "overrides": {"full": full_overrides, "ablation": ablation_overrides},
    "steps": args.steps, "checkpoint_step": args.steps, "clips_per_split": args.clips_per_split,
    "subset_seed": args.seed, "tolerance": args.tolerance,
    "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "jax": jax.__version__,
                "devices": [str(d) for d in jax.devices()], "load_average": os.getloadavg()},
    "seconds": seconds, "learning_curves": curve, "results": results, "details": details,
    "verdict": checks,
    "full_model_beats_both_on_emotion": all(c["emotion_beats_ablation"] and c["emotion_beats_beta0"]
                                            for c in checks.values()),
    "full_model_lve_not_higher_than_ablation": all(c["lve_not_higher_than_ablation"]
                                                   for c in checks.values()),
  }
  with open(os.path.join(args.out, "compare.json"), "w") as f:
    json.dump(summary, f, indent=2)
  table = markdown(results, checks, details)
  with open(os.path.join(args.out, "compare.md"), "w") as f:
    f.write(table)
  print(table)
  print(f"wrote {args.out}/compare.json, compare.md and {curve}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
