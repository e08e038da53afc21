"""A2ENet's training objective: cross-reconstruction disentanglement plus expression supervision.

The batch (core/schema.py) holds four time-aligned views: "a" = x(i,m), "b" = x(j,n), "ab" = x(i,n) on
a's timeline, "ba" = x(j,m) on b's. Each view is encoded once (the four stacked into one batch, each row's
views side by side so no pairing crosses devices); then one audio-decoder call decodes eight pairings and
one expression-decoder call ten:

  self:     content(v) + emotion(v) -> v                     for v in a, b, ab, ba
  cross:    content(a) + emotion(b) -> ab,  content(b) + emotion(a) -> ba,
            content(ab) + emotion(ba) -> a, content(ba) + emotion(ab) -> b
  schedule: content(a) + emotion(a) before a random cut, emotion(b) after it -> a, then ab (and the
            mirror on b's timeline), the expression decoder only: a per-frame emotion with a true target,
            which teaches the decoder to apply a changing emotion where it changes

The expression decoder takes β0 and the eye signal of the target view (identity and blinks are not in
the audio). At `emotion_override_rate` (model config) a pairing's audio emotion is replaced by the label
embedding of its emotion source, which is how the embeddings learn to drive the decoder.

Every term is a masked mean and is returned unweighted in the metrics; the total uses `loss_config()`.
"""

import jax
import jax.numpy as jnp
import ml_collections

from a2e_jax.core.errors import UserError
from a2e_jax.models import a2enet

VIEWS = ("a", "b", "ab", "ba")
# (content source, emotion source, target) for the eight pairings, in decoding order.
PAIRINGS = (
  ("a", "a", "a"), ("b", "b", "b"), ("ab", "ab", "ab"), ("ba", "ba", "ba"),
  ("a", "b", "ab"), ("b", "a", "ba"), ("ab", "ba", "a"), ("ba", "ab", "b"),
)  # fmt: skip
NUM_SELF = 4
# Schedule pairings: (pairing before the cut, pairing after it); both share content and timeline.
SCHEDULES = ((0, 4), (1, 5))
SCHEDULE_GUARD = 2  # frames on each side of the cut left out of the loss (the true expression jumps there)


