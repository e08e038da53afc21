"""Speech engines beyond espeak-ng (flite, Festival), WORLD restyling, and engines in the corpus.

Flite and Festival are system packages: the tests that run them skip with the reason when they are absent
(CI's clean clone has neither; `apt-get install flite festival festvox-kallpc16k` brings them)."""

import importlib.util
import json
import shutil

import numpy as np
import pytest

from a2e_jax.core import schema
from a2e_jax.core.channels import ICT_CHANNELS
from a2e_jax.data.synth import corpus, engines, phonemes, voices
from a2e_jax.data.synth.utterance import synthesize_utterance

TEXT = "Bob made a map of the moon with a blue pen."
needs_world = pytest.mark.skipif(importlib.util.find_spec("pyworld") is None,
                                 reason="pyworld (pip install -e '.[voices]') restyles other engines' speech")


def _needs(engine: str):
  why = engines.get_engine(engine).missing() or (None if engines.engine_voices(engine) else "no voices")
  if why:
    pytest.skip(f"engine {engine}: {why}")


def test_cmu_phones_map_onto_known_espeak_mnemonics_and_visemes():
  for cmu, mnemonic in phonemes.CMU_TO_ESPEAK.items():
    assert phonemes.phoneme_id(mnemonic) != phonemes.UNKNOWN, cmu
  assert phonemes.viseme_classes(phonemes.cmu_to_espeak("M"))[0] == "PP"
  assert phonemes.viseme_classes(phonemes.cmu_to_espeak("uw1"))[0] == "ou"  # stress digits ignored
  assert phonemes.cmu_to_espeak("qq") == "<unk>"


def test_piper_ipa_maps_onto_espeak_phones_with_their_times():
  for mnemonic in [*phonemes.IPA_TO_ESPEAK.values(), *phonemes.IPA_PAIRS.values()]:
    assert phonemes.phoneme_id(mnemonic) != phonemes.UNKNOWN, mnemonic
  # "Bob made." as Piper aligns it: a start and end token, stress and length marks, a word gap, "eɪ".
  symbols = ["^", "b", "ˈ", "ɑ", "ː", "b", " ", "m", "ˌ", "e", "ɪ", "d", ".", "$"]
  phones = phonemes.ipa_to_espeak(symbols, 0.1 * np.arange(len(symbols)), end_s=1.4)
  expected = [("_", 0.0), ("b", 0.1), ("'A:", 0.2), ("b", 0.5), ("m", 0.7), ("eI", 0.8), ("d", 1.1),
              ("_", 1.2)]
  assert [n for n, _ in phones] == [n for n, _ in expected]
  np.testing.assert_allclose([t for _, t in phones], [t for _, t in expected], atol=1e-9)


@needs_world
def test_world_restyle_moves_pitch_and_tempo_by_the_asked_amounts():
  from a2e_jax.data.synth import world_voice

  rate = 16_000
  t = np.arange(int(1.5 * rate)) / rate
  f0 = 120 * (1 + 0.1 * np.sin(2 * np.pi * 1.5 * t))  # an intonation contour
  x = 0.3 * np.sign(np.sin(2 * np.pi * np.cumsum(f0) / rate)) * np.hanning(t.size) ** 0.2
  analysis = world_voice.analyse(x, rate)
  y = world_voice.resynthesize(analysis, pitch_st=12.0, range_scale=1.0, tempo=1.25)
  assert abs(y.size - round(x.size / 1.25)) <= 1
  import pyworld

  f_in, _ = pyworld.dio(np.ascontiguousarray(x), rate)
  f_out, _ = pyworld.dio(np.ascontiguousarray(y), rate)
  ratio = np.median(f_out[f_out > 0]) / np.median(f_in[f_in > 0])
  assert 1.9 < ratio < 2.1  # an octave up
  flat = world_voice.resynthesize(analysis, range_scale=0.0)
  f_flat, _ = pyworld.dio(np.ascontiguousarray(flat), rate)
  assert np.std(np.log(f_flat[f_flat > 0])) < 0.3 * np.std(np.log(f_in[f_in > 0]))


@pytest.mark.parametrize("engine", ["flite", "festival", "piper"])
def test_engine_phones_are_ordered_inside_the_audio(engine):
  _needs(engine)
  speech = engines.get_engine(engine).speak(TEXT, engines.engine_voices(engine)[0])
  if engine == "piper":  # a neural voice: its sampling noise is off, so the corpus stays deterministic
    assert np.array_equal(speech.audio, engines.get_engine(engine).speak(TEXT, "joe").audio)
  starts = np.array([s for _, s in speech.phones])
  assert np.all(np.diff(starts) > 0) and starts[-1] < speech.audio.size / speech.sample_rate
  names = [phonemes.split_stress(n)[0] for n, _ in speech.phones]
  assert names.count("m") == 3 and names.count("b") >= 2  # "Bob made a map of the moon ... blue"
  assert any("'" in n for n, _ in speech.phones)  # stressed vowels marked


