"""Benchmark: audio -> coefficients with `a2e_jax.generate`'s chunked path, warm and from a cold process.

  python tools/bench_generate.py [--seconds 60] [--repeats 5] [--json bench_generate.json] [--hour]
  (or: a2e bench generate ...)

Rows (warm: after compilation, median of `repeats` runs, the rows taking turns within each repeat):
  generate     Generator(...)(wav): front end, emotion pass, decode pass, overlap-add (what users run)
  front_end    the log-mel and per-chunk windows alone (audio/features.py through streaming.py)
  one_pass     the peer: the network on the whole clip in a single jitted call (no chunks, no controls)
Cold start: `a2e_jax.generate(path_to_10s_clip)` in a fresh Python process, wall clock from process start,
with JAX's persistent compilation cache warm (filled by one earlier process) and, for reference, empty.
With --hour: peak resident memory of generating from a 60-minute file (streamed) against a 1-minute one.
Speech: sentences of the built-in corpus voice (espeak-ng), joined to the length asked for. Weights: the
bundled demo weights, else a random network of the same configuration (said so in the output).
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from timing import timed

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
SENTENCES = ("The quick brown fox jumps over the lazy dog near the river bank.",
             "Please call Stella and ask her to bring these things with her from the store.",
             "We will meet at nine in the morning, unless the weather turns bad again.",
             "She sells sea shells by the sea shore, and the shells she sells are surely seashells.")


def speech(seconds: float) -> np.ndarray:
  """[N] 16 kHz speech of at least `seconds`, cut to it."""
  from a2e_jax.data.synth.utterance import synthesize_utterance

  pieces, total, i = [], 0, 0
  while total < seconds * 16000:
    wav = synthesize_utterance(SENTENCES[i % len(SENTENCES)], i % 4, "neutral", 1, seed=i).wav
    pieces.append(wav)
    total += wav.size
    i += 1
  return np.concatenate(pieces)[:int(seconds * 16000)]


def load_weights():
  from a2e_jax.infer.weights import load_weights

  try:
    return load_weights(), "bundled demo weights"
  except Exception:  # noqa: BLE001 - any reason the bundle is unusable: fall back to a random network.
    sys.path.insert(0, os.path.join(REPO, "tests"))
    from infer_helpers import random_weights

    return random_weights(window_frames=32), "random tiny network (no demo weights in this checkout)"



def warm_rows(weights, wav, repeats):
  import jax

  from a2e_jax.audio import features
  from a2e_jax.infer.generate import Generator
  from a2e_jax.models.a2enet import A2ENet

  generator = Generator(weights)
  frames = wav.size // 640
  module, variables = A2ENet(weights.config), {"params": weights.params}

  @jax.jit
  def one_pass(mel, mask, beta0, eye):
    content = module.apply(variables, mel, mask, method="encode_content")
    _, pooled, _, _ = module.apply(variables, mel, mask, method="encode_emotion")
    return module.apply(variables, content, pooled, beta0, eye, mask, method="decode_expression")

  def run_one_pass():
    mel = features.mel_windows(features.log_mel(features.crop_or_pad(wav, frames)), frames)[None]
    one_pass(mel, np.ones((1, frames), np.float32), np.zeros((1, 53), np.float32),
             np.zeros((1, frames, 4), np.float32)).block_until_ready()

  def run_front_end():
    chunks, _ = generator.audio_chunks(wav, 16000)
    for _ in chunks():
      pass

  def run_generate():
    generator(wav, 16000)

  return timed({"generate": run_generate, "front_end": run_front_end, "one_pass": run_one_pass}, repeats,
               warmup=2), generator


def _child(clip_path: str, env=None) -> dict:
  """Runs `--cold-child` in a fresh process: its wall seconds and the phases it reports."""
  script = os.path.join(REPO, "tools", "bench_generate.py")
  start = time.perf_counter()
  out = subprocess.run([sys.executable, script, "--cold-child", clip_path], check=True, env=env,
                       capture_output=True, text=True).stdout
  return {"wall_s": time.perf_counter() - start, **json.loads(out.strip().splitlines()[-1])}


def cold_start(clip_path: str, cache_dir: str, repeats: int) -> dict:
  """Medians over fresh processes that import a2e_jax and generate from `clip_path`: wall seconds and
  phases (imports, weights, the first generate)."""
  env = {**os.environ, "A2E_JAX_CACHE": cache_dir, "JAX_PLATFORMS": "cpu"}
  runs = [_child(clip_path, env) for _ in range(repeats)]
  return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def cold_child(clip_path: str) -> None:
  """What a user's fresh process does: import, load the weights, generate from a file. Prints JSON:
  seconds of each phase from interpreter start-up, and the peak resident memory in MB (VmHWM: unlike
  ru_maxrss it starts afresh at exec, not at the forking parent's size)."""
  start = time.perf_counter()
  from a2e_jax import generate

  imported = time.perf_counter()
  weights, _ = load_weights()
  loaded = time.perf_counter()
  generate(clip_path, weights=weights)
  done = time.perf_counter()
  print(json.dumps({"import_s": imported - start, "weights_s": loaded - imported, "generate_s": done - loaded,
                    "rss_mb": _peak_rss_mb()}))


def _peak_rss_mb() -> float:
  with open("/proc/self/status") as f:
    return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


def peak_memory_mb(path: str) -> float:
  """Peak resident memory (MB) of a fresh process generating from `path`."""
  return _child(path)["rss_mb"]


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--seconds", type=float, default=60.0)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--cold-repeats", type=int, default=3)
  parser.add_argument("--hour", action="store_true", help="also measure memory on a 60-minute file")
  parser.add_argument("--json", default="bench_generate.json")
  parser.add_argument("--cold-child", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.cold_child:
    cold_child(args.cold_child)
    return {}

  import jax
  import soundfile

  weights, which = load_weights()
  wav = speech(args.seconds)
  times, generator = warm_rows(weights, wav, args.repeats)
  results = {"weights": which, "seconds_of_audio": args.seconds, "chunk_frames": generator.chunk,
             "overlap_frames": generator.overlap, "group": generator.group,
             "machine": f"{platform.machine()} {os.cpu_count()} CPUs, jax {jax.__version__}", "rows": {}}
  for name, values in times.items():
    median = statistics.median(values)
    results["rows"][name] = {"median_s": median, "min_s": min(values),
                             "x_real_time": args.seconds / median}
  results["generate_vs_one_pass"] = (results["rows"]["one_pass"]["median_s"]
                                     / results["rows"]["generate"]["median_s"])

  with tempfile.TemporaryDirectory() as tmp:
    clip = os.path.join(tmp, "clip10s.wav")
    soundfile.write(clip, wav[:160000], 16000)
    warm_cache, empty_cache = os.path.join(tmp, "cache"), os.path.join(tmp, "empty")
    cold_start(clip, warm_cache, 1)  # fills the cache
    results["cold_start"] = cold_start(clip, warm_cache, args.cold_repeats)
    os.makedirs(empty_cache)
    results["cold_start_empty_cache"] = cold_start(clip, empty_cache, 1)
    if args.hour:
      minute, hour = os.path.join(tmp, "minute.wav"), os.path.join(tmp, "hour.wav")
      soundfile.write(minute, wav[:960000], 16000, subtype="PCM_16")
      with soundfile.SoundFile(hour, "w", 16000, 1, subtype="PCM_16") as f:
        for _ in range(int(np.ceil(3600 / args.seconds))):
          f.write(wav)
      results["peak_rss_mb_1min"] = peak_memory_mb(minute)
      start = time.perf_counter()
      results["peak_rss_mb_60min"] = peak_memory_mb(hour)
      results["hour_wall_s"] = time.perf_counter() - start

  rows = results["rows"]
  print(f"{which}; {args.seconds:.0f} s of speech; chunks of {generator.chunk} frames, overlap "
        f"{generator.overlap}, {generator.group} per call; {results['machine']}")
  print(f"{'row':<10} {'median s':>9} {'min s':>9} {'x real time':>12}")
  for name, row in rows.items():
    print(f"{name:<10} {row['median_s']:>9.3f} {row['min_s']:>9.3f} {row['x_real_time']:>12.0f}")
  print(f"generate / one_pass speed: {results['generate_vs_one_pass']:.2f}x")
  for key, what in (("cold_start", "cache warm"), ("cold_start_empty_cache", "cache empty")):
    c = results[key]
    print(f"cold start, 10 s clip, {what}: {c['wall_s']:.2f} s (imports {c['import_s']:.2f}, weights "
          f"{c['weights_s']:.2f}, first generate {c['generate_s']:.2f}; the rest is interpreter start-up)")
  if args.hour:
    print(f"peak RSS: 1 min {results['peak_rss_mb_1min']:.0f} MB, "
          f"60 min {results['peak_rss_mb_60min']:.0f} MB ({results['hour_wall_s']:.0f} s wall)")
  with open(args.json, "w") as f:
    json.dump(results, f, indent=2)
  return results


if __name__ == "__main__":
  main()
