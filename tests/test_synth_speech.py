"""Built-in corpus speech: espeak-ng binding, phoneme timing, emotional prosody, DSP blocks."""

import numpy as np
import pytest
import scipy.signal

from a2e_jax.core import schema
from a2e_jax.data.synth import dsp, emotion, espeak, phonemes, voices
from a2e_jax.data.synth.sentences import SENTENCES
from a2e_jax.data.synth.utterance import synthesize_utterance

TEXT = "Bob made a map of the moon with a blue pen."


def f0_track(wav: np.ndarray, sample_rate: int = schema.SAMPLE_RATE) -> np.ndarray:
  """F0 in Hz of voiced 40 ms frames (10 ms hop) by YIN's cumulative mean normalised difference.

  de Cheveigné & Kawahara (2002); frames more than 30 dB below the loudest are skipped as silence.
  """
  win, hop = int(0.04 * sample_rate), int(0.01 * sample_rate)
  tau_max, tau_min = sample_rate // 60, sample_rate // 450
  starts = np.arange(0, wav.shape[0] - win, hop)
  frames = wav[starts[:, None] + np.arange(win)].astype(np.float64)
  energy = (frames**2).mean(1)
  frames = frames[energy > energy.max() * 1e-3]
  width = win - tau_max
  diff = np.stack([((frames[:, :width] - frames[:, t:t + width]) ** 2).sum(1) for t in range(1, tau_max + 1)],
                  axis=1)
  cmnd = diff * np.arange(1, tau_max + 1) / np.maximum(np.cumsum(diff, 1), 1e-12)
  f0 = []
  for row in cmnd:
    below = np.flatnonzero(row[tau_min - 1:] < 0.15)
    if below.size:
      t = below[0] + tau_min - 1
      while t + 1 < row.shape[0] and row[t + 1] < row[t]:
        t += 1
      f0.append(sample_rate / (t + 1))
  return np.array(f0)


def prosody(wav):
  """(RMS dB, median F0 in semitones re 100 Hz, duration in seconds of speech above -40 dB)."""
  env = dsp.envelope(wav.astype(np.float64), schema.SAMPLE_RATE)
  active = env > env.max() * 0.01
  semitones = 12 * np.log2(np.median(f0_track(wav)) / 100.0)
  return dsp.rms_db(wav[active]), semitones, active.sum() / schema.SAMPLE_RATE


def test_espeak_phoneme_events_are_monotonic_and_inside_the_audio():
  speech = espeak.synthesize(TEXT, "en-us+f2")
  assert speech.sample_rate == 22050 and speech.audio.dtype == np.int16
  samples = np.array([s for _, s in speech.phonemes])
  assert len(samples) > 20 and np.all(np.diff(samples) >= 0)
  assert samples[0] >= 0 and samples[-1] <= speech.audio.shape[0]
  names = [phonemes.split_stress(n)[0] for n, _ in speech.phonemes]
  assert names[0] == "b" and "m" in names and names[-1] == "_"
  assert all(phonemes.phoneme_id(n) != phonemes.UNKNOWN for n in names)


def test_espeak_is_a_pure_function_of_its_arguments():
  first = espeak.synthesize(TEXT, "en-us+m1", rate=170)
  espeak.synthesize("Something else entirely, said quickly.", "en-gb-scotland+f3", rate=300, pitch=90)
  again = espeak.synthesize(TEXT, "en-us+m1", rate=170)
  assert np.array_equal(first.audio, again.audio) and first.phonemes == again.phonemes


def test_espeak_rejects_an_unknown_language():
  with pytest.raises(ValueError, match="no voice"):
    espeak.synthesize("hello", "xx-notalanguage")


def test_sentences_are_many_distinct_and_cover_the_phoneme_inventory():
  assert len(SENTENCES) >= 200 and len(set(SENTENCES)) == len(SENTENCES)
  seen = set()
  for text in SENTENCES[::3]:
    seen.update(phonemes.split_stress(n)[0] for n, _ in espeak.synthesize(text, "en-us").phonemes)
  for required in ("p", "b", "m", "f", "v", "T", "D", "tS", "dZ", "S", "w", "j", "h", "u:", "i:", "aI", "oU"):
    assert required in seen, required


