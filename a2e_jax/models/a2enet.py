"""A2ENet: speech -> per-frame expression coefficients, with emotion disentangled from content.

    mel [B,T,16,80] ──► ContentEncoder ──► content_btd ─────────────┬──► AudioDecoder ──► mel [B,T,A,80]
                   └──► EmotionEncoder ──► emotion_btd, emotion_bd ─┤
                                            logits_be, intensity_b  │
    label, intensity ──► emotion_embedding ──► emotion_bd (override)┤
    beta0_bk, eye_bte ──────────────────────────────────────────────┴──► ExpressionDecoder ──► coeffs_btk

Used functionally: `params = A2ENet(cfg).init(rng, view)`, then `apply(params, ..., method="encode_content")`
and so on; `train=True` enables dropout (pass `rngs={"dropout": key}`). See docs/model.md.
"""

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from a2e_jax.core import channels, schema
from a2e_jax.models import layers
from a2e_jax.models.decoders import AudioDecoder, ExpressionDecoder
from a2e_jax.models.encoders import ContentEncoder, EmotionEncoder

SIZES = {
  # dim, mlp_dim, heads, content/emotion/audio/decoder layers, stem channels
  "tiny": (128, 256, 4, 2, 2, 1, 2, 32),
  "base": (256, 1024, 8, 4, 4, 2, 4, 64),
  "large": (512, 2048, 8, 6, 6, 3, 6, 128),
}


EMOTION_INPUTS = ("absolute", "relative")  # what the emotion encoder hears: the log-mel, or less its envelope


def model_config(size: str = "base") -> ml_collections.ConfigDict:
  """The model's ConfigDict for `size` in SIZES (tiny ≈ 1 M parameters, base ≈ 12 M, large ≈ 70 M)."""
  if size not in SIZES:
    raise ValueError(f"unknown model size {size!r}; choose one of {', '.join(SIZES)}")
  dim, mlp_dim, heads, content, emotion, audio, decoder, stem = SIZES[size]
  return ml_collections.ConfigDict(dict(
    size=size,
    dim=dim,
    mlp_dim=mlp_dim,
    num_heads=heads,
    content_layers=content,
    emotion_layers=emotion,
    audio_layers=audio,
    decoder_layers=decoder,
    stem_channels=stem,
    dropout=0.1 if size != "tiny" else 0.0,
    channel_layout=channels.DEFAULT_LAYOUT,  # core/channels.py LAYOUTS: "ict" (53), "bfm" (64), "" unnamed
    num_coeffs=len(channels.LAYOUTS[channels.DEFAULT_LAYOUT]),  # must match the named layout's width
    num_emotions=len(schema.EMOTIONS),
    max_intensity=schema.INTENSITIES[-1],
    eye_dim=schema.EYE,
    mel_bands=schema.MEL_BANDS,
    audio_frames=4,  # mel frames reconstructed per video frame: the frame's own 0.04 s of the window
    dtype="float32",  # compute dtype; "bfloat16" keeps float32 parameters
    remat=False,  # recompute each Transformer block in the backward pass: less memory, more compute
    emotion_override_rate=0.3,  # training: fraction of clips decoded from the label embedding instead
    use_emotion=True,  # False: the ablation without the emotion branch (emotion input is zero)
    emotion_input="absolute",  # "relative": the emotion encoder hears each chunk less its spectral envelope
  ))


def blink_channels(config) -> tuple[int, ...]:
  """Coefficient indices of (eyeBlink_L, eyeBlink_R) in the model's channel layout; () when it has none."""
  names = channels.layout_channels(config.channel_layout, config.num_coeffs)
  if "eyeBlink_L" in names and "eyeBlink_R" in names:
    return (names.index("eyeBlink_L"), names.index("eyeBlink_R"))
  return ()


def audio_target(mel_btfw, audio_frames: int):
  """[B,T,A,80] the A mel frames at the centre of each window, which cover the video frame's own span
  (window offsets 6.4..9.6 for frame t; A = 4 gives offsets 6..9)."""
  start = schema.MEL_WINDOW // 2 - audio_frames // 2
  return mel_btfw[:, :, start:start + audio_frames, :]


