"""The phoneme inventory: espeak-ng's English phoneme mnemonics, their stable ids and their viseme classes.

espeak-ng names phonemes in its own ASCII mnemonics (Kirshenbaum-like: "tS" for /tʃ/, "@" for schwa,
"aI" for /aɪ/), prefixed with "'" (primary) or "," (secondary stress). A clip's `phones` array holds ids
into `PHONEMES` with stress stripped; the tuple is append-only, so ids stay stable across versions. The
entries are what espeak-ng 1.52 produces for its English voices (en, en-us, en-gb-x-rp, en-gb-scotland,
en-029, en-us-nyc, en-gb-x-gbclan, en-gb-x-gbcwmd) over the corpus's sentences, plus a few rarer ones;
anything else maps to `UNKNOWN` and gets a viseme class from its first letter.

Viseme classes follow the usual 15-class split of speech mouth shapes (as in the Oculus/Meta lip-sync
set: sil, PP, FF, TH, DD, kk, CH, SS, nn, RR, aa, E, ih, oh, ou), with w, j and h separated because their
lip and jaw behaviour differs, a schwa class, and /l/ and /n/ folded into DD. Diphthongs are two classes
in sequence (the glide takes the second part).
"""

PAUSE = 0
UNKNOWN = 1

PHONEMES = (
  "_", "<unk>", "_:", "_!", "_|", "?",
  "p", "b", "m", "f", "v", "T", "D", "t", "d", "n", "l", "t#", "t2", "t[", "n-", "d#", "l/",
  "k", "g", "N", "x", "tS", "dZ", "S", "Z", "s", "z", "z#", "r", "r-", "w", "w#", "j", ";", "h",
  "a", "aa", "a#", "A:", "A@", "0", "V", "VR", "O:", "O@", "O2", "o@", "E", "e@", "e",
  "i:", "i", "I", "I2", "I#", "IR", "i@", "i@3", "u:", "U", "U@",
  "@", "@2", "@5", "@L", "3", "3:",
  "aI", "aI@", "aI2", "aI3", "aU", "eI", "oU", "OI",
)  # fmt: skip

PHONEME_IDS = {name: i for i, name in enumerate(PHONEMES)}

# Viseme class of each mnemonic; diphthongs list their two parts.
_CLASSES = {
  "sil": ("_", "_:", "_!", "_|"),
  "PP": ("p", "b", "m"),
  "FF": ("f", "v"),
  "TH": ("T", "D"),
  "DD": ("t", "d", "n", "l", "t#", "t2", "t[", "n-", "d#", "l/"),
  "kk": ("k", "g", "N", "x", "?"),
  "CH": ("tS", "dZ", "S", "Z"),
  "SS": ("s", "z", "z#"),
  "RR": ("r", "r-"),
  "ww": ("w", "w#"),
  "yy": ("j", ";"),
  "hh": ("h",),
  "aa": ("aa", "A:", "A@", "0", "V", "VR"),
  "ae": ("a",),
  "E": ("E", "e@", "e"),
  "ih": ("i:", "i", "I", "I2", "I#", "IR"),
  "oh": ("O:", "O@", "O2", "o@"),
  "ou": ("u:", "U", "U@"),
  "@": ("@", "@2", "@5", "@L", "3", "3:", "a#"),
}
_DIPHTHONGS = {
  "aI": ("aa", "ih"), "aI@": ("aa", "ih"), "aI2": ("aa", "ih"), "aI3": ("aa", "ih"), "aU": ("aa", "ou"),
  "eI": ("E", "ih"), "oU": ("oh", "ou"), "OI": ("oh", "ih"), "i@": ("ih", "@"), "i@3": ("ih", "@"),
}  # fmt: skip
_CLASS_OF = {name: cls for cls, names in _CLASSES.items() for name in names}
VOWEL_CLASSES = ("aa", "ae", "E", "ih", "oh", "ou", "@")


def split_stress(mnemonic: str) -> tuple[str, int]:
  """("'aI", ...) -> ("aI", 2): the bare mnemonic and its stress (2 primary, 1 secondary, 0 none)."""
  stress = 2 if "'" in mnemonic else 1 if "," in mnemonic else 0
  return mnemonic.replace("'", "").replace(",", ""), stress


def phoneme_id(mnemonic: str) -> int:
  """Stable id of an espeak mnemonic (stress marks ignored); `UNKNOWN` if not in the inventory."""
  return PHONEME_IDS.get(split_stress(mnemonic)[0], UNKNOWN)


def viseme_classes(mnemonic: str) -> tuple[str, ...]:
  """Viseme class(es) of a mnemonic: one for most, two (onset, glide) for diphthongs."""
  bare = split_stress(mnemonic)[0]
  if bare in _DIPHTHONGS:
    return _DIPHTHONGS[bare]
  if bare in _CLASS_OF:
    return (_CLASS_OF[bare],)
  # Unlisted mnemonics: vowels start with a vowel letter or @/3, consonants keep their letter's class.
  head = bare[:1]
  if head in "aAeEiIoOuUV03@":
    return (_CLASS_OF.get(head, "@"),)
  return (_CLASS_OF.get(head, "DD"),)


