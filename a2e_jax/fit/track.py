"""Pictures in, coefficients out: the landmarker and the fit together, for a photo or a video.

`Tracker` runs the vision pipeline (image mode for photos, video mode for clips), fits the model to the
468 face-mesh points through the model's found correspondence (fit/find_points.py) and to the pixels, and
reads the eye-control track off the landmark measures: blink per eye from the lid opening relative to the
clip's open-eye level, gaze from the iris position. A video is fitted in chunks of fixed size (one
compilation): the first chunk's photometric stage sets the clip's identity and albedo, later chunks keep
them. Frames where no face was found get no landmark weight; their coefficients come from the smoothness
prior (the neighbours), and `found` marks them.
"""

import dataclasses
import itertools

import numpy as np

from a2e_jax.core.errors import UserError
from a2e_jax.fit import solve

# Eye openness (lid gap / eye width, vision/measures.py) of an open eye when a clip has too few frames to
# measure its own; the eye counts as closed at CLOSED_FRACTION of its open level.
# On the built-in face the contour's openness is about 0.4 open and 0.13–0.3 shut (measured on renders), so
# the eye counts as closed at half its open gap.
OPEN_EYE = 0.4
CLOSED_FRACTION = 0.5
# Gaze is not measured while the lids cover the iris (its centre drops as the lid closes): frames with more
# than this mean blink take their gaze from the nearest open-eyed frames.
GAZE_BLINK = 0.3
# Eye widths of iris offset per radian of gaze: an eyeball's radius is about 0.4 eye widths.
GAZE_PER_RADIAN = 0.4
# The landmarker's noise around the found correspondence (FitConfig.landmark_noise, IOD units): on synthetic
# clips of the built-in face its points lie a median 3-4 % IOD from their modelled places
# (fit/find_points.py); 0.03 rather than the default 0.01 weighs the priors accordingly (identity and pose
# errors a little lower, docs/fitting.md).
LANDMARK_NOISE = 0.03
# Gauss–Newton iterations of a video's later chunks (FitConfig.gn_iterations: 20 for a first chunk).
LATER_GN_ITERATIONS = 8
# A video's key frames (the first chunk's photometric stage, 150 Adam steps) let the pixels decide the pose,
# size and depth: the landmarks are a loose prior there (weight 0.01); the landmarks' bias on the clip,
# measured against that solution, is taken off every frame's landmarks (except the lips'), and the identity
# and every frame are refitted to them; later chunks take the same bias off (docs/fitting.md).
PIXELS_DECIDE = {"photo_landmark_weight": 0.01, "photo_steps": 150, "landmark_bias": True}
# `Tracker(mouth=True)`: every frame's expression (and pose) also fitted to the pixels of a crop of its mouth
# (FitConfig.mouth_steps): the lip channels follow the picture where the landmarker's lips do not.
MOUTH_FIT = {"mouth_steps": 60, "mouth_weight": 3000.0, "mouth_groups": ("exp", "rot", "centre", "depth")}


class NoFace(UserError):
  """No face was found in a picture."""


@dataclasses.dataclass
class Track:
  """A fitted picture or clip.

  Attributes:
    fit: solve.FitResult ([T] frames).
    found: [T] bool, frames where the landmarker found a face.
    points: [T,468,2] landmark pixels (our convention: pixel centres at +0.5).
    eye: [T,4] eye control: blink left/right in [0,1], gaze yaw/pitch in radians (data/schema.py).
    lip_gap: [T] the landmarks' inner-lip gap / inter-ocular distance.
    fps: frames per second (0 for a photo).
  """

  fit: solve.FitResult
  found: np.ndarray
  points: np.ndarray
  eye: np.ndarray
  lip_gap: np.ndarray
  fps: float


