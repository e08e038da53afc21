"""Writing a generation: coefficient files in every export format, and the video with sound.

The network speaks its own channels (the demo weights: the 53 ICT/ARKit channels of the built-in face).
Each format gets the space it needs:
  npz          the output face model's space (`--model`; retargeted when it differs from the network's)
  arkit-csv    ICT/ARKit channels
  glb          the output face model's mesh with one morph target per channel
  sadtalker,   BFM's 64 expression coefficients: the network's output retargeted onto a BFM model
  pirenderer   (face/retarget.py). Without a BFM model these columns would be meaningless, so the export
               is refused with one line naming `--bfm` (`a2e generate`), or skipped with that reason
               (`a2e demo`, which writes every format it honestly can).
"""

import dataclasses

from a2e_jax.core.channels import BFM_CHANNELS
from a2e_jax.core.errors import UserError
from a2e_jax.face.registry import resolve_model
from a2e_jax.formats.files import EXPORT_FORMATS, in_space, write_sequence
from a2e_jax.infer.reference import BFM_HINT
from a2e_jax.render.api import render_video, sequence_arrays

SUFFIXES = {"npz": ".npz", "sadtalker": "_sadtalker.mat", "pirenderer": "_pirenderer.npy",
            "arkit-csv": "_arkit.csv", "glb": ".glb"}
BFM_FORMATS = ("sadtalker", "pirenderer")


def parse_formats(text: str) -> tuple[str, ...]:
  """`sadtalker,npz` or `all` -> formats, checked against EXPORT_FORMATS."""
  if text.strip() == "all":
    return EXPORT_FORMATS
  formats = tuple(dict.fromkeys(f.strip() for f in text.split(",") if f.strip()))
  unknown = [f for f in formats if f not in EXPORT_FORMATS]
  if unknown or not formats:
    raise UserError(f"--export {text!r}: unknown format {', '.join(unknown) or '(none)'}; choose from "
                    f"{', '.join(EXPORT_FORMATS)} or all")
  return formats


def find_bfm(spec: str | None):
  """The BFM MorphableModel named by `--bfm` (a .mat, a converted .npz, or 'bfm'), the converted one in
  the cache when `spec` is None and it exists there, else None."""
  if spec:
    return resolve_model(spec)
  try:
    return resolve_model("bfm")
  except UserError:
    return None


@dataclasses.dataclass
class Spaces:
  """The face models a generation's exports need."""

  network_model: object  # speaks the network's channels
  output_model: object  # `--model`: the npz's space, the glb's mesh and the video's face
  bfm_model: object | None


def check_formats(formats, spaces: Spaces, skip_unavailable: bool) -> tuple[tuple, dict]:
  """(formats to write, {skipped format: reason}); raises UserError for an impossible one unless skipping."""
  skipped = {}
  if not _is_bfm(spaces.output_model) and spaces.bfm_model is None:
    for fmt in formats:
      if fmt in BFM_FORMATS:
        skipped[fmt] = f"{fmt} files hold BFM expression coefficients and no BFM model is at hand; {BFM_HINT}"
  if skipped and not skip_unavailable:
    raise UserError(f"--export {next(iter(skipped))}: {next(iter(skipped.values()))}")
  return tuple(f for f in formats if f not in skipped), skipped


def write_exports(seq, stem: str, formats, spaces: Spaces) -> dict:
  """Writes `seq` (network space) as `<stem><suffix>` per format; returns {format: path}."""
  written = {}
  out_names = tuple(spaces.output_model.channel_names)
  out_seq = in_space(seq, out_names, spaces.network_model, spaces.output_model, spaces.output_model.name,
                     "--model")
  for fmt in formats:
    path = stem + SUFFIXES[fmt]
    if fmt in ("npz", "glb"):
      write_sequence(path, out_seq, fmt, model=spaces.output_model)
    elif fmt in BFM_FORMATS and _is_bfm(spaces.output_model):
      write_sequence(path, out_seq, fmt, model=spaces.output_model)
    elif fmt in BFM_FORMATS:
      write_sequence(path, seq, fmt, model=spaces.network_model, target_model=spaces.bfm_model)
    else:
      write_sequence(path, seq, fmt, model=spaces.network_model)
    written[fmt] = path
  return written


def write_video(path: str, seq, model, audio_path: str, ref_image: str | None = None, size: int = 256,
                progress: bool = True) -> str:
  """Renders `seq` (the output model's space) on `model` with the JAX renderer, `audio_path` muxed in."""
  arrays = sequence_arrays(seq, model)
  ref = {}
  if ref_image is not None:
    from a2e_jax.fit.portrait import placement

    place = placement(model, ref_image, arrays["pose"], len(arrays["exp"]))
    arrays.update(pose=place["pose"], id=place["id"])
    ref = dict(ref_exp=place["ref_exp"], ref_gamma=place["gamma"], ref_tex=place["tex"])
  render_video(path, model, arrays["exp"], pose_t6=arrays["pose"], id_k=arrays["id"], audio=audio_path,
               ref_image=ref_image, **ref, size=size, progress=progress)
  return path


def _is_bfm(model) -> bool:
  return tuple(model.channel_names) == tuple(BFM_CHANNELS)
