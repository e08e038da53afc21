"""The landmark stage as Levenberg–Marquardt with the Schur complement of the shared identity.

Landmark reprojection is a small nonlinear least-squares problem per frame (pose 6 + expression Ke
unknowns against 2L residuals) coupled only through the clip's one identity (Ki unknowns). The normal
equations are block-arrow shaped: per-frame blocks H_t [P,P], couplings C_t [P,Ki] and the identity block
H_ii [Ki,Ki]. Eliminating the frames (the Schur complement S = H_ii − Σ C_tᵀ H_t⁻¹ C_t) leaves one
Ki×Ki system per iteration, so a 200-frame clip costs 200 small solves and one of identity size. The
Geman–McClure loss enters as iteratively reweighted least squares (weights σ⁴/(e² + σ²)²), with σ annealed
from wide to narrow as in the Adam path; priors are Gaussian residuals (the blendshape channels' L1 prior,
which needs a bound-constrained solver, is left to the Adam steps that follow). Blendshape channels are
clipped to [0, 1] after each step.
"""

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec

from a2e_jax.fit import correspondence as corr_lib
from a2e_jax.render import camera as cam_lib


def solve_frames(a_tpp, b_tpk, mesh=None):
  """[T,P,K] solutions x_t of the per-frame systems a_t x_t = b_t ([T,P,P], [T,P,K]).

  On CPU each device loops over its own frames with one unbatched LAPACK call per frame: jaxlib 0.10's CPU
  LAPACK kernels hand a batch out to the intra-op thread pool from a thread of that same pool and block
  until it is done, so when the pool's threads all do that at once (several fake CPU devices, or two
  independent solves of one program run side by side on a 2-core machine) every thread waits on work that
  no thread is left to run — a hang, seen in ParallelBatchMap's BlockingCounter with 8 devices and once
  with 1. The loop costs about 2 ms per 64 frames of the built-in face's systems. On accelerators, one
  batched call. A batch that does not split over the devices (a few key frames) is looped over whole.
  """
  if jax.default_backend() != "cpu":
    return jnp.linalg.solve(a_tpp, b_tpk)

  def each(a, b):
    return jax.lax.map(lambda ab: jnp.linalg.solve(*ab), (a, b))

  if mesh is None or a_tpp.shape[0] % mesh.devices.size:
    return each(a_tpp, b_tpk)
  frames = PartitionSpec(tuple(mesh.axis_names))
  return jax.shard_map(each, mesh=mesh, in_specs=(frames, frames), out_specs=frames)(a_tpp, b_tpk)


