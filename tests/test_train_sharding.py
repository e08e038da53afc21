"""Meshes, logical-axis rules and the sharded train state on 8 fake devices."""

import functools

import jax
import ml_collections
import numpy as np
import pytest
import train_standin as standin
from jax.sharding import PartitionSpec as P

from a2e_jax.core.errors import UserError
from a2e_jax.data import batching
from a2e_jax.tasks.random_batches import RandomBatches
from a2e_jax.train import sharding, step
from a2e_jax.train import state as state_lib


def _mesh(data, fsdp, model, devices=None):
  return sharding.make_mesh(ml_collections.ConfigDict(dict(data=data, fsdp=fsdp, model=model)), devices)


@pytest.mark.parametrize("given, devices, expect", [
  ((-1, 1, 1), 8, (8, 1, 1)), ((1, -1, 1), 8, (1, 8, 1)), ((2, 2, -1), 8, (2, 2, 2)),
  ((1, 1, 1), 1, (1, 1, 1)), ((-1, 2, 1), 2, (1, 2, 1)),
])  # fmt: skip
def test_mesh_shape_resolves_the_free_axis(given, devices, expect):
  cfg = ml_collections.ConfigDict(dict(zip(sharding.MESH_AXES, given)))
  assert sharding.mesh_shape(cfg, devices) == expect


@pytest.mark.parametrize("given", [(3, 1, 1), (-1, -1, 1), (-1, 3, 1), (0, 1, 8), (2, 2, 1)])
def test_bad_mesh_is_a_user_error_naming_the_fix(given):
  cfg = ml_collections.ConfigDict(dict(zip(sharding.MESH_AXES, given)))
  with pytest.raises(UserError, match="mesh"):
    sharding.mesh_shape(cfg, 8)


def test_make_mesh_axis_types_are_explicitly_auto():
  mesh = _mesh(2, 2, 2)
  assert mesh.axis_names == sharding.MESH_AXES
  assert mesh.axis_types == (jax.sharding.AxisType.Auto,) * 3
  assert mesh.devices.size == 8


def test_rules_cover_the_model_vocabulary():
  from a2e_jax.models import layers

  ruled = {name for name, _ in sharding.LOGICAL_RULES}
  assert set(layers.LOGICAL_AXES) <= ruled, set(layers.LOGICAL_AXES) - ruled
  assert set(layers.ACTIVATION_AXES) <= ruled


def test_spec_for_maps_names_and_replicates_what_does_not_divide():
  mesh = _mesh(1, 2, 4)
  assert sharding.spec_for((128, 256), ("embed", "mlp"), mesh) == P("fsdp", "model")
  assert sharding.spec_for((128, 4, 32), ("embed", "heads", "kv"), mesh) == P("fsdp", "model", None)
  assert sharding.spec_for((80, 32), ("mel", "stem"), mesh) == P(None, None)
  assert sharding.spec_for((127, 6), ("embed", "mlp"), mesh) == P(None, None)  # 127 % 2, 6 % 4
  assert sharding.spec_for((8,), None, mesh) == P()


def test_a2enet_parameter_shardings_follow_the_rules():
  """Only shapes are traced (jax.eval_shape): cheap even for the real model."""
  from a2e_jax.models import a2enet

  cfg = a2enet.model_config("tiny")
  module = a2enet.A2ENet(cfg)
  tx, _ = state_lib.make_optimizer(state_lib.optim_config(), 10)
  shardings = state_lib.state_shardings(lambda rng: module.init(rng, a2enet.example_view(cfg)), tx,
                                        jax.random.key(0), _mesh(2, 2, 2))
  specs = {"/".join(str(getattr(k, "key", k)) for k in path): s.spec
           for path, s in jax.tree_util.tree_leaves_with_path(shardings.params)}
  block = "content_encoder/transformer/block0"
  assert specs[f"{block}/mlp/wi/kernel"] == P("fsdp", "model")
  assert specs[f"{block}/mlp/wo/kernel"] == P("model", "fsdp")
  assert specs[f"{block}/self_attn/query/kernel"] == P("fsdp", "model", None)
  assert specs[f"{block}/norm_mlp/scale"] == P("fsdp")
  # Adam's moments are sharded like their parameters.
  adam = shardings.opt_state[1][0]
  assert adam.mu["content_encoder"]["transformer"]["block0"]["mlp"]["wi"]["kernel"].spec == P("fsdp", "model")


