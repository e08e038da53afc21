"""A small stand-in model and loss with logical axis names: trainer tests that need not compile A2ENet."""

import flax.linen as nn
import jax
import jax.numpy as jnp

FRAMES = 8
COEFFS = 12


class StandIn(nn.Module):
  """mel [B,T,16,80] + beta0 [B,K] -> coefficients [B,T,K]."""

  embed: int = 32
  mlp: int = 64
  coeffs: int = COEFFS

  @nn.compact
  def __call__(self, view, train: bool = False):
    mel = view["mel"].reshape(*view["mel"].shape[:2], -1)
    dense = lambda n, names, name: nn.Dense(  # noqa: E731
      n, name=name, kernel_init=nn.with_logical_partitioning(nn.initializers.lecun_normal(), names),
      bias_init=nn.with_logical_partitioning(nn.initializers.zeros, names[1:]))
    x = nn.gelu(dense(self.embed, ("mel", "embed"), "stem")(mel))
    x = nn.with_logical_constraint(x, ("batch", "time", "embed"))
    h = nn.gelu(dense(self.mlp, ("embed", "mlp"), "up")(x))
    h = nn.Dropout(0.1, deterministic=not train)(h)
    x = x + dense(self.embed, ("mlp", "embed"), "down")(h)
    return view["beta0"][:, None, :] + dense(self.coeffs, ("embed", "coeffs"), "head")(x)


def init_variables(module, batch):
  """`rng -> variables` for `state.create_state`, from a batch (or its ShapeDtypeStructs)."""
  view = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), batch["a"])
  return lambda rng: module.init({"params": rng}, view)


def loss_fn(module):
  """Masked MSE on views "a" and "ab", like the cross-reconstruction terms of the real loss."""

  def fn(params, batch, rng, train, constants):
    del constants
    losses = {}
    for i, view in enumerate(("a", "ab")):
      rngs = {"dropout": jax.random.fold_in(rng, i)}
      pred = module.apply({"params": params}, batch[view], train, rngs=rngs)
      err = jnp.mean((pred - batch[view]["coeffs"]) ** 2, -1)
      mask = batch[view]["mask"]
      losses[f"mse_{view}"] = jnp.sum(err * mask) / jnp.maximum(jnp.sum(mask), 1)
    return losses["mse_a"] + losses["mse_ab"], losses

  return fn


def task(config):
  """The stand-in on random batches as a trainer `Task`. `config.standin.nan_at_step` poisons the batch of
  that update; `config.standin.step_seconds` slows the input, so a test can interrupt a run mid-way."""
  import time

  import numpy as np

  from a2e_jax.tasks.random_batches import RandomBatches
  from a2e_jax.train.task import Task

  module = StandIn()
  batch = config.train.batch_size
  nan_at = config.standin.nan_at_step
  seconds = config.standin.step_seconds

  class Batches(RandomBatches):
    def __next__(self):
      time.sleep(seconds)
      step = self.get_state()["step"]
      out = super().__next__()
      if step + 1 == nan_at:  # the batch of update `nan_at`
        out["a"]["coeffs"] = out["a"]["coeffs"] * np.nan
      return out

  def eval_batches(mesh, split):
    iterator = RandomBatches(batch, FRAMES, COEFFS, mesh, seed=99)
    return (next(iterator) for _ in range(config.eval.batches))

  def init(rng):
    return module.init({"params": rng}, example_view(2))

  return Task(init_variables=init, loss_fn=loss_fn(module),
              train_batches=lambda mesh, seed: Batches(batch, FRAMES, COEFFS, mesh, seed=seed),
              eval_batches=eval_batches, eval_splits=("val",),
              predict=lambda params, view, constants: module.apply({"params": params}, view),
              render_faces=_render_squares)


def _render_squares(exp_tk):
  """A stand-in renderer: each frame an 8x8 square coloured by its first three coefficients."""
  import numpy as np

  colours = (np.clip(np.asarray(exp_tk)[:, :3], 0, 1) * 255).astype(np.uint8)
  return np.broadcast_to(colours[:, None, None, :], (len(colours), 8, 8, 3))


def example_view(batch):
  return jax.tree.map(lambda x: jnp.zeros((batch, *x.shape), x.dtype), _view_spec())


def _view_spec():
  import numpy as np

  from a2e_jax.tasks.random_batches import random_clip_view

  return random_clip_view(np.random.default_rng(0), FRAMES, COEFFS)


def get_config(arg=None):
  """The trainer's config around the stand-in (used as a config file: --config tests/train_standin.py)."""
  from a2e_jax.tasks.defaults import base_config

  config = base_config("tiny")
  config.task = "train_standin:task"
  config.input = "random"
  config.standin = {"nan_at_step": -1, "step_seconds": 0.0}
  config.train.update(steps=8, batch_size=8, log_every=2)
  config.optim.warmup_steps = 2
  config.eval.update(every=4, batches=1)
  config.checkpoint.update(every=2, keep=2)
  config.summary.update(tensorboard=True, plots=False, progress_bar=False)
  return config.lock()
