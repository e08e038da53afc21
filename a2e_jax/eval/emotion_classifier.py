"""A small emotion classifier over expression-coefficient sequences, trained on ground truth, which reads
the emotion of generated sequences (the "emotion accuracy" metric).

It sees windows of W frames of (coefficients − β0), standardised per channel with training statistics,
so the speaker's resting face is not a cue; a clip's prediction averages the log-probabilities of its
windows (hop W/2; a clip shorter than W is one masked window). Saved as a plain `.npz`.
"""

import dataclasses
import functools
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from a2e_jax.core.errors import UserError

FORMAT = "a2e_emotion_classifier"
VERSION = 1
_CHUNK = 256  # windows per compiled call


class CoeffEmotionNet(nn.Module):
  """[N,W,K] windows and mask [N,W] -> [N,E] logits (temporal convolutions, masked mean pooling)."""

  num_emotions: int
  hidden: int = 64
  layers: int = 3

  @nn.compact
  def __call__(self, x_nwk, mask_nw, train: bool = False):
    h = nn.Dense(self.hidden)(x_nwk)
    for _ in range(self.layers):
      y = nn.Conv(self.hidden, (5,), padding="SAME")(nn.LayerNorm()(h))
      h = h + nn.gelu(y) * mask_nw[..., None]
    h = nn.Dropout(0.1, deterministic=not train)(nn.LayerNorm()(h))
    pooled = (h * mask_nw[..., None]).sum(1) / jnp.maximum(mask_nw.sum(1, keepdims=True), 1.0)
    return nn.Dense(self.num_emotions)(pooled)


