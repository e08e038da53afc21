"""One clip of the corpus: emotional speech from espeak-ng and its time-aligned face, eyes and head.

Audio: espeak-ng at 22,050 Hz with the speaker's and the emotion's prosody -> 16 kHz (polyphase
resampling) -> the emotion's voice quality -> the speaker's timbre -> a short silent lead-in -> zero
padding to whole video frames, so the wav holds exactly T x 640 samples for T frames at 25 fps. Speakers
of other engines (voices.EngineSpeaker) take the engine's neutral rendition at 16 kHz instead, and the
speaker's and the emotion's pitch, range and tempo (and the speaker's vocal-tract warp) come from WORLD
resynthesis (world_voice.py); the rest is the same. The engine's rendition and its WORLD analysis are
cached per sentence, so the 22 styles of a group analyse it once. Face: at
each frame centre, coefficients = clip(beta0 + visemes + emotion expression + eye channels, 0, 1) in
ICT_CHANNELS order, then mouthClose = lip closure x jawOpen (visemes.close_lips); the eye control and head
pose come with it. Phoneme events keep espeak's exact sample
positions, shifted by the lead-in.
"""

import functools
import math
import typing

import numpy as np
import scipy.signal

from a2e_jax.core import schema
from a2e_jax.core.channels import ICT_CHANNELS
from a2e_jax.data.synth import (
  dsp,
  engines,
  espeak,
  expressions,
  eyes,
  phonemes,
  pose,
  visemes,
  voices,
  world_voice,
)
from a2e_jax.data.synth import emotion as emotional_voice
from a2e_jax.formats.sequence import CoeffSequence

# Brings a neutral voice to about -29 dBFS RMS (espeak's default output is near -21 dBFS), leaving the
# angriest voices (+9 dB) headroom below full scale.
BASE_GAIN_DB = -8.0
PEAK_LIMIT = 0.99
LEAD_IN_S = (0.1, 0.3)


class PhoneEvents(typing.NamedTuple):
  """Phonemes of one clip: espeak mnemonics (with stress marks), stable ids, start times [P] in seconds."""

  names: tuple
  ids: np.ndarray
  start_s: np.ndarray


class Utterance(typing.NamedTuple):
  """`synthesize_utterance`'s result: wav [T*640] float32 at 16 kHz, its phonemes and its face."""

  wav: np.ndarray
  phones: PhoneEvents
  seq: CoeffSequence


def _accents(names, start_s, end_s, wav):
  """(time_s, strength) per primary-stressed vowel; strength grows with the vowel's loudness."""
  found = []
  for i, name in enumerate(names):
    bare, stress = phonemes.split_stress(name)
    if stress == 2 and phonemes.viseme_classes(bare)[0] in phonemes.VOWEL_CLASSES:
      stop = start_s[i + 1] if i + 1 < len(names) else end_s
      lo, hi = int(start_s[i] * schema.SAMPLE_RATE), int(stop * schema.SAMPLE_RATE)
      found.append((start_s[i] + 0.3 * (stop - start_s[i]), dsp.rms_db(wav[lo:max(hi, lo + 1)])))
  if not found:
    return []
  median = float(np.median([db for _, db in found]))
  return [(t, float(np.clip((db - median + 6) / 12, 0, 1))) for t, db in found]


@functools.lru_cache(maxsize=8)
def _engine_rendition(engine: str, voice: str, text: str):
  """(WORLD analysis at 16 kHz, phones ((mnemonic, start_s), ...)) of an engine's neutral rendition."""
  speech = engines.get_engine(engine).speak(text, voice)
  x = speech.audio
  if speech.sample_rate != schema.SAMPLE_RATE:
    x = scipy.signal.resample_poly(x, schema.SAMPLE_RATE, speech.sample_rate)
  return world_voice.analyse(x, schema.SAMPLE_RATE), speech.phones


def _espeak_speech(person, voice, spoken):
  """(16 kHz audio, phone names, start times in s) from espeak-ng with the speaker's and style's prosody."""
  params = emotional_voice.espeak_params(voice, person.pitch, person.pitch_range, person.rate)
  speech = espeak.synthesize(spoken, person.voice, **params)
  x = scipy.signal.resample_poly(speech.audio / 32768.0, schema.SAMPLE_RATE, speech.sample_rate)
  names = tuple(n for n, _ in speech.phonemes)
  return x, names, np.array([s for _, s in speech.phonemes], np.float64) / speech.sample_rate


