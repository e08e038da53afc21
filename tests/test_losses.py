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
from a2e_jax.train import losses

B, T = 2, 12
TERMS = {"audio_self", "audio_cross", "coeff_self", "coeff_cross", "coeff_schedule", "velocity", "eye",
         "content_equal", "emotion_ce", "intensity", "embed_align", "vertex_lip", "vertex_landmark"}


@pytest.fixture(scope="module")
def setup():
  config = a2enet.model_config("tiny")
  module = a2enet.A2ENet(config)
  params = nn.unbox(jax.jit(module.init)(jax.random.key(0), a2enet.example_view(config)))["params"]
  return config, module, params


def _loss_and_grad(module, loss_cfg, face_model=None, train=True):
  def fn(params, batch, rng, face):
    return losses.compute_losses(module, params, batch, rng, loss_cfg, face, train)

  return jax.jit(jax.value_and_grad(fn, has_aux=True))


def _live_heads(params):
  """params with random output heads: the zero-initialised ones block every gradient behind them."""
  decoder = dict(params["expression_decoder"])
  rng = np.random.default_rng(0)
  for head in ("out", "eye_direct"):
    decoder[head] = {**decoder[head], "kernel": 0.1 * rng.standard_normal(decoder[head]["kernel"].shape)}
  return {**params, "expression_decoder": decoder}


def test_every_term_finite_with_finite_gradients(setup):
  config, module, params = setup
  face = random_face_model(config.num_coeffs)
  batch = synthetic_batch(config, B, T)
  params = _live_heads(params)
  loss_and_grad = _loss_and_grad(module, losses.loss_config())
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
  fn = jax.jit(lambda p, b, r: losses.compute_losses(module, p, b, r, cfg))
  _, metrics = fn(params, batch, jax.random.key(1))
  assert "vertex_lip" not in metrics and "coeff_cross" in metrics


def test_padded_frames_do_not_matter(setup):
  config, module, params = setup
  batch = synthetic_batch(config, B, T)
  noisy = jax.tree.map(np.array, batch)
  pad = batch["a"]["mask"][1] == 0
  assert pad.any()
  for view in noisy.values():
    view["mel"][1, pad] = 50.0
    view["coeffs"][1, pad] = -7.0
    view["eye"][1, pad] = 1.0
  fn = jax.jit(lambda b: losses.compute_losses(module, params, b, jax.random.key(1), losses.loss_config(),
                                               random_face_model(config.num_coeffs), train=False)[1])
  clean, dirty = fn(batch), fn(noisy)
  for key in clean:
    np.testing.assert_allclose(float(clean[key]), float(dirty[key]), rtol=1e-4, atol=1e-6, err_msg=key)


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
  config, module, params = setup
  params = _live_heads(params)
  batch = synthetic_batch(config, B, T)
  loss_cfg = losses.loss_config()
  loss_cfg.embed_align = 0.0

  def direction_grad(rate):
    cfg = a2enet.model_config("tiny")
    cfg.emotion_override_rate = rate
    grads = _loss_and_grad(a2enet.A2ENet(cfg), loss_cfg)(params, batch, jax.random.key(1), None)[1]
    return float(jnp.abs(grads["emotion_directions"]).sum())

  assert direction_grad(0.0) == 0.0
  assert direction_grad(1.0) > 0.0


def test_ablation_without_emotion_branch(setup):
  _, _, params = setup
  config = a2enet.model_config("tiny")
  config.use_emotion = False
  module = a2enet.A2ENet(config)
  batch = synthetic_batch(config, B, T)
  _, metrics = jax.jit(lambda p, b: losses.compute_losses(module, p, b, jax.random.key(0),
                                                          losses.loss_config()))(params, batch)
  assert set(metrics) == {"audio_self", "coeff_self", "velocity", "eye", "loss"}


def test_tiny_model_overfits_a_synthetic_batch(setup):
  """300 Adam steps on one batch whose targets are a known function of the inputs."""
  config, module, params = setup
  batch = synthetic_batch(config, B, 16, seed=5)
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
  for i in range(300):
    params, opt_state, metrics = step(params, opt_state, jax.random.key(i))
    history.append(jax.device_get(metrics))
  first, last = history[0], history[-1]
  assert last["loss"] < 0.2 * first["loss"], (first, last)
  assert last["coeff_cross"] < 0.2 * first["coeff_cross"], (first["coeff_cross"], last["coeff_cross"])
  assert last["emotion_acc"] == 1.0


def test_same_losses_with_the_batch_sharded_over_8_devices(setup):
  config, module, params = setup
  batch = synthetic_batch(config, 8, 8, seed=2)
  fn = jax.jit(lambda b: losses.compute_losses(module, params, b, jax.random.key(1), losses.loss_config(),
                                               train=False)[1])
  single = fn(batch)
  mesh = jax.make_mesh((8,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
  rows = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  sharded = fn(jax.device_put(batch, rows))
  for key in single:
    np.testing.assert_allclose(float(sharded[key]), float(single[key]), rtol=2e-5, atol=1e-7, err_msg=key)


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
