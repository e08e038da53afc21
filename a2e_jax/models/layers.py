"""Transformer building blocks whose every parameter carries logical axis names.

The names in `LOGICAL_AXES` are the whole vocabulary; `train/sharding.py` maps them onto the mesh axes
(data, fsdp, model). Modules compute in `dtype` (float32 or bfloat16) and keep float32 parameters;
softmax and layer-norm statistics stay in float32.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

LOGICAL_AXES = (
  "embed",  # model width (d_model); the natural fsdp axis
  "mlp",  # feed-forward hidden width; the natural tensor-parallel axis
  "heads",  # attention heads; tensor-parallel
  "kv",  # per-head width
  "mel",  # 80 mel bands (stem input, audio-decoder output)
  "stem",  # channels of the per-frame mel stem
  "stem_in",  # input channels of the stem's convolutions
  "conv",  # convolution taps
  "coeffs",  # K expression coefficients
  "eye",  # eye-control channels (core/schema.py EYE_CHANNELS)
  "vocab",  # emotion classes
  "scalar",  # a size-1 output (the intensity head)
)
# Activations are constrained to ("batch", "time", "embed") between blocks; under the trainer's rules the
# batch is split over the data axes. Without a rules context the constraints do nothing.
ACTIVATION_AXES = ("batch", "time", "embed")

Dtype = jnp.dtype


def dtype_of(name: str) -> Dtype:
  """jnp dtype for a config string ("float32" | "bfloat16")."""
  if name not in ("float32", "bfloat16"):
    raise ValueError(f"model dtype must be 'float32' or 'bfloat16', got {name!r}")
  return jnp.dtype(name)


def _check(names: Sequence[str | None]) -> tuple:
  unknown = [n for n in names if n not in LOGICAL_AXES]
  if unknown:
    raise ValueError(f"logical axis names {unknown} are not in LOGICAL_AXES")
  return tuple(names)


def partitioned(init, names: Sequence[str]):
  """`init` wrapped so that the parameter is boxed with logical axis `names`."""
  return nn.with_logical_partitioning(init, _check(names))


def dense(features: int, names: tuple[str, str], dtype: Dtype, name: str | None = None, zero: bool = False,
          use_bias: bool = True) -> nn.Dense:
  """A Dense layer with kernel axes `names` (in, out) and bias axis names[1]; `zero` zero-initialises it."""
  kernel_init = nn.initializers.zeros_init() if zero else nn.initializers.lecun_normal()
  return nn.Dense(features, dtype=dtype, param_dtype=jnp.float32, use_bias=use_bias, name=name,
                  kernel_init=partitioned(kernel_init, names),
                  bias_init=partitioned(nn.initializers.zeros_init(), names[1:]))


def layer_norm(dtype: Dtype, name: str | None = None) -> nn.LayerNorm:
  return nn.LayerNorm(dtype=dtype, param_dtype=jnp.float32, name=name,
                      scale_init=partitioned(nn.initializers.ones_init(), ("embed",)),
                      bias_init=partitioned(nn.initializers.zeros_init(), ("embed",)))


def sinusoid(length: int, dim: int) -> jnp.ndarray:
  """[length, dim] float32 sinusoidal positions (no parameters, so any clip length works)."""
  position = np.arange(length, dtype=np.float32)[:, None]
  freq = np.exp(-np.log(10_000.0) * np.arange(0, dim, 2, dtype=np.float32) / dim)
  table = np.zeros((length, dim), np.float32)
  table[:, 0::2] = np.sin(position * freq)
  table[:, 1::2] = np.cos(position * freq[: dim // 2])
  return jnp.asarray(table)


def key_mask(query_len: int, key_mask_bs: jnp.ndarray) -> jnp.ndarray:
  """[B,1,Tq,S] bool attention mask from a [B,S] key validity mask (padded keys are never attended)."""
  valid = key_mask_bs.astype(bool)[:, None, None, :]
  return jnp.broadcast_to(valid, (valid.shape[0], 1, query_len, valid.shape[-1]))


class Attention(nn.Module):
  """Multi-head attention of queries x [B,T,D] over memory [B,S,D] with a key mask [B,S]."""

  num_heads: int
  head_dim: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x_btd, memory_bsd, mask_bs):
    def proj(name):
      return nn.DenseGeneral(
        (self.num_heads, self.head_dim), dtype=self.dtype, param_dtype=jnp.float32, name=name,
        kernel_init=partitioned(nn.initializers.lecun_normal(), ("embed", "heads", "kv")),
        bias_init=partitioned(nn.initializers.zeros_init(), ("heads", "kv")))

    q_btnh = proj("query")(x_btd)
    k_bsnh = proj("key")(memory_bsd)
    v_bsnh = proj("value")(memory_bsd)
    out_btnh = jax.nn.dot_product_attention(q_btnh, k_bsnh, v_bsnh, mask=key_mask(x_btd.shape[1], mask_bs))
    return nn.DenseGeneral(
      x_btd.shape[-1], axis=(-2, -1), dtype=self.dtype, param_dtype=jnp.float32, name="out",
      kernel_init=partitioned(nn.initializers.lecun_normal(), ("heads", "kv", "embed")),
      bias_init=partitioned(nn.initializers.zeros_init(), ("embed",)))(out_btnh)


class Mlp(nn.Module):
  """Position-wise feed-forward block D -> mlp_dim -> D with GELU."""

  mlp_dim: int
  dropout: float = 0.0
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x_btd, train: bool = False):
    h = nn.gelu(dense(self.mlp_dim, ("embed", "mlp"), self.dtype, name="wi")(x_btd))
    h = nn.Dropout(self.dropout, deterministic=not train)(h)
    return dense(x_btd.shape[-1], ("mlp", "embed"), self.dtype, name="wo")(h)


class TransformerBlock(nn.Module):
  """Pre-norm block: self-attention, optional cross-attention to `memory`, feed-forward.

  x [B,T,D], mask [B,T]; memory [B,S,D] with memory_mask [B,S] when `cross`.
  """

  num_heads: int
  mlp_dim: int
  dropout: float = 0.0
  cross: bool = False
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x_btd, mask_bt, memory_bsd=None, memory_mask_bs=None, train: bool = False):
    head_dim = x_btd.shape[-1] // self.num_heads
    drop = nn.Dropout(self.dropout, deterministic=not train)
    h = layer_norm(self.dtype, "norm_self")(x_btd)
    x_btd = x_btd + drop(Attention(self.num_heads, head_dim, self.dtype, name="self_attn")(h, h, mask_bt))
    if self.cross:
      h = layer_norm(self.dtype, "norm_cross")(x_btd)
      attn = Attention(self.num_heads, head_dim, self.dtype, name="cross_attn")
      x_btd = x_btd + drop(attn(h, memory_bsd, memory_mask_bs))
    h = layer_norm(self.dtype, "norm_mlp")(x_btd)
    return x_btd + drop(Mlp(self.mlp_dim, self.dropout, self.dtype, name="mlp")(h, train))


class Transformer(nn.Module):
  """A stack of `num_layers` TransformerBlocks and a final LayerNorm; [B,T,D] -> [B,T,D].

  With `remat`, each block's activations are recomputed in the backward pass instead of kept (less
  memory, one more forward pass of compute); the parameters are the same either way.
  """

  num_layers: int
  num_heads: int
  mlp_dim: int
  dropout: float = 0.0
  cross: bool = False
  dtype: Dtype = jnp.float32
  remat: bool = False

  @nn.compact
  def __call__(self, x_btd, mask_bt, memory_bsd=None, memory_mask_bs=None, train: bool = False):
    # `train` (argument 5, counting the module) selects dropout: static under remat.
    block_cls = nn.remat(TransformerBlock, static_argnums=(5,)) if self.remat else TransformerBlock
    for i in range(self.num_layers):
      x_btd = nn.with_logical_constraint(x_btd, ACTIVATION_AXES)
      block = block_cls(self.num_heads, self.mlp_dim, self.dropout, self.cross, self.dtype, name=f"block{i}")
      x_btd = block(x_btd, mask_bt, memory_bsd, memory_mask_bs, train)
    return layer_norm(self.dtype, "norm_out")(x_btd)


class MelStem(nn.Module):
  """Per-frame stem: each 16×80 mel window [B,T,16,80] -> one token [B,T,D].

  The 80 bands are projected per mel frame, two stride-2 convolutions over the window's 16 mel frames
  summarise it into 4 steps, which are flattened and projected to D.
  """

  dim: int
  channels: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, mel_btfw):
    b, t, f, w = mel_btfw.shape
    x = mel_btfw.reshape(b * t, f, w).astype(self.dtype)
    x = nn.gelu(dense(self.channels, ("mel", "stem"), self.dtype, name="bands")(x))
    for i in range(2):
      x = nn.gelu(nn.Conv(
        self.channels, (3,), strides=(2,), padding="SAME", dtype=self.dtype, param_dtype=jnp.float32,
        kernel_init=partitioned(nn.initializers.lecun_normal(), ("conv", "stem_in", "stem")),
        bias_init=partitioned(nn.initializers.zeros_init(), ("stem",)), name=f"conv{i}")(x))
    x = x.reshape(b, t, -1)
    return dense(self.dim, ("stem", "embed"), self.dtype, name="proj")(x)


def masked_mean(x_bt_, mask_bt):
  """Mean over time of x [B,T,...] where mask [B,T] is 1; [B,...] (0 for an all-padding row)."""
  m = mask_bt.astype(x_bt_.dtype).reshape(mask_bt.shape + (1,) * (x_bt_.ndim - 2))
  return (x_bt_ * m).sum(1) / jnp.maximum(m.sum(1), 1.0)


LOUD_WITHIN = 2.4  # mel units (12.5 dB each, audio/features.py): frames within 30 dB of a chunk's loudest
ENVELOPE_TERMS = 8  # cosines over the 80 bands: level, tilt and shapes as broad as 20 bands and broader


def envelope_basis(bands: int, terms: int = ENVELOPE_TERMS) -> np.ndarray:
  """[bands, terms] orthonormal DCT-II cosines over the mel bands (column 0 the constant)."""
  w = np.arange(bands) + 0.5
  basis = np.cos(np.pi * np.outer(w, np.arange(terms)) / bands)
  return basis / np.linalg.norm(basis, axis=0)


def envelope_removed(mel_btfw, mask_bt):
  """mel [B,T,16,80] less each chunk's spectral envelope; [B,T,16,80].

  The envelope is the projection on the first ENVELOPE_TERMS cosines over the bands of the chunk's mean
  log-mel spectrum, the mean taken over its loud mel frames (within 30 dB of its loudest, so pauses do not
  set it). A recording's gain and its microphone's or mastering's colour add such a smooth curve to every
  frame; they say nothing about the speaker's emotion, yet a network that hears them reads a loud, bright
  recording as angry. What changes from frame to frame (pitch, energy, timing) is kept.
  """
  frame_level_btf = mel_btfw.mean(-1)
  valid_bt1 = (mask_bt > 0)[..., None]
  loudest_b = jnp.where(valid_bt1, frame_level_btf, -jnp.inf).max((1, 2))
  loud_btf = valid_bt1 & (frame_level_btf >= loudest_b[:, None, None] - LOUD_WITHIN)
  b, t, f, w = mel_btfw.shape
  spectrum_bw = masked_mean(mel_btfw.reshape(b, t * f, w), loud_btf.reshape(b, t * f))
  basis_wk = jnp.asarray(envelope_basis(w), mel_btfw.dtype)
  envelope_bw = (spectrum_bw @ basis_wk) @ basis_wk.T
  return mel_btfw - envelope_bw[:, None, None, :]
