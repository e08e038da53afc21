"""Small signal-processing blocks shared by the speaker timbre, the emotional voice effects and augmentation.

Filters are second-order sections designed with the standard "Audio EQ Cookbook" formulas (R. Bristow-
Johnson) — scipy.signal has peaking (`iirpeak`) but no shelving designs — and run with
`scipy.signal.sosfilt`. Signals are float64 mono arrays [N].
"""

import numpy as np
import scipy.signal


def biquad(kind: str, freq_hz: float, gain_db: float, sample_rate: int, q: float = 0.707) -> np.ndarray:
  """[1,6] second-order section of a "peak", "lowshelf" or "highshelf" filter (Cookbook formulas)."""
  a = 10.0 ** (gain_db / 40.0)
  w0 = 2 * np.pi * min(freq_hz, 0.45 * sample_rate) / sample_rate
  cos_w0, alpha = np.cos(w0), np.sin(w0) / (2 * q)
  if kind == "peak":
    b = [1 + alpha * a, -2 * cos_w0, 1 - alpha * a]
    den = [1 + alpha / a, -2 * cos_w0, 1 - alpha / a]
  elif kind in ("lowshelf", "highshelf"):
    sign = 1 if kind == "lowshelf" else -1
    root = 2 * np.sqrt(a) * alpha
    b = [a * ((a + 1) - sign * (a - 1) * cos_w0 + root), sign * 2 * a * ((a - 1) - sign * (a + 1) * cos_w0),
         a * ((a + 1) - sign * (a - 1) * cos_w0 - root)]
    den = [(a + 1) + sign * (a - 1) * cos_w0 + root, -sign * 2 * ((a - 1) + sign * (a + 1) * cos_w0),
           (a + 1) + sign * (a - 1) * cos_w0 - root]
  else:
    raise ValueError(f"unknown filter kind {kind!r}; use peak, lowshelf or highshelf")
  return np.concatenate([b, den])[None, :] / den[0]


def equalize(x: np.ndarray, sample_rate: int, bands) -> np.ndarray:
  """Applies (kind, freq_hz, gain_db[, q]) bands in series; 0 dB bands are skipped."""
  sections = [biquad(kind, f, g, sample_rate, *rest) for kind, f, g, *rest in bands if abs(g) > 1e-3]
  if not sections:
    return x
  return scipy.signal.sosfilt(np.concatenate(sections), x)


def envelope(x: np.ndarray, sample_rate: int, smooth_s: float = 0.02) -> np.ndarray:
  """[N] amplitude envelope: RMS over a moving `smooth_s` window."""
  width = max(1, int(smooth_s * sample_rate))
  power = scipy.signal.oaconvolve(x * x, np.full(width, 1.0 / width), mode="same")
  return np.sqrt(np.maximum(power, 0.0))


def band_noise(rng: np.random.Generator, n: int, sample_rate: int, low_hz: float, high_hz: float):
  """[N] unit-RMS white noise band-passed to [low_hz, high_hz] (4th-order Butterworth)."""
  sos = scipy.signal.butter(4, [low_hz, min(high_hz, 0.45 * sample_rate)], "bandpass", fs=sample_rate,
                            output="sos")
  noise = scipy.signal.sosfilt(sos, rng.standard_normal(n))
  return noise / max(np.sqrt(np.mean(noise**2)), 1e-12)


def slow_wobble(rng: np.random.Generator, t: np.ndarray, low_hz: float, high_hz: float, parts: int = 3):
  """[N] smooth random signal in [-1, 1] at times `t`: `parts` sines of random rate and phase, averaged."""
  rates = rng.uniform(low_hz, high_hz, parts)
  phases = rng.uniform(0, 2 * np.pi, parts)
  return np.sin(2 * np.pi * rates[:, None] * t[None, :] + phases[:, None]).sum(0) / parts


def warp(x: np.ndarray, delay_samples: np.ndarray) -> np.ndarray:
  """y[n] = x[n - delay[n]] by linear interpolation: a modulated delay line (vibrato, jitter)."""
  n = np.arange(x.shape[0], dtype=np.float64)
  return np.interp(n - delay_samples, n, x, left=0.0, right=0.0)


def rms_db(x: np.ndarray) -> float:
  """Root-mean-square level in dB relative to full scale 1.0."""
  return float(20 * np.log10(max(np.sqrt(np.mean(np.square(x))), 1e-10)))
