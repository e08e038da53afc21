"""Writes a corpus manifest (core/schema.py) for MEAD, CREMA-D, RAVDESS or HDTF-style folders.

  python tools/prepare_mead.py --root MEAD --coeffs MEAD_coeffs --out mead/manifest.jsonl \\
      --test-speakers M003,W009 --val-speakers M005 --val-sentences 028,029,030
  a2e data build --manifest mead/manifest.jsonl --name mead
  python tools/prepare_mead.py --track --root MEAD --coeffs MEAD_coeffs --out mead/manifest.jsonl ...

--track fits the face model to every clip's video first (a2e track's fit, fit/batch.py) and writes its
coefficient file (our .npz: coefficients, pose, the eye-control track from the landmarks, β0, identity) to
<coeffs>/<actor>/<emotion>/level_<k>/<nnn>.npz (MEAD: the video <root>/<actor>/video/<view>/<emotion>/
level_<k>/<nnn>.mp4, --view front) or <coeffs>/<path>.npz (flat: the video file itself, whose sound is the
clip's audio). Done clips are skipped, so a stopped run resumes; a clip whose video is missing or shows no
face is reported and left out. Several processes (A2E_COORDINATOR_ADDRESS, A2E_NUM_PROCESSES,
A2E_PROCESS_ID, or a SLURM/TPU job) each fit their own block of clips; process 0 writes the manifest when
all are done.

Layouts (--layout):
  mead     <root>/<actor>/audio/<emotion>/level_<k>/<nnn>.m4a; sentence = nnn, intensity = k
  cremad   <root>/<actor>_<sentence>_<EMO>_<LVL>.wav (EMO ANG DIS FEA HAP NEU SAD; LVL LO MD HI, XX unknown)
  ravdess  <root>/Actor_<nn>/<mod>-<voc>-<emo>-<int>-<stmt>-<rep>-<actor>.wav
           (emo 01..08, calm read as neutral; int 01 normal, 02 strong)
  flat     any audio or video file under root (HDTF): speaker = the name without a trailing _<number>,
           sentence = the name, no emotion (neutral, intensity 0)
The coefficient file of `<root>/<dir>/<name>.<ext>` is `<coeffs>/<dir>/<name>.{npz,mat,npy,csv}`, or the
same with MEAD's `audio` folder left out of <dir> (so a folder of Deep3DFaceRecon outputs that mirrors
MEAD's video tree works). --fps is their frame rate when the files do not store one (MEAD video: 30).

Clips without a coefficient file are listed and counted on stderr, not written. MEAD numbers its sentences
per emotion, so only numbers that name the same text in two emotions are true partners; the DTW warps of
`a2e data align` and the pipeline's pairing assume that a (speaker, sentence) says one text.
"""

import argparse
import json
import os
import re
import sys

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".m4a", ".mp3", ".mp4", ".aac", ".mov", ".mkv", ".webm")
COEFF_SUFFIXES = (".npz", ".mat", ".npy", ".csv")
LAYOUTS = ("mead", "cremad", "ravdess", "flat")

_CREMAD_EMOTIONS = {
  "ANG": "angry",
  "DIS": "disgusted",
  "FEA": "fear",
  "HAP": "happy",
  "NEU": "neutral",
  "SAD": "sad",
}
_CREMAD_LEVELS = {"LO": 1, "MD": 2, "HI": 3, "XX": 0, "X": 0}
_RAVDESS_EMOTIONS = {
  1: "neutral",
  2: "neutral",
  3: "happy",
  4: "sad",
  5: "angry",
  6: "fear",
  7: "disgusted",
  8: "surprised",
}  # 02 "calm" has no MEAD class: neutral


class LayoutError(ValueError):
  """A file name that does not follow the layout."""


