"""Benchmark: the 3DMM fit against ground truth from our own renderer, and its speed.

  python tools/bench_track.py [--frames 200] [--models builtin bfm_shaped] [--landmarks truth vision]
                              [--pictures 24]
                              [--video ../shared/video/talking_head_en_8s.mp4] [--json bench_track.json]
  (or: a2e bench track ...)

Accuracy: a synthetic clip per model (fit/synthetic.py: random identity, speech-like mouth, blinks, yaw and
pitch up to ±30°, lighting, albedo, composited into a 512×512 background with noise and JPEG), fitted in
chunks of 64 frames like `a2e track` (the first chunk's photometric stage sets identity and albedo).
Landmarks are either the true projections of the model's 68 landmark vertices plus 1 % IOD noise
("truth"), or the vision pipeline's 468 points through the model's found correspondence ("vision").
Reported: median pose error (degrees), identity vertex error (mm), median 2D landmark-vertex error (% IOD),
correlation of the mouth channels with the truth, blink precision/recall (with "vision": of the eye-control
track `a2e track` writes, from the iris network's eye contour, and of the fitted eyeBlink channels as
`blink_channels_*`; with "truth": of the fitted channels), and the re-render check (mean colour error over
the face region, fitted vs the mean face in the fitted pose and lighting). Why they are what they are: the
mean angle error (a bias, not noise), the fitted face's size and depth against the truth's (the size-depth
ambiguity) and its identity error after the best rescaling, and with "vision" the landmarker's own error
against the correspondence's modelled places at the true coefficients, per region (oval, brows, eyes,
lips, interior) as error, bias (mean over frames) and noise (spread over frames), and by head turn.
Pictures (--pictures N): photo mode's accuracy on N single synthetic pictures, landmarks in image mode,
each fitted alone, with the surface points and with the landmarker's behaviour learned on video
(fit/find_points.py), whole or its constant offsets only.
Speed: frames/s of the fit of one 64-frame chunk (landmarks given), cold (with compilation) and warm
(median of repeats), and, with --video, `Tracker.video` end to end (landmarks + fit) cold and warm.
"""

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np


