"""a2e_jax: A2ENet in JAX/Flax — speech to emotion-aware 3DMM expression coefficients and video."""

__version__ = "0.1.0"
