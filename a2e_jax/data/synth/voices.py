"""Speakers: an espeak-ng accent and voice variant, a personal pitch, rate and timbre, and a resting face.

Speakers of other engines (`EngineSpeaker`, ids like "flite03") are one of that engine's voices with
personal warps applied to its waveform (world_voice.py): pitch, tempo, vocal-tract length, timbre.

Speaker k is the same person in every corpus, preset and seed (its parameters come from a generator
seeded with k alone), so "spk03" means one voice and one face everywhere — in the corpus, the demo and
evaluation. The first speakers alternate male and female variants and run through the accents, so even a
small corpus has variety. Timbre beyond the variant's own formants comes from a spectral tilt (a high
shelf) and one broad formant-region peak or dip, the two cues that most separate voices of similar pitch.
"""

import dataclasses
from typing import ClassVar

import numpy as np

from a2e_jax.data.synth import expressions

ACCENTS = ("en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-us-nyc", "en-029", "en-gb-x-gbclan",
           "en-gb-x-gbcwmd")  # fmt: skip
# Variants that sound human (no robots, whispers or croaks), alternating male and female.
VARIANTS = ("m1", "f1", "m2", "f2", "m3", "f3", "m4", "f4", "m5", "f5", "m6", "Annie", "m7", "steph", "paul",
            "linda")  # fmt: skip
MAX_SPEAKERS = len(ACCENTS) * len(VARIANTS)
# A stable number per engine, for speakers' seeds: speaker k of engine e draws from [0x5EED, 1000 e + k].
ENGINE_CODES = {"espeak": 0, "flite": 1, "festival": 2, "hibari": 3, "piper": 4}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Person:
  """What every synthetic person has, whichever engine speaks for it: a catalogue place, a voice's level
  and timbre, and a face.

  Attributes:
    index: catalogue position k among its engine's speakers.
    voice: the engine's voice ("accent+variant" for espeak-ng).
    gain_db: level offset of this speaker's voice.
    tilt_db: high-shelf gain above 2 kHz (brighter > 0, darker < 0).
    formant_hz, formant_db: a broad peak/dip in the formant region (the timbre's colour).
    articulation: scale of this speaker's mouth movements (some people mumble, some articulate widely).
    expressivity: scale of this speaker's emotional facial expressions.
    beta0: [53] resting expression offset in ICT_CHANNELS order (the identity signal).
  A subclass names its `engine` (a key of ENGINE_CODES).
  """

  index: int
  voice: str
  gain_db: float
  tilt_db: float
  formant_hz: float
  formant_db: float
  articulation: float
  expressivity: float
  beta0: np.ndarray = dataclasses.field(repr=False, compare=False)

  @property
  def seed_key(self) -> int:
    """1000 e + k, the key of this speaker's random draws (espeak's code is 0: speaker k draws from k)."""
    return 1000 * ENGINE_CODES[self.engine] + self.index

  def timbre_bands(self):
    """EQ bands (kind, freq_hz, gain_db, q) that colour this speaker's voice."""
    return (("highshelf", 2000.0, self.tilt_db), ("peak", self.formant_hz, self.formant_db, 1.2))


def _personal_traits(rng: np.random.Generator, spread: float = 1.0) -> dict:
  """Person's level, timbre and face drawn from `rng`, in a fixed order; `spread` scales the timbre's
  tilt and formant gain (0: the voice's own colour)."""
  return dict(
    gain_db=float(rng.uniform(-2, 2)),
    tilt_db=float(spread * rng.uniform(-4, 4)),
    formant_hz=float(rng.uniform(600, 3000)),
    formant_db=float(spread * rng.uniform(-4, 4)),
    articulation=float(rng.uniform(0.85, 1.15)),
    expressivity=float(rng.uniform(0.85, 1.15)),
    beta0=expressions.resting_offset(rng),
  )


