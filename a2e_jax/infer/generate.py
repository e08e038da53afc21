"""`generate`: speech -> per-frame expression coefficients, with emotion, eye, identity and pose controls.

    audio ──► 16 kHz, whole frames ──► pause gate ──► log-mel ──► chunks of C frames
                                          (pauses.py, sources.py, streaming.py)
       pass 1 (only when some emotion comes from audio): emotion encoder per chunk -> pooled latents and
              calibrated class probabilities, averaged over `emotion_window_s` around each chunk (steady,
              but free to drift over an hour); `auto` falls back to neutral where the reading is not
              confident (confidence.py) or the voice is unlike the training voices (familiarity.py)
       pass 2: content encoder + expression decoder per chunk, with per-frame emotion latents (controls.py),
              β0 and the eye control (request.py) -> coefficients; in pauses the lip-parting channels
              go to β0; blended across chunk overlaps
The passes run on groups of chunks of one fixed shape (network.py), so they compile once per network, and
JAX's persistent compilation cache, enabled here, keeps them across processes. Memory stays bounded
whatever the length (only the output coefficients grow, 212 bytes a frame).
"""

import dataclasses
import functools
import os

import jax
import numpy as np

from a2e_jax.core import schema
from a2e_jax.core.channels import ICT_CHANNELS
from a2e_jax.core.errors import UserError
from a2e_jax.core.paths import cache_dir
from a2e_jax.formats.sequence import CoeffSequence
from a2e_jax.infer import confidence, controls, familiarity, pauses, request, sources, streaming
from a2e_jax.infer.network import GROUP, ChunkNetwork
from a2e_jax.infer.weights import load_weights

DEFAULT_EMOTION_WINDOW_S = 10.0


def enable_compilation_cache(path: str | None = None) -> str | None:
  """Turns on JAX's persistent compilation cache in `path` (default <a2e cache>/jax), unless the user set
  one or A2E_JAX_CACHE=off. Returns the folder in use."""
  if os.environ.get("A2E_JAX_CACHE", "").lower() in ("off", "0", "false"):
    return None
  if jax.config.jax_compilation_cache_dir:
    return jax.config.jax_compilation_cache_dir

  path = path or os.environ.get("A2E_JAX_CACHE") or os.path.join(cache_dir(), "jax")
  os.makedirs(path, exist_ok=True)
  jax.config.update("jax_compilation_cache_dir", path)
  # The chunk functions compile in well under JAX's default 1 s threshold; cache them all the same.
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
  return path


@dataclasses.dataclass
class Generation:
  """What `generate` returns.

  Attributes:
    seq: coefficients [T,K] at 25 fps in the network's channels, with eye [T,4], pose [T,6] and beta0 [K].
    speech_emotion: [E] calibrated probabilities the emotion classifier reads in the speech (schema.EMOTIONS
      order, the mean over chunks), or None when no emotion was taken from the audio.
    emotion: the requested emotion, in words.
    emotion_trust: for `auto`, the share of the speech's reading used (0: neutral throughout, 1: the
      reading throughout; the mean over chunks), else None.
    pause_frames: frames the pause gate put at rest.
    emotion_familiar: for `auto` with weights that have latent statistics, how familiar the voice is
      (familiarity.trust, the mean over chunks: 1 like the training voices throughout, 0 unlike), else
      None.
  """

  seq: CoeffSequence
  speech_emotion: np.ndarray | None
  emotion: str
  emotion_trust: float | None = None
  pause_frames: int = 0
  emotion_familiar: float | None = None

  @property
  def coeffs(self) -> np.ndarray:
    return self.seq.coeffs


