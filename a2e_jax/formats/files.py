"""Reading and writing coefficient files in every supported format, all through `CoeffSequence`.

  format         extension  contents                                                   expression space
  sadtalker      .mat       coeff_3dmm [T,70] (SadTalker audio2coeff), 25 fps          BFM 64
  sadtalker-ref  .mat       coeff_3dmm [T,73] + full_3dmm [T,257] (SadTalker preprocess) BFM 64
  pirenderer     .npy       [T,73] (PIRenderer / DreamTalk), 25 fps                    BFM 64
  npz            .npz       our lossless file (formats/sequence.py)                       any
  arkit-csv      .csv       Live Link Face CSV                                         ARKit 52 / ICT 53
  glb            .glb       glTF 2.0 mesh, one morph target per channel, animation     the mesh's model

Reading infers the format from the extension, resamples to 25 fps (`resample_to`) and reports bad files
with one UserError line. Writing converts the expression space when the format's differs from the
sequence's (face/retarget.py), which needs the face models of both spaces.
"""

import os
import zipfile

import numpy as np

from a2e_jax.core import channels
from a2e_jax.core.errors import UserError
from a2e_jax.core.outputs import atomic_output
from a2e_jax.formats.sequence import CoeffSequence, check_fps, check_sequence_values, load_npz, save_npz

EXPORT_FORMATS = ("sadtalker", "pirenderer", "npz", "arkit-csv", "glb")
REFERENCE_FORMAT = "sadtalker-ref"
FORMATS = EXPORT_FORMATS + (REFERENCE_FORMAT,)
EXTENSIONS = {"sadtalker": ".mat", REFERENCE_FORMAT: ".mat", "pirenderer": ".npy", "npz": ".npz",
              "arkit-csv": ".csv", "glb": ".glb"}
FILE_FPS = 25.0  # SadTalker and PIRenderer files are 25 fps by construction
_BFM_FORMATS = ("sadtalker", REFERENCE_FORMAT, "pirenderer")


def format_from_path(path: str) -> str:
  """The format a file name implies (`.mat` reads as either SadTalker kind)."""
  ext = os.path.splitext(path)[1].lower()
  for fmt, known in EXTENSIONS.items():
    if ext == known:
      return fmt
  raise UserError(f"{path}: unknown coefficient file extension {ext!r}; expected one of "
                  f"{', '.join(sorted(set(EXTENSIONS.values())))} or pass the format explicitly")


def read_sequence(path: str, fmt: str | None = None, fps: float | None = None,
                  resample_to: float | None = FILE_FPS) -> CoeffSequence:
  """Reads a coefficient file of any format.

  Args:
    path: the file.
    fmt: one of FORMATS, or None to infer it from the extension.
    fps: the file's frame rate when the file does not say or says wrongly (SadTalker/PIRenderer files are
      taken as 25 fps, CSV rates come from the timecodes, npz and glb store theirs).
    resample_to: output frame rate (linear interpolation), or None to keep the file's.
  Returns:
    the sequence; BFM formats give channels exp00..exp63 and model "bfm", CSV gives the 53 ICT channels.
  """
  fmt = fmt or format_from_path(path)
  if fmt not in FORMATS:
    raise UserError(f"unknown coefficient format {fmt!r}; choose one of {', '.join(FORMATS)}")
  if not os.path.isfile(path):
    raise UserError(f"coefficient file {path!r} not found")
  if fps is not None:
    fps = check_fps(fps, f"{path}: the given frame rate (--fps)")
  if fmt in ("sadtalker", REFERENCE_FORMAT):
    # Each format's reader loads on use (SciPy, pygltflib): `a2e --help` imports this module for FORMATS.
    from a2e_jax.formats.mat import read_mat

    seq = read_mat(path, fps or FILE_FPS)
  elif fmt == "pirenderer":
    # Each format's reader loads on use (SciPy, pygltflib): `a2e --help` imports this module for FORMATS.
    from a2e_jax.formats.mat import read_npy

    seq = read_npy(path, fps or FILE_FPS)
  elif fmt == "npz":
    seq = _read_npz(path, fps)
  elif fmt == "arkit-csv":
    # Each format's reader loads on use (SciPy, pygltflib): `a2e --help` imports this module for FORMATS.
    from a2e_jax.formats.arkit import read_csv

    seq = read_csv(path, fps)
  else:
    # Each format's reader loads on use (SciPy, pygltflib): `a2e --help` imports this module for FORMATS.
    from a2e_jax.formats.gltf import read_glb

    seq = read_glb(path, fps)
  _check(seq, path)
  check_sequence_values(seq, path)
  return seq if resample_to is None else resample(seq, resample_to)


def write_sequence(path: str, seq: CoeffSequence, fmt: str | None = None, model=None,
                   target_model=None) -> None:
  """Writes `seq` in `fmt` (None: from the extension).

  Args:
    model: the MorphableModel whose channels `seq` drives; the mesh of a `.glb`, and the source when the
      format speaks another expression space.
    target_model: a model of the format's expression space when it differs from seq's: BFM
      (channels exp00..exp63) for sadtalker/pirenderer, an ICT/ARKit-channel model for arkit-csv, the mesh
      to animate for glb. Without it such an export stops with a UserError saying what to pass.
  """
  fmt = fmt or format_from_path(path)
  if fmt not in FORMATS:
    raise UserError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
  _check(seq, "sequence to export")
  check_sequence_values(seq, f"coefficients for {path}")
  if model is not None and len(model.channel_names) != len(seq.channel_names):
    raise UserError(f"face model {model.name!r} has {len(model.channel_names)} expression channels, the "
                    f"sequence has {len(seq.channel_names)} ({seq.model or 'unknown model'}); pass the model "
                    "the coefficients belong to")
  with atomic_output(path) as temporary:
    _write(temporary, path, seq, fmt, model, target_model)