def solve_landmarks(
  pts_arrays,
  lmk_weights,
  params,
  anchor,
  scale,
  lmk,
  conf,
  camera,
  config,
  translation,
  iterations: int,
  fixed_identity: bool = False,
  rigid_first: bool = True,
  mesh=None,
):
  """Refines params' "rot", "centre", "depth", "exp" and (unless fixed_identity) "id" by LM steps.

  With config.smooth_exp / smooth_pose > 0 (video), each frame is also pulled towards the mean of its
  neighbours' values of the previous iteration (a Jacobi iteration of the coupled smoothness term, which
  keeps the frames' blocks independent). mesh: the devices the frames are split over, or None.
  """
  num, ke = params["exp"].shape
  ki = params["id"].shape[0]
  exp_prior = config.exp_weight_gn

  mean, id_basis, exp_basis, offsets = pts_arrays

  def rigid_residual(rigid, shape, anchor_t, scale_t, lmk_t, weight_t):
    """[2L] weighted residual of one frame: pose (rot 3, centre 2, depth 1), points [L,3] in the head's frame
    before the pose-dependent offsets."""
    rot, centre, depth = rigid[:3], rigid[3:5], rigid[5]
    points = shape + jnp.einsum("f,lcf->lc", corr_lib.pose_features(rot), offsets)
    trans = translation(camera, (anchor_t + scale_t * centre)[None], depth[None])[0]
    posed = cam_lib.transform(points, rot, trans)
    px = cam_lib.to_pixels(camera, cam_lib.project(camera, posed))
    return ((px - lmk_t) / scale_t).reshape(-1) * jnp.repeat(jnp.sqrt(weight_t), 2) / config.landmark_noise

  def frame_jacobian(rigid, shape, *frame):
    """The frame's residual [2L] and its Jacobians in the pose [2L,6] and in the points [L,2,3]. The points
    are linear in identity and expression, so the Jacobian in those is this one times the bases: 6 + 3
    forward-mode directions instead of one per coefficient."""
    r = rigid_residual(rigid, shape, *frame)
    j_rigid = jax.jacfwd(rigid_residual)(rigid, shape, *frame)

    # A landmark's residual depends on its own point only: moving every point along one axis at once gives
    # each point's column of its [2,3] block.
    def along(axis_3):
      tangent = jnp.broadcast_to(axis_3, shape.shape)
      return jax.jvp(lambda s: rigid_residual(rigid, s, *frame), (shape,), (tangent,))[1]

    j_points = jax.vmap(along)(jnp.eye(3)).reshape(3, -1, 2).transpose(1, 2, 0)
    return r, j_rigid, j_points

  frame_jacobians = jax.vmap(frame_jacobian)

  def linearise(theta, ident, weight):
    """Residuals [T,2L] and Jacobians in the frames' parameters [T,2L,P] and (None with a fixed identity) in
    the identity [T,2L,Ki]."""
    shape = mean + jnp.einsum("k,lck->lc", ident, id_basis)
    shape = shape + jnp.einsum("tk,lck->tlc", theta[:, 6:], exp_basis)
    r, j_rigid, j_points = frame_jacobians(theta[:, :6], shape, anchor, scale, lmk, weight)
    j_exp = jnp.einsum("tlrc,lck->tlrk", j_points, exp_basis).reshape(num, -1, ke)
    j_id = None
    if not fixed_identity:
      j_id = jnp.einsum("tlrc,lck->tlrk", j_points, id_basis).reshape(num, -1, ki)
    return r, jnp.concatenate([j_rigid, j_exp], -1), j_id

  theta = jnp.concatenate([params["rot"], params["centre"], params["depth"][:, None], params["exp"]], -1)
  ident = params["id"]
  weight = lmk_weights[None] * conf
  rigid = max(1, int(round(iterations * config.rigid_fraction))) if rigid_first else 0
  smooth = jnp.concatenate([jnp.full((6,), config.smooth_pose), jnp.full((ke,), config.smooth_exp)])

  def step(carry, i):
    theta, ident = carry
    frac = i / iterations
    sigma = config.sigma_start * (config.sigma_end / config.sigma_start) ** jnp.minimum(frac * 1.5, 1.0)
    r, j_f, j_i = linearise(theta, ident, weight)  # [T,2L], [T,2L,P], [T,2L,Ki]
    # IRLS weights per landmark (both coordinates share one), from the squared error in IOD units.
    e2 = (r.reshape(num, -1, 2) ** 2).sum(-1) * config.landmark_noise**2 / jnp.maximum(weight, 1e-9)
    irls = jnp.repeat(sigma**4 / (e2 + sigma**2) ** 2, 2, axis=1)
    shape_free = (i >= rigid).astype(jnp.float32)
    lock = 1e8 * (1.0 - shape_free)  # the rigid steps move only the pose
    prior_f = jnp.concatenate([jnp.zeros(6), jnp.full((ke,), exp_prior)])
    damp_f = config.gn_damping + jnp.concatenate([jnp.zeros(6), jnp.full((ke,), lock)])
    # Smoothness: the neighbours' mean (edge frames: their one neighbour) as a prior centre.
    padded = jnp.concatenate([theta[:1], theta, theta[-1:]])
    target = 0.5 * (padded[:-2] + padded[2:]) if num > 1 else theta
    prior_f = prior_f + smooth * (num > 1)
    h_ff = jnp.einsum("trp,tr,trq->tpq", j_f, irls, j_f)
    h_ff += jax.vmap(jnp.diag)(
      jnp.broadcast_to(prior_f + damp_f, theta.shape)
    ) + config.gn_damping * jax.vmap(jnp.diag)(jax.vmap(jnp.diag)(h_ff))
    centre = jnp.concatenate([jnp.zeros(6), jnp.full((ke,), exp_prior)]) * theta
    centre += smooth * (theta - target) * (num > 1)
    g_f = jnp.einsum("trp,tr,tr->tp", j_f, irls, r) + centre
    if fixed_identity:  # the frames are independent
      theta = theta - solve_frames(h_ff, g_f[..., None], mesh)[..., 0]
    else:
      c = jnp.einsum("trp,tr,trk->tpk", j_f, irls, j_i)
      h_ii = jnp.einsum("trk,tr,trl->kl", j_i, irls, j_i)
      h_ii += (config.id_weight + config.gn_damping + lock) * jnp.eye(ki)
      g_i = jnp.einsum("trk,tr,tr->k", j_i, irls, r) + config.id_weight * ident
      inv = solve_frames(h_ff, jnp.concatenate([c, g_f[..., None]], -1), mesh)
      inv_c, inv_g = inv[..., :-1], inv[..., -1]  # [T,P,Ki], [T,P]
      schur = h_ii - jnp.einsum("tpk,tpl->kl", c, inv_c)
      d_i = jnp.linalg.solve(schur, g_i - jnp.einsum("tpk,tp->k", c, inv_g))
      d_f = inv_g - jnp.einsum("tpk,k->tp", inv_c, d_i)
      theta, ident = theta - d_f, ident - d_i
    if config.bounded_exp:
      theta = theta.at[:, 6:].set(jnp.clip(theta[:, 6:], 0.0, 1.0))
    return (theta, ident), None

  (theta, ident), _ = jax.lax.scan(step, (theta, ident), jnp.arange(iterations, dtype=jnp.float32))
  return dict(params, rot=theta[:, :3], centre=theta[:, 3:5], depth=theta[:, 5], exp=theta[:, 6:], id=ident)
