"""a2e_jax: A2ENet in JAX/Flax — speech to emotion-aware 3DMM expression coefficients and video."""

__version__ = "0.1.0"
__all__ = ["__version__", "generate"]


def __getattr__(name):
  # `a2e_jax.generate` without importing JAX when the package is imported (`a2e --help` stays fast).
  if name == "generate":
    from a2e_jax.infer.generate import generate

    return generate
  raise AttributeError(f"module 'a2e_jax' has no attribute {name!r}")
