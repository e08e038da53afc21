"""Trains the bundled demo weights on the built-in corpus and writes them with their model card.

  python tools/train_demo.py                                  # everything, with the defaults below
  python tools/train_demo.py --steps 3000 --workdir runs/demo --data-dir data/tfds
  python tools/train_demo.py --skip-train                     # re-evaluate the run, rewrite the bundle
  python tools/train_demo.py --config.data.augment.warp=0     # any config override passes through
  python tools/train_demo.py --engines espeak,flite,hibari --held-out festival   # the bundled weights

1. The built-in corpus of --preset (`a2e data synth --preset wide`: 48 voices) and its dataset (`a2e data
   build`) are made when --data-dir lacks them.
2. `train_and_evaluate` with configs/synthetic.py (default variant: the tiny A2ENet) and --steps; the run
   in --workdir resumes if interrupted.
3. tools/eval_generate.py's quality numbers on held-out speakers and sentences and on real speech.
4. a2e_jax/assets/demo/params.msgpack (float32 parameters of the best checkpoint) and model_card.json
   (model config, data, training, metrics, the command).
5. tools/eval_voices.py: the emotion head's temperature and `auto`'s threshold fitted on held-out groups
   of the training engines (the card's emotion_calibration, which `a2e generate` uses), then the
   cross-engine figures, with the --held-out engines (never in the corpus), and the real clip's (`voices`).
"""

import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "tools"))

from a2e_jax.core.schema import SYNTHETIC_PRESETS  # noqa: E402  (after the path setup)

MAX_BYTES = 25 * 2**20
# The bundled weights' log-mel augmentation (data/mel_augment.py): voices and channels espeak-ng never
# makes. Stronger settings (warp 0.15, EQ 8 dB, floor 0.7, with dropout 0.1; or gain 12 dB) did worse on
# held-out and real speech (docs/generate.md).
DEMO_AUGMENT = ["--config.data.augment.gain_db=6", "--config.data.augment.mel_noise=0.3",
                "--config.data.augment.warp=0.1", "--config.data.augment.eq_db=6",
                "--config.data.augment.floor=0.5", "--config.data.augment.floor_max=-1.0"]


def ensure_dataset(data_dir: str, corpus_dir: str, preset: str, engines: str = "espeak") -> None:
  """Synthesises the corpus of `preset` with `engines` and builds its dataset unless `data_dir` holds it."""
  if os.path.isdir(os.path.join(data_dir, "a2e_synthetic", preset)):
    return
  a2e = [sys.executable, "-m", "a2e_jax.cli"]
  if not os.path.isfile(os.path.join(corpus_dir, "manifest.jsonl")):
    subprocess.run(a2e + ["data", "synth", "--out", corpus_dir, "--preset", preset, "--engines", engines],
                   check=True)
  subprocess.run(a2e + ["data", "build", "--synthetic", preset, "--corpus", corpus_dir, "--data-dir",
                        data_dir], check=True)


