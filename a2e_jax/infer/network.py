"""The network as generation runs it: A2ENet's parts jitted for groups of chunks of one fixed shape.

Chunks run in groups of G chunks of C frames ([G,C], padded with masked rows and frames), so each function
compiles once per network whatever the clip's length (and JAX's persistent compilation cache keeps it
across processes).
"""

import jax
import numpy as np

from a2e_jax.core import schema
from a2e_jax.infer import controls
from a2e_jax.models.a2enet import A2ENet

GROUP = 32  # chunks per compiled call (32 beat 8, 16 and 64 in tools/bench_generate.py on 2 CPU cores)


class ChunkNetwork:
  """The emotion encoder, the content encoder + expression decoder, and the label embedding of `weights`,
  compiled for groups of `group` chunks of `chunk` frames."""

  def __init__(self, weights, chunk: int, group: int = GROUP):
    self.weights, self.chunk, self.group = weights, chunk, group
    module = A2ENet(weights.config)

    def emotion_fn(params, mel, mask):
      _, pooled, logits, _ = module.apply({"params": params}, mel, mask, method="encode_emotion")
      return pooled, logits

    def decode_fn(params, mel, mask, emotion, beta0, eye):
      variables = {"params": params}
      content = module.apply(variables, mel, mask, method="encode_content")
      return module.apply(variables, content, emotion, beta0, eye, mask, method="decode_expression")

    def labels_fn(params, weights_qe, intensity_q):
      return module.apply({"params": params}, weights_qe, intensity_q, method="emotion_embedding")

    self.emotion_fn = jax.jit(emotion_fn)
    self.decode_fn = jax.jit(decode_fn)
    self.labels_fn = jax.jit(labels_fn)

  def groups(self, chunks):
    """Chunks (index, start, windows) in lists of at most `group`."""
    group = []
    for item in chunks:
      group.append(item)
      if len(group) == self.group:
        yield group
        group = []
    if group:
      yield group

  def batch(self, group):
    """Stacked mel [G,C,16,80] and mask [G,C] of a group, padded to G chunks of C frames (one compiled
    shape whatever the clip's length)."""
    mel = np.zeros((self.group, self.chunk, schema.MEL_WINDOW, schema.MEL_BANDS), np.float32)
    mask = np.zeros((self.group, self.chunk), np.float32)
    for row, (_, _, windows) in enumerate(group):
      mel[row, :windows.shape[0]] = windows
      mask[row, :windows.shape[0]] = 1.0
    return mel, mask

  def emotion_pass(self, chunks):
    """([n,D] pooled emotion latents, [n,E] classifier logits) of every chunk."""
    pooled, logits = [], []
    for group in self.groups(chunks):
      mel, mask = self.batch(group)
      pooled_gd, logits_ge = self.emotion_fn(self.weights.params, mel, mask)
      pooled.append(np.asarray(pooled_gd)[:len(group)])
      logits.append(np.asarray(logits_ge, np.float64)[:len(group)])
    return np.concatenate(pooled), np.concatenate(logits)

  def neutral_latent(self) -> np.ndarray:
    """[D] the neutral label embedding (what `auto` falls back to)."""
    weights_qe = np.zeros((1, len(schema.EMOTIONS)), np.float32)
    weights_qe[0, schema.NEUTRAL] = 1.0
    return np.asarray(self.labels_fn(self.weights.params, weights_qe, np.zeros(1, np.float32)), np.float32)[0]

  def key_latents(self, keys) -> np.ndarray:
    """[Q,D] latents of the emotion keys: label embeddings, fixed latents, zeros for speech keys."""
    if any(k.weights is not None for k in keys):
      weights_qe, intensity_q = controls.label_arrays(keys)
      latents = np.array(self.labels_fn(self.weights.params, weights_qe, intensity_q), np.float32)
    else:  # nothing to embed: the label embedding need not be compiled (a faster cold start)
      latents = np.zeros((len(keys), self.weights.config.dim), np.float32)
    for q, key in enumerate(keys):
      if key.latent is not None:
        latents[q] = key.latent
      elif key.is_speech:
        latents[q] = 0.0
    return latents

  def decode(self, mel, mask, emotion, beta0, eye) -> np.ndarray:
    """[G,C,K] coefficients of a group from mel [G,C,16,80], mask [G,C], emotion [G,C,D], β0 [G,K] and
    eye [G,C,4]."""
    return np.asarray(self.decode_fn(self.weights.params, mel, mask, emotion, beta0, eye))
