"""Benchmark: log-mel extraction (x real time, bounded memory), input-pipeline throughput vs the train step.

  python tools/bench_data.py [--hours 1] [--batch 16] [--frames 32] [--json bench_data.json]
  (or: a2e bench data ...)

Features: `hours` of 16 kHz speech (the shared real recording tiled, or a speech-like signal when it is
absent) flow through `LogMelStream` in blocks of `block_seconds`, so memory stays bounded; the peer is
SadTalker's `melspectrogram` as its audio.py writes it (scipy lfilter, librosa.stft, dense mel matrix)
on the same blocks. Rows report x real time and the peak of traced (numpy) memory.

Pipeline: examples/s and host bytes per example of `make_batch_iterator` on a built dataset (default: the
tiny built-in corpus, synthesised and built into a temporary folder when --data-dir lacks it): with the
windows cut on the devices (what the trainer uses), with them cut on the host (what augmentation needs),
and the peer, the pipeline as it was at git revision --before (windows on the host, four records read
per example), loaded from git and measured in the same run; against the examples/s of the project's
jitted tiny A2ENet train step (train/step.py) on the same mesh; the train step fed by the pipeline,
which shows whether the pipeline keeps up while sharing the CPU; and the two host parts of a batch of the
trainer's pipeline ("part:" rows: building its rows, placing them on the devices). The loss of one fixed
batch through both layouts shows the step's results unchanged. Times are medians over repeats after
warm-up; the rows take turns so load from other processes hits them alike.
"""

import argparse
import functools
import json
import os
import pathlib
import platform
import statistics
import sys
import tempfile
import tracemalloc

if "jax" not in sys.modules:  # fake CPU devices must be requested before JAX starts
  os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
  ).strip()

import numpy as np
from timing import timed_runs

REPO = pathlib.Path(__file__).resolve().parents[1]
BEFORE = "16c747e"  # the input pipeline before the windows moved to the devices
SPEECH = REPO.parent / "shared" / "audio" / "real_speech_en_stereo_8s.wav"


# --------------------------------------------------------------------------------------------- features


def speech_block(seconds: float) -> np.ndarray:
  """`seconds` of 16 kHz speech: the shared real recording tiled, else a voiced, syllable-modulated signal."""
  from a2e_jax.audio import io

  n = int(seconds * 16000)
  if SPEECH.exists():
    wav = io.load_audio(str(SPEECH))
    return np.resize(wav, n).astype(np.float32)
  t = np.arange(n) / 16000
  f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
  voiced = sum(np.sin(2 * np.pi * np.cumsum(f0 * h) / 16000) / h for h in range(1, 25))
  return (0.1 * voiced * np.clip(np.sin(2 * np.pi * 3 * t), 0, None)).astype(np.float32)


def sadtalker_melspectrogram(wav: np.ndarray) -> np.ndarray:
  """SadTalker's src/utils/audio.py melspectrogram (Wav2Lip hparams), as the peer."""
  import librosa
  import scipy.signal

  y = scipy.signal.lfilter([1, -0.97], [1], wav)
  spec = librosa.stft(y=y, n_fft=800, hop_length=200, win_length=800)
  basis = librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600)
  s = 20 * np.log10(np.maximum(1e-5, np.dot(basis, np.abs(spec)))) - 20
  return np.clip((2 * 4) * ((s + 100) / 100) - 4, -4, 4).T


def feature_rows(hours: float, block_seconds: float):
  """{row: run()} where run() processes `hours` of audio and returns [frames, peak traced bytes]."""
  from a2e_jax.audio import features

  block = speech_block(block_seconds)
  blocks = int(round(hours * 3600 / block_seconds))

  def ours():
    tracemalloc.start()
    frames = sum(len(m) for m in features.log_mel_chunked(block for _ in range(blocks)))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return frames, peak

  def peer():
    tracemalloc.start()
    frames = sum(len(sadtalker_melspectrogram(block)) for _ in range(blocks))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return frames, peak

  np.testing.assert_allclose(
    features.log_mel(block[:160000]), sadtalker_melspectrogram(block[:160000]), atol=1e-3
  )
  return {"log_mel_stream (ours)": ours, "sadtalker_melspectrogram (peer)": peer}


# --------------------------------------------------------------------------------------------- pipeline