def demo_config(args, extra=()):
  from a2e_jax.core.config import load_config

  overrides = [f"--config.data.data_dir={args.data_dir}",
               f"--config.data.dataset=a2e_synthetic/{args.preset}",
               f"--config.train.steps={args.steps}", f"--config.train.batch_size={args.batch_size}",
               f"--config.data.window_frames={args.window}",
               f"--config.eval.every={args.eval_every}", f"--config.checkpoint.every={args.eval_every}",
               "--config.eval.metrics_clips=0", "--config.summary.progress_bar=False", *DEMO_AUGMENT, *extra]
  return load_config(os.path.join(REPO, "configs", "synthetic.py"), overrides), overrides


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", default=os.path.join(REPO, "runs", "demo"))
  parser.add_argument("--data-dir", default=os.path.join(REPO, "data", "tfds"))
  parser.add_argument("--preset", default="wide", choices=SYNTHETIC_PRESETS,
                      help="built-in corpus (docs/corpus.md); wide's 48 voices carry over to a human voice "
                      "where default's 16 do not (docs/generate.md, real speech)")
  parser.add_argument("--corpus", help="the corpus folder (default data/corpus_PRESET)")
  parser.add_argument("--engines", default="espeak", help="speech engines of the corpus (a2e data synth "
                      "--engines; keep one out to evaluate on it, tools/eval_voices.py)")
  parser.add_argument("--held-out", default="festival", help="engines kept out of the corpus, scored as "
                      "voices the network never heard (tools/eval_voices.py; skipped when not installed)")
  parser.add_argument("--voice-groups", type=int, default=4, help="groups per engine for the calibration "
                      "and the cross-engine figures (tools/eval_voices.py --groups)")
  parser.add_argument("--skip-voices", action="store_true", help="no calibration, no cross-engine figures")
  parser.add_argument("--steps", type=int, default=3000)
  parser.add_argument("--batch-size", type=int, default=16)
  parser.add_argument("--window", type=int, default=32, help="frames per training window")
  parser.add_argument("--eval-every", type=int, default=500)
  parser.add_argument("--max-clips", type=int, default=96, help="held-out clips per split for the card")
  parser.add_argument("--out", default=os.path.join(REPO, "a2e_jax", "assets", "demo"))
  parser.add_argument("--skip-train", action="store_true", help="use the run in --workdir as it is")
  parser.add_argument("--note", help="a remark for the card's training section (e.g. how the run went)")
  args, extra = parser.parse_known_args(argv)
  unknown = [a for a in extra if not a.startswith("--config.")]
  if unknown:
    parser.error(f"unrecognized arguments: {' '.join(unknown)} (config overrides are --config.a.b=value)")

  import eval_generate

  from a2e_jax.core import run_dir
  from a2e_jax.infer import weights as weights_lib
  from a2e_jax.train.trainer import train_and_evaluate

  args.corpus = args.corpus or os.path.join(REPO, "data", f"corpus_{args.preset}")
  ensure_dataset(args.data_dir, args.corpus, args.preset, args.engines)
  config, overrides = demo_config(args, extra)
  started = time.perf_counter()
  if not args.skip_train:
    train_and_evaluate(config, args.workdir)
  train_seconds = time.perf_counter() - started

  run_config = run_dir.load_run_config(args.workdir)
  params = run_dir.restore_params(args.workdir, "best")
  card = {
    "name": "a2e_jax demo weights",
    "channel_names": list(_channels(run_config)),
    "face_model": run_config.face_model,
    "window_frames": int(run_config.data.window_frames),
    "data": {"dataset": run_config.data.dataset, "train_split": run_config.data.train_split,
             "corpus": f"built-in synthetic speech, {args.preset} preset (a2e data synth)",
             "engines": _engines(args.corpus),
             "eval_splits": list(run_config.data.eval_splits)},
    "training": {"config": "configs/synthetic.py", "overrides": overrides,
                 "steps": int(run_config.train.steps), "batch_size": int(run_config.train.batch_size),
                 "seconds": None if args.skip_train else round(train_seconds), "note": args.note,
                 "checkpoint": "best by " + str(run_config.checkpoint.best_metric),
                 "learning_curve": _curve(args.workdir)},
    "command": "python tools/train_demo.py " + " ".join(argv if argv is not None else sys.argv[1:]),
  }
  size = weights_lib.save_bundle(args.out, run_config.model, params, card)
  if size > MAX_BYTES:
    raise SystemExit(f"params are {size / 2**20:.1f} MB, over the 25 MB the repository takes")
  weights = weights_lib.load_bundle(args.out)
  data_cfg = config.data
  results = eval_generate.quality(weights, data_cfg, tuple(data_cfg.eval_splits), args.max_clips,
                                  os.path.join(args.workdir, "emotion_classifier.npz"),
                                  corpus_dir=args.corpus)
  card["metrics"] = results
  weights_lib.save_bundle(args.out, run_config.model, params, card)
  print(eval_generate.table(results))
  if not args.skip_voices:
    import eval_voices

    engines = ",".join(dict.fromkeys(_names(args.engines) + _names(args.held_out)))
    eval_voices.main(["--checkpoint", args.out, "--engines", engines, "--calibrate", args.engines,
                      "--groups", str(args.voice_groups), "--write-card",
                      "--classifier", os.path.join(args.workdir, "voices_classifier.npz"),
                      "--out", os.path.join(args.workdir, "eval_voices.json")])
  print(f"wrote {args.out} ({size / 2**20:.1f} MB of parameters)")
  return 0


def _names(engines: str) -> list:
  return [e.strip() for e in engines.split(",") if e.strip()]


def _engines(corpus_dir: str) -> dict:
  """{engine: version} the corpus was made with (its corpus.json), {} when it is not at hand."""
  path = os.path.join(corpus_dir, "corpus.json")
  if not os.path.isfile(path):
    return {}
  with open(path) as f:
    return json.load(f).get("engines", {"espeak": "espeakng-loader"})


def _channels(run_config):
  from a2e_jax.core.channels import ICT_CHANNELS

  return ICT_CHANNELS if run_config.model.num_coeffs == len(ICT_CHANNELS) else ()


def _curve(workdir: str) -> list:
  """[step, train loss, eval loss] at each evaluation, from the run's metrics.jsonl."""
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.isfile(path):
    return []
  rows, last_train = {}, None
  with open(path) as f:
    for line in f:
      record = json.loads(line)
      if record.get("split") == "train":
        last_train = record["loss"]
      elif "eval/loss" in record:
        rows[record["step"]] = [record["step"], last_train, record["eval/loss"]]  # a resumed step: the last
  return list(rows.values())


if __name__ == "__main__":
  sys.exit(main())
