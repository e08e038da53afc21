"""`generate`: speech -> per-frame expression coefficients, with emotion, eye, identity and pose controls.

    audio ──► 16 kHz, whole frames ──► log-mel ──► chunks of C frames (streaming.py)
       pass 1 (only when some emotion comes from audio): emotion encoder per chunk -> pooled latents,
              averaged over `emotion_window_s` around each chunk (steady, but free to drift over an hour)
       pass 2: content encoder + expression decoder per chunk, with per-frame emotion latents (controls.py),
              β0 and the eye control -> coefficients, blended across chunk overlaps
Chunks run in groups of fixed shape [G,C], so the two jitted functions compile once per network (and
JAX's persistent compilation cache, enabled here, keeps them across processes). Short audio is decoded
once and its mel windows reused by both passes; long files are streamed in blocks, so memory stays
bounded whatever the length (only the output coefficients grow, 212 bytes a frame).
"""

import dataclasses
import functools
import os

import jax
import numpy as np
import soxr

from a2e_jax.audio import io
from a2e_jax.core import schema
from a2e_jax.core.channels import ICT_CHANNELS
from a2e_jax.core.errors import UserError
from a2e_jax.core.paths import cache_dir
from a2e_jax.face.registry import resolve_model
from a2e_jax.formats.sequence import CoeffSequence
from a2e_jax.infer import controls, streaming
from a2e_jax.infer.reference import eye_reference, pose_reference, read_reference
from a2e_jax.infer.weights import load_weights
from a2e_jax.models.a2enet import A2ENet