def eye_track(faces) -> np.ndarray:
  """[T,4] eye control from FaceLandmarks (see module doc)."""
  from a2e_jax.vision import measures

  seen = np.asarray(faces.found, bool)
  openness, gaze = np.zeros((len(seen), 2)), np.zeros((len(seen), 2))
  if seen.any():
    # The iris network's eye contour closes with the lids (the 468-point mesh's lids barely do); measured on
    # the frames with a face only, since elsewhere the contour is undefined.
    points, iris, contour = (np.asarray(a)[seen] for a in (faces.points, faces.iris, faces.eye_contour))
    m = measures.measures(points, iris, contour)
    openness[seen] = m["openness"]  # the subject's right eye first
    if "gaze" in m and np.isfinite(m["gaze"]).all():
      gaze[seen] = m["gaze"]
  level = np.full(2, OPEN_EYE)
  if seen.sum() >= 25:
    level = np.maximum(np.percentile(openness[seen], 80, axis=0), 0.05)
  blink = np.clip((level - openness) / ((1 - CLOSED_FRACTION) * level), 0, 1)
  open_eyes = seen & (blink.mean(1) <= GAZE_BLINK)
  if open_eyes.any():
    t = np.arange(len(seen))
    gaze = np.stack([np.interp(t, t[open_eyes], gaze[open_eyes, i]) for i in range(2)], -1)
  # Our eye control is (left, right) and yaw towards the subject's left, pitch up (y in the image is down).
  yaw, pitch = gaze[:, 0] / GAZE_PER_RADIAN, -gaze[:, 1] / GAZE_PER_RADIAN
  track = np.stack([blink[:, 1], blink[:, 0], yaw, pitch], -1)
  return np.where(seen[:, None], track, 0.0).astype(np.float32)


