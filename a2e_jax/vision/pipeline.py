"""Faces in a batch of images or a video → boxes, 468 landmarks, scores and eyes (MediaPipe's face mesh).

Image mode (`landmarks_from_images`, MediaPipe's static_image_mode): every image is searched by the
detector, the crop rect comes from the detection. Video mode (`track`): the previous frame's landmarks give
the next crop; the detector runs only on frames without a tracked face (the first, and after the face
presence score fell below 0.5). Both are pure functions of (Models, arrays) with fixed shapes: jit them,
vmap them, shard the batch. `Landmarker` wraps them for host use (numpy in, numpy out, video in chunks).
"""

import functools
import typing

import jax
import jax.numpy as jnp
import numpy as np

from a2e_jax.vision import detector, iris, mesh, networks


class Models(typing.NamedTuple):
  """The three networks' variables (a pytree: pass it through jit, replicate it over devices)."""

  detector: dict
  mesh: dict
  iris: dict


# Frames per network call inside a batch. XLA:CPU runs these small convnets several times faster per frame
# a few frames at a time (activations that stay in cache) than on a whole batch of 32 at once; measured with
# tools/bench_landmarks.py (BENCHMARKS.md). Larger batches are a `lax.map` over chunks of this size.
NET_CHUNK = 4


class _CompiledNet(typing.NamedTuple):
  """A network whose apply is jitted on its own: new image sizes recompile only the crops around it."""

  apply: typing.Callable