def _engine_speech(person, voice, spoken):
  """The same for an EngineSpeaker: the engine's rendition restyled by WORLD resynthesis."""
  analysis, phones = _engine_rendition(person.engine, person.voice, spoken)
  tempo = person.tempo * voice.rate
  range_scale = person.range_scale * max(0.2, (50.0 + voice.pitch_range) / 50.0)
  x = world_voice.resynthesize(analysis, person.pitch_st + voice.pitch_st, range_scale, tempo, person.vtl)
  return x, tuple(n for n, _ in phones), np.array([s for _, s in phones], np.float64) / tempo


def synthesize_utterance(text: str, speaker=0, emotion: str = "neutral", intensity: int = 1,
                         seed=0) -> Utterance:
  """Speaks `text` as `speaker` (index, "spk03", "flite03", a voices.Speaker or EngineSpeaker) in an
  emotion and intensity 1..3.

  Returns (wav [T*640] float32 at 16 kHz, PhoneEvents, CoeffSequence with coeffs [T,53], pose [T,6],
  eye [T,4] and beta0 [53], model "builtin"). Deterministic in `seed` (an int or a sequence of ints).
  """
  person = voices.parse_speaker(speaker)
  name = schema.EMOTIONS[schema.emotion_index(emotion)]
  voice = emotional_voice.style(name, intensity)
  scale = emotional_voice.INTENSITY_SCALE[intensity] if name != "neutral" else 0.0
  audio_rng, face_rng, eye_rng, pose_rng = (np.random.default_rng(s) for s in
                                            np.random.SeedSequence(seed).spawn(4))

  spoken = text.strip().rstrip(".!?;:, ") + voice.punctuation
  speak = _engine_speech if isinstance(person, voices.EngineSpeaker) else _espeak_speech
  x, names, event_s = speak(person, voice, spoken)
  x = emotional_voice.apply_voice_quality(x, schema.SAMPLE_RATE, voice, audio_rng)
  x = dsp.equalize(x, schema.SAMPLE_RATE, person.timbre_bands())
  x *= 10.0 ** ((BASE_GAIN_DB + person.gain_db) / 20.0)
  lead = int(audio_rng.uniform(*LEAD_IN_S) * schema.SAMPLE_RATE)
  num_frames = math.ceil((lead + x.shape[0]) / schema.SAMPLES_PER_FRAME)
  wav = np.zeros(num_frames * schema.SAMPLES_PER_FRAME)
  wav[lead:lead + x.shape[0]] = x
  wav *= min(1.0, PEAK_LIMIT / max(np.abs(wav).max(), 1e-9))

  start_s = lead / schema.SAMPLE_RATE + event_s
  phones = PhoneEvents(names, np.array([phonemes.phoneme_id(n) for n in names], np.int32),
                       start_s.astype(np.float32))
  speech_end_s = (lead + x.shape[0]) / schema.SAMPLE_RATE
  accents = _accents(names, start_s, speech_end_s, wav)

  times = (np.arange(num_frames) + 0.5) / schema.FPS
  events = list(zip(names, start_s))
  mouth = visemes.viseme_track(events, times, speech_end_s, person.articulation * voice.articulation)
  ramp = expressions.onset_ramp(times, face_rng)
  face = expressions.expression_track(name, intensity, times, accents, person.expressivity, ramp, face_rng)
  eye = eyes.eye_control(times, num_frames / schema.FPS, name, scale, eye_rng)
  head = pose.head_pose(times, name, scale, accents, ramp, pose_rng)
  coeffs = np.clip(person.beta0[None, :] + mouth + face + eyes.eye_channels(eye), 0.0, 1.0)
  coeffs = visemes.close_lips(coeffs, visemes.closure_track(events, times, speech_end_s))
  seq = CoeffSequence(coeffs=coeffs.astype(np.float32), channel_names=ICT_CHANNELS, fps=float(schema.FPS),
                      pose=head, eye=eye, beta0=person.beta0.copy(), model="builtin")
  return Utterance(wav.astype(np.float32), phones, seq)
