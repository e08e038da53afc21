"""`a2e track`: photos and videos → fitted face-model coefficients (+ overlays)."""

import os


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
  track.add_argument(
    "--fit-mouth",
    action="store_true",
    help="videos: also fit every frame's mouth to its pixels (experimental: it helps on our synthetic "
    "renders but not yet on real video, docs/fitting.md; several times slower)",
  )
  track.add_argument("--redo", action="store_true", help="fit files whose output exists again")
  track.add_argument("--no-progress", action="store_true", help="no progress bar")
  track.set_defaults(func=run_track)


def _collect(inputs) -> list[str]:
  from a2e_jax.core.errors import UserError
  from a2e_jax.vision.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES

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
  from a2e_jax.data.batching import process_items
  from a2e_jax.face.registry import resolve_model
  from a2e_jax.fit import batch
  from a2e_jax.train import distributed

  files = _collect(args.inputs)
  single = len(files) == 1 and not any(os.path.isdir(p) for p in args.inputs)
  distributed.initialize()  # a multi-process run (A2E_COORDINATOR_ADDRESS, ...): each process its own block
  model = resolve_model(args.model)
  jobs = [(f, _output(args.out, f)) for f in files]
  rows = process_items(len(jobs))
  done = sum(os.path.exists(dst) for _, dst in jobs[rows])
  if done and not args.redo:
    print(f"skipping {done} file(s) already tracked in {args.out} (--redo to fit them again)")
  if done == len(jobs[rows]) and not args.redo:
    return 0
  os.makedirs(args.out, exist_ok=True)
  outcome = batch.track_jobs(model, jobs, rows, mouth=args.fit_mouth, redo=args.redo, overlay=args.overlay,
                             progress=not args.no_progress, stop_on_error=single)
  print(f"tracked {len(outcome.done)} file(s) into {args.out}"
        + (f"; {len(outcome.failed)} failed (listed above)" if outcome.failed else ""))
  return 1 if outcome.failed else 0


def _output(out_dir: str, path: str) -> str:
  return os.path.join(out_dir, os.path.splitext(os.path.basename(path))[0] + ".npz")
