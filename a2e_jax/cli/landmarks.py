"""`a2e landmarks`: faces in an image, video or folder of images → boxes, 468 landmarks, eyes, measures."""

import os


def register(subparsers) -> None:
  parser = subparsers.add_parser(
    "landmarks", help="find the face and its 468 landmarks in an image, video or folder of images",
    description="Runs MediaPipe's face detector, face mesh and iris networks (ported to JAX) over INPUT and "
                "writes per image/frame: found, presence score, crop rect, box, 468 points (x, y pixels, z), "
                "irises and eye contours, eye openness, gaze, inner-lip gap and mouth width (over the "
                "inter-ocular distance). Videos are tracked: the previous frame's landmarks give the next "
                "crop. Frames without a face are marked (found = false, NaN points), not invented.")
  parser.add_argument("input", help="an image (png, jpg), a video (mp4, mov, mkv, ...) or an image folder")
  parser.add_argument("--out", required=True, help="output .npz")
  parser.add_argument("--overlay", help="draw the landmarks over the input: a .png for an image, an .mp4 "
                                        "for a video (with its sound), a folder for a folder of images")
  parser.add_argument("--batch", type=int, default=32, help="frames per step (default 32)")
  parser.add_argument("--no-eyes", action="store_true", help="skip the iris network (no irises, no gaze)")
  parser.add_argument("--no-progress", action="store_true", help="no progress bar")
  parser.set_defaults(func=run_landmarks)


def run_landmarks(args) -> int:
  from a2e_jax.core.errors import UserError
  from a2e_jax.vision.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES

  if not args.out.lower().endswith(".npz"):
    raise UserError(f"--out {args.out!r}: a2e landmarks writes an .npz file")
  if args.batch < 1:
    raise UserError(f"--batch {args.batch}: must be at least 1")
  suffix = os.path.splitext(args.input)[1].lower()
  if os.path.isdir(args.input):
    return _folder(args)
  if not os.path.isfile(args.input):
    raise UserError(f"input {args.input!r} not found; give an image, a video or a folder of images")
  if suffix in IMAGE_SUFFIXES:
    return _image(args)
  if suffix in VIDEO_SUFFIXES:
    return _video(args)
  raise UserError(f"input {args.input!r}: unknown kind {suffix!r}; give an image "
                  f"({', '.join(IMAGE_SUFFIXES)}), a video ({', '.join(VIDEO_SUFFIXES)}) or a folder")


def _check_overlay(args, suffixes, what):
  from a2e_jax.core.errors import UserError

  if args.overlay and not args.overlay.lower().endswith(suffixes):
    raise UserError(f"--overlay {args.overlay!r}: for {what} give a {' or '.join(suffixes)} file")


def _image(args) -> int:
  from a2e_jax.core.errors import UserError
  from a2e_jax.vision import Landmarker
  from a2e_jax.vision.media import read_image
  from a2e_jax.vision.overlay import draw_batch

  _check_overlay(args, (".png", ".jpg", ".jpeg"), "an image")
  image = read_image(args.input)
  faces = Landmarker(eyes=not args.no_eyes, batch=1).images(image[None])
  if not faces.found[0]:
    raise UserError(f"{args.input}: no face found (presence {faces.presence[0]:.2f}); a frontal or "
                    "three-quarter face at least about 40 px wide is needed")
  if args.overlay:
    _save_image(args.overlay, draw_batch(image[None], faces)[0])
  save(args.out, faces, sources=[args.input], image_size=image.shape[:2])
  print(f"wrote {args.out}: 1 face, presence {faces.presence[0]:.2f}"
        + (f"; overlay {args.overlay}" if args.overlay else ""))
  return 0


def _video(args) -> int:
  from a2e_jax.vision.media import quiet_fork

  _check_overlay(args, (".mp4",), "a video")
  with quiet_fork():  # the overlay's ffmpeg writer and the muxer start while JAX runs
    return _track_video(args)


