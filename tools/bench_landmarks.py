"""Benchmark: face detection + 468 landmarks in JAX against LiteRT (XNNPACK) on MediaPipe's .tflite files.

  python tools/bench_landmarks.py [--video ../shared/video/talking_head_en_8s.mp4] [--batches 1 32]
                                  [--repeats 5] [--json bench_landmarks.json]   (or: a2e bench landmarks ...)

Frames: the first 64 of the shared talking-head video (512×512). Rows, frames/s = frames / median wall time:
  jax_images  image mode (vision.landmarks_from_images under jit, eyes off): letterbox, BlazeFace, decoding
              and weighted NMS, the rotated 192×192 crop, Face Mesh and the projection back, for every frame,
              B frames per call
  jax_video   video mode (vision.track under jit, one scan over B frames): the mesh on every frame, the
              detector only where nothing is tracked (here the first frame)
  litert      the same two .tflite networks in LiteRT with its XNNPACK delegate (the runtime MediaPipe
              uses), 2 threads, one frame per invoke (LiteRT runs batch 1); only the two networks are timed,
              on input tensors prepared beforehand, so a whole pipeline around it could only be slower
The rows take turns within each repeat (tools/timing.py), so other processes' load hits them alike; ratios
are JAX over LiteRT measured in the same run, of the medians and of the best repeats.
"""

import argparse
import json
import os
import platform
import statistics
import sys

import numpy as np
from timing import timed

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  default_video = os.path.join(REPO, "..", "shared", "video", "talking_head_en_8s.mp4")
  parser.add_argument("--video", default=default_video)
  parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
  parser.add_argument("--frames", type=int, default=64)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--threads", type=int, default=2, help="LiteRT threads (default 2)")
  parser.add_argument("--json", default="bench_landmarks.json", help="where to write the results")
  args = parser.parse_args(argv)

  import jax
  from ai_edge_litert.interpreter import Interpreter

  from a2e_jax import vision
  from a2e_jax.vision import detector, geometry, mesh
  from a2e_jax.vision.media import VideoFrames

  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
  from convert_mediapipe import fetch_tflite

  if not os.path.isfile(args.video):
    raise SystemExit(f"bench_landmarks: video {args.video} not found (the shared test data); pass --video")
  frames = next(VideoFrames(args.video).batches(args.frames))
  models = vision.load_models()
  image_mode = jax.jit(lambda images: vision.landmarks_from_images(models, images, eyes=False))
  video_mode = jax.jit(lambda images: vision.track(models, images, vision.initial_state(), eyes=False)[0])

  # LiteRT's inputs: the letterboxed frames and the mesh crops the JAX pipeline cut.
  reference = image_mode(frames)
  letterboxed = np.asarray(detector.letterbox(frames))
  crops = np.asarray(geometry.crop_batch(frames, reference.rect, mesh.INPUT_SIZE)) / 255.0
  paths = fetch_tflite()
  interpreters = []
  for name in ("face_detection_short_range", "face_landmark"):
    interpreter = Interpreter(str(paths[name]), num_threads=args.threads)
    interpreter.allocate_tensors()
    interpreters.append(interpreter)

  def litert(start, count):
    for i in range(start, start + count):
      for interpreter, tensor in zip(interpreters, (letterboxed, crops), strict=True):
        index = interpreter.get_input_details()[0]["index"]
        interpreter.set_tensor(index, tensor[i:i + 1].astype(np.float32))
        interpreter.invoke()
        interpreter.get_tensor(interpreter.get_output_details()[0]["index"])

  rows = []
  print(f"{'batch':>5s} {'jax_images f/s':>15s} {'jax_video f/s':>14s} {'litert f/s':>11s} "
        f"{'images/litert':>14s} {'video/litert':>13s} {'images best':>13s} {'video best':>12s}")
  for batch in args.batches:
    calls = args.frames // batch
    chunks = [frames[i * batch:(i + 1) * batch] for i in range(calls)]

    def run_images(chunks=chunks):
      for chunk in chunks:
        jax.block_until_ready(image_mode(chunk))

    def run_video(chunks=chunks):
      for chunk in chunks:
        jax.block_until_ready(video_mode(chunk))

    def run_litert(calls=calls, batch=batch):
      litert(0, calls * batch)

    times = timed({"jax_images": run_images, "jax_video": run_video, "litert": run_litert}, args.repeats, 1)
    fps = {name: calls * batch / statistics.median(t) for name, t in times.items()}
    best = {name: min(t) for name, t in times.items()}  # the repeats least disturbed by other processes
    row = {"batch": batch, "frames": calls * batch, **{f"{k}_fps": v for k, v in fps.items()},
           "images_over_litert": fps["jax_images"] / fps["litert"],
           "video_over_litert": fps["jax_video"] / fps["litert"],
           "images_over_litert_best": best["litert"] / best["jax_images"],
           "video_over_litert_best": best["litert"] / best["jax_video"], "seconds": times}
    rows.append(row)
    print(f"{batch:5d} {fps['jax_images']:15.1f} {fps['jax_video']:14.1f} {fps['litert']:11.1f} "
          f"{row['images_over_litert']:13.2f}x {row['video_over_litert']:12.2f}x "
          f"{row['images_over_litert_best']:12.2f}x {row['video_over_litert_best']:11.2f}x")
  result = {"rows": rows, "video": os.path.basename(args.video), "litert_threads": args.threads,
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "jax": jax.__version__,
                        "device": str(jax.devices()[0]), "load_average": os.getloadavg()}}
  with open(args.json, "w") as f:
    json.dump(result, f, indent=1)
  print(f"wrote {args.json} (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
  return result


if __name__ == "__main__":
  main()