class A2ENet(nn.Module):
  """The whole network; see the module docstring for the data flow."""

  config: ml_collections.ConfigDict

  def setup(self):
    cfg = self.config
    dtype = layers.dtype_of(cfg.dtype)
    common = dict(num_heads=cfg.num_heads, mlp_dim=cfg.mlp_dim, dropout=cfg.dropout, dtype=dtype,
                  remat=cfg.get("remat", False))
    self.content_encoder = ContentEncoder(cfg.dim, cfg.stem_channels, cfg.content_layers, **common)
    self.emotion_encoder = EmotionEncoder(cfg.dim, cfg.stem_channels, cfg.emotion_layers,
                                          num_emotions=cfg.num_emotions, **common)
    self.audio_decoder = AudioDecoder(cfg.dim, cfg.audio_layers, audio_frames=cfg.audio_frames,
                                      mel_bands=cfg.mel_bands, **common)
    self.expression_decoder = ExpressionDecoder(cfg.dim, cfg.decoder_layers, num_coeffs=cfg.num_coeffs,
                                                blink_channels=blink_channels(cfg), **common)
    # Label embeddings live in the pooled emotion latent's space: neutral + s·direction[label], s the
    # intensity / max_intensity, so intensity moves away from neutral along a line and blends are linear.
    self.emotion_neutral = self.param(
      "emotion_neutral", layers.partitioned(nn.initializers.zeros_init(), ("embed",)), (cfg.dim,),
      jnp.float32)
    self.emotion_directions = self.param(
      "emotion_directions", layers.partitioned(nn.initializers.normal(1.0), ("vocab", "embed")),
      (cfg.num_emotions, cfg.dim), jnp.float32)

  def encode_content(self, mel_btfw, mask_bt, train: bool = False):
    """mel [B,T,16,80], mask [B,T] -> content [B,T,D]."""
    return self.content_encoder(mel_btfw, mask_bt, train)

  def encode_emotion(self, mel_btfw, mask_bt, train: bool = False):
    """mel [B,T,16,80], mask [B,T] -> (emotion_btd, emotion_bd, logits_be, intensity_b)."""
    emotion_input = self.config.get("emotion_input", "absolute")
    if emotion_input not in EMOTION_INPUTS:
      raise ValueError(f"model.emotion_input={emotion_input!r}; choose one of {', '.join(EMOTION_INPUTS)}")
    if emotion_input == "relative":
      mel_btfw = layers.envelope_removed(mel_btfw, mask_bt)
    return self.emotion_encoder(mel_btfw, mask_bt, train)

  def emotion_embedding(self, label_b, intensity_b):
    """Learned emotion latent [B,D] for labels [B] (int) or label weights [B,E] at intensities [B] (0..3).

    Weights [B,E] blend emotions (rows summing to 1); intensity 0 gives neutral whatever the label.
    """
    if label_b.ndim == 1:
      weights_be = jnp.eye(self.config.num_emotions, dtype=jnp.float32)[label_b]
    else:
      weights_be = label_b.astype(jnp.float32)
    scale_b1 = (jnp.asarray(intensity_b, jnp.float32) / self.config.max_intensity)[:, None]
    return self.emotion_neutral + scale_b1 * (weights_be @ self.emotion_directions)

  def decode_audio(self, content_btd, emotion, mask_bt, train: bool = False):
    """(content [B,T,D], emotion [B,D]|[B,T,D], mask [B,T]) -> [B,T,A,80] (see audio_target)."""
    return self.audio_decoder(content_btd, self._emotion_input(emotion), mask_bt, train)

  def decode_expression(self, content_btd, emotion, beta0_bk, eye_bte, mask_bt, train: bool = False):
    """(content [B,T,D], emotion [B,D]|[B,T,D], β0 [B,K], eye [B,T,EYE], mask [B,T]) -> coeffs [B,T,K]."""
    emotion = self._emotion_input(emotion)
    return self.expression_decoder(content_btd, emotion, beta0_bk, eye_bte, mask_bt, train)

  def _emotion_input(self, emotion):
    # The ablation without the emotion branch decodes from content, identity and eyes alone.
    return emotion if self.config.use_emotion else jnp.zeros_like(emotion)

  def __call__(self, view, train: bool = False):
    """Runs every part on one batch view (core/schema.py) and returns a dict of outputs; used for init."""
    mask_bt = view["mask"]
    content_btd = self.encode_content(view["mel"], mask_bt, train)
    emotion_btd, emotion_bd, logits_be, intensity_b = self.encode_emotion(view["mel"], mask_bt, train)
    label_bd = self.emotion_embedding(view["emotion"], view["intensity"])
    return dict(
      content=content_btd, emotion=emotion_btd, emotion_pooled=emotion_bd, logits=logits_be,
      intensity=intensity_b, label_embedding=label_bd,
      audio=self.decode_audio(content_btd, emotion_bd, mask_bt, train),
      coeffs=self.decode_expression(content_btd, emotion_bd, view["beta0"], view["eye"], mask_bt, train),
    )


def example_view(config, batch: int = 2, frames: int = 8):
  """A zero-filled batch view with the shapes of core/schema.py, for init and shape inference."""
  return dict(
    mel=jnp.zeros((batch, frames, schema.MEL_WINDOW, config.mel_bands), jnp.float32),
    coeffs=jnp.zeros((batch, frames, config.num_coeffs), jnp.float32),
    beta0=jnp.zeros((batch, config.num_coeffs), jnp.float32),
    eye=jnp.zeros((batch, frames, config.eye_dim), jnp.float32),
    emotion=jnp.zeros((batch,), jnp.int32),
    intensity=jnp.ones((batch,), jnp.int32),
    mask=jnp.ones((batch, frames), jnp.float32),
  )
