"""`a2e data synth|build|align|info`: the built-in corpus, TFDS datasets from manifests, pairing warps."""

import json
import os
import re
import sys

import numpy as np
import tqdm

from a2e_jax.cli.synth import add_synth_parser
from a2e_jax.core import schema
from a2e_jax.core.errors import UserError

DEFAULT_DATA_DIR = "data/tfds"


def register(subparsers) -> None:
  data = subparsers.add_parser("data", help="build corpora and datasets, align pairs (docs/data.md)")
  actions = data.add_subparsers(dest="action", metavar="ACTION")
  actions.required = True
  add_synth_parser(actions)

  build = actions.add_parser(
    "build",
    help="build a TFDS dataset (ArrayRecord) from a corpus manifest, then align its pairs",
    description="Reads every clip of the manifest (audio -> SadTalker log-mel, coefficients -> 25 fps), "
    "writes one ArrayRecord split per manifest split under DATA_DIR/<builder>/<name>/<version>, reports "
    "unusable clips by path and count, then computes the DTW warps between renditions.",
  )
  source = build.add_mutually_exclusive_group(required=True)
  source.add_argument("--manifest", help="manifest.jsonl or .csv of a corpus (a2e_manifest builder)")
  source.add_argument(
    "--synthetic",
    choices=schema.SYNTHETIC_PRESETS,
    help="the built-in corpus of this preset (a2e_synthetic builder); synthesised unless "
    "--corpus gives one `a2e data synth` wrote",
  )
  build.add_argument("--corpus", help="with --synthetic: an existing corpus folder")
  build.add_argument("--seed", type=int, default=0, help="with --synthetic and no --corpus: corpus seed")
  build.add_argument(
    "--name", help="dataset config name for --manifest (default: the manifest's folder name)"
  )
  build.add_argument(
    "--data-dir", default=DEFAULT_DATA_DIR, help=f"TFDS data dir (default {DEFAULT_DATA_DIR})"
  )
  build.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: all CPUs)")
  build.add_argument("--strict", action="store_true", help="stop at the first unusable clip")
  build.add_argument("--overwrite", action="store_true", help="rebuild a dataset that exists")
  build.add_argument("--no-align", action="store_true", help="skip the DTW warps (`a2e data align` later)")
  build.add_argument("--quiet", action="store_true", help="no progress bars")
  build.set_defaults(func=run_build)

  align = actions.add_parser(
    "align",
    help="DTW warps between renditions of each (speaker, sentence); scores them when phones exist",
    description="Writes a2e_pairs-<split>.npz beside the dataset (clip metadata and the 25 fps warps the "
    "input pipeline uses) and, for the built-in corpus, alignment_score.json: the median absolute error "
    "of the warps against the true phoneme timing, in frames.",
  )
  align.add_argument("--dataset", required=True, help="name/config[:version], e.g. a2e_synthetic/default")
  align.add_argument(
    "--data-dir", default=DEFAULT_DATA_DIR, help=f"TFDS data dir (default {DEFAULT_DATA_DIR})"
  )
  align.add_argument("--splits", nargs="*", help="splits to align (default: all)")
  align.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: all CPUs)")
  align.add_argument("--quiet", action="store_true", help="no progress bar")
  align.set_defaults(func=run_align)

  info = actions.add_parser("info", help="splits, channels, build report and pairing of a built dataset")
  info.add_argument("--dataset", required=True, help="name/config[:version], e.g. a2e_synthetic/default")
  info.add_argument(
    "--data-dir", default=DEFAULT_DATA_DIR, help=f"TFDS data dir (default {DEFAULT_DATA_DIR})"
  )
  info.set_defaults(func=run_info)


def _config_name(manifest: str) -> str:
  folder = os.path.basename(os.path.dirname(os.path.abspath(manifest))) or "corpus"
  return re.sub(r"[^a-z0-9_]+", "_", folder.lower()).strip("_") or "corpus"


