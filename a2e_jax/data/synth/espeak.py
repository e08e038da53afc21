"""A ctypes binding to libespeak-ng (shipped by `espeakng-loader`): speech plus exact phoneme timing.

espeak-ng runs in AUDIO_OUTPUT_SYNCHRONOUS mode with espeakINITIALIZE_PHONEME_EVENTS, so each
`espeak_Synth` call returns only when the whole utterance has gone through our callback, and every
espeakEVENT_PHONEME carries the phoneme's mnemonic (`id.string`) and its start as a sample index into the
output (`sample`, at espeak's native 22,050 Hz). The library keeps global state, so calls are serialised
by a lock (corpus workers are separate processes) and each utterance gets a freshly loaded library.
"""

import _ctypes  # dlclose: the public ctypes API can load a library but not unload it
import ctypes
import dataclasses
import threading

import espeakng_loader
import numpy as np

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EVENT_PHONEME = 7
_PARAM = {"rate": 1, "volume": 2, "pitch": 3, "range": 4, "wordgap": 7}


class _EventId(ctypes.Union):
  _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
  """espeak_EVENT from speak_lib.h (API revision 12)."""

  _fields_ = [
    ("type", ctypes.c_int),
    ("unique_identifier", ctypes.c_uint),
    ("text_position", ctypes.c_int),
    ("length", ctypes.c_int),
    ("audio_position", ctypes.c_int),
    ("sample", ctypes.c_int),
    ("user_data", ctypes.c_void_p),
    ("id", _EventId),
  ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))


@dataclasses.dataclass(frozen=True)
class Speech:
  """One synthesised utterance.

  Attributes:
    audio: [N] int16 samples at `sample_rate`.
    sample_rate: espeak's output rate (22,050 Hz).
    phonemes: (mnemonic, start sample) per phoneme event in order, mnemonics with espeak's stress marks
      (e.g. "'a", ",eI", "_:" for a pause).
  """

  audio: np.ndarray
  sample_rate: int
  phonemes: tuple


class _Session:
  """One utterance's private instance of libespeak-ng.

  espeak-ng keeps synthesis state in C statics that its API never resets (the pitch-flutter phase in
  wavegen.c's AdvanceParameters, among others), so the same call gives different samples depending on
  what was spoken before. Loading the library afresh for every utterance (dlopen, and dlclose after
  espeak_Terminate) restarts that state, which makes synthesis a pure function of its arguments; it costs
  about 5 ms.
  """

  def __init__(self):
    self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
    self.lib.espeak_Initialize.restype = ctypes.c_int
    self.lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    self.lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    self.lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                      ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    data_dir = espeakng_loader.get_data_path().encode()
    self.sample_rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_dir,
                                                  _INITIALIZE_PHONEME_EVENTS)
    if self.sample_rate <= 0:
      self.close()
      raise RuntimeError(f"espeak_Initialize failed ({self.sample_rate}) with data {data_dir!r}")
    self._chunks, self._phonemes = [], []
    self._callback = _CALLBACK(self._on_audio)  # Kept referenced: espeak holds only the raw pointer.
    self.lib.espeak_SetSynthCallback(self._callback)

  def close(self):
    self.lib.espeak_Terminate()
    handle, self.lib = self.lib._handle, None
    _ctypes.dlclose(handle)

  def _on_audio(self, wav, num_samples, events):
    i = 0
    while events[i].type != 0:
      event = events[i]
      if event.type == _EVENT_PHONEME:
        self._phonemes.append((bytes(event.id.string).split(b"\0")[0].decode("utf-8"), int(event.sample)))
      i += 1
    if wav and num_samples > 0:
      self._chunks.append(np.ctypeslib.as_array(wav, (num_samples,)).copy())
    return 0

  def synthesize(self, text: str, voice: str, params: dict) -> Speech:
    if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
      raise ValueError(f"espeak-ng has no voice {voice!r} (e.g. 'en-us', 'en+f2', 'en-gb-scotland+m3')")
    for name, value in params.items():
      self.lib.espeak_SetParameter(_PARAM[name], int(round(value)), 0)
    # Both random sources fixed: espeak-ng's own generator and libc rand(), which its wavegen also calls.
    self.lib.espeak_ng_SetRandSeed(1)
    _libc.srand(1)
    encoded = text.encode("utf-8")
    status = self.lib.espeak_Synth(encoded, len(encoded) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
    if status != 0:
      raise RuntimeError(f"espeak_Synth failed with status {status} for {text!r}")
    audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
    return Speech(audio.astype(np.int16), self.sample_rate, tuple(self._phonemes))


_libc = ctypes.CDLL(None)
_lock = threading.Lock()  # espeak-ng is process-global: one utterance at a time


def synthesize(text: str, voice: str = "en-us", rate: float = 175, pitch: float = 50, pitch_range: float = 50,
               volume: float = 100, word_gap: float = 0) -> Speech:
  """Speaks `text` with an espeak-ng voice (`language[+variant]`).

  rate is in words per minute (80..450), pitch and pitch_range 0..100 (50 = the voice's own), volume 0..200,
  word_gap in units of 10 ms. Returns a `Speech` whose phoneme events index its audio exactly.
  """
  params = {"rate": np.clip(rate, 80, 450), "pitch": np.clip(pitch, 0, 100),
            "range": np.clip(pitch_range, 0, 100), "volume": np.clip(volume, 0, 200), "wordgap": word_gap}
  with _lock:
    session = _Session()
    try:
      return session.synthesize(text, voice, params)
    finally:
      session.close()