def _track_video(args) -> int:
  from tqdm import tqdm

  from a2e_jax.render.video import VideoSink
  from a2e_jax.vision import Landmarker
  from a2e_jax.vision.media import VideoFrames
  from a2e_jax.vision.overlay import draw_batch
  from a2e_jax.vision.pipeline import concatenate

  video = VideoFrames(args.input)
  landmarker = Landmarker(eyes=not args.no_eyes, batch=args.batch)
  height, width = video.shape
  sink = None
  if args.overlay:
    sink = VideoSink(args.overlay, height // 2 * 2, width // 2 * 2, fps=video.fps,
                     audio=args.input if video.has_audio else None)
  results = []
  try:
    with tqdm(total=video.count, unit="frame", desc=os.path.basename(args.input),
              disable=args.no_progress) as bar:
      for frames, faces in landmarker.stream(video.batches(args.batch), video=True):
        results.append(faces)
        if sink is not None:
          sink.write(draw_batch(frames, faces)[:, :height // 2 * 2, :width // 2 * 2])
        bar.update(len(frames))
  except BaseException:
    if sink is not None:
      sink.__exit__(RuntimeError, None, None)
      if os.path.exists(args.overlay):
        os.remove(args.overlay)
    raise
  if sink is not None:
    sink.close()
  faces = concatenate(results)
  save(args.out, faces, sources=[args.input], image_size=video.shape, fps=video.fps)
  print(f"wrote {args.out}: {len(faces.found)} frames, {int(faces.found.sum())} with a face, detector on "
        f"{int(faces.detected.sum())}" + (f"; overlay {args.overlay}" if args.overlay else ""))
  return 0


def _folder(args) -> int:
  import numpy as np
  from tqdm import tqdm

  from a2e_jax.core.errors import UserError
  from a2e_jax.vision import Landmarker
  from a2e_jax.vision.media import IMAGE_SUFFIXES, read_image
  from a2e_jax.vision.overlay import draw_batch
  from a2e_jax.vision.pipeline import concatenate

  names = sorted(n for n in os.listdir(args.input) if n.lower().endswith(IMAGE_SUFFIXES))
  if not names:
    raise UserError(f"folder {args.input!r} holds no images ({', '.join(IMAGE_SUFFIXES)})")
  if args.overlay and os.path.splitext(args.overlay)[1]:
    raise UserError(f"--overlay {args.overlay!r}: for a folder give a folder to write the drawn images into")
  landmarker = Landmarker(eyes=not args.no_eyes, batch=1)
  results, sizes = [], []
  for name in tqdm(names, unit="image", disable=args.no_progress):
    image = read_image(os.path.join(args.input, name))
    faces = landmarker.images(image[None])
    results.append(faces)
    sizes.append(image.shape[:2])
    if args.overlay:
      os.makedirs(args.overlay, exist_ok=True)
      drawn = draw_batch(image[None], faces)[0]
      _save_image(os.path.join(args.overlay, os.path.splitext(name)[0] + ".png"), drawn)
  faces = concatenate(results)
  save(args.out, faces, sources=names, image_size=np.array(sizes))
  missing = [n for n, f in zip(names, faces.found, strict=True) if not f]
  print(f"wrote {args.out}: {len(names)} images, {len(names) - len(missing)} with a face"
        + (f" (none in: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''})" if missing else ""))
  return 0


def _save_image(path, image):
  from PIL import Image

  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  Image.fromarray(image).save(path)


def save(path: str, faces, **extra) -> None:
  """Writes FaceLandmarks and their measures to an .npz; rows without a face hold NaN, not guesses."""
  import numpy as np

  from a2e_jax.vision.measures import measures

  arrays = {name: np.asarray(value) for name, value in faces._asdict().items()}
  arrays.update(measures(arrays["points"], arrays["iris"], arrays["eye_contour"]))
  missing = ~arrays["found"]
  for name, value in arrays.items():
    if name not in ("found", "presence", "detected") and value.dtype.kind == "f":
      value[missing] = np.nan
  arrays.update({k: np.asarray(v) for k, v in extra.items()})
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  temporary = path + ".partial.npz"
  np.savez_compressed(temporary, **arrays)
  os.replace(temporary, path)