def run_build(args) -> int:
  # Deferred: the command's packages load JAX, TFDS or SciPy, which `a2e --help` must not.
  import tensorflow_datasets as tfds

  from a2e_jax.data import builders

  if args.workers < 1:
    raise UserError(f"--workers {args.workers}: give a positive number of processes")
  if args.corpus and not args.synthetic:
    raise UserError("--corpus goes with --synthetic; for other corpora pass --manifest")
  if args.corpus and not os.path.isfile(os.path.join(args.corpus, "manifest.jsonl")):
    # TFDS treats a missing or empty manual dir as none, and the builder would synthesise a corpus anew.
    raise UserError(f"--corpus {args.corpus} holds no manifest.jsonl; pass a folder `a2e data synth` wrote, "
                    "or leave --corpus out to synthesise the corpus")
  if args.quiet:
    tfds.disable_progress_bar()
  common = {
    "data_dir": args.data_dir,
    "file_format": "array_record",
    "workers": args.workers,
    "strict": args.strict,
  }
  if args.manifest:
    if not os.path.isfile(args.manifest):
      raise UserError(f"manifest {args.manifest} not found")
    name = args.name or _config_name(args.manifest)
    if not re.fullmatch(r"[a-z0-9_]+", name):
      raise UserError(f"--name {name!r}: use lower-case letters, digits and _")
    builder = builders.A2eManifest(config=name, manifest=args.manifest, **common)
    manual_dir = None
  else:
    if args.name:
      raise UserError("--name goes with --manifest; the built-in corpus is named by its preset")
    builder = builders.A2eSynthetic(config=args.synthetic, seed=args.seed, **common)
    manual_dir = args.corpus
  dataset = f"{builder.name}/{builder.builder_config.name}"
  exists = os.path.isfile(os.path.join(builder.data_dir, "dataset_info.json"))
  if exists and not args.overwrite:
    raise UserError(f"{builder.data_dir} exists; pass --overwrite to rebuild {dataset}")
  mode = (
    tfds.download.GenerateMode.FORCE_REDOWNLOAD
    if exists
    else tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS
  )
  builder.download_and_prepare(
    download_config=tfds.download.DownloadConfig(manual_dir=manual_dir, download_mode=mode)
  )
  builder.report.save(builder.data_dir)
  print(f"{dataset} -> {builder.data_dir}", file=sys.stderr)
  print(builder.report.summary(), file=sys.stderr)
  if not args.no_align:
    _align(args.data_dir, dataset, None, args.workers, args.quiet)
  return 0


def _align(data_dir: str, dataset: str, splits, workers: int, quiet: bool) -> dict:
  # Deferred: the command's packages load JAX, TFDS or SciPy, which `a2e --help` must not.
  import tensorflow_datasets as tfds

  from a2e_jax.data import align, builders

  path = builders.dataset_dir(data_dir, dataset)
  builder = tfds.builder_from_directory(path)
  available = list(builder.info.splits)
  for split in splits or ():
    if split not in available:
      raise UserError(f"dataset {dataset!r} has no split {split!r}; it has {', '.join(available)}")
  scores = {}
  for split in splits or available:
    source = builder.as_data_source(split)
    with tqdm.tqdm(total=None, desc=f"align {split}", unit="group", disable=quiet) as bar:

      def progress(done, total, bar=bar):
        bar.total = total
        bar.n = done
        bar.refresh()

      index = align.build_pair_index(source, workers=workers, progress=progress)
    index.save(align.pair_index_path(path, split))
    try:
      scores[split] = align.score_alignment(index, source)
    except ValueError:  # no phone timing: real data
      continue
  if scores:
    with open(os.path.join(path, "alignment_score.json"), "w") as f:
      json.dump(scores, f, indent=1)
    for split, score in scores.items():
      print(
        f"{split}: DTW vs true phone timing, median |error| {score['median_abs_error_frames']:.2f} frames "
        f"(mean {score['mean_abs_error_frames']:.2f}, p90 {score['p90_abs_error_frames']:.1f}) over "
        f"{score['phones']} phones of {score['pairs']} pairs",
        file=sys.stderr,
      )
  return scores


def run_align(args) -> int:
  if args.workers < 1:
    raise UserError(f"--workers {args.workers}: give a positive number of processes")
  _align(args.data_dir, args.dataset, args.splits, args.workers, args.quiet)
  return 0


def run_info(args) -> int:
  # Deferred: the command's packages load JAX, TFDS or SciPy, which `a2e --help` must not.
  from a2e_jax.data import align, builders

  path = builders.dataset_dir(args.data_dir, args.dataset)
  info = {"path": path, **builders.metadata(args.data_dir, args.dataset)}
  info["channel_names"] = " ".join(info.get("channel_names", ()))
  report_path = os.path.join(path, builders.REPORT_FILE)
  if os.path.isfile(report_path):
    with open(report_path) as f:
      info["left_out"] = json.load(f)["counts"]
  pairing = {}
  for split in info["splits"]:
    index_path = align.pair_index_path(path, split)
    if os.path.isfile(index_path):
      index = align.PairIndex.load(index_path)
      emotions = [len(set(index.emotion[m].tolist())) for m in index.members()]
      pairing[split] = {
        "groups": len(emotions),
        "groups_with_several_emotions": int(np.sum(np.array(emotions) > 1)),
        "hours": float(index.num_frames.sum() / 25 / 3600),
      }
  info["pairing"] = pairing or "not aligned (a2e data align)"
  print(json.dumps(info, indent=1))
  return 0