def _chunked(apply):
  def run(variables, x_bhwc):
    batch = x_bhwc.shape[0]
    if batch <= NET_CHUNK or batch % NET_CHUNK:
      return apply(variables, x_bhwc)
    chunks = x_bhwc.reshape(batch // NET_CHUNK, NET_CHUNK, *x_bhwc.shape[1:])
    out = jax.lax.map(lambda chunk: apply(variables, chunk), chunks)
    return jax.tree_util.tree_map(lambda a: a.reshape(batch, *a.shape[2:]), out)

  return jax.jit(run)


@functools.cache
def _modules():
  return tuple(_CompiledNet(_chunked(networks.load(name)[0].apply))
               for name in ("face_detection_short_range", "face_landmark", "iris_landmark"))


def load_models() -> Models:
  """MediaPipe's weights (a2e_jax/assets/mediapipe)."""
  return Models(*(networks.load(name)[1] for name in ("face_detection_short_range", "face_landmark",
                                                       "iris_landmark")))


class FaceLandmarks(typing.NamedTuple):
  """One face per image or frame; leading axis B (frames). Where `found` is False the rest is undefined.

  found: [B] bool, a face was found and the mesh's presence score is ≥ 0.5.
  presence: [B] the mesh's face-presence probability.
  detected: [B] bool, the detector ran on this frame (always in image mode).
  rect: [B,5] the crop the mesh saw (centre x, y, width, height in pixels, rotation in radians).
  box: [B,4] xmin, ymin, xmax, ymax of the 468 points, pixels.
  points: [B,468,3] x, y in image pixels (pixel centres at integers), z relative depth on x's scale.
  iris: [B,2,5,3] iris centre and rim per eye (subject's right eye first), pixels; NaN if eyes=False.
  eye_contour: [B,2,71,3] eye contour and brow points per eye, pixels; NaN if eyes=False.
  """

  found: jax.Array
  presence: jax.Array
  detected: jax.Array
  rect: jax.Array
  box: jax.Array
  points: jax.Array
  iris: jax.Array
  eye_contour: jax.Array


def _finish(models: Models, images_bhwc, rect, found, presence, detected, points, eyes: bool):
  box = jnp.concatenate([points[..., :2].min(1), points[..., :2].max(1)], -1)
  batch = points.shape[0]
  if eyes:
    result = iris.eyes(_modules()[2], models.iris, images_bhwc, points)
    iris_pts, contour = result.iris, result.contour
  else:
    iris_pts = jnp.full((batch, 2, 5, 3), jnp.nan)
    contour = jnp.full((batch, 2, 71, 3), jnp.nan)
  found = found & (presence >= mesh.MIN_PRESENCE)
  return FaceLandmarks(found, presence, detected, rect, box, points, iris_pts, contour)


def landmarks_from_images(models: Models, images_bhwc, eyes: bool = True) -> FaceLandmarks:
  """Image mode: detect, crop, landmark every image of [B,H,W,3] (uint8 or float 0–255)."""
  found = detector.detect(_modules()[0], models.detector, images_bhwc)
  rect = mesh.rect_from_detection(found.box, found.keypoints)
  points, presence = mesh.landmarks(_modules()[1], models.mesh, images_bhwc, rect)
  return _finish(models, images_bhwc, rect, found.found, presence, jnp.ones_like(found.found), points, eyes)


class TrackState(typing.NamedTuple):
  """What one frame hands the next: the crop rect [5] from its landmarks and whether it holds a face."""

  rect: jax.Array
  tracking: jax.Array


def initial_state() -> TrackState:
  return TrackState(jnp.zeros(5, jnp.float32), jnp.asarray(False))


def track(models: Models, frames_thwc, state: TrackState, eyes: bool = True):
  """Video mode over T frames [T,H,W,3]: (FaceLandmarks [T...], the state after the last frame).

  A `lax.scan` over the frames; the detector runs under `lax.cond` only where nothing is tracked.
  """
  det_module, mesh_module, _ = _modules()

  def step(state: TrackState, frame_hwc):
    frame = frame_hwc[None]

    def from_detector(_):
      found = detector.detect(det_module, models.detector, frame)
      return mesh.rect_from_detection(found.box, found.keypoints)[0], found.found[0]

    rect, found = jax.lax.cond(state.tracking, lambda _: (state.rect, jnp.asarray(True)), from_detector, None)
    points, presence = mesh.landmarks(mesh_module, models.mesh, frame, rect[None])
    ok = found & (presence[0] >= mesh.MIN_PRESENCE)
    out = (rect, found, presence[0], ~state.tracking, points[0])
    return TrackState(mesh.rect_from_landmarks(points[0]), ok), out

  state, (rect, found, presence, detected, points) = jax.lax.scan(step, state, frames_thwc)
  return _finish(models, frames_thwc, rect, found, presence, detected, points, eyes), state


class Landmarker:
  """Host-side driver: numpy frames in, numpy FaceLandmarks out, one compilation per input shape.

  Args:
    eyes: also run the iris network (eye contours, irises).
    batch: images per step in image mode, frames per scan chunk in video mode; the last batch is padded
      (with its last frame) so that every step has the same shape.
  """

  def __init__(self, eyes: bool = True, batch: int = 32, models: Models | None = None):
    self.models = models or load_models()
    self.eyes, self.batch = eyes, batch
    # Image mode runs eagerly around the jitted networks, so a folder of differently sized pictures does not
    # compile the whole pipeline once per size; video mode is one jitted scan per frame size.
    self._images = functools.partial(landmarks_from_images, eyes=eyes)
    self._track = jax.jit(functools.partial(track, eyes=eyes))

  def images(self, images_bhwc) -> FaceLandmarks:
    """Image mode over any number of same-sized images [B,H,W,3]."""
    return concatenate(result for _, result in self.stream(images_bhwc, video=False))

  def video(self, frames, progress=None) -> FaceLandmarks:
    """Video mode over frames: an array [T,H,W,3] or an iterable of frame batches; `progress(n)` per chunk."""
    results = []
    for chunk, result in self.stream(frames, video=True):
      results.append(result)
      if progress is not None:
        progress(len(chunk))
    return concatenate(results)

  def stream(self, frames, video: bool):
    """Yields (frames [b,H,W,3] numpy, FaceLandmarks for them) chunk by chunk; video mode carries the
    tracking state from chunk to chunk."""
    state = initial_state()
    for chunk in _chunks(frames, self.batch):
      count = len(chunk)
      padded = chunk
      if count < self.batch:
        padded = np.concatenate([chunk, np.repeat(chunk[-1:], self.batch - count, 0)])
      if video:
        result, state = self._track(self.models, jnp.asarray(padded), state)
      else:
        result = self._images(self.models, jnp.asarray(padded))
      yield chunk, jax.tree_util.tree_map(lambda a, n=count: np.asarray(a)[:n], result)


def concatenate(results) -> FaceLandmarks:
  results = list(results)
  if not results:
    raise ValueError("no frames")
  return FaceLandmarks(*(np.concatenate(parts) for parts in zip(*results, strict=True)))


def _chunks(frames, size: int):
  """Re-batches an array [T,H,W,3] or an iterable of frames/batches into numpy chunks of `size` frames."""
  if isinstance(frames, np.ndarray | jax.Array):
    for start in range(0, len(frames), size):
      yield np.asarray(frames[start:start + size])
    return
  pending, count = [], 0
  for item in frames:
    item = np.asarray(item)
    item = item[None] if item.ndim == 3 else item
    pending.append(item)
    count += len(item)
    while count >= size:
      joined = np.concatenate(pending)
      yield joined[:size]
      pending, count = [joined[size:]], count - size
  if count:
    yield np.concatenate(pending)
