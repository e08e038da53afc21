"""A2ENet's training objective: cross-reconstruction disentanglement plus expression supervision.

The batch (data/schema.py) holds four time-aligned views: "a" = x(i,m), "b" = x(j,n), "ab" = x(i,n) on
a's timeline, "ba" = x(j,m) on b's. Each view is encoded once (the four stacked into one batch, each row's
views side by side so no pairing crosses devices); then one audio-decoder call and one expression-decoder
call decode eight pairings at once:

  self:  content(v) + emotion(v) -> v                     for v in a, b, ab, ba
  cross: content(a) + emotion(b) -> ab,  content(b) + emotion(a) -> ba,
         content(ab) + emotion(ba) -> a, content(ba) + emotion(ab) -> b

The expression decoder takes β0 and the eye signal of the target view (identity and blinks are not in
the audio). At `emotion_override_rate` (model config) a pairing's audio emotion is replaced by the label
embedding of its emotion source, which is how the embeddings learn to drive the decoder.

Every term is a masked mean and is returned unweighted in the metrics; the total uses `loss_config()`.
"""

import jax
import jax.numpy as jnp
import ml_collections

from a2e_jax.errors import UserError
from a2e_jax.models import a2enet

VIEWS = ("a", "b", "ab", "ba")
# (content source, emotion source, target) for the eight pairings, in decoding order.
PAIRINGS = (
  ("a", "a", "a"), ("b", "b", "b"), ("ab", "ab", "ab"), ("ba", "ba", "ba"),
  ("a", "b", "ab"), ("b", "a", "ba"), ("ab", "ba", "a"), ("ba", "ab", "b"),
)  # fmt: skip
NUM_SELF = 4


def loss_config() -> ml_collections.ConfigDict:
  """Loss weights (a term with weight 0 is still computed and logged, but does not train)."""
  return ml_collections.ConfigDict(dict(
    audio_self=0.1,  # mel self-reconstruction (MSE on the [-4,4] log-mel scale)
    audio_cross=0.1,  # mel cross-reconstruction of swapped pairs
    coeff_self=10.0,  # coefficient MSE, self pairings
    coeff_cross=10.0,  # coefficient MSE, cross pairings
    content_equal=0.1,  # content(a) ≈ content(ab), content(b) ≈ content(ba)
    emotion_ce=0.2,  # emotion classification of all four views
    intensity=0.1,  # intensity regression where the intensity is known (> 0)
    embed_align=0.1,  # label embedding ≈ (stopped) pooled audio emotion of its clip
    vertex_lip=1.0,  # squared distance over the face model's lip vertices, in vertex_unit² (all pairings)
    vertex_landmark=1.0,  # squared distance over the 68 landmark vertices
    vertex_unit=10.0,  # vertex coordinates are multiplied by this first: BFM units (10 cm) -> cm
    eye=10.0,  # MSE on the blink channels (53-channel layouts)
    velocity=20.0,  # MSE between predicted and true frame-to-frame coefficient differences
  ))


def _masked_mean(err_bt_, mask_bt):
  """Mean of err [B,T,...] over valid frames (and over the trailing axes)."""
  err_bt = err_bt_.reshape(err_bt_.shape[:2] + (-1,)).mean(-1)
  return (err_bt * mask_bt).sum() / jnp.maximum(mask_bt.sum(), 1.0)


def _stack(batch, key):
  """[B*4, ...] with the four views of each row next to each other (row-major): a batch sharded over
  devices keeps every row's views, and so its pairings, on the row's own device."""
  x_bv = jnp.stack([jnp.asarray(batch[v][key]) for v in VIEWS], axis=1)
  return x_bv.reshape((-1,) + x_bv.shape[2:])


def _pick(x, groups: int, index):
  """x [B*groups, ...] -> [B*len(index), ...]: members `index` of each row's group."""
  x_bg = x.reshape((-1, groups) + x.shape[1:])
  picked = x_bg[:, jnp.asarray(index)]
  return picked.reshape((-1,) + x.shape[1:])


