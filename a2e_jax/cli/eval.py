"""`a2e eval`: the evaluation metrics of a training run's checkpoint on held-out splits, with baselines."""

import argparse
import os

EPILOG = """examples:
  a2e eval --checkpoint runs/synthetic
  a2e eval --checkpoint runs/synthetic --splits val_speaker --baseline beta0 --compare runs/no_emotion
The emotion classifier is trained on the run's training split the first time (saved as
CHECKPOINT/emotion_classifier.npz) and reused afterwards. Metrics: docs/model.md ("Evaluation").
"""


def register(subparsers) -> None:
  parser = subparsers.add_parser(
    "eval", help="evaluate a checkpoint: lip error, emotion accuracy, blinks, identity, emotion swap",
    description="Evaluate a training run's checkpoint on held-out clips; writes JSON and plots.",
    epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--checkpoint", required=True, metavar="RUN_DIR",
                      help="the training run folder (a2e train --workdir)")
  parser.add_argument("--step", default="best", help="'best', 'latest' or a step number (default: best)")
  parser.add_argument("--data", default=None, metavar="DATA_DIR",
                      help="TFDS data dir holding the built dataset (default: the run's data.data_dir)")
  parser.add_argument("--dataset", default=None, help="dataset name[/config] (default: the run's)")
  parser.add_argument("--splits", default=None, help="comma-separated splits (default: the run's)")
  parser.add_argument("--face-model", default=None,
                      help="'builtin' or a face model .npz (default: the run's; builtin for 53 channels)")
  parser.add_argument("--classifier", default=None, metavar="NPZ",
                      help="emotion classifier to use or create (default: RUN_DIR/emotion_classifier.npz)")
  parser.add_argument("--baseline", action="append", default=[], choices=("beta0",),
                      help="also evaluate a baseline (repeatable)")
  parser.add_argument("--compare", action="append", default=[], metavar="RUN_DIR",
                      help="also evaluate another run on the same clips (e.g. the ablation; repeatable)")
  parser.add_argument("--batch-size", type=int, default=16)
  parser.add_argument("--max-clips", type=int, default=0, help="clips per split (0: all)")
  parser.add_argument("--out", default=None, metavar="DIR", help="output folder (default: RUN_DIR/eval)")
  parser.set_defaults(func=run)


def run(args) -> int:
  # Deferred: the command's packages load JAX, TFDS or SciPy, which `a2e --help` must not.
  from a2e_jax.eval import runs

  splits = tuple(s for s in args.splits.split(",") if s) if args.splits else None
  results = runs.evaluate_runs(
    args.checkpoint, compare=args.compare, baselines=args.baseline, step=args.step, data_dir=args.data,
    dataset=args.dataset, splits=splits, face_model=args.face_model, classifier_path=args.classifier,
    batch_size=args.batch_size, max_clips=args.max_clips, out_dir=args.out)
  out_dir = args.out or os.path.join(args.checkpoint, "eval")
  print(runs.format_table(results))
  print(f"a2e eval: wrote {out_dir}/eval.json and plots")
  return 0
