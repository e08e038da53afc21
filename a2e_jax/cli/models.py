"""`a2e models info|convert|preview` and `a2e export`: face models and coefficient files from the shell."""

import os

import numpy as np

from a2e_jax.core import channels
from a2e_jax.core.errors import UserError
from a2e_jax.core.outputs import atomic_output, check_output_file
from a2e_jax.formats.files import EXTENSIONS, FORMATS, read_sequence, write_sequence


def register(subparsers) -> None:
  models = subparsers.add_parser("models", help="inspect, convert and preview face models")
  actions = models.add_subparsers(dest="action", metavar="ACTION")
  actions.required = True

  info = actions.add_parser("info", help="vertex/triangle/mode counts, channels, regions, bounding box")
  info.add_argument("model", help="builtin, ict, bfm, or a path (.npz, BFM_model_front.mat, FaceXModel/)")
  info.set_defaults(func=run_info)

  convert = actions.add_parser("convert", help="convert BFM or ICT-FaceKit files to our .npz")
  convert.add_argument("--from", dest="source", choices=("ict", "bfm"), required=True,
                       help="ict: a FaceXModel folder; bfm: Deep3DFaceRecon's BFM_model_front.mat")
  convert.add_argument("path", help="the FaceXModel folder or the .mat file")
  convert.add_argument("--out", help="output .npz (default: the cache that '--model ict|bfm' reads)")
  convert.add_argument("--face-only", action="store_true",
                       help="ICT: keep the face area (9,409 vertices) instead of the whole head")
  convert.add_argument("--num-id", type=int, default=None, help="ICT: at most this many identity modes")
  convert.set_defaults(func=run_convert)

  preview = actions.add_parser("preview", help="render a contact sheet: neutral + every channel at weight 1")
  preview.add_argument("--model", default="builtin", help="builtin, ict, bfm or a path (default builtin)")
  preview.add_argument("--out", default="sheet.png", help="output image (default sheet.png)")
  preview.add_argument("--size", type=int, default=256, help="pixels per tile (default 256)")
  preview.set_defaults(func=run_preview)

  export = subparsers.add_parser(
    "export", help="convert a coefficient file to another format",
    description="Reads COEFFS (.mat, .npy, .npz, .csv, .glb) and writes it as FORMAT. Between BFM's 64 "
                "coefficients (sadtalker, pirenderer) and the 53 ARKit channels (arkit-csv, built-in/ICT "
                "models) the coefficients are retargeted, which needs both models: --bfm and --model.")
  export.add_argument("coeffs", help="input coefficient file")
  export.add_argument("--to", required=True, choices=FORMATS, help="output format")
  export.add_argument("--out", required=True, help="output file")
  export.add_argument("--model", help="the ARKit-channel face model (builtin, ict or a path); default: the "
                                      "input's own model, else builtin")
  export.add_argument("--bfm", help="the BFM model (BFM_model_front.mat or a converted .npz; default: "
                                    "the converted 'bfm' if any)")
  export.add_argument("--fps", type=float, help="the input file's frame rate when it is not 25 and the "
                                                "file does not say")
  export.set_defaults(func=run_export)


def run_info(args) -> int:
  # Deferred: the command's packages load JAX, TFDS or SciPy, which `a2e --help` must not.
  from a2e_jax.face.registry import resolve_model

  model = resolve_model(args.model).to_numpy()
  low, high = model.mean.min(axis=0), model.mean.max(axis=0)
  names = model.channel_names
  lines = [
    f"model       {model.name}  ({args.model})",
    f"units       {model.units}",
    f"vertices    {model.num_vertices:,}",
    f"triangles   {len(model.triangles):,}",
    f"identity    {model.num_id} modes",
    f"expression  {model.num_exp} channels: {', '.join(names[:8])}{', ...' if len(names) > 8 else ''}",
    f"landmarks   {len(model.landmarks)}",
    "regions     " + ", ".join(f"{k} {len(v):,}" for k, v in sorted(model.regions.items())),
    "bbox        min " + _xyz(low) + "  max " + _xyz(high) + "  size " + _xyz(high - low),
    f"uvs         {'yes' if model.uvs is not None else 'no'};  colours "
    f"{'yes' if model.color_mean is not None else 'no'};  texture "
    f"{'x'.join(map(str, np.shape(model.texture)[:2])) if model.texture is not None else 'no'}",
  ]
  print("\n".join(lines))
  return 0


