"""What the trainer trains: a `Task` bundles a model's initialiser and loss with its batches and eval hooks.

`config.task` names the function that builds it ("module:function"); the default is A2ENet's,
`a2e_jax.tasks.a2enet:a2enet_task`. The trainer itself knows nothing of A2ENet, so other models, and the
small stand-ins of the tests, train the same way.
"""

import dataclasses
import importlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import jax

from a2e_jax.core.errors import UserError


@dataclasses.dataclass(frozen=True)
class Task:
  """A model, its objective and its data, as the trainer consumes them.

  Attributes:
    init_variables: rng -> the model's variables {"params": ...} (leaves may carry logical axis names);
      only traced, under `jax.eval_shape` and `jax.jit`.
    loss_fn: (params, batch, rng, train, constants) -> (loss [], metrics {name: []}).
    train_batches: (mesh, seed) -> endless iterator of global batches with `get_state()/set_state()`.
    eval_batches: (mesh, split) -> a fresh finite iterable of batches shaped like training batches.
    eval_splits: the splits `eval_batches` accepts.
    constants: a pytree every loss call receives (e.g. the face model, the log-mel table the windows are
      cut from), placed on every device once and passed to the jitted step rather than baked into it.
    predict: (params, view, constants) -> coefficients [B,T,K] of one batch view, for the curve plots;
      optional.
    channel_names: names of the K coefficient channels, for the plots.
    evaluate: (params, mesh) -> {name: float}, further eval metrics (e.g. lip vertex error); optional.
    render_faces: coefficients [T,K] (numpy) -> frames [T,H,W,3] uint8, for the eval filmstrip; optional.
  """

  init_variables: Callable[[jax.Array], dict]
  loss_fn: Callable
  train_batches: Callable[[Any, int], Iterator]
  eval_batches: Callable[[Any, str], Iterable] | None = None
  eval_splits: tuple[str, ...] = ()
  constants: Any = None
  predict: Callable | None = None
  channel_names: tuple[str, ...] = ()
  evaluate: Callable | None = None
  render_faces: Callable | None = None


def build_task(config) -> Task:
  """Imports and calls `config.task` ("package.module:function", taking the config)."""
  spec = config.task
  module_name, _, function_name = spec.partition(":")
  try:
    builder = getattr(importlib.import_module(module_name), function_name)
  except (ImportError, AttributeError, ValueError) as e:
    raise UserError(f"config task={spec!r} cannot be imported ({e}); "
                    "give 'package.module:function'") from None
  return builder(config)