def _self_cross(x, mask):
  """Masked means of x [B*P, T, ...] over the self pairings (the first NUM_SELF of each row) and the rest."""
  p = len(PAIRINGS)
  x_bp, m_bp = x.reshape((-1, p) + x.shape[1:]), mask.reshape((-1, p) + mask.shape[1:])
  flat = lambda y: y.reshape((-1,) + y.shape[2:])  # noqa: E731
  return (_masked_mean(flat(x_bp[:, :NUM_SELF]), flat(m_bp[:, :NUM_SELF])),
          _masked_mean(flat(x_bp[:, NUM_SELF:]), flat(m_bp[:, NUM_SELF:])))


def _vertex_losses(face_model, pred_btk, target_btk, mask_bt, unit: float):
  """(lip, landmark) mean squared vertex distances through the (linear) face model."""
  if face_model.num_exp != pred_btk.shape[-1]:
    raise UserError(f"face model {face_model.name!r} has {face_model.num_exp} expression channels but the "
                    f"model predicts {pred_btk.shape[-1]}; set --config.model.num_coeffs or pick the model")
  out = []
  for index in (face_model.region("lips"), face_model.landmarks):
    # Only the needed vertices: a sub-model over `index` keeps the step cheap on a 35k-vertex BFM.
    sub = face_model.replace(mean=face_model.mean[index], id_basis=face_model.id_basis[index],
                             exp_basis=face_model.exp_basis[index])
    diff_btv3 = (sub.vertices(None, pred_btk) - sub.vertices(None, target_btk)) * unit
    out.append(_masked_mean(jnp.sum(diff_btv3**2, -1), mask_bt))
  return out