def parse_mead(rel: str) -> dict:
  parts = rel.replace(os.sep, "/").split("/")
  if len(parts) != 5 or parts[1] != "audio" or not re.fullmatch(r"level_\d+", parts[3]):
    raise LayoutError("expected <actor>/audio/<emotion>/level_<k>/<nnn>.<ext>")
  actor, _, emotion, level, name = parts
  stem = os.path.splitext(name)[0]
  return {
    "speaker": actor,
    "sentence": stem,
    "emotion": emotion,
    "intensity": int(level.split("_")[1]),
    "clip_id": f"{actor}/{emotion}/{level}/{stem}",
  }


def parse_cremad(rel: str) -> dict:
  stem = os.path.splitext(os.path.basename(rel))[0]
  match = re.fullmatch(r"(\d+)_([A-Z]+)_([A-Z]{3})_([A-Z]{1,2})", stem)
  if not match or match.group(3) not in _CREMAD_EMOTIONS or match.group(4) not in _CREMAD_LEVELS:
    raise LayoutError("expected <actor>_<sentence>_<EMO>_<LVL> (e.g. 1001_DFA_ANG_XX)")
  actor, sentence, emotion, level = match.groups()
  return {
    "speaker": actor,
    "sentence": sentence,
    "emotion": _CREMAD_EMOTIONS[emotion],
    "intensity": _CREMAD_LEVELS[level],
    "clip_id": stem,
  }


def parse_ravdess(rel: str) -> dict:
  stem = os.path.splitext(os.path.basename(rel))[0]
  fields = stem.split("-")
  if len(fields) != 7 or not all(f.isdigit() for f in fields) or int(fields[2]) not in _RAVDESS_EMOTIONS:
    raise LayoutError("expected <mod>-<voc>-<emo>-<int>-<stmt>-<rep>-<actor> (e.g. 03-01-05-02-01-01-12)")
  _, _, emotion, intensity, statement, _, actor = (int(f) for f in fields)
  return {
    "speaker": f"actor{actor:02d}",
    "sentence": f"statement{statement}",
    "emotion": _RAVDESS_EMOTIONS[emotion],
    "intensity": intensity,
    "clip_id": stem,
  }


def parse_flat(rel: str) -> dict:
  stem = os.path.splitext(os.path.basename(rel))[0]
  return {
    "speaker": re.sub(r"_\d+$", "", stem) or stem,
    "sentence": stem,
    "emotion": "",
    "intensity": 0,
    "clip_id": os.path.splitext(rel.replace(os.sep, "/"))[0],
  }


PARSERS = {"mead": parse_mead, "cremad": parse_cremad, "ravdess": parse_ravdess, "flat": parse_flat}


def coefficient_file(coeff_root: str, rel: str) -> str | None:
  """The coefficient file mirroring audio path `rel`, or None."""
  stem = os.path.splitext(rel)[0]
  parts = stem.replace(os.sep, "/").split("/")
  candidates = [parts] + ([parts[:1] + parts[2:]] if len(parts) > 2 and parts[1] == "audio" else [])
  for candidate in candidates:
    for suffix in COEFF_SUFFIXES:
      path = os.path.join(coeff_root, *candidate) + suffix
      if os.path.isfile(path):
        return path
  return None


def video_file(root: str, rel: str, layout: str, view: str = "front") -> str | None:
  """The video of the clip whose audio is `rel` (under root), or None when there is none."""
  from a2e_jax.vision.media import VIDEO_SUFFIXES

  if layout == "flat":
    return os.path.join(root, rel) if rel.lower().endswith(VIDEO_SUFFIXES) else None
  actor, _, emotion, level, name = rel.replace(os.sep, "/").split("/")
  stem = os.path.splitext(name)[0]
  for suffix in (".mp4",) + VIDEO_SUFFIXES:
    path = os.path.join(root, actor, "video", view, emotion, level, stem + suffix)
    if os.path.isfile(path):
      return path
  return None


def tracked_file(coeff_root: str, rel: str, layout: str) -> str:
  """Where --track writes the coefficients of the clip whose audio is `rel` (found by coefficient_file)."""
  parts = os.path.splitext(rel)[0].replace(os.sep, "/").split("/")
  if layout == "mead":
    parts = parts[:1] + parts[2:]  # MEAD's `audio` folder left out
  return os.path.join(coeff_root, *parts) + ".npz"