def loss_config() -> ml_collections.ConfigDict:
  """Loss weights (a term with weight 0 is still computed and logged, but does not train)."""
  return ml_collections.ConfigDict(dict(
    audio_self=0.1,  # mel self-reconstruction (MSE on the [-4,4] log-mel scale)
    audio_cross=0.1,  # mel cross-reconstruction of swapped pairs
    coeff_self=10.0,  # coefficient MSE, self pairings
    coeff_cross=10.0,  # coefficient MSE, cross pairings
    coeff_schedule=10.0,  # coefficient MSE, schedule pairings (emotion switching at a cut)
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


def _masked_mean(err, mask):
  """Mean of err [*M, ...] over the entries where mask [*M] is 1 (and over err's trailing axes)."""
  err = err.reshape(mask.shape + (-1,)).mean(-1)
  return (err * mask).sum() / jnp.maximum(mask.sum(), 1.0)


def _views(batch, key):
  """[B,4,...]: the four views of `key` per row."""
  return jnp.stack([jnp.asarray(batch[v][key]) for v in VIEWS], axis=1)


def _flat(x):
  """[B,P,...] -> [B*P,...] (row-major, so each row's pairings stay on the row's device)."""
  return x.reshape((-1,) + x.shape[2:])


def _rows(x, p: int):
  """[B*P,...] -> [B,P,...]."""
  return x.reshape((-1, p) + x.shape[1:])


def _over_time(x_bpd, t: int):
  """[B,P,D] -> [B,P,T,D] (the same vector at every frame)."""
  return jnp.broadcast_to(x_bpd[:, :, None], x_bpd.shape[:2] + (t,) + x_bpd.shape[2:])


def _scheduled(x_bp, first_bt, per_clip: bool = False):
  """[B,2,T,...] per-frame mix of the SCHEDULES pairings of x [B,P,T,...] (or of x [B,P,D] broadcast over
  time when `per_clip`): the first pairing where first_bt [B,T] is true, the second after the cut."""
  before, after = x_bp[:, [s[0] for s in SCHEDULES]], x_bp[:, [s[1] for s in SCHEDULES]]
  t = first_bt.shape[1]
  if per_clip:
    before, after = _over_time(before, t), _over_time(after, t)
  choose = first_bt.reshape(first_bt.shape[:1] + (1, t) + (1,) * (before.ndim - 3))
  return jnp.where(choose, before, after)


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
    batch: {"a","b","ab","ba"} -> view dicts of core/schema.py (mel [B,T,16,80], coeffs [B,T,K],
      beta0 [B,K], eye [B,T,EYE], emotion [B], intensity [B], mask [B,T]).
    rng: PRNG key for dropout and the emotion override; loss_cfg: `loss_config()`.
    face_model: a `MorphableModel` passed as an argument (a pytree), or None to skip the vertex terms.
    train: dropout and the emotion override on.
  Returns:
    (total scalar, metrics dict of float32 scalars: "loss", each term, "emotion_acc").
  """
  cfg = module.config
  k_content, k_emotion, k_audio, k_expr, k_override, k_cut = jax.random.split(rng, 6)
  v = len(VIEWS)
  mask_bv = _views(batch, "mask").astype(jnp.float32)
  mel_bv = _views(batch, "mel")
  labels = _views(batch, "emotion").astype(jnp.int32)
  intensity = _views(batch, "intensity").astype(jnp.float32)
  b, t = mask_bv.shape[0], mask_bv.shape[2]

  variables = params if "params" in params else {"params": params}

  def apply(method, key, *args, **kwargs):
    return module.apply(variables, *args, method=method, rngs={"dropout": key}, **kwargs)

  content_bv = _rows(apply("encode_content", k_content, _flat(mel_bv), _flat(mask_bv), train=train), v)
  _, emotion, logits, intensity_pred = apply("encode_emotion", k_emotion, _flat(mel_bv), _flat(mask_bv),
                                             train=train)
  emotion_bv = _rows(emotion, v)

  # The ablation without the emotion branch has nothing to swap: it trains on the self pairings only.
  pairings = PAIRINGS if cfg.use_emotion else PAIRINGS[:NUM_SELF]
  content_src, emotion_src, target = ([VIEWS.index(p[i]) for p in pairings] for i in range(3))
  content_bp, emotion_bp = content_bv[:, content_src], emotion_bv[:, emotion_src]
  # Each pairing is masked where both its content source and its target are valid.
  mask_bp = mask_bv[:, content_src] * mask_bv[:, target]
  metrics = {}

  audio_pred = _rows(apply("decode_audio", k_audio, _flat(content_bp), _flat(emotion_bp), _flat(mask_bp),
                           train=train), len(pairings))
  audio_err = (audio_pred - a2enet.audio_target(_flat(mel_bv[:, target]), cfg.audio_frames).reshape(
    audio_pred.shape)) ** 2
  metrics["audio_self"] = _masked_mean(audio_err[:, :NUM_SELF], mask_bp[:, :NUM_SELF])

  beta0_bp = _views(batch, "beta0")[:, target]
  eye_bp = _views(batch, "eye")[:, target]
  coeffs_true = _views(batch, "coeffs")[:, target].astype(jnp.float32)
  emotion_dec = emotion_bp
  if cfg.use_emotion:
    metrics["audio_cross"] = _masked_mean(audio_err[:, NUM_SELF:], mask_bp[:, NUM_SELF:])
    label_p, intensity_p = labels[:, emotion_src], intensity[:, emotion_src]
    embedded = _rows(module.apply(variables, _flat(label_p), _flat(intensity_p), method="emotion_embedding"),
                     len(pairings))
    rate = cfg.emotion_override_rate if train else 0.0
    override = (jax.random.uniform(k_override, label_p.shape) < rate) & (intensity_p > 0)
    emotion_dec = jnp.where(override[..., None], embedded, emotion_bp)
    # Schedule pairings, decoded with per-frame emotions: every pairing's emotion is then [B,P,T,D].
    cut_b = jax.random.randint(k_cut, (b,), t // 4, t - t // 4 + 1)
    frame_t = jnp.arange(t)
    first_bt = frame_t[None] < cut_b[:, None]
    away_bt = (jnp.abs(frame_t[None] - cut_b[:, None] + 0.5) > SCHEDULE_GUARD).astype(jnp.float32)
    scheduled = _scheduled(emotion_dec, first_bt, per_clip=True)
    emotion_dec = jnp.concatenate([_over_time(emotion_dec, t), scheduled], 1)
    content_bp = jnp.concatenate([content_bp, content_bp[:, [s[0] for s in SCHEDULES]]], 1)
    beta0_bp = jnp.concatenate([beta0_bp, beta0_bp[:, [s[0] for s in SCHEDULES]]], 1)
    eye_bp = jnp.concatenate([eye_bp, _scheduled(eye_bp, first_bt)], 1)
    coeffs_true = jnp.concatenate([coeffs_true, _scheduled(coeffs_true, first_bt)], 1)
    mask_bp = jnp.concatenate([mask_bp, _scheduled(mask_bp, first_bt) * away_bt[:, None]], 1)

  p = mask_bp.shape[1]
  coeffs_pred = _rows(apply("decode_expression", k_expr, _flat(content_bp), _flat(emotion_dec),
                            _flat(beta0_bp), _flat(eye_bp), _flat(mask_bp), train=train), p)
  coeff_err = (coeffs_pred - coeffs_true) ** 2
  metrics["coeff_self"] = _masked_mean(coeff_err[:, :NUM_SELF], mask_bp[:, :NUM_SELF])
  if cfg.use_emotion:
    cross = slice(NUM_SELF, len(PAIRINGS))
    metrics["coeff_cross"] = _masked_mean(coeff_err[:, cross], mask_bp[:, cross])
    metrics["coeff_schedule"] = _masked_mean(coeff_err[:, len(PAIRINGS):], mask_bp[:, len(PAIRINGS):])

  vel_pred = coeffs_pred[:, :, 1:] - coeffs_pred[:, :, :-1]
  vel_true = coeffs_true[:, :, 1:] - coeffs_true[:, :, :-1]
  metrics["velocity"] = _masked_mean((vel_pred - vel_true) ** 2, mask_bp[:, :, 1:] * mask_bp[:, :, :-1])

  blink = a2enet.blink_channels(cfg)
  if blink:
    metrics["eye"] = _masked_mean(coeff_err[..., jnp.asarray(blink)], mask_bp)

  if face_model is not None:
    metrics["vertex_lip"], metrics["vertex_landmark"] = _vertex_losses(
      face_model, coeffs_pred, coeffs_true, mask_bp, loss_cfg.vertex_unit)

  if cfg.use_emotion:
    # (a, b) against (ab, ba): the same sentences on the same timelines.
    first, second = [VIEWS.index("a"), VIEWS.index("b")], [VIEWS.index("ab"), VIEWS.index("ba")]
    pair_mask = mask_bv[:, first] * mask_bv[:, second]
    metrics["content_equal"] = _masked_mean((content_bv[:, first] - content_bv[:, second]) ** 2, pair_mask)
    labels, intensity = _flat(labels), _flat(intensity)
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