def ensure_dataset(data_dir: str, dataset: str) -> str:
  """A data dir holding `dataset` (aligned); else builds the tiny built-in corpus into a temporary one."""
  from a2e_jax import cli
  from a2e_jax.core.errors import UserError
  from a2e_jax.data import align, builders

  try:
    if os.path.isfile(align.pair_index_path(builders.dataset_dir(data_dir, dataset), "train")):
      return data_dir
  except UserError:
    pass
  if dataset != "a2e_synthetic/tiny":
    sys.exit(f"bench_data: {dataset} is not built and aligned in {data_dir}; run `a2e data build` first")
  data_dir = tempfile.mkdtemp(prefix="bench_data_")
  print(f"building a2e_synthetic/tiny in {data_dir} (once; pass --data-dir to reuse one)")
  status = cli.main(["data", "build", "--synthetic", "tiny", "--data-dir", data_dir, "--quiet"])
  if status:
    sys.exit(f"bench_data: building the tiny corpus failed ({status})")
  return data_dir


def train_step(size: str, mesh, batch: int, data_cfg):
  """(step(batch_arrays), loss(batch_arrays), the pipeline iterator the trainer would use) for A2ENet `size`
  on `mesh`; `loss` is the step's loss function alone (not donating, so it can be called on any batch)."""
  import jax

  from a2e_jax.tasks.a2enet import a2enet_task
  from a2e_jax.tasks.defaults import base_config
  from a2e_jax.train import sharding, step
  from a2e_jax.train import state as state_lib

  config = base_config(size)
  config.data = data_cfg
  config.train.batch_size = batch
  config.eval.metrics_clips = 0
  the_task = a2enet_task(config)
  tx, schedule = state_lib.make_optimizer(config.optim, 1000)
  rng = jax.random.key(0)
  shardings = state_lib.state_shardings(the_task.init_variables, tx, rng, mesh)
  holder = {"state": state_lib.create_state(the_task.init_variables, tx, rng, shardings, mesh)}
  compiled_step = step.make_train_step(the_task.loss_fn, tx, schedule, shardings, mesh)
  constants = jax.device_put(the_task.constants, sharding.replicated(mesh))
  key = jax.random.key(1)
  params = jax.tree.map(lambda x: x.copy(), holder["state"].params)
  loss = jax.jit(lambda p, b: the_task.loss_fn(p, b, key, False, constants)[0])

  def run(batch_arrays):
    holder["state"], metrics = compiled_step(holder["state"], batch_arrays, key, constants)
    jax.block_until_ready(metrics["loss"])

  return run, functools.partial(loss, params), the_task.train_batches(mesh, 0)


def pipeline_before(rev: str):
  """The input pipeline module as it was at git revision `rev` (the measured peer), or None with a note."""
  import importlib.util
  import subprocess

  try:
    text = subprocess.run(["git", "show", f"{rev}:a2e_jax/data/pipeline.py"], cwd=REPO, check=True,
                          capture_output=True, text=True).stdout
    path = pathlib.Path(tempfile.mkdtemp(prefix="bench_data_")) / "pipeline_before.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("pipeline_before", path)
    module = importlib.util.module_from_spec(spec)
    _alias_moved_modules()
    spec.loader.exec_module(module)
    return module
  except (OSError, subprocess.CalledProcessError, ImportError) as e:
    print(f"bench_data: no 'before' row: the pipeline of {rev} is not loadable here ({e})")
    return None


# Modules the pipeline before imported, and where they live since the restructuring (issue 11).
MOVED = {"a2e_jax.data.schema": "a2e_jax.core.schema", "a2e_jax.errors": "a2e_jax.core.errors"}


def _alias_moved_modules() -> None:
  """Makes the old import paths of MOVED resolve to the modules' new homes (for the peer only)."""
  import importlib

  for old, new in MOVED.items():
    module = importlib.import_module(new)
    sys.modules.setdefault(old, module)
    parent, _, name = old.rpartition(".")
    if not hasattr(importlib.import_module(parent), name):
      setattr(sys.modules[parent], name, module)


def batch_bytes(batch) -> int:
  import jax

  return sum(x.nbytes for x in jax.tree.leaves(batch))


