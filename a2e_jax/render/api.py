"""High-level rendering: coefficient arrays or sequences → frames, or an mp4 with sound.

    from a2e_jax.render import render_frames, render_video
    frames = render_frames(model, exp_tk, pose_t6=pose)             # [T,H,W,3] uint8
    render_video("out.mp4", model, exp_tk, audio="speech.wav")      # streamed, any length

Both take the face model's expression coefficients [T,Ke] (in its channel order), an optional head pose
[T,6] (angles in radians, R = Rz·Ry·Rx, then translation), identity [Ki] and SH lighting ([27] or [T,27]).
`sequence_arrays` turns a CoeffSequence (any file `a2e_jax.formats.files.read_sequence` reads) into those
arrays for a given model, mapping channel names where the model speaks another vocabulary.
"""

import numpy as np

from a2e_jax.core.errors import UserError
from a2e_jax.formats.files import in_space
from a2e_jax.render.photo import photo_texture
from a2e_jax.render.pipeline import DEFAULT_BACKGROUND, FaceRenderer
from a2e_jax.render.video import FPS, tile, write_video

MAX_SIZE = 4096  # pixels a side: beyond it a frame no longer fits the rasterizer's buffers or H.264 levels


def check_size(size: int, flag: str = "--size") -> None:
  """A UserError unless `size` is an even number of pixels in [16, MAX_SIZE] (H.264 wants even sides)."""
  if not 16 <= size <= MAX_SIZE or size % 2:
    raise UserError(f"{flag} {size}: use an even number of pixels from 16 to {MAX_SIZE}")


def render_frames(model, exp_tk=None, *, pose_t6=None, id_k=None, gamma=None, size: int = 256,
                  width: int | None = None, camera=None, batch: int = 16, background=DEFAULT_BACKGROUND,
                  antialias: bool = False, ref_image=None, ref_exp=None, ref_gamma=None, ref_tex=None):
  """[T,H,W,3] uint8 frames of `model` (all in memory; use render_video for long clips).

  Args:
    model: a MorphableModel.
    exp_tk: [T,Ke] expression coefficients (None: one neutral frame).
    pose_t6, id_k, gamma: see module doc.
    size, width: image size (Deep3DFaceRecon's camera scaled to it).
    camera: a render.camera.Camera instead (overrides size and width).
    batch: frames per compiled call.
    background: RGB in [0,1].
    antialias: smooth silhouette edges.
    ref_image: a portrait (path or [H,W,3] float in [0,1]) to colour the face from and composite over
      (render/photo.py); the frames then take its size.
    ref_exp: [Ke] the expression the portrait shows (the reference β0; None: neutral), placed with the
      first frame's pose to map the photo onto the mesh.
    ref_gamma, ref_tex: the portrait's fitted SH lighting [27] and albedo coefficients [Kt] (None: the mean
      albedo), which colour the face where the portrait does not show it (None: the nearest shown colour).
  """
  exp_tk = np.zeros((1, model.num_exp), np.float32) if exp_tk is None else np.asarray(exp_tk, np.float32)
  renderer = _renderer(model, pose_t6, id_k, size, width, batch, background, antialias,
                       (ref_image, ref_exp, ref_gamma, ref_tex), camera)
  return np.concatenate(list(renderer.iter_frames(exp_tk, pose_t6, id_k, gamma)))


def render_video(path: str, model, exp_tk, *, pose_t6=None, id_k=None, gamma=None, audio: str | None = None,
                 ref_image=None, ref_exp=None, ref_gamma=None, ref_tex=None, size: int = 256,
                 fps: float = FPS, batch: int = 16, panels=(), labels=None, background=DEFAULT_BACKGROUND,
                 antialias: bool = False,
                 progress: bool = True) -> int:
  """Renders a clip to an H.264 mp4 with `audio` muxed in; returns the number of frames.

  Args:
    path: output .mp4.
    model, exp_tk, pose_t6, id_k, gamma: the clip (see module doc).
    audio: an audio file to mux (clipped to the shorter stream), or None.
    ref_image, ref_exp, ref_gamma, ref_tex: a portrait to animate, the expression it shows and its fitted
      lighting and albedo (see render_frames).
    size, fps, batch, background, antialias: as in render_frames.
    panels: more clips shown beside the first, each a dict with "exp" [T',Ke] and optional "pose",
      "id", "gamma" (e.g. ground truth, an emotion swap); shorter ones hold their last frame.
    labels: one caption per panel, the first clip included (None: no captions).
    progress: show a progress bar.
  """
  exp_tk = np.asarray(exp_tk, np.float32)
  renderer = _renderer(model, pose_t6, id_k, size, None, batch, background, antialias,
                       (ref_image, ref_exp, ref_gamma, ref_tex))
  clips = [dict(exp=exp_tk, pose=pose_t6, id=id_k, gamma=gamma)] + [dict(p) for p in panels]
  if labels is not None and len(labels) != len(clips):
    raise UserError(f"{len(labels)} labels for {len(clips)} panels")
  total = exp_tk.shape[0]
  streams = [renderer.iter_frames(*_held(clip, total)) for clip in clips]

  def batches():
    for parts in zip(*streams):
      yield parts[0] if len(parts) == 1 and labels is None else tile(parts, labels)

  cam = renderer.camera
  rows = 1 if len(clips) <= 4 else int(np.ceil(len(clips) / np.ceil(np.sqrt(len(clips)))))
  cols = len(clips) if len(clips) <= 4 else int(np.ceil(np.sqrt(len(clips))))
  return write_video(path, batches(), rows * cam.height, cols * cam.width, fps=fps, audio=audio,
                     total=total, progress=progress)


def _held(clip: dict, total: int):
  """(exp, pose, id, gamma) of a panel clip cut or held (last frame repeated) to `total` frames."""

  def fit(array):
    if array is None or np.ndim(array) < 2:
      return array
    array = np.asarray(array, np.float32)[:total]
    return np.concatenate([array, np.repeat(array[-1:], total - len(array), 0)])

  return fit(clip["exp"]), fit(clip.get("pose")), clip.get("id"), fit(clip.get("gamma"))


def _renderer(model, pose_t6, id_k, size, width, batch, background, antialias, ref, camera=None):
  """A FaceRenderer; ref = (ref_image, ref_exp, ref_gamma, ref_tex) of render_frames."""
  ref_image, ref_exp, ref_gamma, ref_tex = ref
  photo = None
  if ref_image is not None:
    pose0 = None if pose_t6 is None else np.asarray(pose_t6, np.float32)[0]
    photo = photo_texture(model, ref_image, ref_exp, pose0, id_k, ref_gamma, ref_tex)
  return FaceRenderer(model, size=size, width=width, camera=camera, batch=batch, background=background,
                      antialias=antialias, photo=photo)


def sequence_arrays(seq, model) -> dict:
  """{"exp": [T,Ke], "pose": [T,6] | None, "id": [Ki] | None, "beta0": [Ke] | None} of a sequence for `model`.

  Channels are matched by name (ICT `_L/_R` and ARKit `Left/Right` spellings both work, through
  face/retarget.py); coefficients of another model's space (BFM's 64 PCA coefficients on an ARKit-channel
  model) are a UserError naming the model to use.
  """
  if tuple(seq.channel_names) != tuple(model.channel_names):
    seq = in_space(seq, model.channel_names, None, model, model.name, "rendering")
  ident = seq.id_coeffs
  if ident is not None and len(ident) != model.num_id:
    ident = None
  return {"exp": np.asarray(seq.coeffs, np.float32), "pose": seq.pose, "id": ident, "beta0": seq.beta0}
