"""Decoders: audio features from (content, emotion), and expression coefficients from content, emotion,
identity (β0) and eye control.

Emotion arrives either pooled [B,D] (one emotion per clip) or per frame [B,T,D] (a schedule or a blend
that changes over time); both are broadcast to [B,T,D] and enter every frame, so a per-frame emotion acts
at its own frames.
"""

import flax.linen as nn
import jax.numpy as jnp

from a2e_jax.models import layers


def per_frame(emotion, num_frames: int):
  """Emotion [B,D] or [B,T,D] -> [B,T,D]."""
  if emotion.ndim == 2:
    return jnp.broadcast_to(emotion[:, None, :], (emotion.shape[0], num_frames, emotion.shape[-1]))
  if emotion.shape[1] != num_frames:
    raise ValueError(f"per-frame emotion has {emotion.shape[1]} frames, the content has {num_frames}")
  return emotion


class AudioDecoder(nn.Module):
  """(content [B,T,D], emotion [B,D]|[B,T,D], mask [B,T]) -> mel [B,T,A,80], the centre A mel frames of
  each frame's window (a2enet.audio_target)."""

  dim: int
  num_layers: int
  num_heads: int
  mlp_dim: int
  audio_frames: int
  mel_bands: int
  dropout: float = 0.0
  dtype: jnp.dtype = jnp.float32
  remat: bool = False

  @nn.compact
  def __call__(self, content_btd, emotion, mask_bt, train: bool = False):
    b, t, _ = content_btd.shape
    x_btd = layers.dense(self.dim, ("embed", "mlp"), self.dtype, name="content_in")(content_btd)
    x_btd = x_btd + layers.dense(self.dim, ("embed", "mlp"), self.dtype, name="emotion_in")(
      per_frame(emotion, t))
    x_btd = x_btd + layers.sinusoid(t, self.dim).astype(self.dtype)
    x_btd = layers.Transformer(self.num_layers, self.num_heads, self.mlp_dim, self.dropout, dtype=self.dtype,
                               remat=self.remat, name="transformer")(x_btd, mask_bt, train=train)
    out = layers.dense(self.audio_frames * self.mel_bands, ("embed", "mel"), self.dtype, name="out")(x_btd)
    return out.astype(jnp.float32).reshape(b, t, self.audio_frames, self.mel_bands)


class ExpressionDecoder(nn.Module):
  """Transformer decoder -> coefficients [B,T,K] as a residual on β0, with eye control.

  Queries: content latents + emotion + positions. Memory: a β0 token (identity), then one token per frame
  holding that frame's emotion and eye-control signal (+ positions). The output head and a direct linear
  path from the eye signal are zero-initialised, so an untrained decoder returns β0 (eyes open). The
  blink channels (`blink_channels`, one per eye, eye[...,0] left and eye[...,1] right) are gated by the
  control signal: c = (1 - closure)·c_net + closure·c_closed, with c_closed a learned value per channel
  (initially 1, a fully closed lid). A closed control signal closes the lid whatever the network says.
  """

  dim: int
  num_layers: int
  num_heads: int
  mlp_dim: int
  num_coeffs: int
  blink_channels: tuple = ()
  dropout: float = 0.0
  dtype: jnp.dtype = jnp.float32
  remat: bool = False

  @nn.compact
  def __call__(self, content_btd, emotion, beta0_bk, eye_bte, mask_bt, train: bool = False):
    b, t, _ = content_btd.shape
    emotion_btd = per_frame(emotion, t)
    positions = layers.sinusoid(t, self.dim).astype(self.dtype)
    eye_bte = eye_bte.astype(jnp.float32)

    query_btd = layers.dense(self.dim, ("embed", "mlp"), self.dtype, name="content_in")(content_btd)
    query_btd += layers.dense(self.dim, ("embed", "mlp"), self.dtype, name="emotion_query")(emotion_btd)
    query_btd += positions

    beta0_b1d = layers.dense(self.dim, ("coeffs", "embed"), self.dtype, name="beta0_in")(beta0_bk)[:, None]
    frames_btd = layers.dense(self.dim, ("embed", "mlp"), self.dtype, name="emotion_memory")(emotion_btd)
    frames_btd += layers.dense(self.dim, ("eye", "embed"), self.dtype, name="eye_in")(eye_bte)
    frames_btd += positions
    memory_bsd = jnp.concatenate([beta0_b1d, frames_btd], axis=1)
    memory_mask_bs = jnp.concatenate([jnp.ones((b, 1), mask_bt.dtype), mask_bt], axis=1)

    x_btd = layers.Transformer(self.num_layers, self.num_heads, self.mlp_dim, self.dropout, cross=True,
                               dtype=self.dtype, remat=self.remat, name="transformer")(
      query_btd, mask_bt, memory_bsd, memory_mask_bs, train=train)
    residual_btk = layers.dense(self.num_coeffs, ("embed", "coeffs"), self.dtype, name="out",
                                zero=True)(x_btd)
    eye_path_btk = layers.dense(self.num_coeffs, ("eye", "coeffs"), jnp.float32, name="eye_direct",
                                zero=True)(eye_bte)
    coeffs_btk = beta0_bk[:, None, :].astype(jnp.float32) + residual_btk.astype(jnp.float32) + eye_path_btk

    if self.blink_channels:
      index = jnp.asarray(self.blink_channels)
      closed = self.param("blink_closed", layers.partitioned(nn.initializers.ones_init(), ("eye",)),
                          (len(self.blink_channels),), jnp.float32)
      closure_bt2 = jnp.clip(eye_bte[..., : len(self.blink_channels)], 0.0, 1.0)
      gated = (1.0 - closure_bt2) * coeffs_btk[..., index] + closure_bt2 * closed
      coeffs_btk = coeffs_btk.at[..., index].set(gated)
    return coeffs_btk
