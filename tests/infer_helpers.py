"""Random networks for the generation tests: every parameter random, so outputs depend on every input."""

import functools

import flax.linen as nn
import jax
import numpy as np

from a2e_jax.core.channels import ICT_CHANNELS
from a2e_jax.infer.weights import Weights
from a2e_jax.models import a2enet


def _initial_params(config, seed: int):
  variables = jax.jit(a2enet.A2ENet(config).init)(jax.random.key(seed), a2enet.example_view(config))
  return nn.unbox(variables)["params"]


@functools.cache
def random_weights(seed: int = 0, window_frames: int = 16, scale: float = 0.1) -> Weights:
  """The tiny A2ENet with parameters drawn at random (zero-initialised output heads included), except the
  closed-lid value of the blink gate, 1 as a trained network has it."""
  config = a2enet.model_config("tiny")
  rng = np.random.default_rng(seed)
  params = jax.tree.map(lambda x: scale * rng.standard_normal(x.shape, np.float32),
                        _initial_params(config, seed))
  params["expression_decoder"]["blink_closed"] = np.ones(2, np.float32)
  return Weights(config, params, ICT_CHANNELS, "builtin", window_frames, f"random seed {seed}")


@functools.cache
def untrained_weights(seed: int = 0, window_frames: int = 16) -> Weights:
  """The tiny A2ENet as initialised: its zero output heads return β0 (eyes following the blink gate)."""
  config = a2enet.model_config("tiny")
  return Weights(config, _initial_params(config, seed), ICT_CHANNELS, "builtin", window_frames, "untrained")


def speechlike(seconds: float, seed: int = 0, rate: int = 16_000) -> np.ndarray:
  """[N] float32 noise bursts with a syllable-rate envelope: varied enough to move every feature."""
  rng = np.random.default_rng(seed)
  t = np.arange(int(seconds * rate)) / rate
  envelope = np.clip(np.sin(2 * np.pi * 3.7 * t + rng.uniform(0, 6)), 0, None) ** 2
  tone = np.sin(2 * np.pi * (120 + 40 * np.sin(2 * np.pi * 0.5 * t)) * t)
  return (0.3 * envelope * (0.6 * tone + 0.4 * rng.standard_normal(t.size))).astype(np.float32)


def without_compilation_cache():
  """A module-scoped autouse fixture body: generation in tests leaves JAX's persistent cache off (it is a
  process-wide setting that would make every later compilation of the test session write to disk)."""
  import pytest

  with pytest.MonkeyPatch.context() as patch:
    patch.setenv("A2E_JAX_CACHE", "off")
    yield