class Tracker:
  """Fits one face model to photos and videos.

  Args:
    model: a MorphableModel.
    config: solve.FitConfig for photos (video chunks derive theirs from it).
    chunk: frames per fitted chunk of a video (rounded up to a multiple of the mesh's devices).
    mesh: a jax Mesh of this process's devices that share each chunk's frames, or None for one device.
    mouth: videos also fit every frame's mouth to its pixels (MOUTH_FIT; slower, see docs/fitting.md).
  """

  def __init__(
    self,
    model,
    config: solve.FitConfig | None = None,
    chunk: int = 64,
    landmarker=None,
    mesh=None,
    mouth: bool = False,
  ):
    from a2e_jax import vision
    from a2e_jax.fit.find_points import mesh_correspondence

    self.model = model
    # Blendshape models (built-in, ICT: ARKit names) have channels in [0, 1]; PCA models (BFM-layout) do not.
    bounded = "jawOpen" in model.channel_names
    self.config = config or solve.FitConfig(bounded_exp=bounded, landmark_noise=LANDMARK_NOISE)
    self.mesh = mesh
    self.mouth = mouth
    ways = 1 if mesh is None else mesh.devices.size
    self.chunk = -(-chunk // ways) * ways
    self.landmarker = landmarker or vision.Landmarker(eyes=True, batch=16)
    self.corr = mesh_correspondence(model)

  def image(self, image_hw3, name: str = "image") -> Track:
    """Fits one picture [H,W,3] uint8; raises NoFace when there is none."""
    faces = self.landmarker.images(np.asarray(image_hw3)[None])
    if not bool(faces.found[0]):
      raise NoFace(
        f"{name}: no face found (the landmarker needs a face of at least ~80 px, turned less than "
        "~45 degrees)"
      )
    points = np.asarray(faces.points[..., :2], np.float32) + 0.5
    # The behaviour learned in video mode serves photos too: on single synthetic pictures with the head
    # turned up to 30 deg it halves the surface points' pose error (BENCHMARKS.md), and the behaviour learned
    # in image mode was no better.
    fit = solve.fit_clip(self.model, np.asarray(image_hw3)[None], points, self.corr, self.config)
    from a2e_jax.vision import measures

    return Track(
      fit,
      np.ones(1, bool),
      points,
      eye_track(faces),
      np.asarray(measures.measures(faces.points)["lip_gap"], np.float32),
      0.0,
    )

  def video(self, path: str, progress=None, max_frames: int | None = None) -> Track:
    """Fits a video file, its first `max_frames` frames (all when None); raises NoFace if none has a face."""
    from a2e_jax.vision import measures
    from a2e_jax.vision.media import VideoFrames

    video = VideoFrames(path)
    # Only the batches that hold the first max_frames frames are decoded.
    batches = itertools.islice(video.batches(256), None if max_frames is None else -(-max_frames // 256))
    frames = np.concatenate(list(batches))[:max_frames]
    faces = self.landmarker.video(frames)
    found = np.asarray(faces.found, bool)
    if not found.any():
      raise NoFace(f"{path}: no face found in any of its {len(frames)} frames")
    points = _fill_missing(np.asarray(faces.points[..., :2], np.float32) + 0.5, found)
    fits = []
    ident = tex = None
    video_config = video_fit_config(self.config, self.mouth)
    # A later chunk keeps the clip's identity and starts from the previous chunk's last head pose and
    # expression, so fewer landmark iterations bring it to the same place (docs/fitting.md).
    later_config = dataclasses.replace(video_config, fix_identity=True, gn_iterations=LATER_GN_ITERATIONS)
    for start in range(0, len(frames), self.chunk):
      stop = min(start + self.chunk, len(frames))
      index = np.minimum(np.arange(start, start + self.chunk), stop - 1)  # fixed shape: pad with the last
      real = found[index] & (np.arange(start, start + self.chunk) < stop)
      conf = np.repeat(real[:, None], points.shape[1], 1)
      config = video_config if ident is None else later_config
      fit = solve.fit_clip(
        self.model,
        frames[index],
        points[index],
        self.corr,
        config,
        confidence_tl=conf.astype(np.float32),
        id_init=ident,
        tex_init=tex,
        mesh=self.mesh,
        start=None if ident is None else (fits[-1].pose[-1, :3], fits[-1].exp[-1]),
        landmark_bias=None if ident is None else fits[-1].landmark_bias,
      )
      ident, tex = fit.id, fit.tex
      fits.append(_cut(fit, stop - start))
      if progress is not None:
        progress(stop - start)
    fit = solve.FitResult(
      id=ident,
      tex=tex,
      **{
        k: np.concatenate([getattr(f, k) for f in fits]) for k in ("exp", "pose", "gamma", "landmark_error")
      },
      image_size=fits[0].image_size,
    )
    lip_gap = np.asarray(measures.measures(faces.points)["lip_gap"], np.float32)
    return Track(fit, found, points, eye_track(faces), lip_gap, float(video.fps))


# A video keeps the photo's identity prior (FitConfig.id_weight, 1). On a 64-frame synthetic clip of the
# built-in face through the landmarker a stronger prior helps (weights 1, 64, 256, 1024: identity error 3.3,
# 2.7, 2.4, 2.2 mm, the mean face 2.2; pose error 3.9, 3.6, 3.4, 3.2 deg), because there the landmarker's
# error is a bias that repeats frame after frame. On the real talking head it costs the mouth: the fitted
# inner-lip gap follows the landmarks' with r 0.912 at weight 1, 0.812 at 64 and 0.795 at 256 (first 136
# frames), since a face held near the mean cannot take the subject's lips. Real faces are the landmarker's
# domain and the job, so no stronger prior for video.
def video_fit_config(config: solve.FitConfig, mouth: bool = False) -> solve.FitConfig:
  """A video chunk's FitConfig from the photo one: smoothness, and MOUTH_FIT."""
  config = dataclasses.replace(
    config, smooth_exp=config.smooth_exp or 2.0, smooth_pose=config.smooth_pose or 200.0, **PIXELS_DECIDE
  )
  return dataclasses.replace(config, **MOUTH_FIT) if mouth else config


def _cut(fit: solve.FitResult, count: int) -> solve.FitResult:
  return dataclasses.replace(
    fit,
    exp=fit.exp[:count],
    pose=fit.pose[:count],
    gamma=fit.gamma[:count],
    landmark_error=fit.landmark_error[:count],
  )


def _fill_missing(points_tl2, found_t):
  """Points of frames without a face interpolated from the nearest frames with one (for the crops only)."""
  if found_t.all():
    return points_tl2
  t = np.arange(len(found_t))
  flat = points_tl2.reshape(len(t), -1)
  filled = np.stack([np.interp(t, t[found_t], flat[found_t, i]) for i in range(flat.shape[1])], 1)
  return filled.reshape(points_tl2.shape).astype(np.float32)
