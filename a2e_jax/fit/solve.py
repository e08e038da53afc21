"""Analysis by synthesis: a morphable model fitted to landmarks and pixels of a clip's frames.

One identity (and albedo) per clip; per frame an expression, a head pose and SH lighting. Frames are
the batch axis of every array, so a whole chunk of a video is one jitted program; a photo is a clip of
one frame. The energy (a MAP estimate, divided by the number of frames):
  landmarks   Σ_t Σ_l w_l · σ²·ρ(|p_tl − q_tl|² / σ²) / (2 s²): reprojection through Deep3DFaceRecon's
              camera of the correspondence's surface points p against the detected points q, in units of the
              inter-ocular distance (IOD), with ρ the Geman–McClure function (a hand over the mouth cannot
              pull the fit); σ is annealed from wide to narrow (graduated non-convexity) and s is the
              detector's noise
  photometric w_photo · mean over face pixels of σ_p²·ρ(|I_render − I|²/σ_p²): the face rendered by our
              rasterizer into a fixed-size crop around the landmarks, albedo × SH irradiance
  priors      |id|²/2 + |tex|²/2 (both bases are unit-variance PCA-like); expression L1 for blendshape
              models (channels projected onto [0, 1] after each step) or |exp|²/2 for PCA models
  smoothness  for video: squared first differences of expression, pose and lighting between frames
The optimizer is Adam (optax) with a learning rate per parameter group, in two stages: landmarks only
(rigid first, then shape and expression), then landmarks + pixels. Lighting starts from its closed-form
least-squares solution (colour is linear in the 27 SH coefficients). Optionally (FitConfig.mouth_steps)
every frame's expression and pose then meet the pixels of a crop of its mouth too, rendered from the
mouth's part of the mesh only (docs/fitting.md).

Pose is parametrized as angles, the pixel where the head's origin projects (in IOD units from a start
guess) and the log view depth, which keeps the steps well scaled for a face of any size anywhere in the
image; `FitResult.pose` converts back to Deep3DFaceRecon's angles + translation.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from a2e_jax.fit import correspondence as corr_lib
from a2e_jax.fit import gauss_newton
from a2e_jax.fit.rendering import face_triangles
from a2e_jax.render import camera as cam_lib
from a2e_jax.render import shading
from a2e_jax.render.rasterize import interpolate, rasterize

# The camera of the fit's program: Deep3DFaceRecon's at its own 224 px (fit_clip maps every picture to it).
CANONICAL = cam_lib.deep3d_camera()
# Multi-PIE 68 eye contours (for the inter-ocular distance).
EYE_RIGHT = np.arange(36, 42)
EYE_LEFT = np.arange(42, 48)


@dataclasses.dataclass(frozen=True)
class FitConfig:
  """Static settings of a fit (hashable: part of the compiled program)."""

  landmark_steps: int = 300
  photo_steps: int = 60
  crop: int = 128  # side of the photometric crop in pixels
  crop_margin: float = 1.5  # crop side / the landmarks' larger extent
  landmark_noise: float = 0.01  # s: the detector's noise, IOD units
  sigma_start: float = 0.3  # Geman–McClure scale, IOD units, annealed to sigma_end
  sigma_end: float = 0.05
  photo_sigma: float = 0.15  # in colour units
  photo_weight: float = 30.0
  exp_weight: float = 1.0
  id_weight: float = 1.0  # the identity prior id_weight·|id|²/2
  gamma_weight: float = 1.0
  smooth_exp: float = 0.0  # video: weight of squared first differences (per frame pair)
  smooth_pose: float = 0.0
  smooth_gamma: float = 0.0
  bounded_exp: bool = True  # blendshape channels in [0, 1] (built-in, ICT) vs PCA coefficients (BFM)
  rigid_fraction: float = 0.25  # share of the landmark stage that moves only the pose
  optimizer: str = "gauss_newton"  # for the landmark stage; or "adam" (landmark_steps steps)
  gn_iterations: int = 20
  polish_steps: int = 100  # Adam steps after Gauss–Newton, for the expression's L1 prior
  refine_iterations: int = 6  # landmark steps of every frame after the photometric stage fixed the identity
  photo_frames: int = 8  # frames (evenly spread) that the photometric stage sees; identity is per clip
  photo_landmark_weight: float = 1.0  # the landmark term's weight in the photometric stage
  # Measure the landmarks' per-clip bias at the photometric stage's solution, take it off every frame's
  # landmarks, and refit the identity and every frame to them (docs/fitting.md).
  landmark_bias: bool = False
  mouth_steps: int = 0  # Adam steps of every frame's expression against the pixels of a crop of its mouth
  mouth_crop: int = 64  # side of that crop in pixels
  mouth_margin: float = 1.6  # its side / the larger extent of the landmarks on the lips
  mouth_weight: float = 30.0  # its photometric weight (as photo_weight)
  mouth_groups: tuple = ("exp",)  # what that stage moves
  fix_identity: bool = False  # keep id_init/tex_init (a later chunk of a clip whose identity is known)
  gn_damping: float = 1e-3  # Levenberg–Marquardt: added to the diagonal, absolute and relative
  exp_weight_gn: float = 1.0  # Gaussian expression prior of the Gauss–Newton stage
  lr_rot: float = 0.03
  lr_centre: float = 0.03
  lr_depth: float = 0.03
  lr_id: float = 0.1
  lr_exp: float = 0.05
  lr_tex: float = 0.1
  lr_gamma: float = 0.03


@dataclasses.dataclass
class FitResult:
  """A fitted clip (host numpy).

  Attributes:
    id: [Ki] identity; tex: [Kt] albedo coefficients (Kt = 0 without a colour basis).
    exp: [T,Ke] expression; pose: [T,6] angles (radians, R = Rz·Ry·Rx) + translation (model units);
    gamma: [T,27] SH lighting (Deep3DFaceRecon's layout, ambient 0.8 added by the shader).
    landmark_error: [T] median landmark reprojection error per frame, in IOD units.
    image_size: (H, W) of the frames (the camera is Deep3DFaceRecon's scaled to them).
    landmark_bias: [L,2] the landmarks' per-clip bias (IOD units, canonical picture axes) the fit took off
      them (config.landmark_bias), or None.
  """

  id: np.ndarray
  tex: np.ndarray
  exp: np.ndarray
  pose: np.ndarray
  gamma: np.ndarray
  landmark_error: np.ndarray
  image_size: tuple
  landmark_bias: np.ndarray | None = None


def inter_ocular(points_tl2):
  """[T] distance between the eye centres of Multi-PIE 68 points [T,68,2] (or [T,68,3])."""
  right = points_tl2[..., EYE_RIGHT, :].mean(-2)
  left = points_tl2[..., EYE_LEFT, :].mean(-2)
  return jnp.linalg.norm(left - right, axis=-1)


def translation(camera: cam_lib.Camera, centre_t2, log_depth_t):
  """[T,3] translation that puts the head origin at pixel centre_t2 at view depth exp(log_depth_t)."""
  w = jnp.exp(log_depth_t)
  tx = (centre_t2[:, 0] - camera.cx) * w / camera.focal
  ty = (camera.cy - centre_t2[:, 1]) * w / camera.focal
  return jnp.stack([tx, ty, camera.distance - w], -1)


def fit_clip(
  model,
  frames_thw3,
  landmarks_tl2,
  corr: corr_lib.Correspondence,
  config: FitConfig = FitConfig(),
  confidence_tl=None,
  id_init=None,
  tex_init=None,
  mesh=None,
  start=None,
  landmark_bias=None,
) -> FitResult:
  """Fits `model` to a clip.

  Args:
    model: a MorphableModel.
    frames_thw3: [T,H,W,3] uint8 or float in [0,1] frames (all the same size).
    landmarks_tl2: [T,L,2] detected pixel positions (x right, y down) of the correspondence's points; the
      inter-ocular distance comes from the model's Multi-PIE eye landmarks projected at the start, so any
      point set works.
    corr: the L surface points the landmarks are.
    config: FitConfig.
    confidence_tl: [T,L] in [0,1] (0 = not seen), default all 1.
    id_init, tex_init: [Ki], [Kt] starting identity and albedo (e.g. from a previous chunk of the same clip;
      kept as they are with config.fix_identity).
    mesh: a jax Mesh whose devices share the frames (T a multiple of its size; the first axis is used), or
      None for one device.
    start: (angles [3], expression [Ke]) every frame starts from (e.g. the previous chunk's last frame), or
      None for a frontal head with a neutral face.
    landmark_bias: [L,2] the clip's landmark bias (IOD units) from an earlier chunk's fit
      (FitResult.landmark_bias, config.landmark_bias), taken off this chunk's landmarks; None for none.
  """
  frames = np.asarray(frames_thw3)
  num, height, width = frames.shape[:3]
  lmk = np.asarray(landmarks_tl2, np.float32)
  conf = (
    np.ones(lmk.shape[:2], np.float32) if confidence_tl is None else np.asarray(confidence_tl, np.float32)
  )
  # The jitted program sees only fixed-size crops and points in the canonical picture's pixels, so pictures
  # and videos of every size share one compiled fit: Deep3DFaceRecon's camera scaled to a picture is the
  # canonical one up to a shift and a uniform scale of the pixel coordinates, and so is every pose.
  camera = cam_lib.deep3d_camera(height, width)
  zoom = np.float32(CANONICAL.height / height)

  def to_canonical(px):
    return (px - np.array([camera.cx, camera.cy], np.float32)) * zoom + np.array([CANONICAL.cx, CANONICAL.cy],
                                                                                 np.float32)

  crops = _crop_boxes(lmk, conf, config)
  observed = _crop_frames(frames, jnp.asarray(crops), config.crop)
  crops = np.concatenate([to_canonical(crops[:, :2]), crops[:, 2:] * zoom], -1)
  mouth = _mouth_part(model, corr) if config.mouth_steps else None
  mouth_frames = (None, None)
  if mouth is not None:  # the mouth stage's crops: around the landmarks on the lips
    mouth, lips = mouth
    box_config = dataclasses.replace(config, crop=config.mouth_crop, crop_margin=config.mouth_margin)
    boxes = _crop_boxes(lmk[:, lips], conf[:, lips], box_config)
    seen = _crop_frames(frames, jnp.asarray(boxes), config.mouth_crop)
    mouth_frames = (seen, np.concatenate([to_canonical(boxes[:, :2]), boxes[:, 2:] * zoom], -1))
  lmk = to_canonical(lmk)
  pts = corr_lib.point_model(model, corr)
  eyes = corr_lib.point_model(model, corr_lib.multipie68(model))
  init = _initial_params(model, pts, eyes, CANONICAL, lmk, conf, id_init, tex_init, start)
  face_tri = face_triangles(model)
  jmodel = jax.tree.map(jnp.asarray, model)
  bias = (
    np.zeros(lmk.shape[1:], np.float32) if landmark_bias is None else np.asarray(landmark_bias, np.float32)
  )
  # The lips keep their points: the landmarker's constant offsets at our model's mouth are not its offsets at
  # a real one (constant lip offsets took the real talking head's lip-gap r from 0.94 to 0.21 and 0.46).
  bias_points = (~_on_lips(model, corr)).astype(np.float32)
  frame_args = (init, observed, lmk, conf, crops)
  if mesh is not None:  # frames split over the mesh's devices, the shared identity and model replicated
    split = _shard_frames(mesh, frame_args + (mouth_frames if mouth is not None else ()), num)
    frame_args, mouth_frames = split[: len(frame_args)], split[len(frame_args) :] or mouth_frames
  params = _solve(
    jmodel, pts.arrays(), jnp.asarray(corr.weights), *frame_args, face_tri, mouth, *mouth_frames, bias,
    bias_points, config=config, mesh=mesh
  )
  params = jax.device_get(params)
  bias = params.pop("landmark_bias")
  centre = init["anchor"] + init["scale"][:, None] * params["centre"]
  trans = np.asarray(translation(CANONICAL, centre, params["depth"]))
  pose = np.concatenate([params["rot"], trans], -1).astype(np.float32)
  err = _landmark_error(pts, params["id"], params["exp"], pose, CANONICAL, lmk, init["scale"])
  return FitResult(
    id=params["id"],
    tex=params["tex"],
    exp=params["exp"],
    pose=pose,
    gamma=params["gamma"],
    landmark_error=err,
    image_size=(height, width),
    landmark_bias=bias if config.landmark_bias else None,
  )


SHARED_PARAMS = ("id", "tex")  # one per clip; every other parameter has a value per frame


def _shard_frames(mesh, args, num: int):
  """Device copies of (init, observed crops, lmk, conf, crops): the per-frame arrays split along their frame
  axis over all of the mesh's devices, the clip's identity and albedo replicated."""
  from jax.sharding import NamedSharding, PartitionSpec

  if num % mesh.devices.size:
    raise ValueError(f"{num} frames do not split over the mesh's {mesh.devices.size} devices")
  split = NamedSharding(mesh, PartitionSpec(tuple(mesh.axis_names)))
  whole = NamedSharding(mesh, PartitionSpec())
  init, *rest = args
  init = {k: jax.device_put(v, whole if k in SHARED_PARAMS else split) for k, v in init.items()}
  return (init, *(jax.device_put(x, split) for x in rest))


def _initial_params(model, pts, eyes, camera, lmk, conf, id_init, tex_init, start=None):
  """Frontal pose (or `start`'s), the face's scale and place from the landmarks' spread and centroid."""
  num = lmk.shape[0]
  # A frame with no seen point (no face found, a chunk's padding) starts where its (interpolated or copied)
  # points are: with no weight at all it would start at the picture's corner at a huge depth, and the pose
  # smoothness would drag its real neighbours after it (the shared video's last frame: 50 % IOD error).
  conf = np.where((conf > 0).any(1, keepdims=True), conf, 1.0)
  weights = conf / conf.sum(1, keepdims=True)
  centroid = np.einsum("tl,tlc->tc", weights, lmk)
  spread = np.sqrt(np.einsum("tl,tl->t", weights, ((lmk - centroid[:, None]) ** 2).sum(-1)))
  mean_pts = np.asarray(pts.mean)
  model_centroid = mean_pts.mean(0)
  model_spread = np.sqrt(((mean_pts[:, :2] - model_centroid[:2]) ** 2).sum(-1).mean())
  depth = camera.focal * model_spread / np.maximum(spread, 1e-3)
  # Where the head origin projects when the landmarks' centroid lands on the detected one.
  anchor = centroid - np.stack([model_centroid[0], -model_centroid[1]]) * (camera.focal / depth)[:, None]
  model_iod = float(
    np.linalg.norm(np.asarray(eyes.mean)[EYE_LEFT].mean(0) - np.asarray(eyes.mean)[EYE_RIGHT].mean(0))
  )
  scale = camera.focal * model_iod / depth  # the IOD in pixels at the start
  kt = 0 if model.color_basis is None else model.color_basis.shape[-1]
  rot0, exp0 = np.zeros(3, np.float32), np.zeros(model.exp_basis.shape[-1], np.float32)
  if start is not None:
    rot0, exp0 = (np.asarray(a, np.float32) for a in start)
  return {
    "anchor": anchor.astype(np.float32),
    "scale": scale.astype(np.float32),
    "id": np.zeros(model.id_basis.shape[-1], np.float32)
    if id_init is None
    else np.asarray(id_init, np.float32),
    "tex": np.zeros(kt, np.float32) if tex_init is None else np.asarray(tex_init, np.float32),
    "exp": np.tile(exp0, (num, 1)),
    "rot": np.tile(rot0, (num, 1)),
    "centre": np.zeros((num, 2), np.float32),
    "depth": np.log(depth).astype(np.float32),
    "gamma": np.tile(shading.DEFAULT_GAMMA, (num, 1)).astype(np.float32),
  }


def _crop_boxes(lmk, conf, config: FitConfig):
  """[T,3] (x0, y0, pixels per crop pixel) of a square crop around each frame's seen landmarks."""
  # A frame with no seen point (no face found, a chunk's padding) crops around all its (interpolated) points,
  # so its crop stays finite.
  seen = (conf > 0) | ~(conf > 0).any(1, keepdims=True)
  big = np.where(seen[..., None], lmk, np.nan)
  lo, hi = np.nanmin(big, 1), np.nanmax(big, 1)
  side = config.crop_margin * np.max(hi - lo, axis=1)
  centre = (lo + hi) / 2
  return np.stack([centre[:, 0] - side / 2, centre[:, 1] - side / 2, side / config.crop], -1).astype(
    np.float32
  )


def _mouth_part(model, corr):
  """(sub-model, on_lips) for the mouth stage: the model cut down to the triangles inside the bounding box
  of its "mouth" region (lips, the skin around them, teeth and the mouth's inside behind them), and [L]
  bool, the correspondence's points on the lips; None when the model has no such regions."""
  if "mouth" not in model.regions or "lips" not in model.regions:
    return None
  mean, tri = np.asarray(model.mean), np.asarray(model.triangles)
  region = mean[np.asarray(model.regions["mouth"])]
  inside = ((mean >= region.min(0)) & (mean <= region.max(0))).all(1)
  tri = tri[inside[tri].all(1)]
  keep = np.unique(tri)
  new = np.full(len(mean), -1, np.int32)
  new[keep] = np.arange(len(keep))

  def cut(array):
    return None if array is None else jnp.asarray(np.asarray(array)[keep])

  part = dataclasses.replace(
    model,
    mean=cut(model.mean),
    id_basis=cut(model.id_basis),
    exp_basis=cut(model.exp_basis),
    triangles=jnp.asarray(new[tri]),
    landmarks=jnp.zeros(0, jnp.int32),
    regions={},
    uvs=None,
    uv_triangles=None,
    texture=None,
    color_mean=cut(model.color_mean),
    color_basis=cut(model.color_basis),
  )
  return part, _on_lips(model, corr)


def _on_lips(model, corr):
  """[L] bool: the correspondence's points on the model's "lips" region (none when it has no such region)."""
  if "lips" not in model.regions:
    return np.zeros(len(corr.weights), bool)
  on_lips = np.zeros(model.mean.shape[0], bool)
  on_lips[np.asarray(model.regions["lips"])] = True
  return on_lips[corr.vertices(model.triangles)].any(1)


def _landmark_error(pts, id_k, exp_tk, pose_t6, camera, lmk, iod):
  posed = cam_lib.transform(
    pts.points(jnp.asarray(id_k), jnp.asarray(exp_tk), jnp.asarray(pose_t6[:, :3])),
    pose_t6[:, :3],
    pose_t6[:, 3:],
  )
  px = np.asarray(cam_lib.to_pixels(camera, cam_lib.project(camera, posed)))
  return (np.median(np.linalg.norm(px - lmk, axis=-1), axis=1) / iod).astype(np.float32)


def _project_points(pts_arrays, params, anchor, scale, camera):
  points = corr_lib.points(pts_arrays, params["id"], params["exp"], params["rot"])
  centre = anchor + scale[:, None] * params["centre"]
  posed = cam_lib.transform(points, params["rot"], translation(camera, centre, params["depth"]))
  return cam_lib.to_pixels(camera, cam_lib.project(camera, posed))


def _geman_mcclure(sq, sigma):
  """σ²·ρ(e²/σ²) = σ²·e²/(e² + σ²): quadratic near 0, bounded by σ² for outliers."""
  return sigma**2 * sq / (sq + sigma**2)


def _render_crops(model, params, anchor, scale, crops, face_tri, camera, size):
  """(colour [T,S,S,3], face mask [T,S,S]) of the fitted face in each frame's crop."""
  albedo = model.colors(params["tex"] if params["tex"].shape[0] else None)
  verts = model.vertices(params["id"], params["exp"])
  centre = anchor + scale[:, None] * params["centre"]
  posed = cam_lib.transform(verts, params["rot"], translation(camera, centre, params["depth"]))
  screen = cam_lib.project(camera, posed)
  x0, y0, step = crops[:, 0, None], crops[:, 1, None], crops[:, 2, None]
  w = screen[..., 2]
  crop_screen = jnp.stack([(screen[..., 0] - x0 * w) / step, (screen[..., 1] - y0 * w) / step, w], -1)
  frags = rasterize(crop_screen, model.triangles, size, size, near=camera.near)
  normals = shading.vertex_normals(posed, model.triangles)
  colour = shading.shade(frags, model.triangles, normals, params["gamma"], vertex_albedo_bn3=albedo)
  mask = frags.mask & face_tri[jnp.maximum(frags.tri_id, 0)]
  return colour, mask, frags, normals, albedo


@functools.partial(jax.jit, static_argnames="size")
def _crop_frames(frames_thw3, crops, size):
  """[T,S,S,3] float in [0, 1]: the frames (uint8, or float in [0, 1]) resampled into the crops (bilinear).

  Its own small program (one per frame size), so that the fit's program never sees a frame's size.
  """
  grid = jnp.arange(size, dtype=jnp.float32) + 0.5
  unit = 1 / 255 if frames_thw3.dtype == jnp.uint8 else 1.0

  def one(frame, box):
    x = box[0] + grid[None, :] * box[2]
    y = box[1] + grid[:, None] * box[2]
    x, y = jnp.broadcast_to(x, (size, size)), jnp.broadcast_to(y, (size, size))
    return shading.sample_pixels(frame, x, y) * unit

  return jax.vmap(one)(frames_thw3, crops)


def _solve_lighting(frags, normals, albedo, observed, mask, triangles, mesh=None):
  """[T,27] least-squares SH lighting for the current geometry (colour is linear in it)."""
  basis = shading.sh_basis(normals)  # [T,N,9]
  gamma = []
  for c in range(3):
    design = interpolate(
      albedo[..., c, None] * basis if albedo.ndim == 3 else albedo[None, :, c, None] * basis, frags, triangles
    )  # [T,S,S,9]
    m = mask[..., None].astype(jnp.float32)
    a = (design * m).reshape(design.shape[0], -1, 9)
    y = (observed[..., c] * mask).reshape(design.shape[0], -1)
    ata = jnp.einsum("tpi,tpj->tij", a, a) + 1e-3 * jnp.eye(9)
    atb = jnp.einsum("tpi,tp->ti", a, y)
    gamma.append(gauss_newton.solve_frames(ata, atb[..., None], mesh)[..., 0])
  gamma = jnp.stack(gamma, 1)  # [T,3,9]
  return (gamma - jnp.array([shading.AMBIENT] + [0.0] * 8)).reshape(-1, 27)


def _solve_albedo(frags, normals, gamma, observed, mask, model, weight):
  """[Kt] albedo coefficients in closed form for fixed geometry and lighting (colour is linear in them).

  Minimises weight · Σ_t mean over face pixels of |colour − observed|² + |tex|²/2, the photometric energy's
  quadratic part with the albedo prior.
  """
  irradiance = shading.sh_irradiance(normals, gamma)  # [T,N,3]
  base = interpolate(model.color_mean[None] * irradiance, frags, model.triangles)  # [T,S,S,3]
  count = jnp.maximum(jnp.sum(mask, (1, 2)), 1.0)  # [T]
  m = mask[..., None].astype(jnp.float32)
  lhs = jnp.eye(model.color_basis.shape[-1])
  rhs = jnp.zeros(model.color_basis.shape[-1])
  for c in range(3):
    design = interpolate(model.color_basis[None, :, c, :] * irradiance[..., c, None], frags, model.triangles)
    design = design * m  # [T,S,S,Kt]
    scale = (2 * weight / count)[:, None, None]
    lhs += jnp.einsum("thwi,thwj,t->ij", design, design, 2 * weight / count)
    rhs += jnp.einsum("thwi,thw->i", design * scale[..., None], (observed[..., c] - base[..., c]) * mask)
  return jnp.linalg.solve(lhs, rhs)


@functools.partial(jax.jit, static_argnames=("config", "mesh"))
def _solve(
  model, pts_arrays, lmk_weights, init, observed, lmk, conf, crops, face_tri, mouth, mouth_seen, mouth_boxes,
  bias, bias_points, *, config, mesh
):
  camera = CANONICAL
  anchor, scale = init["anchor"], init["scale"]
  lmk = lmk - bias * scale[:, None, None]
  params = {k: init[k] for k in ("id", "tex", "exp", "rot", "centre", "depth", "gamma")}
  num = lmk.shape[0]
  rates = {
    "id": config.lr_id,
    "tex": config.lr_tex,
    "exp": config.lr_exp,
    "rot": config.lr_rot,
    "centre": config.lr_centre,
    "depth": config.lr_depth,
    "gamma": config.lr_gamma,
  }
  shape_groups = ("id", "exp", "tex")

  total = num

  def priors(p):
    num = p["exp"].shape[0]
    energy = 0.5 * config.id_weight * jnp.sum(p["id"] ** 2) + 0.5 * jnp.sum(p["tex"] ** 2)
    if config.bounded_exp:
      energy += config.exp_weight * jnp.sum(jnp.abs(p["exp"]))
    else:
      energy += config.exp_weight * 0.5 * jnp.sum(p["exp"] ** 2)
    energy += config.gamma_weight * 0.5 * jnp.sum(p["gamma"].reshape(num, 3, 9)[..., 1:] ** 2)
    if num == total > 1:  # smoothness needs consecutive frames (not the photometric stage's key frames)
      diff = lambda a: jnp.sum((a[1:] - a[:-1]) ** 2)  # noqa: E731
      energy += config.smooth_exp * diff(p["exp"]) + config.smooth_gamma * diff(p["gamma"])
      energy += config.smooth_pose * (diff(p["rot"]) + diff(p["centre"]) + diff(p["depth"]))
    return energy

  def landmark_energy(p, sigma, sub):
    px = _project_points(pts_arrays, p, anchor[sub], scale[sub], camera)
    sq = jnp.sum((px - lmk[sub]) ** 2, -1) / scale[sub][:, None] ** 2
    rho = _geman_mcclure(sq, sigma) * conf[sub] * lmk_weights
    return jnp.sum(rho) / (2 * config.landmark_noise**2)

  def photo_energy(p, sub):
    colour, mask, *_ = _render_crops(
      model, p, anchor[sub], scale[sub], crops[sub], face_tri, camera, config.crop
    )
    sq = jnp.sum((colour - observed[sub]) ** 2, -1)
    per_frame = jnp.sum(_geman_mcclure(sq, config.photo_sigma) * mask, (1, 2)) / jnp.maximum(
      jnp.sum(mask, (1, 2)), 1.0
    )
    return config.photo_weight * jnp.sum(per_frame) / config.photo_sigma**2

  def run(params, energy, steps, gates):
    opt = optax.scale_by_adam()
    state = opt.init(params)

    def step(carry, i):
      p, s = carry
      frac = i / steps
      grads = jax.grad(lambda q: (energy(q, frac) + priors(q)) / q["exp"].shape[0])(p)
      updates, s = opt.update(grads, s, p)
      decay = 0.5 * (1 + jnp.cos(jnp.pi * frac)) * 0.95 + 0.05
      p = {k: p[k] - rates[k] * decay * gates(k, frac) * updates[k] for k in p}
      if config.bounded_exp:
        p["exp"] = jnp.clip(p["exp"], 0.0, 1.0)
      return (p, s), None

    (params, _), _ = jax.lax.scan(step, (params, state), jnp.arange(steps, dtype=jnp.float32))
    return params

  def sigma_at(frac):
    return config.sigma_start * (config.sigma_end / config.sigma_start) ** jnp.minimum(frac * 1.5, 1.0)

  # The landmarks do not see the albedo or the lighting: a landmark stage that let them move would only pull
  # them towards their priors, and so wipe out a later chunk's albedo kept from the first (tex_init).
  still = ("gamma", "tex") + (("id",) if config.fix_identity else ())

  def landmark_gates(k, frac):
    if k in still:
      return 0.0
    if k in shape_groups:
      return (frac >= config.rigid_fraction).astype(jnp.float32)
    return 1.0

  def landmarks_gn(p, sub, iterations, **kw):
    return gauss_newton.solve_landmarks(
      pts_arrays,
      lmk_weights,
      p,
      anchor[sub],
      scale[sub],
      lmk[sub],
      conf[sub],
      camera,
      config,
      translation,
      iterations,
      mesh=mesh,
      **kw,
    )

  everything = slice(None)

  def landmarks_and_polish(p, iterations, **kw):
    """Gauss–Newton on every frame's landmarks, then the Adam polish with the expression's L1 prior."""
    p = landmarks_gn(p, everything, iterations, **kw)
    return run(
      p,
      lambda q, frac: landmark_energy(q, config.sigma_end, everything),
      config.polish_steps,
      lambda k, frac: 0.0 if k in still else 1.0,
    )

  fixed = config.fix_identity
  if config.optimizer == "gauss_newton":
    params = landmarks_and_polish(params, config.gn_iterations, fixed_identity=fixed)
  else:
    params = run(
      params,
      lambda p, frac: landmark_energy(p, sigma_at(frac), everything),
      config.landmark_steps,
      landmark_gates,
    )
  if config.photo_steps and not fixed:
    # The photometric stage on a few frames: it sets the clip's identity and albedo.
    keys = np.unique(np.round(np.linspace(0, num - 1, min(num, config.photo_frames))).astype(np.int32))
    per_frame = ("exp", "rot", "centre", "depth", "gamma")
    sub = {k: params[k][keys] if k in per_frame else params[k] for k in params}
    _, mask, frags, normals, albedo = _render_crops(
      model, sub, anchor[keys], scale[keys], crops[keys], face_tri, camera, config.crop
    )
    sub["gamma"] = _solve_lighting(frags, normals, albedo, observed[keys], mask, model.triangles, mesh)
    if model.color_basis is not None:  # albedo and lighting in turn, each in closed form, as the start
      weight = config.photo_weight / config.photo_sigma**2
      for _ in range(2):
        sub["tex"] = _solve_albedo(frags, normals, sub["gamma"], observed[keys], mask, model, weight)
        albedo = model.colors(sub["tex"])
        sub["gamma"] = _solve_lighting(frags, normals, albedo, observed[keys], mask, model.triangles, mesh)
    sub = run(
      sub,
      lambda p, frac: config.photo_landmark_weight * landmark_energy(p, config.sigma_end, keys)
      + photo_energy(p, keys),
      config.photo_steps,
      lambda k, frac: 1.0,
    )
    params = {k: params[k].at[keys].set(sub[k]) if k in per_frame else sub[k] for k in params}
    if num == len(keys):
      return {**params, "landmark_bias": bias}
    if config.landmark_bias:
      # The key frames' pose, size and depth came from the pixels; what the landmarks still miss there is
      # their bias on this clip (the mean over key frames, per point, in IOD units; not the lips').
      px = _project_points(pts_arrays, sub, anchor[keys], scale[keys], camera)
      seen = conf[keys][..., None]
      found = jnp.sum(seen * (lmk[keys] - px) / scale[keys][:, None, None], 0) / jnp.maximum(
        jnp.sum(seen, 0), 1e-6
      )
      found = found * bias_points[:, None]
      lmk = lmk - found * scale[:, None, None]
      bias = bias + found
      # Every frame and the identity refitted to the corrected landmarks, and the expression's L1 polish.
      params = landmarks_and_polish(params, config.refine_iterations, rigid_first=False)
    elif config.refine_iterations:
      params = landmarks_gn(
        params, everything, config.refine_iterations, fixed_identity=True, rigid_first=False
      )
  # Every frame's lighting for the final geometry, in closed form.
  _, mask, frags, normals, albedo = _render_crops(
    model, params, anchor, scale, crops, face_tri, camera, config.crop
  )
  params["gamma"] = _solve_lighting(frags, normals, albedo, observed, mask, model.triangles, mesh)
  if mouth is not None:
    every = jnp.ones(mouth.triangles.shape[0], bool)

    def mouth_energy(p):
      colour, mask, *_ = _render_crops(mouth, p, anchor, scale, mouth_boxes, every, camera, config.mouth_crop)
      sq = jnp.sum((colour - mouth_seen) ** 2, -1)
      per_frame = jnp.sum(_geman_mcclure(sq, config.photo_sigma) * mask, (1, 2)) / jnp.maximum(
        jnp.sum(mask, (1, 2)), 1.0
      )
      return config.mouth_weight * jnp.sum(per_frame) / config.photo_sigma**2

    params = run(
      params,
      lambda p, frac: landmark_energy(p, config.sigma_end, everything) + mouth_energy(p),
      config.mouth_steps,
      lambda k, frac: float(k in config.mouth_groups),
    )
  return {**params, "landmark_bias": bias}

