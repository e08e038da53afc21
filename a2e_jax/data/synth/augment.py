"""Robustness augmentation for real speech: background noise, reverberation, EQ and level.

A model trained on clean synthetic speech meets microphones, rooms and noise in use. Augmentation is
split in two, like a recording: a **channel** (room reverberation, microphone/line EQ, level, a noise type
and its SNR) drawn once and shared by all clips of one (speaker, sentence) group — so the four clips of a
cross-reconstruction quadruple that share content also share their acoustics — and the noise itself,
drawn per clip. Reverberation uses a synthetic room impulse response: a direct path, then exponentially
decaying Gaussian noise whose decay gives the RT60 (the statistical model of late reverberation; Polack
1988, and e.g. Lehmann & Johansson 2008, JASA 124(1):269–277), at a random direct-to-reverberant ratio.
Augmentation never shifts time: the direct path stays at lag 0 and the output keeps the input's length.
"""

import dataclasses

import numpy as np
import scipy.signal

from a2e_jax.data.synth import dsp


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
  """Probabilities and ranges of each effect; `probability` is per (speaker, sentence) group."""

  probability: float = 0.3
  noise_probability: float = 0.8
  snr_db: tuple = (10.0, 35.0)
  noise_kinds: tuple = ("white", "pink", "brown")
  reverb_probability: float = 0.5
  rt60_s: tuple = (0.15, 0.7)
  direct_to_reverb_db: tuple = (0.0, 12.0)
  eq_probability: float = 0.5
  eq_gain_db: tuple = (-6.0, 6.0)
  lowpass_probability: float = 0.2
  lowpass_hz: tuple = (3400.0, 7000.0)
  level_db: tuple = (-4.0, 4.0)


def sample_channel(rng: np.random.Generator, config: AugmentConfig) -> dict:
  """A random channel (JSON-serialisable): which effects apply and their parameters."""
  channel = {"level_db": float(rng.uniform(*config.level_db))}
  if rng.random() < config.noise_probability:
    kind = str(rng.choice(config.noise_kinds))
    channel["noise"] = {"kind": kind, "snr_db": float(rng.uniform(*config.snr_db))}
  if rng.random() < config.reverb_probability:
    channel["reverb"] = {"rt60_s": float(rng.uniform(*config.rt60_s)),
                         "drr_db": float(rng.uniform(*config.direct_to_reverb_db)),
                         "seed": int(rng.integers(2**31))}
  if rng.random() < config.eq_probability:
    channel["eq"] = [("lowshelf", 200.0, float(rng.uniform(*config.eq_gain_db))),
                     ("peak", float(rng.uniform(500, 4000)), float(rng.uniform(*config.eq_gain_db)), 1.0),
                     ("highshelf", 4000.0, float(rng.uniform(*config.eq_gain_db)))]
  if rng.random() < config.lowpass_probability:
    channel["lowpass_hz"] = float(rng.uniform(*config.lowpass_hz))
  return channel


def colored_noise(rng: np.random.Generator, n: int, kind: str) -> np.ndarray:
  """[N] unit-RMS noise with a white (flat), pink (1/f power) or brown (1/f^2 power) spectrum."""
  exponent = {"white": 0.0, "pink": 0.5, "brown": 1.0}[kind]
  spectrum = np.fft.rfft(rng.standard_normal(n))
  spectrum /= np.maximum(np.arange(spectrum.shape[0]), 1.0) ** exponent
  noise = np.fft.irfft(spectrum, n)
  return noise / max(np.sqrt(np.mean(noise**2)), 1e-12)


def room_impulse_response(sample_rate: int, rt60_s: float, drr_db: float, rng: np.random.Generator):
  """[L] impulse response: unit direct path at lag 0, exponentially decaying noise tail (-60 dB at rt60)."""
  length = int(rt60_s * sample_rate)
  t = np.arange(length) / sample_rate
  tail = rng.standard_normal(length) * np.exp(-6.9078 * t / rt60_s)  # ln(1000) = 6.9078: -60 dB at rt60
  tail[: int(0.002 * sample_rate)] = 0.0  # the first reflections arrive a few milliseconds late
  tail *= 10.0 ** (-drr_db / 20.0) / max(np.sqrt(np.sum(tail**2)), 1e-12)
  tail[0] = 1.0
  return tail


def apply_channel(x: np.ndarray, sample_rate: int, channel: dict, rng: np.random.Generator) -> np.ndarray:
  """[N] float speech through `channel` (from `sample_channel`); `rng` draws this clip's noise."""
  y = np.asarray(x, np.float64)
  if "reverb" in channel:
    r = channel["reverb"]
    rir = room_impulse_response(sample_rate, r["rt60_s"], r["drr_db"], np.random.default_rng(r["seed"]))
    y = scipy.signal.fftconvolve(y, rir)[: y.shape[0]]
  if "eq" in channel:
    y = dsp.equalize(y, sample_rate, channel["eq"])
  if "lowpass_hz" in channel:
    sos = scipy.signal.butter(6, channel["lowpass_hz"], "lowpass", fs=sample_rate, output="sos")
    y = scipy.signal.sosfilt(sos, y)
  if "noise" in channel:
    # SNR against the speech's active level (frames within 40 dB of the loudest), not silence-diluted RMS.
    env = dsp.envelope(y, sample_rate)
    active = env > env.max() * 0.01
    speech_rms = np.sqrt(np.mean(y[active] ** 2)) if active.any() else 0.0
    noise = colored_noise(rng, y.shape[0], channel["noise"]["kind"])
    y = y + noise * speech_rms * 10.0 ** (-channel["noise"]["snr_db"] / 20.0)
  y *= 10.0 ** (channel["level_db"] / 20.0)
  return y * min(1.0, 0.99 / max(np.abs(y).max(), 1e-9))
