"""`a2e render`: a coefficient file (any format the exporters write) → an mp4 with sound."""

import os

from a2e_jax.core.errors import UserError
from a2e_jax.core.outputs import check_output_file
from a2e_jax.formats.files import read_sequence


def register(subparsers) -> None:
  render = subparsers.add_parser(
    "render", help="render a coefficient file to an mp4 (with audio, optionally animating a portrait)",
    description="Renders COEFFS (.npz, SadTalker/PIRenderer .mat/.npy, Live Link Face .csv, .glb) with the "
                "JAX rasterizer to an H.264 mp4 at 25 fps, muxing --audio as AAC. With --ref-image the face "
                "is coloured from the portrait and composited over it (the mouth interior is plain dark).")
  render.add_argument("coeffs", help="coefficient file")
  render.add_argument("--model", help="face model: builtin, ict, bfm or a path (default: the file's own "
                                      "model if it names one, else builtin)")
  render.add_argument("--audio", help="audio to mux (wav, flac, m4a, mp3, ...); the video ends with the "
                                      "shorter stream")
  render.add_argument("--ref-image", help="portrait (PNG/JPEG) to animate: the face is found and the face "
                                          "model fitted to it (a2e track), and the clip is drawn on it in "
                                          "the fitted pose and identity; the video takes its size")
  render.add_argument("--out", required=True, help="output .mp4")
  render.add_argument("--size", type=int, default=256, help="frame size in pixels (default 256)")
  render.add_argument("--compare", nargs="+", default=(), metavar="COEFFS",
                      help="more coefficient files rendered side by side (e.g. ground truth, emotion swap)")
  render.add_argument("--labels", help="comma-separated captions, one per panel")
  render.add_argument("--antialias", action="store_true", help="smooth silhouette edges")
  render.add_argument("--batch", type=int, default=16, help="frames per rendering step (default 16)")
  render.add_argument("--no-progress", action="store_true", help="no progress bar")
  render.set_defaults(func=run_render)


def run_render(args) -> int:
  # Deferred: the command's packages load JAX, TFDS or SciPy, which `a2e --help` must not.
  from a2e_jax.face.registry import NAMED, resolve_model
  from a2e_jax.render.api import check_size, render_video, sequence_arrays

  if not args.out.lower().endswith(".mp4"):
    raise UserError(f"--out {args.out!r}: a2e render writes .mp4 files")
  check_output_file(args.out)
  check_size(args.size)
  if args.batch < 1:
    raise UserError(f"--batch {args.batch}: must be at least 1")
  seq = read_sequence(args.coeffs)
  model = resolve_model(args.model or (seq.model if seq.model in NAMED else "builtin"))
  main = sequence_arrays(seq, model)
  panels = [sequence_arrays(read_sequence(path), model) for path in args.compare]
  labels = None
  if args.labels:
    labels = [text.strip() for text in args.labels.split(",")]
  elif panels:
    labels = [os.path.splitext(os.path.basename(p))[0] for p in (args.coeffs, *args.compare)]
  pose, ident, ref_exp = main["pose"], main["id"], main["beta0"]
  ref_light = {}
  if args.ref_image:
    from a2e_jax.fit.portrait import placement

    # The face is found and fitted in the portrait: its identity, expression and pose place the clip.
    place = placement(model, args.ref_image, pose, len(main["exp"]))
    pose, ident, ref_exp = place["pose"], place["id"], place["ref_exp"]
    ref_light = dict(ref_gamma=place["gamma"], ref_tex=place["tex"])
  frames = render_video(
    args.out, model, main["exp"], pose_t6=pose, id_k=ident, audio=args.audio,
    ref_image=args.ref_image, ref_exp=ref_exp, **ref_light, size=args.size, fps=seq.fps, batch=args.batch,
    panels=[dict(exp=p["exp"], pose=p["pose"], id=p["id"]) for p in panels], labels=labels,
    antialias=args.antialias, progress=not args.no_progress)
  print(f"wrote {args.out}: {frames} frames at {seq.fps:g} fps, model {model.name}")
  return 0