def _write(path: str, name: str, seq: CoeffSequence, fmt: str, model, target_model) -> None:
  """`write_sequence`'s work, into `path` (a temporary name of the file `name`)."""
  if fmt == "npz":
    save_npz(path, seq)
    return
  if fmt in _BFM_FORMATS:
    # Each format's reader loads on use (SciPy, pygltflib): `a2e --help` imports this module for FORMATS.
    from a2e_jax.formats import mat as export_mat

    seq = resample(in_space(seq, channels.BFM_CHANNELS, model, target_model, "bfm", fmt), FILE_FPS)
    writer = {"sadtalker": export_mat.write_sadtalker, REFERENCE_FORMAT: export_mat.write_sadtalker_reference,
              "pirenderer": export_mat.write_pirenderer}[fmt]
    writer(path, seq)
  elif fmt == "arkit-csv":
    # Each format's reader loads on use (SciPy, pygltflib): `a2e --help` imports this module for FORMATS.
    from a2e_jax.formats.arkit import write_csv

    seq = in_space(seq, channels.ICT_CHANNELS, model, target_model, target_model and target_model.name, fmt)
    write_csv(path, seq if float(seq.fps).is_integer() else resample(seq, FILE_FPS))
  else:
    # Each format's reader loads on use (SciPy, pygltflib): `a2e --help` imports this module for FORMATS.
    from a2e_jax.formats.gltf import write_glb

    mesh = target_model if target_model is not None else model
    if mesh is None:
      raise UserError(f"{name}: a .glb needs the face model's mesh; pass the model the coefficients belong "
                      f"to (--model, e.g. {seq.model or 'builtin'})")
    seq = in_space(seq, mesh.channel_names, model, target_model, mesh.name, fmt)
    write_glb(path, seq, mesh)
  # Mapped or resampled values are checked again: a writer never emits NaN, inf or absurd values.
  check_sequence_values(seq, f"coefficients for {name}")


def in_space(seq: CoeffSequence, names: tuple, model, target_model, target_id, fmt: str) -> CoeffSequence:
  """`seq` with its coefficients (and beta0) mapped onto the channels `names` (face/retarget.py)."""
  # Each format's reader loads on use (SciPy, pygltflib): `a2e --help` imports this module for FORMATS.
  from a2e_jax.face.retarget import channel_map

  names = tuple(names)
  if tuple(seq.channel_names) == names:
    return seq
  matrix = channel_map(seq.channel_names, names, model, target_model, purpose=f"the {fmt} format")
  mapped = CoeffSequence(**{**seq.__dict__})
  mapped.coeffs = (seq.coeffs.astype(np.float64) @ matrix.T).astype(np.float32)
  mapped.beta0 = None if seq.beta0 is None else (matrix @ seq.beta0).astype(np.float32)
  mapped.channel_names = names
  mapped.model = target_id or ""
  if seq.id_coeffs is not None and (target_model is None or target_model.num_id != len(seq.id_coeffs)):
    mapped.id_coeffs = None  # identity coefficients of another model mean nothing here
  return mapped


def resample(seq: CoeffSequence, fps: float) -> CoeffSequence:
  """`seq` at `fps` by linear interpolation; the duration (frames / fps) is kept, the last frame held."""
  if abs(seq.fps - fps) < 1e-9:
    return seq
  t = seq.num_frames
  n = max(1, int(round(t * fps / seq.fps)))
  grid = np.minimum(np.arange(n) / fps, (t - 1) / seq.fps)
  source = np.arange(t) / seq.fps

  def interp(array):
    if array is None:
      return None
    array = np.asarray(array, np.float64)
    return np.stack([np.interp(grid, source, col) for col in array.T], axis=1).astype(np.float32)

  out = CoeffSequence(**{**seq.__dict__})
  out.coeffs, out.pose, out.eye, out.crop = (interp(seq.coeffs), interp(seq.pose), interp(seq.eye),
                                             interp(seq.crop))
  out.fps = float(fps)
  return out


def _read_npz(path: str, fps: float | None) -> CoeffSequence:
  try:
    seq, _ = load_npz(path)
  except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
    raise UserError(f"{path}: not an a2e coefficient .npz ({e}); write one with "
                    "'a2e export --to npz'") from None
  if fps is not None:
    seq.fps = float(fps)
  return seq


def _check(seq: CoeffSequence, source: str) -> None:
  """Shapes of a sequence's arrays, as one UserError line naming `source`."""
  check_fps(seq.fps, source)
  t, k = np.shape(seq.coeffs) if np.ndim(seq.coeffs) == 2 else (None, None)
  if t is None or t == 0 or k != len(seq.channel_names):
    raise UserError(f"{source}: coeffs has shape {np.shape(seq.coeffs)}, expected "
                    f"[T>0,{len(seq.channel_names)}] (one column per channel name)")
  for key, width in (("pose", 6), ("eye", 4), ("crop", 3)):
    value = getattr(seq, key)
    if value is not None and np.shape(value) != (t, width):
      raise UserError(f"{source}: {key} has shape {np.shape(value)}, expected [{t},{width}]")
  for key in ("beta0",):
    value = getattr(seq, key)
    if value is not None and np.shape(value) != (k,):
      raise UserError(f"{source}: {key} has shape {np.shape(value)}, expected [{k}]")