class Generator:
  """A network with its compiled chunk functions; reuse one for many clips (batch mode does).

  Args:
    weights: `weights.Weights`.
    chunk_frames: frames per chunk (default: the weights' card's "chunk_frames", else the training window,
      at least 16).
    overlap_frames: frames shared by neighbouring chunks (default chunk / 4).
    group: chunks per compiled call.
    emotion_window_s: span over which the speech's emotion is averaged.
    emotion_threshold: `auto` follows the speech's reading only where its smoothed calibrated probability
      reaches this (confidence.py); 0 always follows it; None: the weights' fitted one (their card's
      emotion_calibration.threshold, else confidence.DEFAULT_THRESHOLD).
    emotion_distance: `auto` follows the speech's reading only where its emotion latent lies within this
      Mahalanobis distance of the training voices' (familiarity.py); inf turns that gate off; None: the
      weights' calibrated limit (their card's emotion_calibration.ood; no gate without one).
    pause_threshold: the pause gate's silence level, a fraction of the clip's loudest frame RMS
      (pauses.py); 0 turns the gate off.
  """

  def __init__(self, weights, chunk_frames: int | None = None, overlap_frames: int | None = None,
               group: int = GROUP, emotion_window_s: float = DEFAULT_EMOTION_WINDOW_S,
               emotion_threshold: float | None = None,
               pause_threshold: float = pauses.DEFAULT_THRESHOLD, emotion_distance: float | None = None):
    if emotion_distance is not None and not emotion_distance > 0:
      raise UserError(f"--emotion-distance {emotion_distance:g}: give a distance above 0 (inf turns the "
                      "familiar-voice gate off)")
    for flag, value in (("--emotion-threshold", emotion_threshold), ("--pause-threshold", pause_threshold)):
      if value is not None and not 0.0 <= value <= 1.0:
        raise UserError(f"{flag} {value:g}: give a number in [0, 1]")
    enable_compilation_cache()
    self.weights = weights
    if chunk_frames is not None and chunk_frames < 1:
      raise UserError(f"--chunk-frames {chunk_frames}: frames per inference chunk must be 1 or more")
    self.chunk = int(chunk_frames or weights.card.get("chunk_frames") or max(weights.window_frames, 16))
    self.overlap = int(self.chunk // 4 if overlap_frames is None else overlap_frames)
    if not 0 <= self.overlap < self.chunk:
      raise UserError(f"--overlap-frames {self.overlap}: the overlap of neighbouring chunks must be in "
                      f"[0, {self.chunk}) frames (below --chunk-frames {self.chunk})")
    self.group = group
    self.emotion_window_s = emotion_window_s
    if emotion_threshold is None:
      emotion_threshold = confidence.card_threshold(weights.card)
    self.emotion_threshold, self.pause_threshold = float(emotion_threshold), float(pause_threshold)
    # Temperature (and neutral-logit offset) of the emotion classifier, fitted by tools/eval_voices.py.
    self.temperature = float(weights.card.get("emotion_calibration", {}).get("temperature", 1.0))
    self.neutral_offset = confidence.card_neutral_offset(weights.card)
    self.familiar, limit = familiarity.load_gate(weights.source, weights.card)
    self.emotion_distance = limit if emotion_distance is None else float(emotion_distance)
    self._opening = pauses.opening_channels(weights.channel_names)
    self.network = ChunkNetwork(weights, self.chunk, group)
    self._clip = tuple(weights.channel_names) == ICT_CHANNELS  # the ICT channels are weights in [0, 1]

  @property
  def channel_names(self) -> tuple:
    return tuple(self.weights.channel_names)

  def audio_chunks(self, audio, sample_rate=None, silent_out=None):
    """(chunks, T) of the audio in this generator's chunks, pauses gated (sources.audio_chunks)."""
    return sources.audio_chunks(audio, sample_rate, self.chunk, self.overlap, self.pause_threshold,
                                silent_out)

  def window_chunks(self, windows_tfw):
    """(chunks, T) of a clip's mel windows [T,16,80] (sources.window_chunks)."""
    return sources.window_chunks(windows_tfw, self.chunk, self.overlap)

  def clip_emotion(self, audio, sample_rate=None) -> np.ndarray:
    """[D] the emotion latent of a whole clip (another speaker's voice, say), for `emotion_from`."""
    chunks, _ = self.audio_chunks(audio, sample_rate)
    pooled, _ = self.network.emotion_pass(chunks())
    return pooled.mean(axis=0)

  def _smoothed(self, pooled_nd, starts, length):
    """[n,D] each chunk's mean of the rows of `pooled_nd` (latents or probabilities) of the chunks centred
    within the emotion window around it."""
    centres = np.asarray(starts) + length / 2  # increasing
    half = self.emotion_window_s * schema.FPS / 2
    lo = np.searchsorted(centres, centres - half, side="left")
    hi = np.searchsorted(centres, centres + half, side="right")
    total = np.cumsum(np.concatenate([np.zeros((1, pooled_nd.shape[1])), pooled_nd]), axis=0)
    return ((total[hi] - total[lo]) / (hi - lo)[:, None]).astype(np.float32)

  def run(self, chunks, num_frames: int, *, keys, eye_te, beta0_k, transition_s=controls.DEFAULT_TRANSITION_S,
          info=None, rest_t=None):
    """Yields coefficient blocks [n,K] of a T-frame clip in order: the two passes of `generate`.

    `chunks` is what `audio_chunks`/`window_chunks` give, `keys` controls.EmotionKeys, `eye_te` a function
    T -> [T,4] eye control, `beta0_k` [K], `rest_t` [T] the pause gate's rest weights (pauses.rest_weight;
    None: no gate). `info` (a dict) receives eye, speech_emotion and emotion_trust.
    """
    info = {} if info is None else info
    length = min(self.chunk, num_frames)
    starts = streaming.chunk_starts(num_frames, self.chunk, self.overlap)
    speech_q = np.array([k.is_speech and not k.fallback for k in keys])
    auto_q = np.array([k.is_speech and k.fallback for k in keys])
    speech_nd = auto_nd = None
    if speech_q.any() or auto_q.any():
      pooled_nd, logits_ne = self.network.emotion_pass(chunks())
      probs_ne = confidence.calibrated_probs(logits_ne, self.temperature, self.neutral_offset)
      speech_nd = self._smoothed(pooled_nd, starts, length)
      info["speech_emotion"] = probs_ne.mean(axis=0)
      if auto_q.any():
        trust_n = confidence.trust(self._smoothed(probs_ne, starts, length), self.emotion_threshold)
        if self.familiar is not None:
          # Confident is not enough: the voice must also be like the ones the head learnt from.
          familiar_n = familiarity.trust(self.familiar.distance(speech_nd), self.emotion_distance)
          trust_n = np.minimum(trust_n, familiar_n)
          info["emotion_familiar"] = float(familiar_n.mean())
        trust_n = trust_n[:, None]
        auto_nd = trust_n * speech_nd + (1.0 - trust_n) * self.network.neutral_latent()
        info["emotion_trust"] = float(trust_n.mean())
    latents_qd = self.network.key_latents(keys)
    mix_tq = controls.mix_weights(keys, num_frames, transition_s=transition_s)
    eye = np.asarray(eye_te(num_frames), np.float32)
    info["eye"] = eye
    beta0 = np.broadcast_to(np.asarray(beta0_k, np.float32), (self.group, len(self.channel_names)))
    blender = streaming.OverlapAdd(num_frames, self.overlap)
    for group in self.network.groups(chunks()):
      mel, mask = self.network.batch(group)
      emotion = np.zeros((self.group, self.chunk, latents_qd.shape[1]), np.float32)
      eye_gce = np.zeros((self.group, self.chunk, schema.EYE), np.float32)
      rest_gc = np.zeros((self.group, self.chunk), np.float32)
      for row, (index, start, _) in enumerate(group):
        mix = mix_tq[start:start + length]
        emotion[row, :length] = mix @ latents_qd
        if speech_q.any():
          emotion[row, :length] += mix[:, speech_q].sum(axis=1, keepdims=True) * speech_nd[index]
        if auto_q.any():
          emotion[row, :length] += mix[:, auto_q].sum(axis=1, keepdims=True) * auto_nd[index]
        eye_gce[row, :length] = eye[start:start + length]
        if rest_t is not None:
          rest_gc[row, :length] = rest_t[start:start + length]
      coeffs = self.network.decode(mel, mask, emotion, beta0, eye_gce)
      if rest_gc.any():
        # The channels that part the lips go to the reference's rest; smiles, frowns and the rest stay.
        weight = rest_gc[:, :, None] * self._opening[None, None, :]
        coeffs = (1.0 - weight) * coeffs + weight * beta0[:, None, :]
      for row, (index, start, _) in enumerate(group):
        following = starts[index + 1] if index + 1 < len(starts) else None
        block = blender.add(start, coeffs[row, :length], following)
        yield np.clip(block, 0.0, 1.0) if self._clip else block

  def __call__(self, audio, sample_rate=None, *, ref=None, emotion=None, intensity=None, emotion_from=None,
               emotion_schedule=None, transition_s=controls.DEFAULT_TRANSITION_S, blink="auto", gaze="auto",
               pose="still", seed=0, bfm_model=None) -> Generation:
    """See `generate`."""
    # An emotion_from array shares the main audio's sample rate.
    keys = request.emotion_keys(emotion, intensity, emotion_from, emotion_schedule,
                                lambda clip: self.clip_emotion(clip, sample_rate))
    req = request.resolve(self.weights, keys=keys, ref=ref, transition_s=transition_s, blink=blink,
                          gaze=gaze, pose=pose, seed=seed, bfm_model=bfm_model)
    info, silent = {}, []
    chunks, num_frames = self.audio_chunks(audio, sample_rate, silent)
    rest_t = pauses.rest_weight(silent[0]) if silent[0].any() else None
    blocks = list(self.run(chunks, num_frames, keys=req.keys, eye_te=req.eye, beta0_k=req.beta0,
                           transition_s=req.transition_s, info=info, rest_t=rest_t))
    seq = CoeffSequence(
      coeffs=np.concatenate(blocks), channel_names=self.channel_names, fps=float(schema.FPS),
      pose=req.pose(num_frames), eye=info["eye"], beta0=req.beta0,
      model=os.path.splitext(os.path.basename(self.weights.face_model))[0])
    return Generation(seq, info.get("speech_emotion"), req.describe(), info.get("emotion_trust"),
                      int(silent[0].sum()), info.get("emotion_familiar"))


@functools.lru_cache(maxsize=2)
def cached_generator(checkpoint: str | None = None, chunk_frames: int | None = None,
                     overlap_frames: int | None = None,
                     emotion_threshold: float | None = None,
                     pause_threshold: float = pauses.DEFAULT_THRESHOLD,
                     emotion_distance: float | None = None) -> Generator:
  """A Generator for the bundled weights or a checkpoint, built once per process."""
  return Generator(load_weights(checkpoint), chunk_frames, overlap_frames,
                   emotion_threshold=emotion_threshold, pause_threshold=pause_threshold,
                   emotion_distance=emotion_distance)


def generate(audio, sample_rate: int | None = None, *, checkpoint: str | None = None, weights=None,
             chunk_frames: int | None = None, overlap_frames: int | None = None, ref=None, emotion=None,
             intensity=None, emotion_from=None, emotion_schedule=None,
             transition_s: float = controls.DEFAULT_TRANSITION_S, blink="auto", gaze="auto", pose="still",
             seed: int = 0, bfm_model=None, emotion_threshold: float | None = None,
             pause_threshold: float = pauses.DEFAULT_THRESHOLD,
             emotion_distance: float | None = None) -> Generation:
  """Speech -> expression coefficients of the network's face model (the built-in face for the demo weights).

  Args:
    audio: a file path (any format audio.io reads) or an array [N] / [N,channels] with `sample_rate`.
    checkpoint: a training run's folder; None uses the bundled demo weights. `weights` (weights.Weights)
      takes precedence over both.
    chunk_frames, overlap_frames: the chunking (`Generator`).
    ref: a coefficient file whose identity (β0) and still pose the output keeps.
    emotion: "happy", "happy@3", "happy=0.7+sad=0.3", "speech" (the emotion heard, however unsure) or
      None/"auto" (heard where confident, else neutral); with `intensity` 0..3 (default 2).
    emotion_from: another clip (path, or array at `sample_rate`) whose emotion to speak with.
    emotion_schedule: "0:neutral,3.5:happy@3,8:speech"; `transition_s` the length of each change.
    blink: "auto", "none", "rate=N" or a reference file; gaze: "auto", "still" or a reference file.
    pose: "still" (the reference's first pose, else frontal) or a file with a pose track.
    seed: for the random blinks and gaze.
    bfm_model: a BFM MorphableModel, to read the identity of BFM-space references (SadTalker .mat).
    emotion_threshold: `auto`'s confidence threshold (confidence.py); 0 always follows the speech; None:
      the weights' fitted one.
    pause_threshold: the pause gate's silence level (pauses.py), a fraction of the loudest frame's RMS;
      0 turns it off.
    emotion_distance: `auto`'s familiar-voice limit (familiarity.py); inf turns the gate off; None: the
      weights' calibrated one.
  Returns:
    A Generation: `.seq` (CoeffSequence: coeffs [T,K], eye, pose, beta0 at 25 fps), `.coeffs`,
    `.speech_emotion`.
  """
  if weights is not None:
    generator = Generator(weights, chunk_frames, overlap_frames, emotion_threshold=emotion_threshold,
                          pause_threshold=pause_threshold, emotion_distance=emotion_distance)
  else:
    generator = cached_generator(checkpoint, chunk_frames, overlap_frames, emotion_threshold,
                                 pause_threshold, emotion_distance)
  return generator(audio, sample_rate, ref=ref, emotion=emotion, intensity=intensity,
                   emotion_from=emotion_from, emotion_schedule=emotion_schedule, transition_s=transition_s,
                   blink=blink, gaze=gaze, pose=pose, seed=seed, bfm_model=bfm_model)