def _clips(root: str, layout: str):
  """(path, rel, fields or LayoutError) of every audio (or video) file under root, in order."""
  for folder, dirs, files in os.walk(root):
    dirs.sort()  # in place: the walk's order (and its pruning below)
    if layout == "mead" and os.path.relpath(folder, root).replace(os.sep, "/").count("/") == 0:
      dirs[:] = [d for d in dirs if d != "video"]  # MEAD's video tree is found through its audio
    for name in sorted(files):
      if not name.lower().endswith(AUDIO_SUFFIXES):
        continue
      path = os.path.join(folder, name)
      rel = os.path.relpath(path, root)
      try:
        yield path, rel, PARSERS[layout](rel)
      except LayoutError as e:
        yield path, rel, e


def track(root: str, coeff_root: str, layout: str = "mead", model: str = "builtin", view: str = "front",
          redo: bool = False, progress: bool = True, tracker=None, fit_mouth: bool = False) -> dict:
  """Fits every clip's video under root (this process's block of them) into coefficient files under
  coeff_root; returns counts {"tracked", "skipped", "failed", "no_video"} of this process's clips.
  `tracker` (a fit.track.Tracker of `model`) replaces the default one (tests: a lighter fit); fit_mouth
  fits every frame's mouth to its pixels too (Tracker(mouth=True))."""
  from a2e_jax.core.errors import UserError
  from a2e_jax.data.batching import process_items
  from a2e_jax.face.registry import resolve_model
  from a2e_jax.fit import batch
  from a2e_jax.train import distributed

  if layout not in ("mead", "flat"):
    raise UserError(f"--track reads videos in the mead and flat layouts, not {layout!r}")
  if not os.path.isdir(root):
    raise UserError(f"--root {root} is not a folder")
  distributed.initialize()
  face_model = resolve_model(model)
  jobs, no_video = [], []
  for path, rel, fields in _clips(root, layout):
    if isinstance(fields, LayoutError):
      continue
    video = video_file(root, rel, layout, view)
    if video is None:
      no_video.append(path)
    else:
      jobs.append((video, tracked_file(coeff_root, rel, layout)))
  outcome = batch.track_jobs(face_model, jobs, process_items(len(jobs)), mouth=fit_mouth, tracker=tracker,
                             redo=redo, progress=progress)
  for path in no_video:
    print(f"no video for {path} (looked for {layout} layout videos under {root})", file=sys.stderr)
  _wait_for_all_processes()
  return {
    "tracked": len(outcome.done),
    "skipped": len(outcome.skipped),
    "failed": len(outcome.failed),
    "no_video": len(no_video),
  }


def _wait_for_all_processes() -> None:
  import jax

  if jax.process_count() > 1:
    from jax.experimental import multihost_utils

    multihost_utils.sync_global_devices("prepare_mead --track")


def split_of(speaker: str, sentence: str, test_speakers, val_speakers, val_sentences) -> str:
  if speaker in test_speakers:
    return "test"
  if speaker in val_speakers:
    return "val_speaker"
  if sentence in val_sentences:
    return "val_sentence"
  return "train"


