"""Ground truth for the fit: a face model animated with known coefficients and rendered into pictures.

A clip has one random identity and albedo; per frame a speech-like mouth (jawOpen in syllable bursts with
pauses, lip channels drifting), blinks, a head turning through yaw/pitch ±30°, changing SH lighting, all
rendered by our own rasterizer and composited at a random place and size into a 512×512 procedural
"photographic" background (clouds of colour at several scales plus hard-edged shapes), with sensor noise
and JPEG compression. Blendshape models (channels in [0, 1] with ARKit names) get the named mouth and eye
channels; PCA models (BFM's 64) get smooth Gaussian coefficients. `bfm_shaped_model` makes a test model
with BFM's layout (80 identity, 64 expression, 80 albedo modes) on the built-in mesh, since BFM itself
cannot be shipped.
"""

import dataclasses
import io

import numpy as np

from a2e_jax.face.model import MorphableModel
from a2e_jax.fit.rendering import face_masks, landmark_pixels, render_batches
from a2e_jax.render import camera as cam_lib
from a2e_jax.render import shading

FPS = 25.0
# Channels a speaking mouth moves (the lip channels of the checks), left/right tied.
LIP_CHANNELS = ("mouthFunnel", "mouthPucker", "mouthSmile", "mouthLowerDown", "mouthUpperUp", "mouthStretch")
MOUTH_CHANNELS = ("jawOpen",) + LIP_CHANNELS


def mouth_channels(channel_names) -> list[int]:
  """The index in `channel_names` of each of MOUTH_CHANNELS: the channel, or the left one of its left/right
  pair (the clips move the two alike)."""
  return [channel_names.index(c if c in channel_names else c + "_L") for c in MOUTH_CHANNELS]


@dataclasses.dataclass
class Truth:
  """A rendered clip and what made it.

  Attributes:
    frames: [T,H,W,3] uint8 (noise and JPEG included).
    landmarks: [T,68,2] exact pixel positions of the model's 68 landmark vertices.
    mask: [T,H,W] bool, the head's pixels (the whole mesh).
    face_mask: [T,H,W] bool, the pixels of the model's face region (`rendering.face_triangles`), where the
      re-render check measures.
    id, tex: [Ki], [Kt]; exp: [T,Ke]; pose: [T,6]; gamma: [T,27].
    blink: [T] bool, frames with both eyes more than half closed (blendshape models; else all False).
  """

  frames: np.ndarray
  landmarks: np.ndarray
  mask: np.ndarray
  face_mask: np.ndarray
  id: np.ndarray
  tex: np.ndarray
  exp: np.ndarray
  pose: np.ndarray
  gamma: np.ndarray
  blink: np.ndarray


def smooth_noise(rng, num, scale_frames, size=1):
  """[num, size] a smooth random process (Gaussian-filtered white noise), unit standard deviation."""
  from scipy.ndimage import gaussian_filter1d

  x = gaussian_filter1d(rng.normal(size=(num + 8 * int(scale_frames), size)), scale_frames, axis=0)
  x = x[4 * int(scale_frames) :][:num]
  return (x - x.mean(0)) / np.maximum(x.std(0), 1e-6)


def speech_expression(model, num, rng) -> tuple[np.ndarray, np.ndarray]:
  """([T,Ke] blendshape weights, [T] blink truth) with a syllabic mouth, blinks and small brow motion."""
  names = model.channel_names
  exp = np.zeros((num, len(names)), np.float32)

  def put(name, values):
    for suffix in ("", "_L", "_R"):
      if name + suffix in names:
        exp[:, names.index(name + suffix)] = values

  # Syllables at about 4 per second, in phrases separated by pauses.
  t = np.arange(num)
  jaw = np.zeros(num)
  onset = rng.uniform(0, 5)
  while onset < num:
    phrase = rng.integers(6, 20)
    for _ in range(phrase):
      width = rng.uniform(1.8, 3.0)
      jaw += rng.uniform(0.15, 0.65) * np.exp(-0.5 * ((t - onset) / width) ** 2)
      onset += rng.uniform(4.5, 7.5)
    onset += rng.uniform(8, 20)
  put("jawOpen", np.clip(jaw, 0, 0.8))
  for name in LIP_CHANNELS:
    put(name, np.clip(0.25 * smooth_noise(rng, num, 4)[:, 0] + 0.15, 0, 0.6))
  put("browInnerUp", np.clip(0.2 * smooth_noise(rng, num, 10)[:, 0], 0, 0.5))
  blink = np.zeros(num)
  start = rng.uniform(5, 40)
  while start < num:
    blink += np.clip(1.0 - np.abs(t - start) / 3.5, 0, 1)
    start += rng.uniform(30, 90)
  blink = np.clip(blink * 1.3, 0, 1)
  put("eyeBlink", blink)
  has_blink = "eyeBlink_L" in names or "eyeBlink" in names
  return exp, (blink > 0.5) & has_blink