def accuracy(
  model, frames: int, source: str, chunk: int, seed: int = 1, mouth: bool = False, sheet: str | None = None
) -> dict:
  import dataclasses

  from a2e_jax.fit import correspondence as corr_lib
  from a2e_jax.fit import quality, solve, synthetic

  truth = synthetic.clip(model, frames, seed=seed)
  bounded = model.name == "builtin"
  if source == "truth":
    iod = np.asarray(solve.inter_ocular(truth.landmarks))
    rng = np.random.default_rng(0)
    points = truth.landmarks + rng.normal(0, 0.01, truth.landmarks.shape) * iod[:, None, None]
    corr = corr_lib.multipie68(model)
    conf = np.ones(points.shape[:2], np.float32)
  else:
    from a2e_jax import vision
    from a2e_jax.fit.find_points import mesh_correspondence

    faces = vision.Landmarker(eyes=True, batch=16).video(truth.frames)
    points = np.asarray(faces.points[..., :2]) + 0.5
    conf = np.repeat(np.asarray(faces.found, np.float32)[:, None], points.shape[1], 1)
    corr = mesh_correspondence(model)
  config = solve.FitConfig(bounded_exp=bounded, smooth_exp=2.0, smooth_pose=200.0)
  if source == "vision":  # a2e track's video settings
    from a2e_jax.fit.track import LANDMARK_NOISE, video_fit_config

    config = video_fit_config(dataclasses.replace(config, landmark_noise=LANDMARK_NOISE), mouth)
  fits, ident, tex = [], None, None
  start = time.perf_counter()
  for s in range(0, frames, chunk):
    index = np.minimum(np.arange(s, s + chunk), min(s + chunk, frames) - 1)
    cfg = config if ident is None else dataclasses.replace(config, fix_identity=True)
    fit = solve.fit_clip(
      model,
      truth.frames[index],
      points[index],
      corr,
      cfg,
      confidence_tl=conf[index],
      id_init=ident,
      tex_init=tex,
      landmark_bias=None if ident is None else fits[-1].landmark_bias,
    )
    ident, tex = fit.id, fit.tex
    fits.append(fit)
  seconds = time.perf_counter() - start
  cat = lambda k: np.concatenate([getattr(f, k) for f in fits])[:frames]  # noqa: E731
  fit = solve.FitResult(
    ident, tex, cat("exp"), cat("pose"), cat("gamma"), cat("landmark_error"), fits[0].image_size
  )
  out = {
    "frames": frames,
    "landmarks": source,
    "seconds": seconds,
    "pose_deg": float(np.median(quality.pose_error_deg(fit.pose, truth.pose))),
    "identity_mm": quality.identity_error_mm(model, fit.id, truth.id),
    "identity_mm_mean_face": quality.identity_error_mm(model, np.zeros_like(truth.id), truth.id),
    "landmark_iod_pct": float(
      100 * np.median(quality.landmark_vertex_error(model, fit.image_size, fit, truth.landmarks))
    ),
    # The mean angle error (pitch, yaw, roll): a bias that repeats frame after frame, not noise.
    "pose_bias_deg": np.rad2deg(np.mean(fit.pose[:, :3] - truth.pose[:, :3], 0)).tolist(),
    **quality.size_and_depth(model, fit, truth),
  }
  if source == "vision":  # what the landmark term cannot explain: the landmarker against its modelled places
    seen = np.asarray(faces.found, bool)
    residuals = quality.landmarker_residuals(model, corr, truth, points, fit.image_size)[seen]
    out["landmarker"] = quality.bias_and_noise(residuals, quality.mesh_regions())
    yaw = np.abs(np.rad2deg(truth.pose[seen, 1]))
    out["landmarker_by_yaw"] = {
      f"{lo}-{hi}": float(np.median(np.linalg.norm(residuals[(yaw >= lo) & (yaw < hi)], axis=-1)))
      for lo, hi in ((0, 10), (10, 20), (20, 90))
      if ((yaw >= lo) & (yaw < hi)).any()
    }
  if bounded:
    for name, i in zip(synthetic.MOUTH_CHANNELS, synthetic.mouth_channels(model.channel_names)):
      out[f"r_{name}"] = quality.correlation(fit.exp[:, i], truth.exp[:, i])
    blink = fit.exp[:, [model.channel_names.index("eyeBlink_L"), model.channel_names.index("eyeBlink_R")]]
    if source == "vision":  # the eye-control track `a2e track` writes (the iris network's eye contour)
      from a2e_jax.fit.track import eye_track

      out["blink_precision"], out["blink_recall"] = quality.event_precision_recall(
        eye_track(faces)[:, :2].mean(1) > 0.5, truth.blink
      )
      key = "blink_channels"  # the fitted eyeBlink channels, for comparison
    else:
      key = "blink"
    out[f"{key}_precision"], out[f"{key}_recall"] = quality.event_precision_recall(
      blink.mean(1) > 0.5, truth.blink
    )
  else:
    out["r_exp_first8"] = [quality.correlation(fit.exp[:, i], truth.exp[:, i]) for i in range(8)]
  if sheet and bounded:
    mouth_sheet(model, truth, fit, sheet, points if source == "vision" else None)
  every = max(1, frames // 40)  # the re-render check on every k-th frame (rendering 512² frames is slow)
  sub = solve.FitResult(
    fit.id,
    fit.tex,
    fit.exp[::every],
    fit.pose[::every],
    fit.gamma[::every],
    fit.landmark_error[::every],
    fit.image_size,
  )
  fitted, mean_face = quality.rerender_errors(model, truth.frames[::every], truth.face_mask[::every], sub)
  out["rerender_fit"], out["rerender_mean_face"] = float(fitted.mean()), float(mean_face.mean())
  out["rerender_reduction"] = 1 - out["rerender_fit"] / out["rerender_mean_face"]
  return out


def pictures(model, count: int, first_seed: int = 2001, max_angle: float = 30.0) -> dict:
  """Single pictures (photo mode's accuracy): `count` one-frame synthetic clips (each its own identity,
  pose, size, place, lighting and background), landmarks in image mode (the detector's crop), each fitted
  alone as `Tracker.image` fits a photo, with three correspondences: the surface points (learned weights
  only; photo mode before), the landmarker's behaviour learned in video mode (photo mode now), and the same
  with only its constant offsets (no pose dependence). Medians over the pictures where a face was found;
  the head turns up to ±max_angle degrees in yaw and pitch."""
  import dataclasses

  from a2e_jax import vision
  from a2e_jax.fit import quality, solve, synthetic
  from a2e_jax.fit.find_points import mesh_correspondence
  from a2e_jax.fit.track import LANDMARK_NOISE

  truths = []
  for i in range(count):  # one frame of a short clip (a one-frame clip has no head turn: the turns are
    # random processes normalised over the clip)
    clip = synthetic.clip(model, 16, seed=first_seed + i, max_angle=max_angle)
    t = (7 * i) % 16
    per_frame = ("frames", "landmarks", "mask", "face_mask", "exp", "pose", "gamma", "blink")
    truths.append(dataclasses.replace(clip, **{k: getattr(clip, k)[t : t + 1] for k in per_frame}))
  faces = vision.Landmarker(eyes=False, batch=16).images(np.concatenate([t.frames for t in truths]))
  found = np.asarray(faces.found, bool)
  points = np.asarray(faces.points[..., :2], np.float32) + 0.5
  video = mesh_correspondence(model)
  corrs = {
    "surface": dataclasses.replace(video, offsets=None, exp_delta=None),
    "video_behaviour": video,
    "video_constant": dataclasses.replace(
      video, offsets=video.offsets * (np.arange(video.offsets.shape[-1]) == 0)
    ),
  }
  config = solve.FitConfig(bounded_exp=model.name == "builtin", landmark_noise=LANDMARK_NOISE)
  rows = {"pictures": count, "found": int(found.sum()), "max_angle": max_angle}
  rows["turn_deg"] = [float(np.rad2deg(np.linalg.norm(t.pose[0, :2]))) for t in truths]
  for name, corr in corrs.items():
    pose, ident, lmk, rerender, seconds = [], [], [], [], []
    for i in np.flatnonzero(found):
      truth = truths[i]
      start = time.perf_counter()
      fit = solve.fit_clip(model, truth.frames, points[i : i + 1], corr, config)
      seconds.append(time.perf_counter() - start)
      pose.append(float(quality.pose_error_deg(fit.pose, truth.pose)[0]))
      ident.append(quality.identity_error_mm(model, fit.id, truth.id))
      lmk.append(float(quality.landmark_vertex_error(model, fit.image_size, fit, truth.landmarks)[0]))
      fitted, mean_face = quality.rerender_errors(model, truth.frames, truth.face_mask, fit)
      rerender.append(float(fitted[0] / mean_face[0]))
    rows[name] = {
      "pose_deg": float(np.median(pose)),
      "pose_deg_p90": float(np.percentile(pose, 90)),
      "identity_mm": float(np.median(ident)),
      "landmark_iod_pct": float(100 * np.median(lmk)),
      "rerender_ratio": float(np.median(rerender)),
      "warm_s": float(np.median(seconds[1:] or seconds)),
      "per_picture_pose_deg": pose,
    }
  rows["identity_mm_mean_face"] = float(
    np.median([quality.identity_error_mm(model, np.zeros_like(t.id), t.id) for t in truths])
  )
  return rows


def mouth_sheet(model, truth, fit, path: str, points=None, count: int = 8, side: int = 128) -> None:
  """PNG of the mouth in `count` frames (the widest-open jaw and evenly spread ones): the input picture
  (top), with the landmarker's lip contours `points` [T,468,2] drawn on it if given (middle: inner upper lip
  red, inner lower lip blue, outer lips green), and the fitted face drawn into it (bottom), cropped around
  the true lips."""
  from PIL import Image, ImageDraw

  from a2e_jax.fit.rendering import render_batches
  from a2e_jax.vision.overlay import CONTOURS

  jaw = truth.exp[:, model.channel_names.index("jawOpen")]
  spread = np.linspace(0, len(jaw) - 1, count // 2)
  picks = np.unique(np.concatenate([np.argsort(-jaw)[: count // 2], spread]).astype(int))[:count]
  drawn = np.concatenate(
    [
      np.where(mask[..., None], images, truth.frames[picks][start : start + len(images)] / 255.0)
      for start, images, mask in render_batches(
        model, fit.exp[picks], fit.pose[picks], fit.id, fit.gamma[picks], fit.tex, fit.image_size
      )
    ]
  )
  lips = CONTOURS[-4:]  # outer lower, outer upper, inner lower, inner upper
  colours = ((60, 255, 90), (60, 255, 90), (60, 120, 255), (255, 60, 60))
  rows = [[] for _ in range(2 if points is None else 3)]
  for k, t in enumerate(picks):
    lips_68 = truth.landmarks[t, 48:68]
    centre, half = lips_68.mean(0), 0.9 * np.ptp(lips_68[:, 0])
    box = tuple(int(v) for v in (centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half))
    crops = [Image.fromarray(truth.frames[t]).crop(box).resize((side, side))]
    if points is not None:
      marked = crops[0].copy()
      pen = ImageDraw.Draw(marked)
      scale = side / (box[2] - box[0])
      for contour, colour in zip(lips, colours):
        xy = (np.asarray(points[t])[list(contour)] - box[:2]) * scale
        pen.line([tuple(p) for p in xy], fill=colour, width=1)
      crops.append(marked)
    fitted = Image.fromarray((np.clip(drawn[k], 0, 1) * 255 + 0.5).astype(np.uint8))
    crops.append(fitted.crop(box).resize((side, side)))
    for row, crop in zip(rows, crops):
      row.append(np.asarray(crop))
  Image.fromarray(np.concatenate([np.concatenate(r, 1) for r in rows], 0)).save(path)


def speed(model, chunk: int, repeats: int) -> dict:
  from a2e_jax.fit import correspondence as corr_lib
  from a2e_jax.fit import solve, synthetic

  truth = synthetic.clip(model, chunk, seed=2)
  corr = corr_lib.multipie68(model)
  rows = {}
  for name, config in (
    ("landmarks_only", solve.FitConfig(photo_steps=0)),
    ("with_photometric", solve.FitConfig()),
    ("later_chunk", solve.FitConfig(fix_identity=True)),
  ):
    times = []
    for _ in range(repeats + 1):
      start = time.perf_counter()
      solve.fit_clip(model, truth.frames, truth.landmarks, corr, config, id_init=truth.id)
      times.append(time.perf_counter() - start)
    rows[name] = {
      "cold_s": times[0],
      "warm_s": statistics.median(times[1:]),
      "warm_fps": chunk / statistics.median(times[1:]),
    }
  return rows


def video_speed(model, path: str, repeats: int, devices: int = 1) -> dict:
  """`Tracker.video` (decode + landmarks + fit) on `devices` of this process's devices, cold and warm."""
  import jax

  from a2e_jax.fit.quality import correlation, fitted_lip_gap
  from a2e_jax.fit.track import Tracker

  mesh = None
  if devices > 1:
    mesh = jax.sharding.Mesh(np.array(jax.local_devices()[:devices]), ("frames",))
  tracker = Tracker(model, mesh=mesh)
  times, cpu, loads = [], [], []
  for _ in range(repeats + 1):
    start, start_cpu = time.perf_counter(), time.process_time()
    track = tracker.video(path)
    times.append(time.perf_counter() - start)
    cpu.append(time.process_time() - start_cpu)
    loads.append(os.getloadavg()[0])
  frames = len(track.fit.exp)
  return {
    "frames": frames,
    "devices": devices,
    # Issue 13's real-video check: the fitted inner-lip gap against the landmarks' own (fit/quality.py).
    "lip_gap_r": correlation(fitted_lip_gap(model, track.fit), track.lip_gap),
    "max_landmark_error": float(track.fit.landmark_error.max()),
    "cold_fps": frames / times[0],
    "warm_fps": frames / statistics.median(times[1:]),
    "seconds": times,
    # CPU seconds of this process (all threads): the work done, less sensitive than the wall time to what
    # else the machine runs.
    "cpu_seconds": cpu,
    "load": loads,
  }


def portrait_speed(model, paths, repeats: int) -> dict:
  """`Tracker.image` (landmarks + fit of one picture): the first picture cold, then each warm (median of
  repeats). Pictures of any size share one compiled fit (fit/solve.py), so a second size's first call
  compiles only the landmarker's and the crop's size-dependent parts."""
  from a2e_jax.fit.track import Tracker
  from a2e_jax.vision.media import read_image

  tracker = Tracker(model)
  rows = {}
  for path in paths:
    image = read_image(path)
    times = []
    for _ in range(repeats + 1):
      start = time.perf_counter()
      tracker.image(image, name=path)
      times.append(time.perf_counter() - start)
    rows[os.path.basename(path)] = {
      "size": list(image.shape[:2]),
      "first_s": times[0],
      "warm_s": statistics.median(times[1:]),
      "load": os.getloadavg()[0],
    }
  return rows


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--frames", type=int, default=200)
  parser.add_argument("--chunk", type=int, default=64)
  parser.add_argument("--models", nargs="*", default=["builtin", "bfm_shaped"])
  parser.add_argument("--landmarks", nargs="*", default=["truth"], choices=["truth", "vision"])
  parser.add_argument(
    "--mouth", action="store_true", help="vision: Tracker(mouth=True), each mouth fitted to its pixels"
  )
  parser.add_argument("--mouth-sheet", help="write a PNG of fitted vs input mouths (blendshape models)")
  parser.add_argument("--speed", action="store_true", help="also time the fit of one chunk")
  parser.add_argument("--video", help="also time `Tracker.video` on this file")
  parser.add_argument(
    "--devices",
    nargs="+",
    type=int,
    default=[1],
    help="--video: devices sharing the frames (on CPU run with "
    "XLA_FLAGS=--xla_force_host_platform_device_count=8 for fake ones)",
  )
  parser.add_argument("--portraits", nargs="*", default=[], help="also time Tracker.image on these pictures")
  parser.add_argument(
    "--pictures",
    type=int,
    default=0,
    help="also fit N single synthetic pictures per model (photo mode: image-mode landmarks, no smoothing) "
    "with the surface points and the landmarker's behaviour learned on video, whole or constant offsets only",
  )
  parser.add_argument("--max-angle", type=float, default=30.0, help="--pictures: largest yaw/pitch, degrees")
  parser.add_argument("--repeats", type=int, default=2)
  parser.add_argument("--json", default="bench_track.json")
  args = parser.parse_args(argv)

  from a2e_jax.face.builtin import builtin_model
  from a2e_jax.fit import synthetic

  models = {"builtin": builtin_model, "bfm_shaped": synthetic.bfm_shaped_model}
  results = {"machine": platform.processor() or platform.machine(), "accuracy": {}, "speed": {}}
  for name in args.models:
    model = models[name]()
    for source in args.landmarks:
      row = accuracy(model, args.frames, source, args.chunk, mouth=args.mouth, sheet=args.mouth_sheet)
      results["accuracy"][f"{name}/{source}"] = row
      print(
        f"{name:10s} {source:6s} pose {row['pose_deg']:.2f} deg  identity {row['identity_mm']:.2f} mm "
        f"(mean face {row['identity_mm_mean_face']:.2f})  landmarks {row['landmark_iod_pct']:.2f} % IOD  "
        f"re-render -{100 * row['rerender_reduction']:.0f} %",
        flush=True,
      )
      extra = {
        k: round(v, 3) for k, v in row.items() if k.startswith(("r_", "blink")) and not isinstance(v, list)
      }
      print("  ", extra or [round(v, 3) for v in row.get("r_exp_first8", [])], flush=True)
      print(
        f"   pose bias (pitch, yaw, roll) {np.round(row['pose_bias_deg'], 2).tolist()} deg; face size across "
        f"{row['face_size']:.3f} of the truth at {row['depth_ratio']:.3f} of its depth; identity "
        f"{row['identity_mm_rescaled']:.2f} mm after the best rescaling",
        flush=True,
      )
      for region, e in row.get("landmarker", {}).items():
        print(
          f"   landmarker {region:9s} error {100 * e['error']:.2f}  bias {100 * e['bias']:.2f}  noise "
          f"{100 * e['noise']:.2f} % IOD",
          flush=True,
        )
      if "landmarker_by_yaw" in row:
        print(
          "   landmarker error by |yaw| (deg: % IOD)",
          {k: round(100 * v, 2) for k, v in row["landmarker_by_yaw"].items()},
          flush=True,
        )
    if args.pictures:
      table = pictures(model, args.pictures, max_angle=args.max_angle)
      results.setdefault("pictures", {})[name] = table
      print(f"{name:10s} {table['found']} of {table['pictures']} pictures with a face found", flush=True)
      for corr_name in ("surface", "video_behaviour", "video_constant"):
        row = table[corr_name]
        print(
          f"{name:10s} pictures {corr_name:16s} pose {row['pose_deg']:.2f} deg (90th pct "
          f"{row['pose_deg_p90']:.1f})  identity {row['identity_mm']:.2f} mm (mean face "
          f"{table['identity_mm_mean_face']:.2f})  landmarks {row['landmark_iod_pct']:.2f} % IOD  "
          f"re-render {row['rerender_ratio']:.2f} of the mean face's  warm {row['warm_s']:.1f} s",
          flush=True,
        )
    if args.speed:
      results["speed"][name] = speed(model, args.chunk, args.repeats)
      for row_name, row in results["speed"][name].items():
        print(
          f"{name:10s} {row_name:17s} cold {row['cold_s']:.1f} s  warm {row['warm_s']:.2f} s "
          f"({row['warm_fps']:.1f} frames/s)",
          flush=True,
        )
  if args.video:
    results["video"] = {}
    for devices in args.devices:
      row = video_speed(builtin_model(), args.video, args.repeats, devices)
      results["video"][f"{devices}_devices"] = row
      print(
        f"video {args.video} on {devices} device(s): cold {row['cold_fps']:.2f} frames/s, warm "
        f"{row['warm_fps']:.2f} frames/s ({row['frames']} frames; "
        f"CPU s {[round(c, 1) for c in row['cpu_seconds']]}; load {row['load']}); fitted inner-lip gap "
        f"vs the landmarks' r {row['lip_gap_r']:.3f}, worst frame's landmark error "
        f"{100 * row['max_landmark_error']:.1f} % IOD",
        flush=True,
      )
  if args.portraits:
    results["portraits"] = portrait_speed(builtin_model(), args.portraits, args.repeats)
    for name, row in results["portraits"].items():
      print(
        f"portrait {name} {row['size']}: first {row['first_s']:.1f} s, warm {row['warm_s']:.2f} s "
        f"(load {row['load']:.1f})",
        flush=True,
      )
  with open(args.json, "w") as f:
    json.dump(results, f, indent=1)
  return results


if __name__ == "__main__":
  main()
