"""The jitted train and eval steps: one pure function each, explicit shardings, donated state.

A loss function has the signature `loss_fn(params, batch, rng, train, constants) -> (loss [], metrics)`,
metrics a dict of scalars; `constants` is a pytree (e.g. the face model) passed in replicated.
The per-step key is `fold_in(key, state.step)`, so a step's randomness depends only on the run's seed and
the step number — a resumed run draws exactly what an uninterrupted one would.

Shardings are fixed at the jit boundary (state by the logical-axis rules, batch over data×fsdp) and XLA
propagates them inside. The steps are not traced under a mesh context, so the model's activation
constraints are inactive: with a mesh in context Flax re-runs each parameter's boxed initialiser for its
shape check, and multi-dimensional `DenseGeneral` kernels then fail (google/flax#3676).
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from a2e_jax.data import batching
from a2e_jax.train import sharding
from a2e_jax.train.state import TrainState

LossFn = Callable  # (params, batch, rng, train: bool, constants) -> (loss, metrics)


def _split_microbatches(x: jax.Array, num: int) -> jax.Array:
  """[B,...] -> [num, B/num, ...], microbatch i = rows i, i+num, ...: each stays spread over all devices."""
  rows = x.shape[0] // num
  return jnp.swapaxes(x.reshape(rows, num, *x.shape[1:]), 0, 1)


def _grads(loss_fn: LossFn, params, batch, rng, constants, accum_steps: int):
  """(loss, metrics, grads) averaged over `accum_steps` microbatches of `batch`."""
  grad_fn = jax.value_and_grad(lambda p, b, r: loss_fn(p, b, r, True, constants), has_aux=True)
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
  """`step(state, batch, key, constants) -> (state, metrics)`, jitted; `state` is donated.

  `batch` leaves are global arrays sharded on their leading dimension over data×fsdp; `key` is the run's
  base key. Metrics: the loss function's, plus `loss`, `grad_norm` and `learning_rate`.
  """

  def step(state: TrainState, batch, key, constants):
    rng = jax.random.fold_in(key, state.step)
    loss, metrics, grads = _grads(loss_fn, state.params, batch, rng, constants, grad_accum_steps)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = {**metrics, "loss": loss, "grad_norm": optax.tree.norm(grads),
               "learning_rate": schedule(state.step)}
    return TrainState(step=state.step + 1, params=params, opt_state=opt_state), metrics

  replicated = sharding.replicated(mesh)
  return jax.jit(step, in_shardings=(state_shardings, batching.batch_sharding(mesh), replicated, replicated),
                 out_shardings=(state_shardings, replicated), donate_argnums=0)


def make_eval_step(loss_fn: LossFn, param_shardings, mesh):
  """`eval_step(params, batch, key, constants) -> metrics` (the loss's metrics and `loss`, train=False)."""

  def eval_step(params, batch, key, constants):
    loss, metrics = loss_fn(params, batch, key, False, constants)
    return {**metrics, "loss": loss}

  replicated = sharding.replicated(mesh)
  return jax.jit(eval_step,
                 in_shardings=(param_shardings, batching.batch_sharding(mesh), replicated, replicated),
                 out_shardings=replicated)
