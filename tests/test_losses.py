"""compute_losses: every term present and finite, masks respected, vertex terms against numpy, and a tiny
model overfitting a synthetic batch."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from model_helpers import random_face_model, synthetic_batch

from a2e_jax.models import a2enet
from a2e_jax.tasks import losses

pytestmark = pytest.mark.slow  # compiles and trains the tiny A2ENet: tens of seconds a test

B, T = 8, 8  # 8 rows: the same compiled step also runs with the batch split over the 8 fake devices
TERMS = {"audio_self", "audio_cross", "coeff_self", "coeff_cross", "coeff_schedule", "velocity", "eye",
         "content_equal", "emotion_ce", "intensity", "embed_align", "vertex_lip", "vertex_landmark"}


def _live_heads(params):
  """params with random output heads: the zero-initialised ones block every gradient behind them."""
  decoder = dict(params["expression_decoder"])
  rng = np.random.default_rng(0)
  for head in ("out", "eye_direct"):
    decoder[head] = {**decoder[head], "kernel": 0.1 * rng.standard_normal(decoder[head]["kernel"].shape)}
  return {**params, "expression_decoder": decoder}


def _loss_and_grad(module, loss_cfg):
  def fn(params, batch, rng, face):
    return losses.compute_losses(module, params, batch, rng, loss_cfg, face)

  return jax.jit(jax.value_and_grad(fn, has_aux=True))


@pytest.fixture(scope="module")
def setup():
  """(config, module, params with live heads, the jitted loss-and-gradient with a face model)."""
  config = a2enet.model_config("tiny")
  module = a2enet.A2ENet(config)
  params = nn.unbox(jax.jit(module.init)(jax.random.key(0), a2enet.example_view(config)))["params"]
  return config, module, _live_heads(params), _loss_and_grad(module, losses.loss_config())


def test_every_term_finite_with_finite_gradients(setup):
  config, module, params, loss_and_grad = setup
  face = random_face_model(config.num_coeffs)
  batch = synthetic_batch(config, B, T)
  (total, metrics), grads = loss_and_grad(params, batch, jax.random.key(1), face)
  assert set(metrics) == TERMS | {"loss", "emotion_acc"}
  assert all(np.isfinite(float(v)) for v in metrics.values()), metrics
  assert all(bool(jnp.isfinite(g).all()) for g in jax.tree.leaves(grads))
  cfg = losses.loss_config()
  np.testing.assert_allclose(float(total), sum(cfg[k] * float(metrics[k]) for k in TERMS), rtol=1e-5)
  # Every parameter that the objective reaches gets a gradient (the blink "closed" values included).
  dead = [jax.tree_util.keystr(p) for p, g in jax.tree_util.tree_leaves_with_path(grads)
          if not bool(jnp.any(g != 0))]
  assert not dead, dead
  # Without a face model the vertex terms are skipped, not zero.
  shapes = jax.eval_shape(lambda: losses.compute_losses(module, params, batch, jax.random.key(1), cfg))[1]
  assert "vertex_lip" not in shapes and "coeff_cross" in shapes


def test_padded_frames_do_not_matter(setup):
  config, _, params, loss_and_grad = setup
  face = random_face_model(config.num_coeffs)
  batch = synthetic_batch(config, B, T)
  noisy = jax.tree.map(np.array, batch)
  pad = batch["a"]["mask"][1] == 0
  assert pad.any()
  for view in noisy.values():
    view["mel"][1, pad] = 50.0
    view["coeffs"][1, pad] = -7.0
    view["eye"][1, pad] = 1.0
  (_, clean), _ = loss_and_grad(params, batch, jax.random.key(1), face)
  (_, dirty), _ = loss_and_grad(params, noisy, jax.random.key(1), face)
  for key in clean:
    np.testing.assert_allclose(float(clean[key]), float(dirty[key]), rtol=1e-4, atol=1e-6, err_msg=key)


def test_same_losses_with_the_batch_sharded_over_8_devices(setup):
  config, _, params, loss_and_grad = setup
  face = random_face_model(config.num_coeffs)
  batch = synthetic_batch(config, B, T, seed=2)
  (_, single), _ = loss_and_grad(params, batch, jax.random.key(1), face)
  mesh = jax.make_mesh((8,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
  rows = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  (_, sharded), _ = loss_and_grad(params, jax.device_put(batch, rows), jax.random.key(1), face)
  for key in single:
    np.testing.assert_allclose(float(sharded[key]), float(single[key]), rtol=2e-5, atol=1e-7, err_msg=key)


def test_vertex_terms_match_numpy(setup):
  config = setup[0]
  face = random_face_model(config.num_coeffs, seed=3)
  rng = np.random.default_rng(0)
  pred = rng.normal(size=(B, T, config.num_coeffs)).astype(np.float32)
  true = rng.normal(size=(B, T, config.num_coeffs)).astype(np.float32)
  mask = np.ones((B, T), np.float32)
  mask[0, 5:] = 0
  lip, landmark = losses._vertex_losses(face, pred, true, mask, 10.0)

  def reference(index):
    basis = np.asarray(face.exp_basis, np.float64)[np.asarray(index)]  # [V,3,K]
    diff = np.einsum("btk,vck->btvc", pred.astype(np.float64) - true, basis) * 10.0
    per_frame = (diff**2).sum(-1).mean(-1)
    return (per_frame * mask).sum() / mask.sum()

  np.testing.assert_allclose(float(lip), reference(face.region("lips")), rtol=1e-4)
  np.testing.assert_allclose(float(landmark), reference(face.landmarks), rtol=1e-4)
  with pytest.raises(Exception, match="num_coeffs"):
    losses._vertex_losses(random_face_model(64), pred, true, mask, 10.0)


def test_emotion_override_trains_the_label_embeddings(setup):
  """With every clip overridden, the embeddings get the decoders' gradient; clips of unknown intensity
  are never overridden (and embed_align, off here, is the only other route)."""
  config, _, params, _ = setup
  batch = synthetic_batch(config, B, T)
  loss_cfg = losses.loss_config()
  loss_cfg.embed_align = 0.0
  always = a2enet.model_config("tiny")
  always.emotion_override_rate = 1.0
  loss_and_grad = _loss_and_grad(a2enet.A2ENet(always), loss_cfg)
  direction_grad = lambda b: float(jnp.abs(  # noqa: E731
    loss_and_grad(params, b, jax.random.key(1), None)[1]["emotion_directions"]).sum())
  assert direction_grad(batch) > 0.0
  unknown = jax.tree.map(np.array, batch)
  for view in unknown.values():
    view["intensity"][:] = 0
  assert direction_grad(unknown) == 0.0


def test_ablation_without_emotion_branch():
  config = a2enet.model_config("tiny")
  config.use_emotion = False
  module = a2enet.A2ENet(config)
  params = jax.eval_shape(module.init, jax.random.key(0), a2enet.example_view(config))["params"]
  metrics = jax.eval_shape(lambda p, b: losses.compute_losses(module, p, b, jax.random.key(0),
                                                              losses.loss_config()), params,
                           synthetic_batch(config, B, T))[1]
  assert set(metrics) == {"audio_self", "coeff_self", "velocity", "eye", "loss"}


def test_tiny_model_overfits_a_synthetic_batch(setup):
  """150 Adam steps on one batch whose targets are a known function of the inputs."""
  config, module, _, _ = setup
  params = nn.unbox(jax.jit(module.init)(jax.random.key(0), a2enet.example_view(config)))["params"]
  batch = synthetic_batch(config, 2, 16, seed=5)
  loss_cfg = losses.loss_config()
  tx = optax.adam(2e-3)

  @jax.jit
  def step(params, opt_state, key):
    (loss, metrics), grads = jax.value_and_grad(
      lambda p: losses.compute_losses(module, p, batch, key, loss_cfg), has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, metrics

  opt_state = tx.init(params)
  history = []
  for i in range(150):
    params, opt_state, metrics = step(params, opt_state, jax.random.key(i))
    history.append(jax.device_get(metrics))
  first, last = history[0], history[-1]
  assert last["loss"] < 0.2 * first["loss"], (first, last)
  assert last["coeff_cross"] < 0.2 * first["coeff_cross"], (first["coeff_cross"], last["coeff_cross"])
  assert last["emotion_acc"] == 1.0


def test_schedule_pairings_switch_at_the_cut():
  x = np.arange(2 * 8 * 5 * 3, dtype=np.float32).reshape(2, 8, 5, 3)
  first = np.arange(5)[None] < np.array([[2], [4]])
  out = np.asarray(losses._scheduled(jnp.asarray(x), jnp.asarray(first)))
  for row, cut in ((0, 2), (1, 4)):
    for k, (before, after) in enumerate(losses.SCHEDULES):
      np.testing.assert_array_equal(out[row, k, :cut], x[row, before, :cut])
      np.testing.assert_array_equal(out[row, k, cut:], x[row, after, cut:])
  per_clip = np.asarray(losses._scheduled(jnp.asarray(x[:, :, 0]), jnp.asarray(first), per_clip=True))
  np.testing.assert_array_equal(per_clip[0, 0, 1], x[0, 0, 0])
  np.testing.assert_array_equal(per_clip[0, 0, 3], x[0, 4, 0])
