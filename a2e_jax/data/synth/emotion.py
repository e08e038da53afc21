"""Emotion in the voice: MEAD's 8 classes x 3 intensities as prosody and voice quality.

Each emotion moves a handful of acoustic cues away from the speaker's neutral voice; intensity scales the
move (`INTENSITY_SCALE`). espeak-ng sets the prosody (rate, pitch level, pitch range, word gaps, and the
clause tune through the final punctuation — "!" or "?" change the tune, never the phonemes); the voice
quality is added to the waveform afterwards with `dsp` filters. The directions and rough sizes follow the
literature on vocal emotion:

- Murray & Arnott (1993), "Toward the simulation of emotion in synthetic speech", JASA 93(2):1097–1108,
  Table I: anger slightly faster, pitch very much higher, much wider range, louder, tense articulation;
  happiness faster, pitch much higher, much wider range, louder; sadness slightly slower, slightly lower,
  narrower, quieter, "slurring"; fear much faster, pitch very much higher, wider, irregular voicing;
  disgust very much slower, pitch very much lower, "grumbled chest tone".
- Banse & Scherer (1996), "Acoustic profiles in vocal emotion expression", JPSP 70(3):614–636, and
  Scherer (2003), Speech Communication 40:227–256: contempt lower F0, slower, flat, low energy; surprise
  high F0, wide range.
- Gobl & Ní Chasaide (2003), "The role of voice quality in communicating emotion, mood and attitude",
  Speech Communication 40:189–212: tense voice (flatter spectral tilt, more high-frequency energy) for
  anger; breathy/lax voice (steeper tilt, aspiration noise) for sadness, fear and intimacy.
- Williams & Stevens (1972), "Emotions and speech: some acoustical correlates", JASA 52:1238–1250: fear
  and anxiety show F0 tremor and irregularity — rendered as a 5–9 Hz pitch and amplitude tremor.

Effects: spectral tilt is a high shelf at 2 kHz, chest resonance a low shelf at 250 Hz, breathiness
aspiration noise (1–7 kHz) following the speech envelope, tremor a modulated delay line (pitch) with a
matching amplitude modulation. All of it keeps time: phoneme events stay where espeak put them (the
tremor's delay line moves samples by under a millisecond).
"""

import dataclasses

import numpy as np

from a2e_jax.core import schema
from a2e_jax.data.synth import dsp

INTENSITY_SCALE = {1: 0.45, 2: 0.72, 3: 1.0}
# espeak's pitch parameter is close to logarithmic in F0: +30 units raise F0 by about x1.35 (5.2 semitones)
# for male and female variants alike (measured on en-us+m3 and en-us+f2).
PITCH_UNITS_PER_SEMITONE = 5.8


@dataclasses.dataclass(frozen=True)
class VoiceStyle:
  """An emotion's voice at full intensity, as offsets from the speaker's neutral voice.

  rate: speaking-rate factor; pitch_st: F0 shift in semitones; pitch_range: espeak range offset (0..100
  scale); gain_db: loudness; tilt_db: high-shelf gain (tense > 0, lax < 0); chest_db: low-shelf gain;
  breath: aspiration noise relative to the speech envelope; tremor: relative F0 modulation depth;
  word_gap: extra pause between words in 10 ms units; punctuation: the clause tune; articulation: scale
  of mouth movements (tense and precise > 1, slurred < 1).
  """

  rate: float = 1.0
  pitch_st: float = 0.0
  pitch_range: float = 0.0
  gain_db: float = 0.0
  tilt_db: float = 0.0
  chest_db: float = 0.0
  breath: float = 0.0
  tremor: float = 0.0
  word_gap: float = 0.0
  punctuation: str = "."
  articulation: float = 1.0