@needs_world
@pytest.mark.slow
@pytest.mark.parametrize("engine", ["flite", "festival", "piper"])
def test_engine_speakers_speak_every_emotion_audibly(engine):
  """The same prosody and voice-quality model as espeak's: sad slower and quieter, angry louder and higher."""
  _needs(engine)
  from test_synth_speech import prosody

  speaker = f"{engine}{len(engines.engine_voices(engine))}"  # a warped speaker of the first voice
  made = {e: synthesize_utterance(TEXT, speaker, e, 3, seed=0) for e in ("neutral", "angry", "sad")}
  for utterance in made.values():
    assert utterance.wav.size == utterance.seq.num_frames * schema.SAMPLES_PER_FRAME
    assert utterance.phones.start_s[-1] < utterance.wav.size / schema.SAMPLE_RATE
  (rms0, f00, dur0), (rms_a, f0_a, _), (rms_s, f0_s, dur_s) = (prosody(made[e].wav) for e in made)
  assert rms_a > rms0 + 3 > rms_s + 6
  assert f0_a > f00 + 1.5 and f0_s < f00 - 0.5
  assert dur_s > dur0 * 1.1
  lips = made["neutral"].seq.coeffs[:, ICT_CHANNELS.index("mouthClose")]
  assert lips.max() > 0.1  # the bilabials of the engine's phones close the lips


def test_engine_speaker_ids_and_catalogue_are_stable():
  a = voices.parse_speaker("flite05")
  assert a.id == "flite05" and a.engine == "flite" and a.voice == engines.get_engine("flite").voices[1]
  assert a == voices.parse_speaker("flite05") and a.seed_key == 1005
  plain = voices.parse_speaker("festival00")
  assert plain.pitch_st == 0 and plain.tempo == 1 and plain.vtl == 1  # the voice as the engine makes it
  with pytest.raises(ValueError, match="flite03"):
    voices.parse_speaker("robot7")
  espeak = voices.parse_speaker("spk07")  # espeak's code is 0: its speakers keep the seeds k they always had
  assert espeak.engine == "espeak" and espeak.seed_key == 7


@pytest.mark.slow
def test_corpus_skips_missing_engines_with_one_line_and_records_the_rest(tmp_path, monkeypatch):
  monkeypatch.setattr(engines.Flite, "missing", lambda self: "flite is not on PATH (test)")
  log = tmp_path / "log.txt"
  with open(log, "w") as f:
    summary = corpus.build_corpus(str(tmp_path / "c"), preset="tiny", workers=1,
                                  engine_names=("espeak", "flite"), log=f)
  assert log.read_text() == "a2e data synth: skipped engine flite: flite is not on PATH (test)\n"
  info = json.loads((tmp_path / "c" / "corpus.json").read_text())
  assert list(info["engines"]) == ["espeak"]
  assert info["engines_missing"] == {"flite": "flite is not on PATH (test)"}
  assert summary["engines"] == info["engines"]


@needs_world
@pytest.mark.slow
def test_a_corpus_of_one_engine_holds_its_speakers_split_cleanly(tmp_path):
  _needs("flite")
  summary = corpus.build_corpus(str(tmp_path / "c"), preset="tiny", workers=1, engine_names=("flite",))
  records = [json.loads(line) for line in (tmp_path / "c" / "manifest.jsonl").read_text().splitlines()]
  speakers = {r["speaker"] for r in records}
  assert speakers and all(s.startswith("flite") for s in speakers)
  held = {r["speaker"] for r in records if r["split"] in ("val_speaker", "test")}
  assert held and not held & {r["speaker"] for r in records if r["split"] == "train"}
  info = json.loads((tmp_path / "c" / "corpus.json").read_text())
  assert info["engines"] == summary["engines"] and info["engines"]["flite"].startswith("flite")
  assert {v["engine"] for v in info["speakers"].values()} == {"flite"}


def test_festival_and_flite_are_found_or_reported():
  usable, missing = engines.available_engines()
  assert "espeak" in usable
  for name in ("flite", "festival"):
    assert (name in usable) == (shutil.which(name) is not None and name not in missing)


@needs_world
@pytest.mark.slow
def test_dtw_carries_espeak_phone_times_to_a_slower_rendition():
  """dtw_timing on a case with a known answer: espeak's own rendition slowed by WORLD to 0.8x tempo."""
  from a2e_jax.data.synth import dtw_timing, world_voice

  wav, phones = dtw_timing.espeak_reference(TEXT)
  slow = world_voice.resynthesize(world_voice.analyse(wav, schema.SAMPLE_RATE), tempo=0.8)
  starts = np.array([s for _, s in phones])
  moved = dtw_timing.transfer_times(wav, starts, slow)
  error_ms = np.abs(moved - starts / 0.8) * 1000
  assert np.median(error_ms) < 20 and np.percentile(error_ms, 90) < 60
  assert np.all(np.diff(moved) >= 0)


@needs_world
@pytest.mark.slow
def test_hibari_rendition_gets_borrowed_phones():
  _needs("hibari")
  speech = engines.get_engine("hibari").speak(TEXT, "heart")
  starts = np.array([s for _, s in speech.phones])
  assert speech.sample_rate == schema.SAMPLE_RATE and np.all(np.diff(starts) >= 0)
  assert starts[-1] <= speech.audio.size / speech.sample_rate