def run_convert(args) -> int:
  # Deferred: the command's packages load JAX, TFDS or SciPy, which `a2e --help` must not.
  from a2e_jax.face.registry import default_model_path

  out = check_output_file(args.out or default_model_path(args.source))
  if not out.endswith(".npz"):
    raise UserError(f"--out {out!r}: face models are written as .npz; name the file *.npz")
  if args.num_id is not None and args.num_id < 0:
    raise UserError(f"--num-id {args.num_id}: the number of identity modes to keep must be 0 or more")
  if args.source == "bfm":
    if args.face_only or args.num_id is not None:
      raise UserError("--face-only and --num-id apply to --from ict only (BFM_model_front is the face "
                      "already)")
    # Deferred: the command's packages load JAX, TFDS or SciPy, which `a2e --help` must not.
    from a2e_jax.face.bfm import load_bfm

    model = load_bfm(args.path)
  else:
    # Deferred: the command's packages load JAX, TFDS or SciPy, which `a2e --help` must not.
    from a2e_jax.face.ict import load_ict

    model = load_ict(args.path, face_only=args.face_only, num_id=args.num_id)
  with atomic_output(out) as temporary:
    model.save(temporary)
  print(f"wrote {out}: {model.num_vertices:,} vertices, {len(model.triangles):,} triangles, "
        f"{model.num_id} identity modes, {model.num_exp} expression channels")
  return 0


def run_preview(args) -> int:
  """Writes the contact sheet of args.model (a spec for face.registry) at args.size to args.out."""
  from PIL import Image  # Pillow, like JAX below, loads only when a command runs: `a2e --help` stays fast

  from a2e_jax.face.registry import resolve_model
  from a2e_jax.render.preview import contact_sheet

  if args.size < 32:
    raise UserError(f"--size {args.size}: use at least 32 pixels per tile")
  ext = os.path.splitext(args.out)[1].lower()
  if ext not in (".png", ".jpg", ".jpeg"):
    raise UserError(f"--out {args.out!r}: write a .png or .jpg")
  model = resolve_model(args.model)
  sheet = contact_sheet(model, size=args.size)
  folder = os.path.dirname(os.path.abspath(args.out))
  os.makedirs(folder, exist_ok=True)
  Image.fromarray(sheet).save(args.out, optimize=True)
  print(f"wrote {args.out}: {model.num_exp + 1} tiles of {args.size}px, model {model.name}")
  return 0


def run_export(args) -> int:
  # Deferred: the command's packages load JAX, TFDS or SciPy, which `a2e --help` must not.
  from a2e_jax.face.registry import resolve_model

  out = check_output_file(args.out)
  ext = os.path.splitext(out)[1].lower()
  claimed = sorted({f for f, e in EXTENSIONS.items() if e == ext})
  if ext != EXTENSIONS[args.to] and claimed:
    wanted = EXTENSIONS[args.to]
    raise UserError(f"--out {out!r} ends in {ext} (the {' / '.join(claimed)} format), but --to {args.to} "
                    f"writes {wanted}; name it *{wanted} or pick the --to that matches")
  seq = read_sequence(args.coeffs, fps=args.fps)
  bfm_space = tuple(seq.channel_names) == channels.BFM_CHANNELS
  arkit_spec = args.model or (seq.model if seq.model not in ("", "bfm") else "builtin")
  bfm_spec = args.bfm or "bfm"
  model = target = None
  if args.to in ("sadtalker", "sadtalker-ref", "pirenderer") and not bfm_space:
    model, target = resolve_model(arkit_spec), resolve_model(bfm_spec)
  elif args.to == "arkit-csv" and bfm_space:
    model, target = resolve_model(bfm_spec), resolve_model(arkit_spec)
  elif args.to == "glb":
    model = resolve_model(bfm_spec if bfm_space else arkit_spec)
    target = resolve_model(args.model) if bfm_space and args.model else None
  if ext != EXTENSIONS[args.to]:
    print(f"a2e: note: {out} does not end in {EXTENSIONS[args.to]}, the usual extension of {args.to}")
  write_sequence(out, seq, fmt=args.to, model=model, target_model=target)
  print(f"wrote {out} ({args.to}, {seq.num_frames} frames at {seq.fps:g} fps)")
  return 0


def _xyz(v) -> str:
  return "(" + ", ".join(f"{x:+.3f}" for x in v) + ")"
