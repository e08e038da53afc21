"""Corpus manifests (core/schema.py) and loading one clip: audio -> log-mel, coefficients -> 25 fps targets.

A manifest is `manifest.jsonl` (one JSON object per line) or a CSV with the same column names. Required:
clip_id, audio, coeffs, speaker, sentence; optional: fps (the coefficient file's rate when the file does
not store one; SadTalker/PIRenderer files are 25 fps), emotion (a name; "" for unknown -> neutral),
intensity (0..3; 0 unknown), split (default "train"). Relative paths are relative to the manifest's folder.

A clip that cannot be used raises `ClipError` with its kind ("audio", "coeffs", "duration", "channels"),
so a builder can report it by path and count it instead of dropping it silently.
"""

import csv
import dataclasses
import json
import os
import warnings

import numpy as np

from a2e_jax.audio import features, io
from a2e_jax.core import schema
from a2e_jax.core.errors import UserError
from a2e_jax.formats.files import read_sequence, resample
from a2e_jax.formats.sequence import load_npz

REQUIRED = ("clip_id", "audio", "coeffs", "speaker", "sentence")
OPTIONAL = ("fps", "emotion", "intensity", "split")
PROBLEM_KINDS = ("audio", "coeffs", "duration", "channels")


class ClipError(UserError):
  """One clip is unusable; `kind` is one of PROBLEM_KINDS."""

  def __init__(self, kind: str, message: str):
    super().__init__(message)
    self.kind = kind


@dataclasses.dataclass(frozen=True)
class Entry:
  """One manifest row with absolute paths and parsed labels."""

  clip_id: str
  audio: str
  coeffs: str
  speaker: str
  sentence: str
  emotion: int = schema.NEUTRAL
  intensity: int = 0
  split: str = "train"
  fps: float | None = None


