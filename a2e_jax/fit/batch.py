"""Tracking many files: each input's outputs written whole, done ones skipped, a failing one reported while
the rest go on.

`a2e track` and `tools/prepare_mead.py --track` both come through here. A job is (input picture or video,
output `.npz`); beside the `.npz` go the Deep3DFaceRecon `.mat` (BFM-layout models) and, on request, the
overlay. The `.npz` is written last, so its presence marks a job as done and a rerun resumes. Which jobs a
process takes is the caller's choice (`rows`): with several processes each runs its own block.
"""

import dataclasses
import os
import sys

import numpy as np

from a2e_jax.core.errors import UserError
from a2e_jax.vision.media import IMAGE_SUFFIXES


@dataclasses.dataclass
class Outcome:
  """What a run of `track_jobs` did: done, skipped (already done) and failed ([(input, message)]) inputs."""

  done: list
  skipped: list
  failed: list


def local_mesh():
  """A Mesh of this process's accelerators on one axis ("frames") when it has several, else None.

  Not on CPU: fake CPU devices (--xla_force_host_platform_device_count) share the machine's cores, which
  serve one device's program as well (the fit runs on them, tests/test_fit_shard.py; speed in BENCHMARKS.md).
  """
  import jax

  devices = jax.local_devices()
  if len(devices) < 2 or devices[0].platform == "cpu":
    return None
  return jax.sharding.Mesh(np.array(devices), ("frames",))


def track_file(tracker, path: str, out_npz: str, overlay: bool = False, progress: bool = False) -> None:
  """Fits one picture or video and writes out_npz (+ .mat for BFM-layout models, + overlay)."""
  from tqdm import tqdm

  from a2e_jax.fit import outputs

  stem = os.path.splitext(out_npz)[0]
  os.makedirs(os.path.dirname(os.path.abspath(out_npz)), exist_ok=True)
  frames = None
  if path.lower().endswith(IMAGE_SUFFIXES):
    from a2e_jax.vision.media import read_image

    frames = read_image(path)[None]
    track = tracker.image(frames[0], name=path)
  else:
    from a2e_jax.vision.media import VideoFrames

    video = VideoFrames(path)
    with tqdm(total=video.count, unit="frame", desc=os.path.basename(path), disable=not progress) as bar:
      track = tracker.video(path, progress=bar.update)
  if outputs.is_bfm_layout(tracker.model):
    outputs.write_deep3d_mat(stem + ".mat", track)
  if overlay:
    _write_overlay(stem, path, tracker.model, track, frames, progress)
  outputs.write_npz(out_npz, tracker.model, track)  # last: its presence marks the job as done


def track_jobs(model, jobs, rows=slice(None), *, mouth: bool = False, tracker=None, redo: bool = False,
               overlay: bool = False, progress: bool = False, stop_on_error: bool = False) -> Outcome:
  """Runs jobs[rows] ([(input, output .npz)]) with a fit.track.Tracker of `model` (Tracker(mouth=mouth)
  splitting a video's frames over this process's devices, made only when a job is left to do) or the
  `tracker` given; a UserError (no face, unreadable file) fails only its job, reported on stderr, unless
  stop_on_error."""
  from tqdm import tqdm

  todo, outcome = [], Outcome([], [], [])
  for src, dst in list(jobs)[rows]:  # one existence check per job (a MEAD tree has tens of thousands)
    if redo or not os.path.exists(dst):
      todo.append((src, dst))
    else:
      outcome.skipped.append(src)
  if todo and tracker is None:
    from a2e_jax.fit.track import Tracker

    tracker = Tracker(model, mesh=local_mesh(), mouth=mouth)
  with tqdm(total=len(todo), unit="file", disable=not progress or len(todo) <= 1) as bar:
    for src, dst in todo:
      try:
        track_file(tracker, src, dst, overlay=overlay, progress=progress)
        outcome.done.append(src)
      except UserError as e:
        if stop_on_error:
          raise
        outcome.failed.append((src, str(e)))
        print(f"a2e track: {src}: {e}", file=sys.stderr)
      bar.update(1)
  return outcome


def _write_overlay(stem, path, model, track, frames, progress) -> None:
  from PIL import Image

  from a2e_jax.fit import outputs

  if frames is not None:
    image = next(outputs.overlay_frames(model, track, frames))[0]
    Image.fromarray(image).save(stem + ".overlay.png")
    return
  from a2e_jax.render.video import write_video
  from a2e_jax.vision.media import VideoFrames

  frames = np.concatenate(list(VideoFrames(path).batches(256)))
  height, width = frames.shape[1] // 2 * 2, frames.shape[2] // 2 * 2
  batches = (b[:, :height, :width] for b in outputs.overlay_frames(model, track, frames))
  write_video(stem + ".overlay.mp4", batches, height, width, fps=track.fps, audio=None, total=len(frames),
              progress=progress)