GROUP = 32  # chunks per compiled call (32 beat 8, 16 and 64 in tools/bench_generate.py on 2 CPU cores)
CACHED_CHUNKS = 256  # mel windows of this many chunks (about 42 MB) are kept for the second pass
STREAM_SECONDS = 600.0  # files longer than this are streamed from disk instead of loaded
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
    speech_emotion: [E] probabilities the emotion classifier reads in the speech (schema.EMOTIONS order),
      or None when no emotion was taken from the audio.
    emotion: the requested emotion, in words.
  """

  seq: CoeffSequence
  speech_emotion: np.ndarray | None
  emotion: str

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
  """

  def __init__(self, weights, chunk_frames: int | None = None, overlap_frames: int | None = None,
               group: int = GROUP, emotion_window_s: float = DEFAULT_EMOTION_WINDOW_S):
    enable_compilation_cache()
    self.weights = weights
    self.chunk = int(chunk_frames or weights.card.get("chunk_frames") or max(weights.window_frames, 16))
    self.overlap = int(self.chunk // 4 if overlap_frames is None else overlap_frames)
    if not 0 <= self.overlap < self.chunk:
      raise UserError(f"chunk overlap {self.overlap} must be in [0, {self.chunk}) frames")
    self.group = group
    self.emotion_window_s = emotion_window_s
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

    self._emotion = jax.jit(emotion_fn)
    self._decode = jax.jit(decode_fn)
    self._labels = jax.jit(labels_fn)
    self._clip = tuple(weights.channel_names) == ICT_CHANNELS

  @property
  def channel_names(self) -> tuple:
    return tuple(self.weights.channel_names)

  # -- audio sources -------------------------------------------------------------------------------------

  def _source(self, audio, sample_rate):
    """(a function returning the audio's blocks, cut to whole frames; T frames) for a path or an array."""
    if isinstance(audio, str | os.PathLike):
      path = os.fspath(audio)
      if io.audio_info(path).seconds > STREAM_SECONDS:
        num_frames = streaming.count_frames(streaming.whole_frames(io.iter_audio(path)))
        return (lambda: streaming.whole_frames(io.iter_audio(path))), num_frames
      wav = io.load_audio(path)
    else:
      wav = np.asarray(audio, np.float32)
      if wav.ndim == 2:
        wav = wav.mean(axis=1 if wav.shape[1] <= 8 else 0)
      if sample_rate is None:
        raise UserError("generate(): pass sample_rate with an audio array (e.g. sample_rate=16000)")
      if sample_rate != schema.SAMPLE_RATE:
        wav = soxr.resample(wav, sample_rate, schema.SAMPLE_RATE).astype(np.float32)
      wav = io.validate(wav)
    num_frames = wav.size // schema.SAMPLES_PER_FRAME
    wav = wav[:num_frames * schema.SAMPLES_PER_FRAME]
    blocks_of = 10 * schema.SAMPLE_RATE
    return (lambda: (wav[i:i + blocks_of] for i in range(0, wav.size, blocks_of))), num_frames

  def audio_chunks(self, audio, sample_rate=None):
    """(chunks, T): `chunks()` yields (index, start, windows [c,16,80]) of every chunk of the audio, each
    time it is called; the windows of a clip of at most CACHED_CHUNKS chunks are kept after the first."""
    blocks, num_frames = self._source(audio, sample_rate)
    cache = []
    collect = len(streaming.chunk_starts(num_frames, self.chunk, self.overlap)) <= CACHED_CHUNKS

    def chunks():
      if cache:
        yield from cache
        return
      for item in streaming.iter_chunk_windows(blocks(), num_frames, self.chunk, self.overlap):
        if collect:
          cache.append(item)
        yield item

    return chunks, num_frames

  def window_chunks(self, windows_tfw):
    """(chunks, T) like `audio_chunks`, from a clip's mel windows [T,16,80] (e.g. a dataset's)."""
    num_frames = windows_tfw.shape[0]
    length = min(self.chunk, num_frames)
    starts = streaming.chunk_starts(num_frames, self.chunk, self.overlap)
    return (lambda: ((i, s, windows_tfw[s:s + length]) for i, s in enumerate(starts))), num_frames

  def _groups(self, chunks):
    """Chunks in groups of `group`: lists of (index, start, windows)."""
    group = []
    for item in chunks:
      group.append(item)
      if len(group) == self.group:
        yield group
        group = []
    if group:
      yield group

  def _batch(self, group):
    """Stacked mel [G,C,16,80] and mask [G,C] of a group, padded to G chunks of C frames (one compiled
    shape whatever the clip's length)."""
    mel = np.zeros((self.group, self.chunk, schema.MEL_WINDOW, schema.MEL_BANDS), np.float32)
    mask = np.zeros((self.group, self.chunk), np.float32)
    for row, (_, _, windows) in enumerate(group):
      mel[row, :windows.shape[0]] = windows
      mask[row, :windows.shape[0]] = 1.0
    return mel, mask

  # -- passes --------------------------------------------------------------------------------------------

  def _emotion_pass(self, chunks):
    """([n,D] pooled emotion latents, [n,E] class probabilities) of every chunk."""
    pooled, probs = [], []
    for group in self._groups(chunks):
      mel, mask = self._batch(group)
      pooled_gd, logits_ge = self._emotion(self.weights.params, mel, mask)
      pooled.append(np.asarray(pooled_gd)[:len(group)])
      logits = np.asarray(logits_ge, np.float64)[:len(group)]
      e = np.exp(logits - logits.max(axis=1, keepdims=True))
      probs.append(e / e.sum(axis=1, keepdims=True))
    return np.concatenate(pooled), np.concatenate(probs)

  def _smoothed(self, pooled_nd, starts, length):
    """[n,D] each chunk's speech emotion: the mean of the chunk latents centred within the window."""
    centres = np.asarray(starts) + length / 2  # increasing
    half = self.emotion_window_s * schema.FPS / 2
    lo = np.searchsorted(centres, centres - half, side="left")
    hi = np.searchsorted(centres, centres + half, side="right")
    total = np.cumsum(np.concatenate([np.zeros((1, pooled_nd.shape[1])), pooled_nd]), axis=0)
    return ((total[hi] - total[lo]) / (hi - lo)[:, None]).astype(np.float32)

  def clip_emotion(self, audio, sample_rate=None) -> np.ndarray:
    """[D] the emotion latent of a whole clip (another speaker's voice, say), for `emotion_from`."""
    chunks, _ = self.audio_chunks(audio, sample_rate)
    pooled, _ = self._emotion_pass(chunks())
    return pooled.mean(axis=0)

  def stream(self, audio, sample_rate=None, **kwargs):
    """Yields coefficient blocks [n,K] of the whole clip in order (see `run`)."""
    chunks, num_frames = self.audio_chunks(audio, sample_rate)
    yield from self.run(chunks, num_frames, **kwargs)

  def run(self, chunks, num_frames: int, *, keys, eye_te, beta0_k, transition_s=controls.DEFAULT_TRANSITION_S,
          info=None):
    """Yields coefficient blocks [n,K] of a T-frame clip in order: the core of `generate`.

    `chunks` is what `audio_chunks`/`window_chunks` give, `keys` controls.EmotionKeys, `eye_te` a function
    T -> [T,4] eye control, `beta0_k` [K]. `info` (a dict) receives eye and speech_emotion.
    """
    info = {} if info is None else info
    length = min(self.chunk, num_frames)
    starts = streaming.chunk_starts(num_frames, self.chunk, self.overlap)
    speech_q = np.array([k.is_speech for k in keys])
    speech_nd = None
    if speech_q.any():
      pooled_nd, probs_ne = self._emotion_pass(chunks())
      speech_nd = self._smoothed(pooled_nd, starts, length)
      info["speech_emotion"] = probs_ne.mean(axis=0)
    latents_qd = self._key_latents(keys)
    mix_tq = controls.mix_weights(keys, num_frames, transition_s=transition_s)
    eye = np.asarray(eye_te(num_frames), np.float32)
    info["eye"] = eye
    beta0 = np.broadcast_to(np.asarray(beta0_k, np.float32), (self.group, len(self.channel_names)))
    blender = streaming.OverlapAdd(num_frames, self.overlap)
    for group in self._groups(chunks()):
      mel, mask = self._batch(group)
      emotion = np.zeros((self.group, self.chunk, latents_qd.shape[1]), np.float32)
      eye_gce = np.zeros((self.group, self.chunk, schema.EYE), np.float32)
      for row, (index, start, _) in enumerate(group):
        mix = mix_tq[start:start + length]
        emotion[row, :length] = mix @ latents_qd
        if speech_nd is not None:
          emotion[row, :length] += mix[:, speech_q].sum(axis=1, keepdims=True) * speech_nd[index]
        eye_gce[row, :length] = eye[start:start + length]
      coeffs = np.asarray(self._decode(self.weights.params, mel, mask, emotion, beta0, eye_gce))
      for row, (index, start, _) in enumerate(group):
        following = starts[index + 1] if index + 1 < len(starts) else None
        block = blender.add(start, coeffs[row, :length], following)
        yield np.clip(block, 0.0, 1.0) if self._clip else block

  def _key_latents(self, keys) -> np.ndarray:
    """[Q,D] latents of the keys: label embeddings, fixed latents, zeros for speech keys."""
    if any(k.weights is not None for k in keys):
      weights_qe, intensity_q = controls.label_arrays(keys)
      latents = np.array(self._labels(self.weights.params, weights_qe, intensity_q), np.float32)
    else:  # nothing to embed: the label embedding need not be compiled (a faster cold start)
      latents = np.zeros((len(keys), self.weights.config.dim), np.float32)
    for q, key in enumerate(keys):
      if key.latent is not None:
        latents[q] = key.latent
      elif key.is_speech:
        latents[q] = 0.0
    return latents

  # -- the whole job -------------------------------------------------------------------------------------

  def __call__(self, audio, sample_rate=None, *, ref=None, emotion=None, intensity=None, emotion_from=None,
               emotion_schedule=None, transition_s=controls.DEFAULT_TRANSITION_S, blink="auto", gaze="auto",
               pose="still", seed=0, bfm_model=None) -> Generation:
    """See `generate`."""
    keys = self._emotion_keys(emotion, intensity, emotion_from, emotion_schedule, sample_rate)
    reference = self._reference(ref, bfm_model)
    beta0 = reference.beta0 if reference is not None else np.zeros(len(self.channel_names), np.float32)
    name, scale = controls.single_label(keys)
    blink_rng, gaze_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    blink_spec = self._eye_part(blink, 0, "blink")
    gaze_spec = self._eye_part(gaze, 2, "gaze")

    def eye_te(num_frames):
      return np.concatenate([
        controls.blink_track(blink_spec, num_frames, name, scale, blink_rng),
        controls.gaze_track(gaze_spec, num_frames, name, scale, gaze_rng)], axis=1)

    info = {}
    chunks, num_frames = self.audio_chunks(audio, sample_rate)
    blocks = list(self.run(chunks, num_frames, keys=keys, eye_te=eye_te, beta0_k=beta0,
                           transition_s=transition_s, info=info))
    if isinstance(pose, str | os.PathLike) and os.fspath(pose) != "still":
      pose = pose_reference(os.fspath(pose))
    still = reference.pose[0] if reference is not None and reference.pose is not None else None
    seq = CoeffSequence(
      coeffs=np.concatenate(blocks), channel_names=self.channel_names, fps=float(schema.FPS),
      pose=controls.pose_track(pose, num_frames, still), eye=info["eye"], beta0=np.asarray(beta0, np.float32),
      model=os.path.splitext(os.path.basename(self.weights.face_model))[0])
    described = ", ".join(f"{k.time_s:g}s:{k.describe()}" if len(keys) > 1 else k.describe() for k in keys)
    return Generation(seq, info.get("speech_emotion"), described)

  def _emotion_keys(self, emotion, intensity, emotion_from, emotion_schedule, sample_rate):
    given = [x is not None for x in (emotion, emotion_from, emotion_schedule)]
    if sum(given) > 1:
      raise UserError("give at most one of emotion, emotion_from and emotion_schedule")
    if emotion_schedule is not None:
      return controls.parse_schedule(emotion_schedule, intensity)
    if emotion_from is not None:
      # An array clip shares the main audio's sample rate.
      return [controls.EmotionKey(latent=self.clip_emotion(emotion_from, sample_rate))]
    if emotion is None:
      if intensity is not None:
        raise UserError("an intensity needs an emotion label (e.g. emotion='happy', intensity=3)")
      return [controls.EmotionKey()]
    return [controls.parse_emotion(emotion, intensity)]

  def _reference(self, ref, bfm_model):
    if ref is None:
      return None

    network_model = None
    if self.weights.face_model:
      network_model = resolve_model(self.weights.face_model)
    return read_reference(os.fspath(ref), self.channel_names, network_model, bfm_model)

  @staticmethod
  def _eye_part(spec, column: int, what: str):
    """A blink/gaze spec: a keyword, or a reference file's eye columns [T',2]."""
    if isinstance(spec, np.ndarray):
      return spec
    spec = os.fspath(spec)
    if spec in ("auto", "none", "still") or spec.startswith("rate="):
      return spec
    if not os.path.exists(spec):
      raise UserError(f"--{what} {spec!r}: no such file; use " +
                      ("auto, none, rate=N" if what == "blink" else "auto, still") + " or a reference file")

    return eye_reference(spec)[:, column:column + 2]


@functools.lru_cache(maxsize=2)
def cached_generator(checkpoint: str | None = None, chunk_frames: int | None = None,
                     overlap_frames: int | None = None) -> Generator:
  """A Generator for the bundled weights or a checkpoint, built once per process."""
  return Generator(load_weights(checkpoint), chunk_frames, overlap_frames)


def generate(audio, sample_rate: int | None = None, *, checkpoint: str | None = None, weights=None,
             chunk_frames: int | None = None, overlap_frames: int | None = None, **controls_) -> Generation:
  """Speech -> expression coefficients of the network's face model (the built-in face for the demo weights).

  Args:
    audio: a file path (any format audio.io reads) or an array [N] / [N,channels] with `sample_rate`.
    checkpoint: a training run's folder; None uses the bundled demo weights. `weights` (weights.Weights)
      takes precedence over both.
    ref: a coefficient file whose identity (β0) and still pose the output keeps.
    emotion: "happy", "happy@3", "happy=0.7+sad=0.3" or "speech"; with `intensity` 0..3 (default 2).
    emotion_from: another clip (path, or array at `sample_rate`) whose emotion to speak with.
    emotion_schedule: "0:neutral,3.5:happy@3,8:speech"; `transition_s` the length of each change.
    blink: "auto", "none", "rate=N" or a reference file; gaze: "auto", "still" or a reference file.
    pose: "still" (the reference's first pose, else frontal) or a file with a pose track.
    seed: for the random blinks and gaze.
    bfm_model: a BFM MorphableModel, to read the identity of BFM-space references (SadTalker .mat).
  Returns:
    A Generation: `.seq` (CoeffSequence: coeffs [T,K], eye, pose, beta0 at 25 fps), `.coeffs`,
    `.speech_emotion`.
  """
  if weights is not None:
    generator = Generator(weights, chunk_frames, overlap_frames)
  else:
    generator = cached_generator(checkpoint, chunk_frames, overlap_frames)
  return generator(audio, sample_rate, **controls_)
