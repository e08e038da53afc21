"""Audio encoders: content (what is said) and emotion (how it is said), both over mel windows [B,T,16,80].

Each has its own per-frame `MelStem`, because content and emotion cues live in different parts of the
spectrum (formant movement vs. pitch, energy and voice quality); the cross-reconstruction losses are what
push each encoder towards its factor.
"""

import flax.linen as nn
import jax.numpy as jnp

from a2e_jax.models import layers


def _stem_and_transformer(encoder, mel_btfw, mask_bt, train):
  """Both encoders' body, run inside `encoder`'s compact call: mel [B,T,16,80] -> [B,T,D] (a per-frame
  MelStem, sinusoidal positions, dropout, a Transformer over time; submodules "stem" and "transformer")."""
  x_btd = layers.MelStem(encoder.dim, encoder.stem_channels, encoder.dtype, name="stem")(mel_btfw)
  x_btd = x_btd + layers.sinusoid(x_btd.shape[1], encoder.dim).astype(encoder.dtype)
  x_btd = nn.Dropout(encoder.dropout, deterministic=not train)(x_btd)
  return layers.Transformer(encoder.num_layers, encoder.num_heads, encoder.mlp_dim, encoder.dropout,
                            dtype=encoder.dtype, remat=encoder.remat, name="transformer")(x_btd, mask_bt,
                                                                                          train=train)


class ContentEncoder(nn.Module):
  """mel [B,T,16,80], mask [B,T] -> content latents [B,T,D] (a Transformer encoder over time)."""

  dim: int
  stem_channels: int
  num_layers: int
  num_heads: int
  mlp_dim: int
  dropout: float = 0.0
  dtype: jnp.dtype = jnp.float32
  remat: bool = False

  @nn.compact
  def __call__(self, mel_btfw, mask_bt, train: bool = False):
    return _stem_and_transformer(self, mel_btfw, mask_bt, train)


class EmotionEncoder(nn.Module):
  """mel [B,T,16,80], mask [B,T] -> (emotion_btd, emotion_bd pooled, logits_be, intensity_b).

  The pooled latent is the masked mean over the clip; the class logits and the intensity (a regression
  onto MEAD's 1..3 levels) are read from it, so the latent the decoders see is the one that is classified.
  """

  dim: int
  stem_channels: int
  num_layers: int
  num_heads: int
  mlp_dim: int
  num_emotions: int
  dropout: float = 0.0
  dtype: jnp.dtype = jnp.float32
  remat: bool = False

  @nn.compact
  def __call__(self, mel_btfw, mask_bt, train: bool = False):
    emotion_btd = _stem_and_transformer(self, mel_btfw, mask_bt, train)
    emotion_bd = layers.masked_mean(emotion_btd.astype(jnp.float32), mask_bt)
    logits_be = layers.dense(self.num_emotions, ("embed", "vocab"), jnp.float32,
                             name="classifier")(emotion_bd)
    # Centred on MEAD's middle level, so the untrained head starts at the mean of 1..3.
    intensity_b = layers.dense(1, ("embed", "scalar"), jnp.float32, name="intensity")(emotion_bd)[:, 0] + 2.0
    return emotion_btd, emotion_bd, logits_be, intensity_b