def pipeline_rows(data_dir: str, dataset: str, batch: int, frames: int, devices: int, steps: int,
                  step_batches: int, before_rev: str):
  """({row: run()} where run() handles `steps` batches and returns the examples it handled,
  {row: host bytes per example}, {"loss_host_windows", "loss_device_windows"} on one fixed batch)."""
  import jax
  import ml_collections

  from a2e_jax.data import pipeline
  from a2e_jax.train import sharding

  cfg = pipeline.data_config()
  cfg.data_dir, cfg.dataset, cfg.window_frames = data_dir, dataset, frames
  # Every pipeline row keeps grain's 4 local batches in flight (refilled while the other rows run); the
  # device prefetch is left out of them, as the pipeline before had none (the trainer's row keeps it).
  cfg.device_prefetch = 0
  mesh_cfg = ml_collections.ConfigDict({"data": devices, "fsdp": 1, "model": 1})
  mesh = sharding.make_mesh(mesh_cfg, jax.devices()[:devices])  # the trainer's mesh (Auto axes)
  source, index = pipeline.open_split(cfg, "train")
  bank = pipeline.ClipBank.read(source)
  _, bases = pipeline.mel_table({"train": bank})
  iterators = {
    "pipeline, windows on device": pipeline.make_batch_iterator(
      cfg, "train", batch, mesh, seed=1, source=source, index=index, bank=bank, mel_base=bases["train"]),
    "pipeline, windows on host": pipeline.make_batch_iterator(
      cfg, "train", batch, mesh, seed=1, source=source, index=index, bank=bank),
  }
  old = pipeline_before(before_rev)
  if old is not None:
    iterators[f"pipeline before ({before_rev})"] = old.make_batch_iterator(cfg, "train", batch, mesh, seed=1)
  trainer_cfg = cfg.copy_and_resolve_references()
  trainer_cfg.device_prefetch = pipeline.data_config().device_prefetch
  step, loss, fed = train_step("tiny", mesh, batch, trainer_cfg)
  fixed = next(fed)
  step(fixed)  # compiles
  # The same examples through both layouts: the loss must not change.
  host_fixed = next(pipeline.make_batch_iterator(cfg, "train", batch, mesh, seed=0, source=source,
                                                 index=index, bank=bank))
  losses = {"loss_device_windows": float(loss(fixed)), "loss_host_windows": float(loss(host_fixed))}
  sizes = {name: batch_bytes(next(it)) / batch for name, it in iterators.items()}

  def drain(iterator):
    def run():
      for _ in range(steps):
        jax.block_until_ready(next(iterator))
      return batch * steps

    return run

  def step_only():
    for _ in range(step_batches):
      step(fixed)
    return batch * step_batches

  def step_fed_by_pipeline():
    for _ in range(step_batches):
      step(next(fed))
    return batch * step_batches

  rows = {name: drain(it) for name, it in iterators.items()}
  # Where a batch of the trainer's pipeline spends its host time: building its local rows (pair draws and
  # gathers from the ClipBank) and placing them on the devices (to_global).
  from a2e_jax.data import batching

  shard = batching.host_shard(mesh, batch)
  setup = pipeline.train_shard_source(cfg, source, index, 1, batch, shard.count, bank=bank,
                                      mel_base=bases["train"]).setup
  local = setup.batch(0, shard.global_batch // shard.count)

  def part_build():
    for step in range(steps):
      setup.batch(step * batch, shard.global_batch // shard.count)
    return batch * steps

  def part_to_global():
    for _ in range(steps):
      jax.block_until_ready(batching.to_global(local, shard))
    return batch * steps

  rows["part: local batch (pairs, gathers)"] = part_build
  rows["part: to_global (host -> devices)"] = part_to_global
  rows["train_step_tiny (fixed batch)"] = step_only
  rows["train_step_tiny fed by the pipeline"] = step_fed_by_pipeline
  return rows, sizes, losses


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--hours", type=float, default=1.0, help="audio per feature-extraction run")
  parser.add_argument("--block-seconds", type=float, default=60.0, help="streaming block length")
  parser.add_argument("--data-dir", default="data/tfds", help="TFDS data dir holding --dataset")
  parser.add_argument("--dataset", default="a2e_synthetic/tiny")
  parser.add_argument("--batch", type=int, default=16, help="global batch (configs/synthetic.py:cpu uses 16)")
  parser.add_argument("--frames", type=int, default=32, help="window frames (data.window_frames)")
  parser.add_argument("--devices", default="1,8", help="device counts of the data-parallel meshes")
  parser.add_argument("--steps", type=int, default=40,
                      help="batches per pipeline timing (many more than the 4 grain keeps in flight)")
  parser.add_argument("--step-batches", type=int, default=5, help="batches per train-step timing")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--skip", choices=("features", "pipeline"), help="leave one part out")
  parser.add_argument("--before", default=BEFORE,
                      help="git revision whose input pipeline is measured as the peer (default: the last "
                           "one that cut the windows on the host, per example)")
  parser.add_argument("--json", default="bench_data.json", help="where to write the results")
  args = parser.parse_args(argv)

  import jax

  report = {"benchmark": "data", "config": vars(args), "results": {}}
  if args.skip != "features":
    seconds = args.hours * 3600
    results = {}
    for name, runs in timed_runs(feature_rows(args.hours, args.block_seconds), args.repeats, 0).items():
      median = statistics.median(r.wall for r in runs)
      results[name] = {
        "median_s": median,
        "min_s": min(r.wall for r in runs),
        "x_real_time": seconds / median,
        "mel_frames": runs[0].result[0],
        "peak_traced_mb": max(r.result[1] for r in runs) / 2**20,
      }
    ours, peer = results["log_mel_stream (ours)"], results["sadtalker_melspectrogram (peer)"]
    report["results"]["features"] = {
      "rows": results,
      "speedup_vs_peer": ours["x_real_time"] / peer["x_real_time"],
    }
    print(
      f"log-mel of {args.hours:g} h of speech in {args.block_seconds:g} s blocks, median of {args.repeats}"
    )
    print(f"{'row':<34}{'median s':>10}{'x real time':>13}{'peak MB':>9}")
    for name, r in results.items():
      print(f"{name:<34}{r['median_s']:>10.2f}{r['x_real_time']:>13.0f}{r['peak_traced_mb']:>9.0f}")
    print(f"ours / peer: {report['results']['features']['speedup_vs_peer']:.2f}x")

  if args.skip != "pipeline":
    data_dir = ensure_dataset(args.data_dir, args.dataset)
    report["results"]["pipeline"] = {}
    for devices in (int(d) for d in args.devices.split(",")):
      rows, sizes, losses = pipeline_rows(data_dir, args.dataset, args.batch, args.frames, devices,
                                          args.steps, args.step_batches, args.before)
      results = {}
      for name, runs in timed_runs(rows, args.repeats, 1).items():
        median = statistics.median(r.wall for r in runs)
        results[name] = {"median_s": median, "examples_per_s": runs[0].result / median}
        if name in sizes:
          results[name]["host_bytes_per_example"] = sizes[name]
      new = results["pipeline, windows on device"]
      step_rate = results["train_step_tiny (fixed batch)"]["examples_per_s"]
      entry = {"rows": results, "pipeline_over_step": new["examples_per_s"] / step_rate, **losses}
      before = f"pipeline before ({args.before})"
      if before in results:
        entry["speedup_vs_before"] = new["examples_per_s"] / results[before]["examples_per_s"]
        entry["bytes_reduction_vs_before"] = sizes[before] / sizes["pipeline, windows on device"]
      report["results"]["pipeline"][f"{devices}dev"] = entry
      print(
        f"pipeline, {args.dataset}, batch {args.batch} x {args.frames} frames, {devices} device(s), "
        f"{args.steps} batches per pipeline run, {args.step_batches} per train-step run, median of "
        f"{args.repeats}"
      )
      print(f"{'row':<44}{'examples/s':>12}{'ms/batch':>10}{'host kB/example':>17}")
      for name, r in results.items():
        size = f"{r['host_bytes_per_example'] / 1e3:>17.1f}" if "host_bytes_per_example" in r else ""
        print(f"{name:<44}{r['examples_per_s']:>12.1f}{1e3 * args.batch / r['examples_per_s']:>10.2f}{size}")
      print(f"pipeline (windows on device) / train step: {entry['pipeline_over_step']:.2f}x")
      if "speedup_vs_before" in entry:
        print(f"against the pipeline before: {entry['speedup_vs_before']:.2f}x examples/s, "
              f"{entry['bytes_reduction_vs_before']:.1f}x fewer host bytes per example")
      print(f"loss on one fixed batch: windows on device {losses['loss_device_windows']:.7g}, "
            f"on host {losses['loss_host_windows']:.7g}")
  report["machine"] = {
    "platform": platform.platform(),
    "processor": platform.processor() or platform.machine(),
    "cpus": os.cpu_count(),
    "jax": jax.__version__,
    "numpy": np.__version__,
    "load_average": os.getloadavg(),
  }
  with open(args.json, "w") as f:
    json.dump(report, f, indent=2)
  print(f"wrote {args.json}")
  return report


if __name__ == "__main__":
  main()