@dataclasses.dataclass
class EmotionClassifier:
  """A trained classifier: its settings, per-channel statistics and parameters."""

  num_coeffs: int
  num_emotions: int
  window: int
  hidden: int
  mean_k: np.ndarray
  std_k: np.ndarray
  params: dict

  @property
  def net(self) -> CoeffEmotionNet:
    return CoeffEmotionNet(self.num_emotions, self.hidden)

  def windows(self, coeffs_tk, beta0_k):
    """([n,W,K] standardised windows, [n,W] mask) covering one clip with hop W/2."""
    x = (np.asarray(coeffs_tk, np.float32) - beta0_k - self.mean_k) / self.std_k
    t, w = x.shape[0], self.window
    starts = sorted(set(range(0, max(t - w, 0) + 1, max(w // 2, 1))) | {max(t - w, 0)})
    out = np.zeros((len(starts), w, x.shape[1]), np.float32)
    mask = np.zeros((len(starts), w), np.float32)
    for i, s in enumerate(starts):
      piece = x[s:s + w]
      out[i, :len(piece)], mask[i, :len(piece)] = piece, 1.0
    return out, mask

  def predict_log_probs(self, clips) -> np.ndarray:
    """[N,E] mean window log-probabilities of clips given as (coeffs [T,K], beta0 [K]) pairs."""
    pieces = [self.windows(c, b) for c, b in clips]
    if not pieces:
      return np.zeros((0, self.num_emotions), np.float32)
    x = np.concatenate([p[0] for p in pieces])
    mask = np.concatenate([p[1] for p in pieces])
    owner = np.repeat(np.arange(len(pieces)), [len(p[0]) for p in pieces])
    log_probs = np.zeros((len(x), self.num_emotions), np.float32)
    fn = _log_probs_fn(self.num_emotions, self.hidden)
    for s in range(0, len(x), _CHUNK):
      xs, ms = _pad_rows(x[s:s + _CHUNK], _CHUNK), _pad_rows(mask[s:s + _CHUNK], _CHUNK)
      log_probs[s:s + _CHUNK] = np.asarray(fn(self.params, xs, ms))[:len(x[s:s + _CHUNK])]
    sums = np.zeros((len(pieces), self.num_emotions), np.float64)
    np.add.at(sums, owner, log_probs)
    return (sums / np.bincount(owner)[:, None]).astype(np.float32)

  def predict(self, clips) -> np.ndarray:
    """[N] predicted emotion index of each (coeffs [T,K], beta0 [K]) clip."""
    return self.predict_log_probs(clips).argmax(-1)

  def save(self, path: str) -> None:
    arrays = {f"params/{jax.tree_util.keystr(k)}": np.asarray(v)
              for k, v in jax.tree_util.tree_leaves_with_path(self.params)}
    meta = dict(num_coeffs=self.num_coeffs, num_emotions=self.num_emotions, window=self.window,
                hidden=self.hidden)
    with open(path, "wb") as f:
      np.savez(f, format=np.array(FORMAT), version=np.array(VERSION), meta=np.array(json.dumps(meta)),
               mean_k=self.mean_k, std_k=self.std_k, **arrays)


def load_classifier(path: str) -> EmotionClassifier:
  """Reads an `EmotionClassifier.save` file; UserError for anything else."""
  try:
    data = np.load(path, allow_pickle=False)
  except (OSError, ValueError) as e:
    raise UserError(f"emotion classifier {path!r} is not readable ({e}); train one with 'a2e eval'") from None
  arrays = {}
  if isinstance(data, np.lib.npyio.NpzFile):
    with data:
      arrays = {k: data[k] for k in data.files}
  if str(arrays.get("format", "")) != FORMAT:
    raise UserError(f"{path!r} is not an a2e emotion classifier (no format={FORMAT!r})")
  meta = json.loads(str(arrays["meta"]))
  template = EmotionClassifier(**meta, mean_k=arrays["mean_k"], std_k=arrays["std_k"], params={})
  example = jnp.zeros((1, template.window, meta["num_coeffs"])), jnp.ones((1, template.window))
  shapes = jax.eval_shape(template.net.init, jax.random.key(0), *example)["params"]
  leaves = []
  for key, shape in jax.tree_util.tree_leaves_with_path(shapes):
    name = f"params/{jax.tree_util.keystr(key)}"
    if name not in arrays or arrays[name].shape != shape.shape:
      raise UserError(f"emotion classifier {path!r}: parameter {name} is missing or misshapen")
    leaves.append(jnp.asarray(arrays[name]))
  template.params = jax.tree.unflatten(jax.tree.structure(shapes), leaves)
  return template


def _pad_rows(x, rows: int):
  return np.concatenate([x, np.zeros((rows - len(x),) + x.shape[1:], x.dtype)]) if len(x) < rows else x


@functools.lru_cache
def _log_probs_fn(num_emotions: int, hidden: int):
  net = CoeffEmotionNet(num_emotions, hidden)
  return jax.jit(lambda params, x, mask: jax.nn.log_softmax(net.apply({"params": params}, x, mask)))


def train_emotion_classifier(clips, num_coeffs: int, num_emotions: int = 8, window: int = 40,
                             steps: int = 1500, batch_size: int = 64, learning_rate: float = 2e-3,
                             hidden: int = 64, seed: int = 0) -> EmotionClassifier:
  """Trains on ground-truth clips, each a dict with coeffs [T,K], beta0 [K] and emotion (int).

  Random windows of `window` frames (a masked short clip when T < window), Adam with cosine decay.
  """
  clips = [c for c in clips if len(c["coeffs"])]
  if not clips:
    raise UserError("no clips to train the emotion classifier on; is the training split empty?")
  labels = np.array([int(c["emotion"]) for c in clips])
  if np.unique(labels).size < 2:
    raise UserError("the emotion classifier needs clips of at least two emotions")
  centred = [np.asarray(c["coeffs"], np.float32) - np.asarray(c["beta0"], np.float32) for c in clips]
  stacked = np.concatenate(centred)
  mean_k, std_k = stacked.mean(0), stacked.std(0) + 1e-3
  classifier = EmotionClassifier(num_coeffs, num_emotions, window, hidden, mean_k.astype(np.float32),
                                 std_k.astype(np.float32), params={})
  net = classifier.net
  rng = np.random.default_rng(seed)
  # Jitted: eager init would compile every primitive on its own (seconds on a CPU).
  params = jax.jit(net.init)(jax.random.key(seed), jnp.zeros((1, window, num_coeffs)), jnp.ones((1, window)))
  params = params["params"]
  tx = optax.adamw(optax.cosine_decay_schedule(learning_rate, steps), weight_decay=1e-4)
  opt_state = jax.jit(tx.init)(params)

  @jax.jit
  def step(params, opt_state, x, mask, y, i):
    def loss_fn(p):
      logits = net.apply({"params": p}, x, mask, train=True,
                         rngs={"dropout": jax.random.fold_in(jax.random.key(seed), i)})
      return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  for i in range(steps):
    pick = rng.integers(0, len(clips), batch_size)
    x = np.zeros((batch_size, window, num_coeffs), np.float32)
    mask = np.zeros((batch_size, window), np.float32)
    for row, c in enumerate(pick):
      seq = centred[c]
      start = int(rng.integers(0, max(len(seq) - window, 0) + 1))
      piece = (seq[start:start + window] - mean_k) / std_k
      x[row, :len(piece)], mask[row, :len(piece)] = piece, 1.0
    params, opt_state, _ = step(params, opt_state, x, mask, labels[pick], i)
  classifier.params = params
  return classifier