def background(rng, size: int) -> np.ndarray:
  """[size,size,3] float: colour clouds at several scales and a few hard-edged shapes (a room, a shelf)."""
  from scipy.ndimage import zoom

  image = np.zeros((size, size, 3))
  for cells, amp in ((4, 0.35), (16, 0.15), (64, 0.06)):
    noise = rng.uniform(-1, 1, size=(cells, cells, 3))
    image += amp * zoom(noise, (size / cells, size / cells, 1), order=3)[:size, :size]
  image += rng.uniform(0.25, 0.65, size=3)
  yy, xx = np.mgrid[:size, :size]
  for _ in range(rng.integers(2, 6)):
    x0, y0 = rng.integers(0, size, 2)
    w, h = rng.integers(size // 10, size // 2, 2)
    inside = (xx >= x0) & (xx < x0 + w) & (yy >= y0) & (yy < y0 + h)
    image[inside] = 0.5 * image[inside] + 0.5 * rng.uniform(0, 1, 3)
  return np.clip(image, 0, 1).astype(np.float32)


def degrade(image, rng, noise: float = 0.02, quality: int = 75) -> np.ndarray:
  """uint8 image with Gaussian sensor noise and JPEG compression."""
  from PIL import Image

  noisy = np.clip(image + rng.normal(0, noise, image.shape), 0, 1)
  buffer = io.BytesIO()
  Image.fromarray((noisy * 255 + 0.5).astype(np.uint8)).save(buffer, format="JPEG", quality=quality)
  return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def clip(
  model,
  num: int,
  seed: int = 0,
  size: int = 512,
  face_px=(80, 300),
  max_angle: float = 30.0,
  batch: int = 8,
  exp=None,
) -> Truth:
  """A rendered clip of `num` frames (see module doc); `exp` [T,Ke] replaces the random expression (its blink
  truth: both eyeBlink channels over 0.5)."""
  rng = np.random.default_rng(seed)
  ident = rng.normal(size=model.id_basis.shape[-1]).astype(np.float32)
  kt = 0 if model.color_basis is None else model.color_basis.shape[-1]
  tex = rng.normal(size=kt).astype(np.float32)
  if exp is not None:
    exp = np.asarray(exp, np.float32)
    names = list(model.channel_names)
    lids = [names.index(n) for n in ("eyeBlink_L", "eyeBlink_R") if n in names]
    blink = (exp[:, lids] > 0.5).all(1) if lids else np.zeros(num, bool)
  elif model.channel_names and "jawOpen" in model.channel_names:
    exp, blink = speech_expression(model, num, rng)
  else:
    scale = np.geomspace(1.0, 0.1, model.exp_basis.shape[-1])
    exp = (smooth_noise(rng, num, 3, model.exp_basis.shape[-1]) * scale).astype(np.float32)
    blink = np.zeros(num, bool)
  camera = cam_lib.deep3d_camera(size)
  angles = np.deg2rad(
    np.stack(
      [
        max_angle * np.tanh(0.8 * smooth_noise(rng, num, 12)[:, 0]),
        max_angle * np.tanh(0.8 * smooth_noise(rng, num, 12)[:, 0]),
        8.0 * smooth_noise(rng, num, 15)[:, 0],
      ],
      -1,
    )
  )
  width = np.clip(rng.uniform(*face_px) * np.exp(0.1 * smooth_noise(rng, num, 20)[:, 0]), *face_px)
  depth = camera.focal * 1.5 / width
  margin = 0.75 * width
  centre = rng.uniform(margin.max(), size - margin.max(), 2) + 0.05 * size * smooth_noise(rng, num, 20, 2)
  trans = np.stack(
    [
      (centre[:, 0] - camera.cx) * depth / camera.focal,
      (camera.cy - centre[:, 1]) * depth / camera.focal,
      camera.distance - depth,
    ],
    -1,
  )
  pose = np.concatenate([angles, trans], -1).astype(np.float32)
  gamma = np.tile(shading.DEFAULT_GAMMA, (num, 1))
  light = rng.normal(0, 0.12, size=(1, 3, 9)) * np.array([0.5, 1, 1, 1, 0.3, 0.3, 0.3, 0.3, 0.3])
  light = light + 0.04 * smooth_noise(rng, num, 25, 27).reshape(num, 3, 9) * (np.arange(9) > 0)
  gamma = (gamma + light.reshape(-1, 27)).astype(np.float32)
  if kt == 0:  # an albedo tint for models without a colour basis (the fit's lighting absorbs it)
    tint = rng.uniform(0.8, 1.15, 3)
    gamma = (gamma.reshape(num, 3, 9) + np.eye(9)[0] * shading.AMBIENT).reshape(num, 3, 9)
    gamma = (gamma * tint[None, :, None] - np.eye(9)[0] * shading.AMBIENT).reshape(num, 27).astype(np.float32)
  bg = background(rng, size)
  frames, masks = [], []
  for _, images, mask in render_batches(model, exp, pose, ident, gamma, tex, (size, size), batch):
    for image, m in zip(images, mask):
      frames.append(degrade(np.where(m[..., None], image, bg), rng))
      masks.append(m)
  landmarks = landmark_pixels(model, ident, exp, pose, camera).astype(np.float32)
  face = face_masks(model, exp, pose, ident, (size, size), batch)
  return Truth(np.stack(frames), landmarks, np.stack(masks), face, ident, tex, exp, pose, gamma, blink)


def bfm_shaped_model(seed: int = 0) -> MorphableModel:
  """The built-in mesh with random smooth bases in BFM's layout: 80 identity, 64 expression, 80 albedo.

  Modes are smooth random displacement fields (Gaussian bumps; confined to the face for expression), free
  of rigid motion of the face, with PCA-like standard deviations decaying 8x from the first to the last; a
  N(0,1) identity moves the face by 6 mm RMS, a N(0,1) expression by 5 mm, a N(0,1) albedo by 0.15.
  """
  from a2e_jax.face.builtin import builtin_model

  base = builtin_model()
  rng = np.random.default_rng(seed)
  mean = np.asarray(base.mean)
  face = np.zeros(len(mean), np.float32)
  face[np.asarray(base.regions["face"])] = 1.0

  # A PCA model of aligned scans has no rigid motion of the face in its modes (BFM's mesh is the face; rigid
  # motion in a mode would be ambiguous with the pose).
  rigid = np.zeros((len(mean), 3, 6))
  rigid[:, [0, 1, 2], [0, 1, 2]] = 1.0
  for axis in range(3):
    rigid[:, :, 3 + axis] = np.cross(np.eye(3)[axis], mean)

  def fields(count, total, region):
    """[N,3,count] modes whose N(0,1) combination moves the face by `total` (RMS), decaying 8x."""
    centres = mean[rng.integers(0, len(mean), size=(count, 3))]  # three bumps per mode
    widths = rng.uniform(0.15, 0.5, size=(count, 3))
    amp = rng.normal(size=(count, 3, 3))
    d2 = ((mean[:, None, None, :] - centres[None]) ** 2).sum(-1)  # [N,count,3]
    bumps = np.exp(-0.5 * d2 / widths[None] ** 2)
    field = np.einsum("nkb,kbc->nck", bumps, amp) * region[:, None, None]
    on_face = face > 0
    coef = np.linalg.lstsq(rigid[on_face].reshape(-1, 6), field[on_face].reshape(-1, count), rcond=None)[0]
    field -= np.einsum("ncr,rk->nck", rigid, coef)
    field /= np.sqrt((field[on_face] ** 2).sum(1).mean(0))[None, None]
    sigma = np.geomspace(1.0, 1.0 / 8, count)
    return (field * sigma * total / np.sqrt((sigma**2).sum())).astype(np.float32)

  id_basis = fields(80, 0.06, np.ones(len(mean), np.float32))  # 6 mm
  exp_basis = fields(64, 0.05, face)  # 5 mm
  color_mean = np.asarray(base.color_mean)
  color_basis = fields(80, 0.15, np.ones(len(mean), np.float32))  # albedo: 0.15 RMS per colour
  return MorphableModel(
    mean=mean,
    id_basis=id_basis,
    exp_basis=exp_basis,
    triangles=np.asarray(base.triangles),
    landmarks=np.asarray(base.landmarks),
    regions=dict(base.regions),
    color_mean=color_mean,
    color_basis=color_basis,
    channel_names=tuple(f"exp{i}" for i in range(64)),
    name="bfm_shaped",
  )
