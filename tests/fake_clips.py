"""Tiny clip sets for the data tests: phone-like sounds with known timing, rendered in several "emotions".

A sentence is a sequence of phones; each phone is a harmonic sound with its own two formants. A rendition
(speaker, sentence, emotion) stretches every phone by the emotion's rate and a random jitter, and changes
pitch and level, so DTW has a real job while the true phone timing stays known. Coefficient channel 0
holds the phone index of each frame, so a correctly warped view shows the same channel 0 as its anchor.
"""

import numpy as np

from a2e_jax.audio import features
from a2e_jax.core import schema

K = 6
_FORMANTS = np.array(
  [
    [0, 0],
    [300, 2300],
    [700, 1200],
    [500, 1000],
    [400, 1900],
    [800, 1600],
    [350, 800],
    [600, 2500],
    [250, 1500],
    [750, 2000],
    [450, 1300],
    [550, 2100],
  ],
  np.float64,
)


def _phone_sound(rng, phone: int, seconds: float, f0: float, sr: int = schema.SAMPLE_RATE) -> np.ndarray:
  n = int(round(seconds * sr))
  if phone == 0:
    return 1e-3 * rng.standard_normal(n)
  t = np.arange(n) / sr
  harmonics = np.arange(1, int(4000 / f0))
  f = harmonics * f0
  amp = sum(np.exp(-0.5 * ((f - c) / 120.0) ** 2) for c in _FORMANTS[phone]) + 0.02
  wave = (amp[:, None] * np.sin(2 * np.pi * f[:, None] * t + rng.uniform(0, 2 * np.pi, (len(f), 1)))).sum(0)
  ramp = np.minimum(1.0, np.minimum(np.arange(n), np.arange(n)[::-1]) / (0.01 * sr))
  return 0.1 * wave * ramp / np.sqrt(np.mean(wave**2) + 1e-9)


def render(rng, phones: np.ndarray, base_seconds: np.ndarray, rate: float, f0: float, gain: float):
  """(wav [N] float32, phone_start [P] seconds) of one rendition."""
  seconds = base_seconds * rate * rng.uniform(0.85, 1.15, len(phones))
  pieces = [_phone_sound(rng, int(p), s, f0) for p, s in zip(phones, seconds)]
  starts = np.concatenate([[0.0], np.cumsum([len(p) for p in pieces])[:-1]]) / schema.SAMPLE_RATE
  return (gain * np.concatenate(pieces)).astype(np.float32), starts.astype(np.float32)


def make_clips(speakers=2, sentences=3, emotions=(0, 1, 5), intensities=(1,), seed=0, split="train"):
  """A list of clip dicts in the schema's layout (strings as str)."""
  rng = np.random.default_rng(seed)
  texts = []
  for _ in range(sentences):
    body = rng.integers(1, len(_FORMANTS), rng.integers(6, 10))
    texts.append((np.concatenate([[0], body, [0]]), rng.uniform(0.06, 0.14, len(body) + 2)))
  clips = []
  for s in range(speakers):
    f0_speaker = 110 + 60 * s
    beta0 = rng.uniform(0, 0.2, K).astype(np.float32)
    for j, (phones, base) in enumerate(texts):
      for m in emotions:
        for level in intensities:
          rate = {0: 1.0, 1: 0.8, 5: 1.2}.get(m, 1.0 + 0.05 * m) * (1 + 0.05 * (level - 1))
          wav, starts = render(rng, phones, base, rate, f0_speaker * (1 + 0.1 * (m % 3)), 0.5 + 0.2 * level)
          frames = features.video_frames(len(wav))
          wav = features.crop_or_pad(wav, frames)
          t_seconds = (np.arange(frames) + 0.5) / schema.FPS
          phone_of_frame = phones[np.searchsorted(starts, t_seconds, side="right") - 1]
          coeffs = np.zeros((frames, K), np.float32)
          coeffs[:, 0] = phone_of_frame
          coeffs[:, 1] = m
          coeffs[:, 2:] = beta0[2:]
          clips.append(
            {
              "clip_id": f"spk{s}/s{j}/{schema.EMOTIONS[m]}_{level}",
              "speaker": f"spk{s}",
              "sentence": f"s{j}",
              "emotion": m,
              "intensity": level,
              "split": split,
              "mel": features.log_mel(wav),
              "coeffs": coeffs,
              "beta0": beta0,
              "eye": np.full((frames, schema.EYE), 0.1 * s, np.float32),
              "pose": np.zeros((frames, schema.POSE), np.float32),
              "phones": phones.astype(np.int32),
              "phone_start": starts,
              "wav": wav,
            }
          )
  return clips


def write_corpus(folder, clips) -> str:
  """Writes clips as a corpus folder (wav + our .npz + manifest.jsonl); returns the manifest path."""
  import json
  import os

  import soundfile

  from a2e_jax.formats.sequence import CoeffSequence, save_npz

  os.makedirs(folder, exist_ok=True)
  with open(os.path.join(folder, "manifest.jsonl"), "w") as f:
    for clip in clips:
      name = clip["clip_id"].replace("/", "_")
      soundfile.write(os.path.join(folder, name + ".wav"), clip["wav"], schema.SAMPLE_RATE, subtype="FLOAT")
      seq = CoeffSequence(
        coeffs=clip["coeffs"],
        channel_names=tuple(f"c{k}" for k in range(K)),
        fps=25.0,
        pose=clip["pose"],
        eye=clip["eye"],
        beta0=clip["beta0"],
        model="fake",
      )
      save_npz(
        os.path.join(folder, name + ".npz"), seq, phones=clip["phones"], phone_start=clip["phone_start"]
      )
      row = {k: clip[k] for k in ("clip_id", "speaker", "sentence", "intensity", "split")}
      row.update(
        audio=name + ".wav", coeffs=name + ".npz", fps=25.0, emotion=schema.EMOTIONS[clip["emotion"]]
      )
      f.write(json.dumps(row) + "\n")
  return os.path.join(folder, "manifest.jsonl")