def compute_losses(module, params, batch, rng, loss_cfg, face_model=None, train: bool = True):
  """Total loss and per-term metrics for one batch of the four views.

  Args:
    module: an `A2ENet`; params: its parameter tree, or the variables {"params": tree}; boxed or not.
    batch: {"a","b","ab","ba"} -> view dicts of data/schema.py (mel [B,T,16,80], coeffs [B,T,K],
      beta0 [B,K], eye [B,T,EYE], emotion [B], intensity [B], mask [B,T]).
    rng: PRNG key for dropout and the emotion override; loss_cfg: `loss_config()`.
    face_model: a `MorphableModel` passed as an argument (a pytree), or None to skip the vertex terms.
    train: dropout and the emotion override on.
  Returns:
    (total scalar, metrics dict of float32 scalars: "loss", each term, "emotion_acc").
  """
  cfg = module.config
  k_content, k_emotion, k_audio, k_expr, k_override = jax.random.split(rng, 5)
  v = len(VIEWS)
  mask = _stack(batch, "mask").astype(jnp.float32)
  mel = _stack(batch, "mel")
  labels = _stack(batch, "emotion").astype(jnp.int32)
  intensity = _stack(batch, "intensity").astype(jnp.float32)

  variables = params if "params" in params else {"params": params}

  def apply(method, key, *args, **kwargs):
    return module.apply(variables, *args, method=method, rngs={"dropout": key}, **kwargs)

  content = apply("encode_content", k_content, mel, mask, train=train)
  _, emotion, logits, intensity_pred = apply("encode_emotion", k_emotion, mel, mask, train=train)

  # The ablation without the emotion branch has nothing to swap: it trains on the self pairings only.
  pairings = PAIRINGS if cfg.use_emotion else PAIRINGS[:NUM_SELF]
  content_src, emotion_src, target = ([VIEWS.index(p[i]) for p in pairings] for i in range(3))
  content_p = _pick(content, v, content_src)
  emotion_p = _pick(emotion, v, emotion_src)
  # Each pairing is masked where both its content source and its target are valid.
  mask_p = _pick(mask, v, content_src) * _pick(mask, v, target)
  metrics = {}

  audio_pred = apply("decode_audio", k_audio, content_p, emotion_p, mask_p, train=train)
  audio_err = (audio_pred - a2enet.audio_target(_pick(mel, v, target), cfg.audio_frames)) ** 2

  emotion_dec = emotion_p
  if cfg.use_emotion:
    label_p, intensity_p = _pick(labels, v, emotion_src), _pick(intensity, v, emotion_src)
    embedded = module.apply(variables, label_p, intensity_p, method="emotion_embedding")
    rate = cfg.emotion_override_rate if train else 0.0
    override = (jax.random.uniform(k_override, label_p.shape) < rate) & (intensity_p > 0)
    emotion_dec = jnp.where(override[:, None], embedded, emotion_p)

  beta0 = _pick(_stack(batch, "beta0"), v, target)
  eye = _pick(_stack(batch, "eye"), v, target)
  coeffs_true = _pick(_stack(batch, "coeffs"), v, target).astype(jnp.float32)
  coeffs_pred = apply("decode_expression", k_expr, content_p, emotion_dec, beta0, eye, mask_p, train=train)
  coeff_err = (coeffs_pred - coeffs_true) ** 2
  if cfg.use_emotion:
    metrics["audio_self"], metrics["audio_cross"] = _self_cross(audio_err, mask_p)
    metrics["coeff_self"], metrics["coeff_cross"] = _self_cross(coeff_err, mask_p)
  else:
    metrics["audio_self"] = _masked_mean(audio_err, mask_p)
    metrics["coeff_self"] = _masked_mean(coeff_err, mask_p)

  vel_pred = coeffs_pred[:, 1:] - coeffs_pred[:, :-1]
  vel_true = coeffs_true[:, 1:] - coeffs_true[:, :-1]
  metrics["velocity"] = _masked_mean((vel_pred - vel_true) ** 2, mask_p[:, 1:] * mask_p[:, :-1])

  blink = a2enet.blink_channels(cfg.num_coeffs)
  if blink:
    metrics["eye"] = _masked_mean(coeff_err[..., jnp.asarray(blink)], mask_p)

  if face_model is not None:
    metrics["vertex_lip"], metrics["vertex_landmark"] = _vertex_losses(
      face_model, coeffs_pred, coeffs_true, mask_p, loss_cfg.vertex_unit)

  if cfg.use_emotion:
    # (a, b) against (ab, ba): the same sentences on the same timelines.
    first, second = (VIEWS.index("a"), VIEWS.index("b")), (VIEWS.index("ab"), VIEWS.index("ba"))
    pair_mask = _pick(mask, v, first) * _pick(mask, v, second)
    metrics["content_equal"] = _masked_mean((_pick(content, v, first) - _pick(content, v, second)) ** 2,
                                            pair_mask)
    log_probs = jax.nn.log_softmax(logits)
    metrics["emotion_ce"] = -jnp.take_along_axis(log_probs, labels[:, None], axis=-1).mean()
    metrics["emotion_acc"] = (logits.argmax(-1) == labels).astype(jnp.float32).mean()
    known = (intensity > 0).astype(jnp.float32)
    metrics["intensity"] = (known * (intensity_pred - intensity) ** 2).sum() / jnp.maximum(known.sum(), 1.0)
    label_emb = module.apply(variables, labels, intensity, method="emotion_embedding")
    align = jnp.mean((label_emb - jax.lax.stop_gradient(emotion)) ** 2, axis=-1)
    metrics["embed_align"] = (known * align).sum() / jnp.maximum(known.sum(), 1.0)

  total = sum(loss_cfg[k] * v for k, v in metrics.items() if k in loss_cfg)
  metrics = {k: v.astype(jnp.float32) for k, v in metrics.items()}
  metrics["loss"] = total.astype(jnp.float32)
  return total, metrics
