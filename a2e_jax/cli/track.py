"""`a2e track`: photos and videos → fitted face-model coefficients (+ overlays)."""

import os
import sys

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")


def register(subparsers) -> None:
  track = subparsers.add_parser(
    "track",
    help="fit the face model to photos and videos (landmarks + analysis by synthesis)",
    description="Finds the face in each IMAGE or VIDEO (or every picture and video in a FOLDER), fits the "
    "face model to its 468 landmarks and pixels, and writes DIR/<name>.npz: coeffs [T,K], pose "
    "[T,6], eye [T,4], beta0, identity, lighting [T,27], fps, model (with a BFM-layout model also "
    "Deep3DFaceRecon's 257 layout as DIR/<name>.mat). Files already done are skipped; in a "
    "folder a failing file is reported and the rest go on.",
  )
  track.add_argument("inputs", nargs="+", metavar="IMAGE|VIDEO|FOLDER")
  track.add_argument("--out", required=True, metavar="DIR", help="output folder")
  track.add_argument(
    "--model", default="builtin", help="face model: builtin, bfm, ict or a path to a .npz (default builtin)"
  )
  track.add_argument(
    "--overlay",
    action="store_true",
    help="also write DIR/<name>.overlay.png|mp4: the fitted face drawn over the input",
  )
  track.add_argument("--redo", action="store_true", help="fit files whose output exists again")
  track.add_argument("--no-progress", action="store_true", help="no progress bar")
  track.set_defaults(func=run_track)


def _collect(inputs) -> list[str]:
  from a2e_jax.core.errors import UserError

  files = []
  for path in inputs:
    if os.path.isdir(path):
      found = sorted(
        os.path.join(path, f) for f in os.listdir(path) if f.lower().endswith(IMAGE_SUFFIXES + VIDEO_SUFFIXES)
      )
      if not found:
        raise UserError(
          f"folder {path!r} holds no pictures ({', '.join(IMAGE_SUFFIXES)}) or videos "
          f"({', '.join(VIDEO_SUFFIXES)})"
        )
      files += found
    elif not os.path.isfile(path):
      raise UserError(f"{path!r} not found; give pictures, videos or folders of them")
    elif not path.lower().endswith(IMAGE_SUFFIXES + VIDEO_SUFFIXES):
      raise UserError(
        f"{path!r}: not a picture ({', '.join(IMAGE_SUFFIXES)}) or video ({', '.join(VIDEO_SUFFIXES)})"
      )
    else:
      files.append(path)
  return files


def run_track(args) -> int:
  from tqdm import tqdm

  from a2e_jax.core.errors import UserError
  from a2e_jax.face.registry import resolve_model

  files = _collect(args.inputs)
  batch = len(files) > 1 or any(os.path.isdir(p) for p in args.inputs)
  model = resolve_model(args.model)
  os.makedirs(args.out, exist_ok=True)
  todo = [f for f in files if args.redo or not os.path.exists(_output(args.out, f))]
  if len(todo) < len(files):
    print(
      f"skipping {len(files) - len(todo)} file(s) already tracked in {args.out} (--redo to fit them again)"
    )
  if not todo:
    return 0
  from a2e_jax.fit.track import Tracker

  tracker = Tracker(model)
  failed = []
  with tqdm(total=len(todo), unit="file", disable=args.no_progress or len(todo) == 1) as bar:
    for path in todo:
      try:
        _track_one(tracker, model, path, args)
      except UserError as e:
        if not batch:
          raise
        failed.append(path)
        print(f"a2e track: {path}: {e}", file=sys.stderr)
      bar.update(1)
  done = len(todo) - len(failed)
  print(
    f"tracked {done} file(s) into {args.out}" + (f"; {len(failed)} failed (listed above)" if failed else "")
  )
  return 1 if failed else 0


def _output(out_dir: str, path: str) -> str:
  return os.path.join(out_dir, os.path.splitext(os.path.basename(path))[0] + ".npz")


def _track_one(tracker, model, path: str, args) -> None:
  from tqdm import tqdm

  from a2e_jax.fit import outputs

  stem = os.path.splitext(_output(args.out, path))[0]
  if path.lower().endswith(IMAGE_SUFFIXES):
    from a2e_jax.vision.media import read_image

    frames = read_image(path)[None]
    track = tracker.image(frames[0], name=path)
  else:
    from a2e_jax.vision.media import VideoFrames

    video = VideoFrames(path)
    with tqdm(total=video.count, unit="frame", desc=os.path.basename(path), disable=args.no_progress) as bar:
      track = tracker.video(path, progress=bar.update)
    frames = None
  if outputs.is_bfm_layout(model):
    outputs.write_deep3d_mat(stem + ".mat", track)
  if args.overlay:
    _write_overlay(stem, path, model, track, frames, args)
  outputs.write_npz(stem + ".npz", model, track)  # last: its presence marks the file as done


def _write_overlay(stem, path, model, track, frames, args) -> None:
  import numpy as np
  from PIL import Image

  from a2e_jax.fit import outputs

  if frames is not None:
    image = next(outputs.overlay_frames(model, track, frames))[0]
    Image.fromarray(image).save(stem + ".overlay.png")
    return
  from a2e_jax.render.video import write_video
  from a2e_jax.vision.media import VideoFrames

  video = VideoFrames(path)
  frames = np.concatenate(list(video.batches(256)))
  height, width = frames.shape[1] // 2 * 2, frames.shape[2] // 2 * 2
  batches = (b[:, :height, :width] for b in outputs.overlay_frames(model, track, frames))
  write_video(
    stem + ".overlay.mp4",
    batches,
    height,
    width,
    fps=track.fps,
    audio=None,
    total=len(frames),
    progress=not args.no_progress,
  )
