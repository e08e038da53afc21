"""Batch generation over a folder or a manifest of audio files, with a progress bar.

Inputs:
  a folder     every audio file in it (sorted; not recursive)
  a .jsonl     one object per line: {"audio": path, and optionally "out": stem, "emotion", "intensity",
               "emotion_schedule", "emotion_from", "ref", "blink", "gaze", "pose", "seed"} overriding the
               command's flags for that item; paths are relative to the manifest's folder, and "out" (the
               item's file name stem) must stay inside --out
  a .txt/.lst  one audio path per line
Each item runs on its own: a failing input is reported with its reason and the rest go on. A report
(`batch_report.json` in the output folder) lists every item's status, outputs or error.
"""

import dataclasses
import json
import os
import traceback

from tqdm import tqdm

from a2e_jax.core.errors import UserError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".mp4", ".aac", ".opus", ".webm")
MANIFEST_SUFFIXES = (".jsonl", ".txt", ".lst")
ITEM_KEYS = ("audio", "out", "emotion", "intensity", "emotion_schedule", "emotion_from", "ref", "blink",
             "gaze", "pose", "seed")
PATH_KEYS = ("audio", "emotion_from", "ref")
REPORT = "batch_report.json"


@dataclasses.dataclass
class Item:
  """One input: its audio, the output stem (file name without suffix) and per-item control overrides."""

  audio: str
  stem: str
  overrides: dict = dataclasses.field(default_factory=dict)


def is_batch(path: str) -> bool:
  """Whether `--audio` names a folder or a manifest rather than one audio file."""
  return os.path.isdir(path) or os.path.splitext(path)[1].lower() in MANIFEST_SUFFIXES


def read_items(path: str) -> list[Item]:
  """The items of a folder or manifest (see the module docstring)."""
  if os.path.isdir(path):
    names = sorted(n for n in os.listdir(path) if os.path.splitext(n)[1].lower() in AUDIO_SUFFIXES)
    if not names:
      raise UserError(f"folder {path} holds no audio files ({', '.join(AUDIO_SUFFIXES)})")
    return [Item(os.path.join(path, n), os.path.splitext(n)[0]) for n in names]
  if not os.path.isfile(path):
    raise UserError(f"manifest {path} not found")
  base = os.path.dirname(os.path.abspath(path))
  items = []
  with open(path) as f:
    for number, line in enumerate(f, start=1):
      line = line.strip()
      if not line or line.startswith("#"):
        continue
      if path.lower().endswith(".jsonl"):
        items.append(_json_item(line, f"{path}:{number}", base))
      else:
        audio = line if os.path.isabs(line) else os.path.join(base, line)
        items.append(Item(audio, _stem(audio)))
  if not items:
    raise UserError(f"manifest {path} lists no audio")
  return _unique_stems(items)


def _json_item(line: str, where: str, base: str) -> Item:
  try:
    record = json.loads(line)
  except json.JSONDecodeError as e:
    raise UserError(f"{where}: not a JSON object ({e.msg}); write one object per line") from None
  if not isinstance(record, dict) or "audio" not in record:
    raise UserError(f"{where}: each line needs an \"audio\" path")
  unknown = sorted(set(record) - set(ITEM_KEYS))
  if unknown:
    raise UserError(f"{where}: unknown keys {unknown}; allowed: {', '.join(ITEM_KEYS)}")
  for key in PATH_KEYS:
    if key in record and not os.path.isabs(record[key]):
      record[key] = os.path.join(base, record[key])
  audio = record.pop("audio")
  out = record.pop("out", None)
  if out is not None:
    _check_inside(out, where)
  return Item(audio, out or _stem(audio), record)


def _check_inside(out, where: str) -> None:
  """A UserError unless the item's "out" stem is a relative name that stays inside the output folder."""
  parts = os.path.normpath(out).split(os.sep) if isinstance(out, str) else []
  if not isinstance(out, str) or not out or os.path.isabs(out) or ".." in parts or out.startswith("~"):
    raise UserError(f"{where}: \"out\" {out!r} would be written outside --out; give a relative name inside "
                    "it, e.g. \"clip1\" or \"speaker1/clip1\"")


def _stem(path: str) -> str:
  return os.path.splitext(os.path.basename(path))[0]


def _unique_stems(items: list[Item]) -> list[Item]:
  seen = {}
  for item in items:
    count = seen.get(item.stem, 0)
    seen[item.stem] = count + 1
    if count:
      item.stem = f"{item.stem}_{count + 1}"
  return items


def run_batch(items: list[Item], process, out_dir: str, progress: bool = True) -> dict:
  """Calls `process(item) -> {format: path}` for each item, going on after failures.

  Returns the report {"ok": n, "failed": n, "items": [...]}, also written to `out_dir/batch_report.json`.
  A UserError is reported by its line; any other exception by its type, message and last frame.
  """
  records = []
  bar = tqdm(items, desc="generate", unit="clip", disable=not progress)
  for item in bar:
    bar.set_postfix_str(os.path.basename(item.audio)[:30])
    try:
      outputs = process(item)
      records.append({"audio": item.audio, "status": "ok", "outputs": outputs})
    except UserError as e:
      records.append({"audio": item.audio, "status": "failed", "error": str(e)})
      bar.write(f"a2e: failed: {item.audio}: {e}")
    except Exception as e:  # noqa: BLE001 - one broken input must not stop the others.
      where = traceback.extract_tb(e.__traceback__)[-1]
      message = f"{type(e).__name__}: {e} (at {os.path.basename(where.filename)}:{where.lineno})"
      records.append({"audio": item.audio, "status": "failed", "error": message})
      bar.write(f"a2e: failed: {item.audio}: {message}")
  failed = sum(r["status"] != "ok" for r in records)
  report = {"ok": len(records) - failed, "failed": failed, "items": records}
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, REPORT), "w") as f:
    json.dump(report, f, indent=2)
    f.write("\n")
  return report
