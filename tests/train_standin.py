"""A small stand-in model and loss with logical axis names, for trainer tests that must not depend on A2ENet."""

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

  def fn(params, batch, rng, train):
    losses = {}
    for i, view in enumerate(("a", "ab")):
      pred = module.apply({"params": params}, batch[view], train, rngs={"dropout": jax.random.fold_in(rng, i)})
      err = jnp.mean((pred - batch[view]["coeffs"]) ** 2, -1)
      mask = batch[view]["mask"]
      losses[f"mse_{view}"] = jnp.sum(err * mask) / jnp.maximum(jnp.sum(mask), 1)
    return losses["mse_a"] + losses["mse_ab"], losses

  return fn
