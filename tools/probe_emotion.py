"""What the emotion head hears in a recording: its reading under level, colour, pitch and tempo changes.

  python tools/probe_emotion.py --checkpoint runs/demo_voices_bundle3            # the shared real clip
  python tools/probe_emotion.py --festival 6 --out runs/probe_emotion.json     # and 6 Festival neutrals

For the real clip (default ../shared/audio/real_speech_en_stereo_8s.wav, loaded by audio.io.load_audio)
and `--festival` neutral renditions of Festival's held-out groups (eval_voices.clip_set), each transform
is applied to the 16 kHz waveform and the clip scored by the weights' emotion head as `a2e generate`
reads it (Generator.audio_chunks with the pause gate, then the emotion pass): the mean over chunks of the
raw softmax (temperature 1, no neutral offset: the head itself, not the calibration). Transforms: gain
(dB; samples may exceed full scale, nothing is clipped), a spectral tilt (dB per octave about 1 kHz, RMS
kept), a 4th-order Butterworth low-pass, a high shelf at 2 kHz, pitch shift (semitones) and time stretch
(librosa.effects). Also prints each clip's level and spectral slope in the network's own log-mel (active
frames: within 25 dB of the loudest) and the real clip's per-chunk readings. Writes JSON (--out).
"""

import argparse
import json
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL_SPEECH = os.path.join(os.path.dirname(REPO), "shared", "audio", "real_speech_en_stereo_8s.wav")
SAMPLE_RATE = 16000
ACTIVE_DB = 25.0


def gain(wav, db):
  return wav * 10.0 ** (db / 20.0)


def tilt(wav, db_per_octave, pivot_hz=1000.0):
  """The waveform with its spectrum tilted by `db_per_octave` about `pivot_hz` (flat below 100 Hz), at the
  same RMS: colour without a level change."""
  spectrum = np.fft.rfft(wav)
  hz = np.fft.rfftfreq(wav.size, 1.0 / SAMPLE_RATE)
  out = np.fft.irfft(spectrum * (np.maximum(hz, 100.0) / pivot_hz) ** (db_per_octave / (20 * np.log10(2))),
                     wav.size)
  return out * np.sqrt(np.mean(wav ** 2) / np.mean(out ** 2))


def low_pass(wav, hz):
  import scipy.signal

  return scipy.signal.sosfiltfilt(scipy.signal.butter(4, hz, "low", fs=SAMPLE_RATE, output="sos"), wav)


def high_shelf(wav, db, corner_hz=2000.0):
  """The corpus's own shelf (data/synth/dsp.equalize, as synth/emotion.py colours its voices): `db` dB above
  `corner_hz`."""
  from a2e_jax.data.synth import dsp

  return dsp.equalize(np.asarray(wav, np.float64), SAMPLE_RATE, (("highshelf", corner_hz, db),))


def transforms() -> dict:
  """{name: waveform -> waveform}."""
  import librosa

  out = {"as is": lambda x: x}
  for db in (-24, -18, -14, -12, -6, 6, 12):
    out[f"gain {db:+d} dB"] = lambda x, db=db: gain(x, db)
  for slope in (-6, -3, 3, 6):
    out[f"tilt {slope:+d} dB/oct"] = lambda x, s=slope: tilt(x, s)
  out["low-pass 4 kHz"] = lambda x: low_pass(x, 4000.0)
  for db in (-6, 6):
    out[f"high shelf {db:+d} dB > 2 kHz"] = lambda x, db=db: high_shelf(x, db)
  out["gain -14 dB, tilt -3 dB/oct"] = lambda x: gain(tilt(x, -3), -14)
  out["gain -14 dB, low-pass 4 kHz"] = lambda x: gain(low_pass(x, 4000.0), -14)
  for steps in (-3, 3):
    out[f"pitch {steps:+d} st"] = lambda x, n=steps: librosa.effects.pitch_shift(x, sr=SAMPLE_RATE, n_steps=n)
  for rate in (0.85, 1.15):
    out[f"tempo x{rate}"] = lambda x, r=rate: librosa.effects.time_stretch(x, rate=r)
  return out


def chunk_probs(generator, wav) -> np.ndarray:
  """[n,E] the emotion head's raw class probabilities per chunk, as `a2e generate` chunks the audio."""
  from a2e_jax.infer import confidence

  chunks, _ = generator.audio_chunks(np.asarray(wav, np.float32), SAMPLE_RATE)
  _, logits_ne = generator.network.emotion_pass(chunks())
  return confidence.calibrated_probs(logits_ne)