# CMU's ARPAbet-style phones (Flite, Festival's radio phone set) by their espeak mnemonic, so that other
# engines' phones share the ids and viseme classes above.
CMU_TO_ESPEAK = {
  "pau": "_", "h#": "_", "brth": "_", "sil": "_",
  "aa": "A:", "ae": "a", "ah": "V", "ao": "O:", "aw": "aU", "ax": "@", "axr": "3", "ay": "aI", "eh": "E",
  "er": "3:", "ey": "eI", "ih": "I", "ix": "I2", "iy": "i:", "ow": "oU", "oy": "OI", "uh": "U", "uw": "u:",
  "b": "b", "ch": "tS", "d": "d", "dh": "D", "dx": "t#", "el": "@L", "em": "m", "en": "n", "f": "f",
  "g": "g", "hh": "h", "jh": "dZ", "k": "k", "l": "l", "m": "m", "n": "n", "ng": "N", "nx": "n", "p": "p",
  "r": "r", "s": "s", "sh": "S", "t": "t", "th": "T", "v": "v", "w": "w", "y": "j", "z": "z", "zh": "Z",
}  # fmt: skip


def cmu_to_espeak(phone: str) -> str:
  """espeak mnemonic of a CMU phone (digits of lexical stress dropped); `<unk>` for an unknown phone."""
  return CMU_TO_ESPEAK.get(phone.lower().rstrip("012"), PHONEMES[UNKNOWN])


# Piper's phonemes are espeak-ng's IPA, one symbol per alignment step: stress marks (ˈ ˌ) before a
# syllable's vowel, the length mark ː after a vowel, diphthongs and affricates as two symbols, word gaps as
# spaces, punctuation as itself. `ipa_to_espeak` joins them back into espeak mnemonics.
IPA_TO_ESPEAK = {
  "ɑ": "A:", "æ": "a", "ɐ": "a#", "ʌ": "V", "ɔ": "O:", "ɒ": "0", "ɛ": "E", "e": "e", "ɪ": "I", "i": "i",
  "ʊ": "U", "u": "u:", "ə": "@", "ɚ": "3", "ɜ": "3:", "ᵻ": "I2", "o": "oU", "a": "a", "ɘ": "@", "ɵ": "@",
  "p": "p", "b": "b", "m": "m", "f": "f", "v": "v", "θ": "T", "ð": "D", "t": "t", "d": "d", "n": "n",
  "l": "l", "k": "k", "ɡ": "g", "g": "g", "ŋ": "N", "ʃ": "S", "ʒ": "Z", "s": "s", "z": "z", "ɹ": "r",
  "r": "r", "w": "w", "j": "j", "h": "h", "ɾ": "t#", "ʔ": "t", "x": "x", "ç": "h", "ɬ": "l", "ɫ": "l",
}  # fmt: skip
# Two symbols that espeak names as one phone.
IPA_PAIRS = {("e", "ɪ"): "eI", ("a", "ɪ"): "aI", ("a", "ʊ"): "aU", ("o", "ʊ"): "oU", ("ɔ", "ɪ"): "OI",
             ("t", "ʃ"): "tS", ("d", "ʒ"): "dZ"}
_LONG = {"A:": "A:", "i": "i:", "u:": "u:", "O:": "O:", "3:": "3:", "I": "i:", "@": "3:", "E": "e@"}
_IPA_PAUSES = set(".,;:!?—…^$") | {"_"}


def ipa_to_espeak(symbols, starts_s, end_s: float) -> list[tuple[str, float]]:
  """[(mnemonic, start_s)] of espeak phones (stressed vowels marked "'") from IPA symbols with start times.

  Stress marks and word gaps are no phones: a stress mark's time goes to the phone after it (and its stress
  to the next vowel), a space's and a length mark's to the phone before. Punctuation, the start (^) and
  end ($) are pauses ("_"). Unknown symbols (combining diacritics, say) join the phone before them.
  """
  symbols, starts = list(symbols), [float(t) for t in starts_s]
  out, stress, i = [], False, 0
  while i < len(symbols):
    sym = symbols[i]
    if sym in "ˈˌ":
      stress = stress or sym == "ˈ"
      if i + 1 < len(symbols):
        starts[i + 1] = starts[i]
      i += 1
    elif sym in _IPA_PAUSES:
      if not out or out[-1][0] != "_":
        out.append(("_", starts[i]))
      i += 1
    elif sym in IPA_TO_ESPEAK:
      pair = IPA_PAIRS.get((sym, symbols[i + 1])) if i + 1 < len(symbols) else None
      name = pair or IPA_TO_ESPEAK[sym]
      vowel = viseme_classes(name)[0] in VOWEL_CLASSES
      out.append((("'" if vowel and stress else "") + name, starts[i]))
      stress = stress and not vowel
      i += 2 if pair else 1
    else:
      if sym == "ː" and out:
        bare = split_stress(out[-1][0])[0]
        out[-1] = (out[-1][0].replace(bare, _LONG.get(bare, bare)), out[-1][1])
      i += 1
  return [(n, t) for n, t in out if t < end_s]
