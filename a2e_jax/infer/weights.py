"""Network weights for generation: the bundled demo weights or a training run's checkpoint.

The demo weights live in the package (`a2e_jax/assets/demo/`, written by tools/train_demo.py):
  params.msgpack    the parameter pytree, `flax.serialization.msgpack_serialize` of numpy arrays
  model_card.json   {"model": the model ConfigDict, "channel_names", "face_model", "window_frames",
                     "data", "metrics", "command", ...}
A checkpoint is a training run's folder (`a2e train --workdir DIR`): its `config.json` gives the model and
`core/run_dir.py`'s `restore_params` the parameters.
"""

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import serialization

from a2e_jax.core import channels
from a2e_jax.core.errors import UserError
from a2e_jax.models import a2enet

DEMO_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets", "demo")
PARAMS_FILE = "params.msgpack"
CARD_FILE = "model_card.json"


@dataclasses.dataclass(frozen=True)
class Weights:
  """A network ready for inference.

  Attributes:
    config: the model's ConfigDict (models/a2enet.py `model_config`).
    params: the parameter pytree (`{"params": params}` is what `apply` takes).
    channel_names: names of the K output channels.
    face_model: the face model the channels belong to ("builtin", or a model .npz path).
    window_frames: frames per training window; generation runs in chunks of about this length.
    source: where the weights came from, for messages.
    card: the model card (bundled weights) or {} (checkpoints).
  """

  config: ml_collections.ConfigDict
  params: dict
  channel_names: tuple
  face_model: str
  window_frames: int
  source: str
  card: dict = dataclasses.field(default_factory=dict)


def load_weights(checkpoint: str | None = None, step: str | int = "best") -> Weights:
  """The bundled demo weights (checkpoint None), a demo-format folder, or a training run's checkpoint."""
  if checkpoint is None:
    if not os.path.isfile(os.path.join(DEMO_DIR, PARAMS_FILE)):
      raise UserError(f"no demo weights in {DEMO_DIR} (this checkout has none yet); train them with "
                      "'python tools/train_demo.py' or pass --checkpoint RUN_DIR")
    return load_bundle(DEMO_DIR)
  if not os.path.isdir(checkpoint):
    raise UserError(f"--checkpoint {checkpoint!r} is not a folder; pass a training run's --workdir")
  if os.path.isfile(os.path.join(checkpoint, PARAMS_FILE)):
    return load_bundle(checkpoint)
  return _load_run(checkpoint, step)


def load_bundle(folder: str) -> Weights:
  """Reads `params.msgpack` + `model_card.json` from `folder`."""
  card_path = os.path.join(folder, CARD_FILE)
  try:
    with open(card_path) as f:
      card = json.load(f)
    with open(os.path.join(folder, PARAMS_FILE), "rb") as f:
      params = serialization.msgpack_restore(f.read())
    config = _model_config(card["model"])
  except (OSError, ValueError, KeyError) as e:
    raise UserError(f"weights in {folder} are unreadable ({type(e).__name__}: {e}); "
                    "re-run tools/train_demo.py or pass another --checkpoint") from None
  params = _as_float32(params)
  _check_finite(params, f"weights in {folder}", "re-run tools/train_demo.py or pass another --checkpoint")
  return Weights(config, params, tuple(card.get("channel_names", ())) or _default_names(config),
                 card.get("face_model", "builtin"), int(card.get("window_frames", 32)), folder, card)


def save_bundle(folder: str, model_cfg, params, card: dict, dtype=np.float32) -> int:
  """Writes the weights as `load_bundle` reads them; returns the size of params.msgpack in bytes.

  `dtype` float16 halves the file; it is widened back to float32 on load.
  """
  os.makedirs(folder, exist_ok=True)
  host = jax.tree.map(lambda x: np.asarray(x, dtype), jax.device_get(params))
  _check_finite(host, f"weights for {folder}", "they come from a diverged run; save an earlier checkpoint's")
  blob = serialization.msgpack_serialize(host)
  with open(os.path.join(folder, PARAMS_FILE), "wb") as f:
    f.write(blob)
  with open(os.path.join(folder, CARD_FILE), "w") as f:
    json.dump({"model": model_cfg.to_dict(), **card}, f, indent=2, default=_jsonable)
    f.write("\n")
  return len(blob)


def _check_finite(params, what: str, fix: str) -> None:
  """A UserError naming the first parameter that holds NaN or inf."""
  for path, leaf in jax.tree_util.tree_leaves_with_path(params):
    if not np.all(np.isfinite(np.asarray(leaf))):
      raise UserError(f"{what}: parameter {jax.tree_util.keystr(path)} holds NaN or inf; {fix}")


def _load_run(workdir: str, step) -> Weights:
  from a2e_jax.core import run_dir  # imports Orbax (about a second); only checkpoints need it

  run_config = run_dir.load_run_config(workdir)
  if run_config is None or "model" not in run_config:
    raise UserError(f"{workdir} has no config.json with a model section; is it a training run's --workdir?")
  config = _model_config(run_config.model.to_dict())
  params = run_dir.restore_params(workdir, step)
  face = run_config.get("face_model", "") or "builtin"
  window = int(run_config.get("data", {}).get("window_frames", 32))
  return Weights(config, _as_float32(params), _default_names(config), face, window, workdir)


def _model_config(values: dict) -> ml_collections.ConfigDict:
  """The model ConfigDict: defaults of its size overridden by the stored values (unknown keys kept); the
  channel layout is the stored one, or the one metadata of its width had before layouts were named."""
  config = a2enet.model_config(values.get("size", "tiny"))
  for key, value in channels.with_layout(values).items():
    config[key] = tuple(value) if isinstance(value, list) else value
  return config


def _default_names(config) -> tuple:
  return channels.layout_channels(config.channel_layout, config.num_coeffs)


def _as_float32(params):
  return jax.tree.map(lambda x: jnp.asarray(x, jnp.float32) if np.issubdtype(np.asarray(x).dtype, np.floating)
                      else jnp.asarray(x), params)


def _jsonable(value):
  if isinstance(value, np.generic | np.ndarray):
    return value.tolist()
  if isinstance(value, ml_collections.ConfigDict):
    return value.to_dict()
  raise TypeError(f"cannot write {type(value).__name__} to the model card")