def spectrum_figures(wav) -> dict:
  """Level (dB) and slope above 300 Hz (dB/octave) of the active frames' mean log-mel (features.log_mel)."""
  from a2e_jax.audio import features

  units_per_db = 2 * features.MAX_ABS / -features.MIN_LEVEL_DB
  mel_mf = features.log_mel(np.asarray(wav, np.float32))
  energy = mel_mf.mean(axis=1)
  db = mel_mf[energy > energy.max() - ACTIVE_DB * units_per_db].mean(axis=0) / units_per_db
  hz = features.mel_band_hz()
  above = hz >= 300.0
  slope = np.polyfit(np.log2(hz[above]), db[above], 1)[0]
  return {"level_db": float(db.mean()), "slope_db_per_octave": float(slope),
          "above_4k_minus_0.5_2k_db": float(db[hz >= 4000].mean() - db[(hz >= 500) & (hz < 2000)].mean())}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--checkpoint", help="a training run or weights folder (default: the demo weights)")
  parser.add_argument("--real-speech", default=REAL_SPEECH, help="a recording (default ../shared's)")
  parser.add_argument("--festival", type=int, default=6,
                      help="Festival neutral renditions to compare (0: none)")
  parser.add_argument("--out", default=os.path.join(REPO, "runs", "probe_emotion.json"))
  args = parser.parse_args(argv)
  sys.path.insert(0, os.path.join(REPO, "tools"))
  from a2e_jax.audio import io
  from a2e_jax.core import schema
  from a2e_jax.data.synth import engines
  from a2e_jax.infer import weights as weights_lib
  from a2e_jax.infer.generate import Generator

  if not os.path.isfile(args.real_speech):
    print(f"probe_emotion: {args.real_speech} not found; give --real-speech", file=sys.stderr)
    return 2
  angry = schema.EMOTIONS.index("angry")
  generator = Generator(weights_lib.load_weights(args.checkpoint))
  real = io.load_audio(args.real_speech)
  festival = []
  if args.festival:
    usable, missing = engines.available_engines(["festival"])
    if usable:
      from eval_voices import clip_set

      festival = [c["wav"] for c in clip_set("festival", args.festival, neutral_only=True)]
    else:
      print(f"probe_emotion: festival skipped ({missing['festival']})", file=sys.stderr)
  result = {"checkpoint": args.checkpoint or "demo", "spectrum": {"real": spectrum_figures(real)},
            "festival_spectrum": [spectrum_figures(w) for w in festival], "rows": {}}
  result["real_chunks"] = [[schema.EMOTIONS[int(p.argmax())], float(p.max())]
                           for p in chunk_probs(generator, real)]
  print(f"{'transform':30s} {'real: angry':>11s} {'neutral':>8s} {'top':>10s}   "
        "Festival: angry  neutral  top classes")
  for name, transform in transforms().items():
    probs = chunk_probs(generator, transform(real)).mean(axis=0)
    row = {"angry": float(probs[angry]), "neutral": float(probs[schema.NEUTRAL]),
           "top": schema.EMOTIONS[int(probs.argmax())]}
    if festival:
      clip_e = np.array([chunk_probs(generator, transform(w)).mean(axis=0) for w in festival])
      tops = [schema.EMOTIONS[int(k)] for k in clip_e.argmax(axis=1)]
      row["festival"] = {"angry": float(clip_e[:, angry].mean()),
                         "neutral": float(clip_e[:, schema.NEUTRAL].mean()),
                         "tops": {t: tops.count(t) for t in sorted(set(tops))}}
    result["rows"][name] = row
    fest = row.get("festival")
    fest_text = (f"{fest['angry']:15.2f} {fest['neutral']:8.2f}  "
                 + ", ".join(f"{t} {n}" for t, n in fest["tops"].items())) if fest else ""
    print(f"{name:30s} {row['angry']:11.2f} {row['neutral']:8.2f} {row['top']:>10s}   {fest_text}",
          flush=True)
  print("real clip per chunk:", ", ".join(f"{t} {p:.2f}" for t, p in result["real_chunks"]))
  print("log-mel of active frames (level dB, slope dB/oct > 300 Hz, >4 kHz minus 0.5-2 kHz dB): real "
        + " ".join(f"{v:.1f}" for v in result["spectrum"]["real"].values()) + "; Festival "
        + "; ".join(" ".join(f"{v:.1f}" for v in s.values()) for s in result["festival_spectrum"]))
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  with open(args.out, "w") as f:
    json.dump(result, f, indent=1)
  return 0


if __name__ == "__main__":
  sys.exit(main())
