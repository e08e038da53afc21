"""The train state (step, params, optimizer state), its optimizer, and its sharded initialisation.

The state is never built on the host: `jax.eval_shape` gives its structure and logical axis names, the
rules in `sharding.py` turn those into shardings, and one `jax.jit(init, out_shardings=...)` creates every
array directly on its devices.
"""

from collections.abc import Callable
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import optax

from a2e_jax.core.errors import UserError
from a2e_jax.train import sharding


@flax.struct.dataclass
class TrainState:
  """step: int32 [] optimizer updates done; params and opt_state: pytrees of (sharded) arrays."""

  step: jax.Array
  params: Any
  opt_state: Any


def optim_config() -> ml_collections.ConfigDict:
  """AdamW with linear warm-up, cosine decay and global-norm clipping."""
  return ml_collections.ConfigDict(dict(
    learning_rate=1e-3,  # peak, reached after warmup_steps
    warmup_steps=100,
    end_learning_rate_factor=0.05,  # the cosine ends at learning_rate * this
    weight_decay=1e-2,  # decoupled; matrices only, not biases or norm scales
    b1=0.9,
    b2=0.98,
    grad_clip_norm=1.0,  # 0 disables clipping
  ))


def make_schedule(cfg, total_steps: int) -> optax.Schedule:
  """Learning rate per update step."""
  if cfg.learning_rate <= 0 or cfg.warmup_steps < 0 or total_steps <= 0:
    raise UserError(f"optim: learning_rate {cfg.learning_rate} and train.steps {total_steps} must be > 0, "
                    f"warmup_steps {cfg.warmup_steps} >= 0")
  warmup = min(cfg.warmup_steps, total_steps)
  return optax.warmup_cosine_decay_schedule(
    init_value=0.0, peak_value=cfg.learning_rate, warmup_steps=warmup,
    decay_steps=max(total_steps, warmup + 1), end_value=cfg.learning_rate * cfg.end_learning_rate_factor)


def _decay_mask(params):
  return jax.tree.map(lambda p: p.ndim > 1, params)


def make_optimizer(cfg, total_steps: int) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """(AdamW chain, its learning-rate schedule) from `optim_config()`-shaped `cfg`."""
  schedule = make_schedule(cfg, total_steps)
  parts = [optax.clip_by_global_norm(cfg.grad_clip_norm)] if cfg.grad_clip_norm > 0 else []
  parts.append(optax.adamw(schedule, b1=cfg.b1, b2=cfg.b2, weight_decay=cfg.weight_decay, mask=_decay_mask))
  return optax.chain(*parts), schedule


def abstract_boxed_state(init_variables: Callable, tx: optax.GradientTransformation, rng: jax.Array):
  """The state's ShapeDtypeStructs, parameters and their optimizer moments still in logical-axis boxes."""

  def init(rng):
    boxed = init_variables(rng)["params"]
    return TrainState(step=jnp.zeros((), jnp.int32), params=boxed, opt_state=tx.init(boxed))

  return jax.eval_shape(init, rng)


def create_state(init_variables: Callable, tx: optax.GradientTransformation, rng: jax.Array,
                 shardings: TrainState, mesh) -> TrainState:
  """A freshly initialised state, each array created directly with its sharding (`state_shardings`).

  `init_variables(rng)` returns the model's variables ({"params": ...}, leaves possibly boxed with
  logical axis names), e.g. `lambda rng: module.init(rng, *example_inputs)`; it is only traced.
  """

  def init(rng):
    params = sharding.unbox(init_variables(rng)["params"])
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params))

  return jax.jit(init, in_shardings=sharding.replicated(mesh), out_shardings=shardings)(rng)


def state_shardings(init_variables: Callable, tx: optax.GradientTransformation, rng: jax.Array, mesh,
                    rules=sharding.LOGICAL_RULES) -> TrainState:
  """NamedShardings of the (unboxed) state; optimizer moments follow their parameters."""
  return sharding.logical_shardings(abstract_boxed_state(init_variables, tx, rng), mesh, rules)


def abstract_state(init_variables: Callable, tx: optax.GradientTransformation, rng: jax.Array,
                   shardings: TrainState) -> TrainState:
  """ShapeDtypeStructs of the unboxed state carrying `shardings`: the target of a checkpoint restore."""
  return sharding.with_shardings(sharding.unbox(abstract_boxed_state(init_variables, tx, rng)), shardings)


def count_params(params) -> int:
  return sum(x.size for x in jax.tree.leaves(params))