def test_utterance_audio_spans_exactly_its_frames_and_phones_fall_inside():
  wav, phones, seq = synthesize_utterance(TEXT, speaker=2, emotion="happy", intensity=2, seed=5)
  assert wav.dtype == np.float32 and wav.shape[0] == seq.num_frames * schema.SAMPLES_PER_FRAME
  assert seq.coeffs.shape == (seq.num_frames, 53) and seq.pose.shape == (seq.num_frames, 6)
  assert seq.eye.shape == (seq.num_frames, schema.EYE) and seq.model == "builtin" and seq.fps == schema.FPS
  assert phones.ids.dtype == np.int32 and phones.start_s.dtype == np.float32
  assert np.all(np.diff(phones.start_s) >= 0) and phones.start_s[0] >= 0.1
  assert phones.start_s[-1] <= wav.shape[0] / schema.SAMPLE_RATE
  # Silence before the first phoneme (the lead-in), speech after it.
  lead = int(phones.start_s[0] * schema.SAMPLE_RATE)
  assert np.abs(wav[: lead - 50]).max() < 1e-3 < np.abs(wav[lead:]).max()
  assert np.abs(wav).max() <= 1.0


def test_utterance_is_deterministic_in_its_seed():
  a = synthesize_utterance(TEXT, 1, "fear", 3, seed=[0, 1, 2])
  b = synthesize_utterance(TEXT, 1, "fear", 3, seed=[0, 1, 2])
  c = synthesize_utterance(TEXT, 1, "fear", 3, seed=[0, 1, 3])
  assert np.array_equal(a.wav, b.wav) and np.array_equal(a.seq.coeffs, b.seq.coeffs)
  assert not np.array_equal(a.seq.eye, c.seq.eye)


@pytest.mark.parametrize("speaker", [0, 1])
def test_every_emotion_is_audible_in_the_prosody(speaker):
  """Each emotion moves loudness, pitch or tempo away from neutral, in the literature's direction."""
  measured = {e: prosody(synthesize_utterance(TEXT, speaker, e, 3, seed=0).wav) for e in schema.EMOTIONS}
  rms0, f00, dur0 = measured["neutral"]
  for name, (rms, f0, dur) in measured.items():
    if name != "neutral":
      moved = abs(rms - rms0) > 1.5 or abs(f0 - f00) > 1.0 or abs(np.log(dur / dur0)) > 0.08
      assert moved, (name, rms - rms0, f0 - f00, dur / dur0)
  angry, sad = measured["angry"], measured["sad"]
  assert angry[0] > rms0 + 3 > sad[0] + 6  # angry louder than neutral, neutral louder than sad
  assert angry[1] > f00 + 1.5 and sad[1] < f00 - 0.5  # angry higher-pitched, sad lower
  assert sad[2] > dur0 * 1.1  # sad slower
  assert measured["fear"][1] > f00 + 2 and measured["surprised"][1] > f00 + 2
  assert measured["disgusted"][2] > dur0 * 1.1 and measured["contempt"][1] < f00


def test_intensity_scales_the_voice():
  loud = [prosody(synthesize_utterance(TEXT, 0, "angry", k, seed=0).wav)[0] for k in schema.INTENSITIES]
  assert loud[0] < loud[1] < loud[2]


def test_voice_styles_and_speakers_are_complete():
  assert tuple(emotion.VOICE_STYLES) == schema.EMOTIONS
  with pytest.raises(ValueError):
    emotion.style("bored", 1)
  speaker = voices.make_speaker(3)
  assert voices.parse_speaker("spk03") == speaker and speaker.id == "spk03"
  assert len({voices.make_speaker(k).voice for k in range(voices.MAX_SPEAKERS)}) == voices.MAX_SPEAKERS


@pytest.mark.parametrize("kind,freq,probe", [("peak", 1000.0, 1000.0), ("lowshelf", 250.0, 30.0),
                                             ("highshelf", 2000.0, 7000.0)])
def test_biquads_reach_their_gain(kind, freq, probe):
  sos = dsp.biquad(kind, freq, 6.0, schema.SAMPLE_RATE)
  _, response = scipy.signal.sosfreqz(sos, worN=[probe], fs=schema.SAMPLE_RATE)
  assert 20 * np.log10(abs(response[0])) == pytest.approx(6.0, abs=0.5)