@dataclasses.dataclass(frozen=True, kw_only=True)
class Speaker(Person):
  """One synthetic person of espeak-ng (id "spk{k:02d}").

  Attributes (besides `Person`'s):
    pitch, pitch_range: espeak pitch level and range (0..100, 50 = the variant's own).
    rate: speaking rate in words per minute.
  """

  engine: ClassVar[str] = "espeak"
  pitch: float
  pitch_range: float
  rate: float

  @property
  def id(self) -> str:
    return f"spk{self.index:02d}"


def make_speaker(index: int) -> Speaker:
  """Speaker `index` (0 <= index < MAX_SPEAKERS) of the fixed catalogue."""
  if not 0 <= index < MAX_SPEAKERS:
    raise ValueError(f"speaker index {index} outside 0..{MAX_SPEAKERS - 1}")
  rng = np.random.default_rng([0x5EED, index])
  quotient, variant = divmod(index, len(VARIANTS))
  # (quotient + index) mod 8 walks all accents for each variant before any (accent, variant) pair repeats.
  accent = ACCENTS[(quotient + index) % len(ACCENTS)]
  return Speaker(
    index=index,
    voice=f"{accent}+{VARIANTS[variant]}",
    pitch=float(rng.uniform(40, 60)),
    pitch_range=float(rng.uniform(40, 60)),
    rate=float(rng.uniform(150, 185)),
    **_personal_traits(rng),
  )


@dataclasses.dataclass(frozen=True, kw_only=True)
class EngineSpeaker(Person):
  """A speaker of another engine (id "{engine}{k:02d}"): one of its voices (voice k mod the engine's
  voices) with personal warps.

  Attributes (besides `Person`'s):
    engine: the engine's name.
    pitch_st: F0 shift in semitones; range_scale: F0 excursions' scale; tempo: speaking-rate factor;
    vtl: formant scale (a shorter vocal tract > 1).
  """

  engine: str
  pitch_st: float
  range_scale: float
  tempo: float
  vtl: float

  @property
  def id(self) -> str:
    return f"{self.engine}{self.index:02d}"


def make_engine_speaker(engine: str, index: int, engine_voices: tuple) -> EngineSpeaker:
  """Speaker `index` of `engine`, whose voices are `engine_voices` (taken in turn)."""
  if engine not in ENGINE_CODES or engine == "espeak":
    raise ValueError(f"no speaker catalogue for engine {engine!r}; use one of {', '.join(ENGINE_CODES)}")
  if not 0 <= index < 1000:
    raise ValueError(f"speaker index {index} outside 0..999")
  rng = np.random.default_rng([0x5EED, 1000 * ENGINE_CODES[engine] + index])
  # The first round of each voice is the voice as the engine makes it; later rounds are warped.
  plain = index < len(engine_voices)
  spread = 0.0 if plain else 1.0
  return EngineSpeaker(
    engine=engine, index=index, voice=engine_voices[index % len(engine_voices)],
    pitch_st=float(spread * rng.uniform(-3, 3)),
    range_scale=float(1 + spread * rng.uniform(-0.2, 0.2)),
    tempo=float(1 + spread * rng.uniform(-0.1, 0.1)),
    vtl=float(1 + spread * rng.uniform(-0.08, 0.08)),
    **_personal_traits(rng, spread),
  )


def parse_speaker(value):
  """A Speaker or EngineSpeaker from one, an index, or an id like "spk03" (espeak) or "flite03"."""
  if isinstance(value, Speaker | EngineSpeaker):
    return value
  if isinstance(value, str):
    for engine in ENGINE_CODES:
      if engine != "espeak" and value.startswith(engine) and value[len(engine):].isdigit():
        from a2e_jax.data.synth.engines import get_engine

        return make_engine_speaker(engine, int(value[len(engine):]), get_engine(engine).voices)
    digits = value.removeprefix("spk")
    if not digits.isdigit():
      raise ValueError(f"bad speaker {value!r}; use an index or an id like 'spk03' or 'flite03'")
    value = int(digits)
  return make_speaker(int(value))
