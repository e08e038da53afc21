"""Prosody and speaker warps on any engine's waveform, by WORLD analysis and resynthesis (`pyworld`).

espeak-ng takes pitch, range and rate as parameters; other engines do not, so their neutral renditions
are analysed with WORLD (Morise et al. 2016, IEICE Trans. Inf. & Syst. E99-D(7):1877: DIO + StoneMask
F0, CheapTrick spectral envelope, D4C aperiodicity, 5 ms frames) and resynthesised with:

  pitch   log F0 shifted by `pitch_st` semitones, its excursions around the utterance's mean log F0 scaled
          by `range_scale` (the emotion's range, as espeak's range parameter does: 50 + offset over 50);
  tempo   frames resampled in time by 1 / `tempo` (all phones stretch alike, so phone times scale by
          exactly 1 / tempo);
  tract   the spectral envelope and aperiodicity warped along frequency by `vtl`: formants move by that
          factor, the cue of a shorter (> 1) or longer (< 1) vocal tract (speaker variety).

Voice quality (tilt, chest, breathiness, tremor) and loudness then come from `emotion.apply_voice_quality`
like espeak's, so every engine's emotions are the same model.
"""

import dataclasses

import numpy as np

FRAME_PERIOD_MS = 5.0


@dataclasses.dataclass(frozen=True)
class Analysis:
  """WORLD parameters of one waveform: f0 [F] (0 unvoiced), sp [F,B], ap [F,B], at `sample_rate`."""

  f0: np.ndarray
  sp: np.ndarray
  ap: np.ndarray
  sample_rate: int
  num_samples: int


def analyse(x: np.ndarray, sample_rate: int) -> Analysis:
  """WORLD analysis of [N] float audio."""
  import pyworld

  x = np.ascontiguousarray(x, np.float64)
  f0, t = pyworld.dio(x, sample_rate, frame_period=FRAME_PERIOD_MS)
  f0 = pyworld.stonemask(x, f0, t, sample_rate)
  sp = pyworld.cheaptrick(x, f0, t, sample_rate)
  ap = pyworld.d4c(x, f0, t, sample_rate)
  return Analysis(f0, sp, ap, sample_rate, x.size)


def _stretch(frames_fb: np.ndarray, positions: np.ndarray) -> np.ndarray:
  """Rows of `frames_fb` linearly interpolated at fractional frame `positions`."""
  lo = np.floor(positions).astype(int)
  hi = np.minimum(lo + 1, frames_fb.shape[0] - 1)
  w = (positions - lo)[:, None]
  return (1 - w) * frames_fb[lo] + w * frames_fb[hi]


def _warp_frequency(frames_fb: np.ndarray, factor: float) -> np.ndarray:
  """Each row resampled so that what was at bin k moves to bin k * factor."""
  bins = np.arange(frames_fb.shape[1], dtype=np.float64)
  source = np.clip(bins / factor, 0, frames_fb.shape[1] - 1)
  lo = np.floor(source).astype(int)
  hi = np.minimum(lo + 1, frames_fb.shape[1] - 1)
  w = source - lo
  return (1 - w) * frames_fb[:, lo] + w * frames_fb[:, hi]


def resynthesize(analysis: Analysis, pitch_st: float = 0.0, range_scale: float = 1.0, tempo: float = 1.0,
                 vtl: float = 1.0) -> np.ndarray:
  """[M] float64 audio with the pitch, range, tempo and vocal-tract changes (M ~ N / tempo)."""
  import pyworld

  f0 = analysis.f0
  voiced = f0 > 0
  log_f0 = np.log(np.where(voiced, f0, 1.0))
  centre = log_f0[voiced].mean() if voiced.any() else 0.0
  log_f0 = centre + range_scale * (log_f0 - centre) + pitch_st * np.log(2.0) / 12.0
  n = f0.size
  m = max(2, int(round(n / tempo)))
  positions = np.linspace(0.0, n - 1, m)
  # Voicing from the nearest frame; log F0 interpolated only between voiced neighbours.
  nearest = np.rint(positions).astype(int)
  new_voiced = voiced[nearest]
  new_log_f0 = np.interp(positions, np.flatnonzero(voiced), log_f0[voiced]) if voiced.any() else np.zeros(m)
  new_f0 = np.where(new_voiced, np.exp(new_log_f0), 0.0)
  sp = _stretch(analysis.sp, positions)
  ap = _stretch(analysis.ap, positions)
  if vtl != 1.0:
    sp, ap = _warp_frequency(sp, vtl), np.clip(_warp_frequency(ap, vtl), 0.0, 1.0)
  y = pyworld.synthesize(np.ascontiguousarray(new_f0), np.ascontiguousarray(sp), np.ascontiguousarray(ap),
                         analysis.sample_rate, FRAME_PERIOD_MS)
  target = int(round(analysis.num_samples / tempo))
  return np.pad(y, (0, max(0, target - y.size)))[:target]
