"""The built-in emotional speech corpus: espeak-ng speech in MEAD's emotions with ground-truth faces.

    build_corpus(out_dir, preset="default", seed=0, workers=None) -> summary dict     (corpus.py)
    synthesize_utterance(text, speaker, emotion, intensity, seed) -> (wav, phones, seq) (utterance.py)
    PHONEMES, phoneme_id(mnemonic)                                                  (phonemes.py)

Exports resolve lazily, so registering the `a2e data synth` command does not import SciPy.
"""

import importlib

_EXPORTS = {"build_corpus": "corpus", "PRESETS": "corpus", "synthesize_utterance": "utterance",
            "PHONEMES": "phonemes", "phoneme_id": "phonemes"}


def __getattr__(name):
  if name in _EXPORTS:
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
