"""The jitted train and eval steps: one pure function each, explicit shardings, donated state.

A loss function has the signature `loss_fn(params, batch, rng, train) -> (loss [], metrics {name: []})`.
The per-step key is `fold_in(key, state.step)`, so a step's randomness depends only on the run's seed and
the step number — a resumed run draws exactly what an uninterrupted one would.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from a2e_jax.train import sharding
from a2e_jax.train.state import TrainState

LossFn = Callable  # (params, batch, rng, train: bool) -> (loss, metrics)


def _split_microbatches(x: jax.Array, num: int) -> jax.Array:
  """[B,...] -> [num, B/num, ...], microbatch i = rows i, i+num, ...: each stays spread over all devices."""
  rows = x.shape[0] // num
  return jnp.swapaxes(x.reshape(rows, num, *x.shape[1:]), 0, 1)


def _grads(loss_fn: LossFn, params, batch, rng, accum_steps: int):
  """(loss, metrics, grads) averaged over `accum_steps` microbatches of `batch`."""
  grad_fn = jax.value_and_grad(lambda p, b, r: loss_fn(p, b, r, True), has_aux=True)
  if accum_steps == 1:
    (loss, metrics), grads = grad_fn(params, batch, rng)
    return loss, metrics, grads
  micro = jax.tree.map(lambda x: _split_microbatches(x, accum_steps), batch)
  first = jax.tree.map(lambda x: x[0], micro)
  zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(grad_fn, params, first, rng))

  def body(total, i):
    microbatch = jax.tree.map(lambda x: x[i], micro)
    out = grad_fn(params, microbatch, jax.random.fold_in(rng, i))
    return jax.tree.map(jnp.add, total, out), None

  ((loss, metrics), grads), _ = jax.lax.scan(body, zeros, jnp.arange(accum_steps))
  loss, metrics, grads = jax.tree.map(lambda x: x / accum_steps, (loss, metrics, grads))
  return loss, metrics, grads


def make_train_step(loss_fn: LossFn, tx: optax.GradientTransformation, schedule: optax.Schedule,
                    state_shardings: TrainState, mesh, grad_accum_steps: int = 1):
  """`step(state, batch, key) -> (state, metrics)`, jitted; `state` is donated.

  `batch` leaves are global arrays sharded on their leading dimension over data×fsdp; `key` is the run's
  replicated base key. Metrics: the loss function's, plus `loss`, `grad_norm` and `learning_rate`.
  """

  def step(state: TrainState, batch, key):
    rng = jax.random.fold_in(key, state.step)
    loss, metrics, grads = _grads(loss_fn, state.params, batch, rng, grad_accum_steps)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = {**metrics, "loss": loss, "grad_norm": optax.global_norm(grads),
               "learning_rate": schedule(state.step)}
    return TrainState(step=state.step + 1, params=params, opt_state=opt_state), metrics

  replicated = sharding.replicated(mesh)
  jitted = jax.jit(step, in_shardings=(state_shardings, sharding.batch_sharding(mesh), replicated),
                   out_shardings=(state_shardings, replicated), donate_argnums=0)
  return _in_mesh_context(jitted, mesh)


def make_eval_step(loss_fn: LossFn, param_shardings, mesh):
  """`eval_step(params, batch, key) -> metrics` (the loss function's metrics and `loss`, train=False)."""

  def eval_step(params, batch, key):
    loss, metrics = loss_fn(params, batch, key, False)
    return {**metrics, "loss": loss}

  replicated = sharding.replicated(mesh)
  jitted = jax.jit(eval_step, in_shardings=(param_shardings, sharding.batch_sharding(mesh), replicated),
                   out_shardings=replicated)
  return _in_mesh_context(jitted, mesh)


def _in_mesh_context(jitted, mesh):
  """Calls `jitted` under the mesh and logical rules, which its first call traces with."""

  def call(*args):
    with sharding.mesh_context(mesh):
      return jitted(*args)

  return call