def prepare(
  root: str,
  coeff_root: str,
  out: str,
  layout: str = "mead",
  fps: float = 30.0,
  test_speakers=(),
  val_speakers=(),
  val_sentences=(),
) -> dict:
  """Writes the manifest; returns counts {"clips", "no_coefficients", "not_in_layout", "splits"}."""
  from a2e_jax.core.errors import UserError
  from a2e_jax.data.manifest import write_manifest

  if not os.path.isdir(root):
    raise UserError(f"--root {root} is not a folder")
  if not os.path.isdir(coeff_root):
    raise UserError(f"--coeffs {coeff_root} is not a folder")
  out_dir = os.path.dirname(os.path.abspath(out))
  rows, missing, foreign = [], [], []
  for path, rel, fields in _clips(root, layout):
    if isinstance(fields, LayoutError):
      foreign.append(f"{path}: {fields}")
      continue
    coeffs = coefficient_file(coeff_root, rel)
    if coeffs is None:
      missing.append(path)
      continue
    fields["split"] = split_of(
      fields["speaker"], fields["sentence"], test_speakers, val_speakers, val_sentences
    )
    rows.append(
      {
        **fields,
        "audio": os.path.relpath(path, out_dir),
        "coeffs": os.path.relpath(coeffs, out_dir),
        "fps": fps,
      }
    )
  for path in missing:
    print(f"no coefficient file for {path} (looked under {coeff_root})", file=sys.stderr)
  for line in foreign:
    print(f"not in the {layout} layout, skipped: {line}", file=sys.stderr)
  if not rows:
    raise UserError(
      f"no clip under {root} has a coefficient file under {coeff_root} (layout {layout}); "
      "check --root, --coeffs and --layout"
    )
  os.makedirs(out_dir, exist_ok=True)
  write_manifest(out, rows)
  splits = {}
  for row in rows:
    splits[row["split"]] = splits.get(row["split"], 0) + 1
  return {
    "clips": len(rows),
    "no_coefficients": len(missing),
    "not_in_layout": len(foreign),
    "splits": splits,
  }


def _names(text: str) -> set:
  return {t.strip() for t in (text or "").split(",") if t.strip()}


def main(argv=None) -> int:
  from a2e_jax.core.errors import UserError

  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="See docs/data.md.")
  parser.add_argument("--root", required=True, help="the corpus's audio (or video) folder")
  parser.add_argument("--coeffs", required=True, help="folder of coefficient files mirroring --root")
  parser.add_argument("--out", required=True, help="manifest.jsonl to write (paths are relative to it)")
  parser.add_argument("--layout", choices=LAYOUTS, default="mead", help="file naming (default mead)")
  parser.add_argument("--fps", type=float, default=30.0, help="coefficient frame rate when files lack one")
  parser.add_argument("--test-speakers", default="", help="comma list: split 'test'")
  parser.add_argument("--val-speakers", default="", help="comma list: split 'val_speaker'")
  parser.add_argument("--val-sentences", default="", help="comma list of sentence ids: split 'val_sentence'")
  parser.add_argument("--track", action="store_true", help="fit every clip's video into --coeffs first")
  parser.add_argument("--model", default="builtin", help="--track: face model (builtin, bfm, ict, a .npz)")
  parser.add_argument("--view", default="front", help="--track, MEAD: the camera view folder (default front)")
  parser.add_argument("--redo", action="store_true", help="--track: fit clips whose coefficients exist again")
  parser.add_argument("--fit-mouth", action="store_true",
                      help="--track: also fit every frame's mouth to its pixels (experimental: truer lips on "
                      "our synthetic renders, not yet on real video, docs/fitting.md; slower)")
  parser.add_argument("--no-progress", action="store_true", help="--track: no progress bars")
  args = parser.parse_args(argv)
  try:
    tracked = {}
    if args.track:
      tracked = track(args.root, args.coeffs, args.layout, args.model, args.view, args.redo,
                      not args.no_progress, fit_mouth=args.fit_mouth)
      import jax

      if jax.process_index() > 0:  # process 0 writes the manifest
        print(json.dumps({"process": jax.process_index(), **tracked}))
        return 0
    summary = prepare(
      args.root,
      args.coeffs,
      args.out,
      args.layout,
      args.fps,
      _names(args.test_speakers),
      _names(args.val_speakers),
      _names(args.val_sentences),
    )
  except UserError as e:
    print(f"prepare_mead: error: {e}", file=sys.stderr)
    return 2
  print(json.dumps({**summary, **tracked}))
  return 0


if __name__ == "__main__":
  sys.exit(main())
