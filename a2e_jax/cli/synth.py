"""`a2e data synth`: builds the built-in emotional speech corpus (registered by a2e_jax/cli/data.py)."""

import json

from a2e_jax.core import schema
from a2e_jax.core.errors import UserError


def add_synth_parser(data_subparsers):
  """Adds the `synth` subcommand to the `a2e data` subparsers; returns its parser."""
  parser = data_subparsers.add_parser(
    "synth", help="build the built-in emotional speech corpus (espeak-ng speech + ground-truth faces)",
    description="Renders every (speaker, sentence) in MEAD's 8 emotions x 3 intensities with time-aligned "
                "ARKit/ICT expression coefficients, eye control and head pose (docs/corpus.md).")
  parser.add_argument("--out", required=True, help="output folder (manifest.jsonl, corpus.json, wav + npz)")
  parser.add_argument("--preset", default="default", choices=schema.SYNTHETIC_PRESETS,
                      help="corpus size: tiny (seconds, tests), default (minutes), wide (default x 3 voices: "
                           "the demo weights' data), large (serious training)")
  parser.add_argument("--seed", type=int, default=0, help="the corpus is a function of this seed")
  parser.add_argument("--workers", type=int, default=None, help="processes (default: all CPUs)")
  parser.add_argument("--augment", type=float, default=None, metavar="FRACTION",
                      help="share of training groups given noise/reverb/EQ/level (default 0.3; 0 = clean)")
  parser.add_argument("--engines", default="espeak", metavar="LIST",
                      help="comma-separated speech engines: espeak (built in), flite, festival (system "
                           "packages), hibari (pip), piper (pip, GPL-3.0, installed separately); "
                           "docs/corpus.md; those not installed are skipped (default espeak)")
  parser.add_argument("--overwrite", action="store_true", help="replace a corpus already in --out")
  parser.add_argument("--quiet", action="store_true", help="no progress bar")
  parser.set_defaults(func=_run_synth)
  return parser


def _run_synth(args) -> int:
  # Deferred: the command's packages load JAX, TFDS or SciPy, which `a2e --help` must not.
  from a2e_jax.data.synth.corpus import build_corpus

  if args.workers is not None and args.workers < 1:
    raise UserError(f"--workers {args.workers}: give a positive number of processes")
  chosen = tuple(e.strip() for e in args.engines.split(",") if e.strip())
  summary = build_corpus(args.out, preset=args.preset, seed=args.seed, workers=args.workers,
                         overwrite=args.overwrite, progress=not args.quiet, augment_fraction=args.augment,
                         engine_names=chosen)
  print(json.dumps(summary, indent=1))
  return 0