def _one_step(mesh, batch_seed=3):
  """(loss, params after one update) of the stand-in on `mesh` for a fixed global batch."""
  module = standin.StandIn()
  batches = RandomBatches(8, standin.FRAMES, standin.COEFFS, mesh, seed=batch_seed)
  tx, schedule = state_lib.make_optimizer(state_lib.optim_config(), 10)
  init = lambda rng: module.init(rng, standin.example_view(2))  # noqa: E731
  shardings = state_lib.state_shardings(init, tx, jax.random.key(0), mesh)
  state = state_lib.create_state(init, tx, jax.random.key(0), shardings, mesh)
  train_step = step.make_train_step(standin.loss_fn(module), tx, schedule, shardings, mesh)
  state, metrics = train_step(state, next(batches), jax.random.key(1), None)
  return float(metrics["loss"]), jax.tree.map(np.asarray, state.params), state


@functools.cache
def _step_on(shape):
  """`_one_step` on a mesh of `shape` over the first prod(shape) devices, computed once per test session."""
  return _one_step(_mesh(*shape, jax.devices()[:int(np.prod(shape))]))


@pytest.mark.slow
def test_state_is_initialised_sharded():
  mesh = _mesh(2, 2, 2)
  *_, state = _step_on((2, 2, 2))
  kernel = state.params["up"]["kernel"]  # ("embed", "mlp") = (32, 64)
  assert kernel.sharding.spec == P("fsdp", "model") and kernel.sharding.mesh.shape == mesh.shape
  assert kernel.addressable_shards[0].data.shape == (16, 32)
  mu = state.opt_state[1][0].mu["up"]["kernel"]
  assert mu.sharding.spec == P("fsdp", "model")
  assert state.params["head"]["bias"].sharding.spec == P(None)  # "coeffs": replicated


@pytest.mark.slow
@pytest.mark.parametrize("shape", [(2, 2, 2), (8, 1, 1), (1, 8, 1), (1, 2, 4)])
def test_every_mesh_factorisation_gives_the_same_step(shape):
  reference_loss, reference_params, _ = _step_on((1, 1, 1))
  loss, params, _ = _step_on(shape)
  np.testing.assert_allclose(loss, reference_loss, rtol=1e-5)
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(reference_params)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_gradient_accumulation_matches_one_big_batch():
  mesh = _mesh(2, 2, 2)
  module = standin.StandIn()
  batch = next(RandomBatches(8, standin.FRAMES, standin.COEFFS, mesh, seed=5))
  for view in batch.values():  # full masks: a mean of microbatch means is then the batch mean
    view["mask"] = jax.numpy.ones_like(view["mask"])
  params = standin.init_variables(module, batch)(jax.random.key(0))["params"]
  params = sharding.unbox(params)
  loss_fn = standin.loss_fn(module)
  no_dropout = lambda p, b, r, train, c: loss_fn(p, b, r, False, c)  # noqa: E731
  grads = jax.jit(step._grads, static_argnums=(0, 5))
  one = grads(no_dropout, params, batch, jax.random.key(0), None, 1)
  four = grads(no_dropout, params, batch, jax.random.key(0), None, 4)
  np.testing.assert_allclose(four[0], one[0], rtol=1e-5)
  for a, b in zip(jax.tree.leaves(four[2]), jax.tree.leaves(one[2])):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_one_process_holds_the_whole_batch():
  shard = batching.host_shard(_mesh(2, 2, 2), 16)
  assert (shard.rows, shard.index, shard.count) == (slice(0, 16), 0, 1)