def _rows(path: str):
  """(line number, dict) of a .jsonl or .csv manifest."""
  if path.lower().endswith(".csv"):
    with open(path, newline="", encoding="utf-8") as f:
      for number, row in enumerate(csv.DictReader(f), start=2):
        yield number, {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
    return
  with open(path, encoding="utf-8") as f:
    for number, line in enumerate(f, start=1):
      if not line.strip():
        continue
      try:
        row = json.loads(line)
      except json.JSONDecodeError as e:
        raise UserError(
          f"{path} line {number}: not valid JSON ({e.msg}); write one object per line"
        ) from None
      if not isinstance(row, dict):
        raise UserError(f"{path} line {number}: expected a JSON object, got {type(row).__name__}")
      yield number, row


def _entry(row: dict, root: str, where: str) -> Entry:
  missing = [k for k in REQUIRED if str(row.get(k, "")).strip() == ""]
  if missing:
    raise UserError(f"{where}: missing {', '.join(missing)}; every clip needs {', '.join(REQUIRED)}")
  unknown = sorted(set(row) - set(REQUIRED) - set(OPTIONAL))
  if unknown:
    raise UserError(
      f"{where}: unknown field(s) {', '.join(unknown)}; fields are {', '.join(REQUIRED + OPTIONAL)}"
    )
  emotion_name = str(row.get("emotion") or "").strip()
  try:
    emotion = schema.emotion_index(emotion_name) if emotion_name else schema.NEUTRAL
  except ValueError as e:
    raise UserError(f"{where}: {e}") from None
  try:
    intensity = int(row.get("intensity") or 0)
    fps = float(row["fps"]) if str(row.get("fps", "")).strip() not in ("", "None") else None
  except (TypeError, ValueError):
    raise UserError(f"{where}: intensity must be an integer and fps a number") from None
  if intensity not in (0, *schema.INTENSITIES):
    raise UserError(f"{where}: intensity {intensity} not in 0..3 (0 = unknown)")
  if fps is not None and fps <= 0:
    raise UserError(f"{where}: fps {fps} must be positive")
  split = str(row.get("split") or "train").strip()
  if split not in schema.SPLITS:
    raise UserError(f"{where}: split {split!r} is not one of {', '.join(schema.SPLITS)}")
  return Entry(
    clip_id=str(row["clip_id"]).strip(),
    audio=os.path.join(root, str(row["audio"]).strip()),
    coeffs=os.path.join(root, str(row["coeffs"]).strip()),
    speaker=str(row["speaker"]).strip(),
    sentence=str(row["sentence"]).strip(),
    emotion=emotion,
    intensity=intensity,
    split=split,
    fps=fps,
  )


def read_manifest(path: str) -> list[Entry]:
  """Parses and validates a manifest; raises UserError naming the file, line and field of a bad row."""
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise UserError(f"manifest {path} not found; give a manifest.jsonl or .csv (see docs/data.md)")
  root = os.path.dirname(os.path.abspath(path))
  entries, seen = [], {}
  for number, row in _rows(path):
    where = f"{path} line {number}"
    entry = _entry(row, root, where)
    if entry.clip_id in seen:
      raise UserError(
        f"{where}: clip_id {entry.clip_id!r} repeats line {seen[entry.clip_id]}; ids must be unique"
      )
    seen[entry.clip_id] = number
    entries.append(entry)
  if not entries:
    raise UserError(f"manifest {path} lists no clips")
  return entries


def write_manifest(path: str, rows: list[dict]) -> None:
  """Writes rows (dicts with the manifest fields) as JSON lines, sorted by clip_id."""
  with open(path, "w", encoding="utf-8") as f:
    for row in sorted(rows, key=lambda r: r["clip_id"]):
      f.write(json.dumps(row) + "\n")


def read_coefficients(entry: Entry):
  """(CoeffSequence at 25 fps, its duration in 25 fps frames before rounding, extras dict) of the clip's
  coefficient file; ClipError('coeffs') if it cannot be read."""
  try:
    seq = read_sequence(entry.coeffs, fps=entry.fps, resample_to=None)
    extras = load_npz(entry.coeffs)[1] if entry.coeffs.lower().endswith(".npz") else {}
  except UserError as e:
    raise ClipError("coeffs", f"{entry.clip_id}: {e}") from None
  return resample(seq, float(schema.FPS)), seq.num_frames * schema.FPS / seq.fps, extras


def load_clip(entry: Entry, channel_names: tuple | None = None) -> dict:
  """One clip in the schema's layout (core/schema.py), from its audio and coefficient files.

  The coefficients set the length T: audio within one frame of T*640 samples is cut or zero-padded to it
  (as SadTalker does); a larger mismatch is a ClipError naming both files. Missing eye/pose become zeros,
  a missing beta0 the first frame's coefficients (SadTalker's reference is the first frame too).
  With `channel_names`, a file with other channels is a ClipError("channels").
  """
  seq, duration, extras = read_coefficients(entry)
  if channel_names is not None and tuple(seq.channel_names) != tuple(channel_names):
    raise ClipError(
      "channels",
      f"{entry.coeffs}: channels {seq.channel_names[:3]}... ({len(seq.channel_names)}) "
      f"differ from the dataset's {tuple(channel_names)[:3]}... ({len(channel_names)})",
    )
  try:
    with warnings.catch_warnings():
      warnings.simplefilter("error", io.SilenceWarning)  # nothing to learn from; clipping only warns
      wav = io.load_audio(entry.audio)
  except (UserError, io.SilenceWarning) as e:
    raise ClipError("audio", f"{entry.clip_id}: {e}") from None
  frames = seq.num_frames
  audio_frames = len(wav) / schema.SAMPLES_PER_FRAME
  if abs(audio_frames - duration) > 1.0:
    raise ClipError(
      "duration",
      f"{entry.clip_id}: audio {entry.audio} lasts {audio_frames:.2f} frames at 25 fps "
      f"but coefficients {entry.coeffs} last {duration:.2f}; check that they are the same take",
    )
  coeffs = np.asarray(seq.coeffs, np.float32)
  empty = np.zeros(0, np.float32)
  eye = np.zeros((frames, schema.EYE), np.float32) if seq.eye is None else np.asarray(seq.eye, np.float32)
  pose = np.zeros((frames, schema.POSE), np.float32) if seq.pose is None else np.asarray(seq.pose, np.float32)
  return {
    "clip_id": entry.clip_id, "speaker": entry.speaker, "sentence": entry.sentence,
    "emotion": np.int64(entry.emotion), "intensity": np.int64(entry.intensity), "split": entry.split,
    "mel": features.log_mel(features.crop_or_pad(wav, frames)),
    "coeffs": coeffs,
    "beta0": np.asarray(seq.beta0 if seq.beta0 is not None else coeffs[0], np.float32),
    "eye": eye,
    "pose": pose,
    "phones": np.asarray(extras.get("phones", empty), np.int32),
    "phone_start": np.asarray(extras.get("phone_start", empty), np.float32),
  }  # fmt: skip
