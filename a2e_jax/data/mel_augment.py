"""Training-time augmentation of the normalised log-mel: speakers and recordings espeak-ng never makes.

The built-in corpus speaks with espeak-ng's formant voices, mostly through a perfect channel (digital
silence between words, one level per emotion). A real recording differs in the speaker's vocal tract, the
microphone and room (a spectral colour), the level and the noise floor under the pauses. Each view of a
training example draws its own of each, applied alike to all its mel windows (they are one recording):

  warp   vocal-tract-length perturbation (Jaitly & Hinton 2013): the spectrum is read at f / α, α uniform in
         1 ± warp, so formants (and harmonics) move by α, as between a longer and a shorter vocal tract
  eq_db  a channel colour: a tilt of up to ±e dB from the lowest band to the highest, plus one broad peak
         or dip of up to ±e dB
  gain   a level change of ±gain_db dB (a shift of 8·g/100 in the normalised log-mel)
  floor  with probability `floor`, a stationary noise floor under the speech, added as power (so it fills
         the pauses and barely touches loud frames) at a level uniform between silence (−4) and
         `floor_max` (−1 is about the breath and room noise of a close-miked recording's pauses), tilted
         by FLOOR_TILT_DB
  noise  Gaussian noise of std `mel_noise` on the normalised log-mel
then the result is clipped to the front end's [−4, 4]. Level changes and colour also carry emotion cues
(anger is louder and brighter), so their ranges stay below the emotions' own differences (docs/corpus.md).
Effects whose setting is 0 draw nothing from the generator, so the older settings give the same batches.
"""

import dataclasses
import functools

import numpy as np

from a2e_jax.audio import features

# One dB of level in normalised log-mel units (features.py: 8 units per 100 dB).
UNITS_PER_DB = 2 * features.MAX_ABS / -features.MIN_LEVEL_DB
# Power addition in normalised units: 10 log10(10^(a/10) + 10^(b/10)) with a, b in dB = units / UNITS_PER_DB.
_NATURAL_PER_UNIT = np.log(10.0) / (10.0 * UNITS_PER_DB)
# Tilt of the noise floor across the bands: room and handling noise is mostly low-frequency heavy.
FLOOR_TILT_DB = (-12.0, 6.0)


@dataclasses.dataclass(frozen=True)
class MelAugment:
  """Settings of the module docstring; all 0 is no augmentation."""

  gain_db: float = 0.0
  mel_noise: float = 0.0
  warp: float = 0.0
  eq_db: float = 0.0
  floor: float = 0.0
  floor_max: float = -1.0

  @classmethod
  def from_config(cls, augment_cfg) -> "MelAugment":
    """From a config's `data.augment` section (a ConfigDict or dict); missing keys keep their defaults."""
    values = dict(augment_cfg)
    return cls(**{f.name: float(values[f.name]) for f in dataclasses.fields(cls) if f.name in values})

  def __bool__(self) -> bool:
    return bool(self.gain_db or self.mel_noise or self.warp or self.eq_db or self.floor)

  def apply(self, mel_tfw: np.ndarray, rng: np.random.Generator) -> None:
    """Augments one view's windows [T,16,80] (float32, normalised log-mel) in place."""
    bands = mel_tfw.shape[-1]
    if self.warp:
      mel_tfw[...] = warp_bands(mel_tfw, rng.uniform(1.0 - self.warp, 1.0 + self.warp))
    if self.eq_db:
      mel_tfw += colour(bands, rng.uniform(-self.eq_db, self.eq_db), rng.uniform(-self.eq_db, self.eq_db),
                        rng.uniform(0, bands - 1), rng.uniform(4.0, 12.0)) * np.float32(UNITS_PER_DB)
    if self.gain_db:
      mel_tfw += np.float32(rng.uniform(-self.gain_db, self.gain_db) * UNITS_PER_DB)
    if self.floor and rng.random() < self.floor:
      level = rng.uniform(-features.MAX_ABS, self.floor_max)
      floor_w = level + colour(bands, rng.uniform(*FLOOR_TILT_DB), 0.0, 0.0, 1.0) * np.float32(UNITS_PER_DB)
      mel_tfw[...] = add_power(mel_tfw, floor_w.astype(np.float32))
    if self.mel_noise:
      mel_tfw += rng.normal(0.0, self.mel_noise, mel_tfw.shape).astype(np.float32)
    np.clip(mel_tfw, -features.MAX_ABS, features.MAX_ABS, out=mel_tfw)


def colour(bands: int, tilt_db: float, peak_db: float, peak_band: float, width_bands: float) -> np.ndarray:
  """[bands] gain in dB: a linear tilt from −tilt_db/2 to +tilt_db/2 across the bands, plus a Gaussian peak
  of `peak_db` at `peak_band` with std `width_bands` (in bands)."""
  b = np.arange(bands, dtype=np.float64)
  tilt = tilt_db * (b / max(bands - 1, 1) - 0.5)
  return (tilt + peak_db * np.exp(-0.5 * ((b - peak_band) / width_bands) ** 2)).astype(np.float32)


@functools.cache
def _band_hz(bands: int) -> np.ndarray:
  return features.mel_band_hz()[:bands]


def warp_bands(mel_fw: np.ndarray, alpha: float) -> np.ndarray:
  """[..., 80] log-mel of the spectrum with every frequency scaled by `alpha` (band b reads f_b / alpha,
  linearly interpolated between band centres; beyond the first or last band, that band)."""
  centres = _band_hz(mel_fw.shape[-1])
  source = np.interp(centres / alpha, centres, np.arange(centres.size, dtype=np.float64))
  low = np.floor(source).astype(np.int64)
  high = np.minimum(low + 1, centres.size - 1)
  frac = (source - low).astype(np.float32)
  return mel_fw[..., low] * (1.0 - frac) + mel_fw[..., high] * frac


def add_power(mel_a: np.ndarray, mel_b: np.ndarray) -> np.ndarray:
  """Normalised log-mel of the summed power of two signals given as normalised log-mels."""
  return np.logaddexp(mel_a * _NATURAL_PER_UNIT, mel_b * _NATURAL_PER_UNIT) / _NATURAL_PER_UNIT