VOICE_STYLES = {
  "neutral": VoiceStyle(),
  "angry": VoiceStyle(rate=1.12, pitch_st=4.0, pitch_range=25, gain_db=9, tilt_db=6, chest_db=1,
                      punctuation="!", articulation=1.2),
  "contempt": VoiceStyle(rate=0.87, pitch_st=-2.0, pitch_range=-22, gain_db=-2, tilt_db=-1, chest_db=2,
                         breath=0.04, articulation=0.85),
  "disgusted": VoiceStyle(rate=0.76, pitch_st=-3.5, pitch_range=12, gain_db=-3, tilt_db=-3, chest_db=5,
                          breath=0.05, word_gap=1, articulation=0.9),
  "fear": VoiceStyle(rate=1.25, pitch_st=6.0, pitch_range=15, gain_db=1, tilt_db=1, chest_db=-3, breath=0.10,
                     tremor=0.035, articulation=1.05),
  "happy": VoiceStyle(rate=1.08, pitch_st=5.0, pitch_range=30, gain_db=4, tilt_db=3, breath=0.03,
                      punctuation="!", articulation=1.12),
  "sad": VoiceStyle(rate=0.78, pitch_st=-2.5, pitch_range=-30, gain_db=-7, tilt_db=-7, breath=0.12,
                    word_gap=1, articulation=0.72),
  "surprised": VoiceStyle(rate=1.04, pitch_st=7.0, pitch_range=35, gain_db=4, tilt_db=2, breath=0.02,
                          punctuation="?", articulation=1.15),
}  # fmt: skip


def style(emotion: str, intensity: int) -> VoiceStyle:
  """The emotion's VoiceStyle scaled to MEAD intensity 1..3 (neutral ignores the intensity)."""
  if emotion not in VOICE_STYLES:
    raise ValueError(f"unknown emotion {emotion!r}; choose one of {', '.join(schema.EMOTIONS)}")
  if intensity not in INTENSITY_SCALE:
    raise ValueError(f"intensity {intensity} is not one of {tuple(INTENSITY_SCALE)}")
  full, s = VOICE_STYLES[emotion], INTENSITY_SCALE[intensity]
  scaled = {f.name: getattr(full, f.name) * s for f in dataclasses.fields(VoiceStyle)
            if f.name not in ("punctuation", "rate", "articulation")}
  return VoiceStyle(rate=1 + s * (full.rate - 1), articulation=1 + s * (full.articulation - 1),
                    punctuation=full.punctuation if s > 0.5 else ".", **scaled)


def espeak_params(voice: VoiceStyle, pitch: float, pitch_range: float, rate: float) -> dict:
  """espeak.synthesize keyword arguments for a speaker's (pitch, range, rate) spoken in `voice`."""
  return {"rate": rate * voice.rate, "pitch": pitch + PITCH_UNITS_PER_SEMITONE * voice.pitch_st,
          "pitch_range": pitch_range + voice.pitch_range, "word_gap": voice.word_gap}


def apply_voice_quality(x: np.ndarray, sample_rate: int, voice: VoiceStyle, rng: np.random.Generator):
  """[N] float64 speech -> [N] with the style's tremor, spectral shape, breathiness and gain."""
  t = np.arange(x.shape[0]) / sample_rate
  if voice.tremor > 0:
    # Two drifting tremor components: a delay d(t) = D sin(2 pi f t) scales F0 by 1 - 2 pi f D cos(.).
    rates = rng.uniform(5.0, 9.0, 2)
    phases = rng.uniform(0, 2 * np.pi, 2)
    delay = sum(voice.tremor / (2 * np.pi * f) * sample_rate * np.sin(2 * np.pi * f * t + p) / 2
                for f, p in zip(rates, phases))
    x = dsp.warp(x, delay) * (1 + 3 * voice.tremor * np.sin(2 * np.pi * rates[0] * t + phases[0]))
  bands = (("highshelf", 2000.0, voice.tilt_db), ("lowshelf", 250.0, voice.chest_db))
  x = dsp.equalize(x, sample_rate, bands)
  if voice.breath > 0:
    noise = dsp.band_noise(rng, x.shape[0], sample_rate, 1000.0, 7000.0)
    x = x + voice.breath * dsp.envelope(x, sample_rate) * noise
  return x * 10.0 ** (voice.gain_db / 20.0)
