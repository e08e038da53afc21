"""Building the built-in corpus: speakers x sentences x emotions, split, rendered in parallel, on disk.

Every (speaker, sentence) group is rendered in all MEAD styles — neutral at intensity 1 only (as MEAD
records it) and the other 7 emotions at intensities 1, 2, 3: 22 clips — so cross-reconstruction partners
(same speaker and sentence, another emotion) always exist. Speakers and sentences are each split into
seen and held-out sets; a group's split is

  train        seen speaker,     seen sentence
  val_speaker  held-out speaker, seen sentence
  val_sentence seen speaker,     held-out sentence
  test         held-out speaker, held-out sentence

The held-out sentences (20 % of the pool, chosen by the seed) are never spoken in `train`. Each speaker
takes its sentences round-robin from the two pools, so sentences are spread evenly over speakers.

Engines: espeak-ng's speakers come from the preset; each other engine asked for (`engines`, e.g. flite,
festival; engines.py) adds `engine_speakers_per_voice` speakers per voice (its plain voices first, then
warped ones; voices.EngineSpeaker), split into seen and held-out speakers in the preset's proportion and
given sentences the same way. An engine that is not installed is left out with its reason, and
`corpus.json` records the engines used with their versions. A corpus of one engine alone (say
`engines=("festival",)`) is how an engine is held out of training entirely and evaluated on its own.
Everything is a function of the seed: each clip draws from its own generator seeded with (seed, speaker,
sentence, emotion, intensity), so the bytes do not depend on worker count or scheduling.

On disk (format in core/schema.py): `manifest.jsonl`, `corpus.json` (build settings, speakers, sentence
texts, phoneme inventory, augmentation channels) and `<speaker>/<sentence>/<emotion>_<k>.{wav,npz}`.
"""

import concurrent.futures
import dataclasses
import json
import multiprocessing
import os
import sys
import time

import numpy as np
import soundfile
import tqdm

from a2e_jax.core import schema
from a2e_jax.core.errors import UserError
from a2e_jax.data.synth import augment, engines, phonemes, voices
from a2e_jax.data.synth.sentences import SENTENCES, sentence_id
from a2e_jax.data.synth.utterance import synthesize_utterance
from a2e_jax.formats.sequence import save_npz

CORPUS_FORMAT = "a2e_synth_corpus"
CORPUS_VERSION = 1
HELDOUT_SENTENCE_FRACTION = 0.2
# (emotion, intensity) of the clips of one group: MEAD's 1 + 7 x 3 = 22.
STYLES = (("neutral", 1),) + tuple((e, k) for e in schema.EMOTIONS[1:] for k in schema.INTENSITIES)


@dataclasses.dataclass(frozen=True)
class Preset:
  """Corpus size: speakers (of which `heldout_speakers` unseen) and sentences per speaker."""

  speakers: int
  heldout_speakers: int
  seen_sentences: int  # per speaker, from the training pool
  heldout_sentences: int  # per speaker, from the held-out pool
  augmentation: augment.AugmentConfig | None = augment.AugmentConfig()
  engine_speakers_per_voice: int = 2  # for engines other than espeak


PRESETS = {
  "tiny": Preset(speakers=3, heldout_speakers=1, seen_sentences=2, heldout_sentences=1,
                 engine_speakers_per_voice=1),
  "default": Preset(speakers=16, heldout_speakers=3, seen_sentences=16, heldout_sentences=4),
  # default's sentences per speaker, three times the voices: what the demo weights train on
  "wide": Preset(speakers=48, heldout_speakers=6, seen_sentences=16, heldout_sentences=4),
  "large": Preset(speakers=48, heldout_speakers=6, seen_sentences=50, heldout_sentences=10),
}


DEFAULT_ENGINES = ("espeak",)


def clip_id(speaker: str, sentence: str, emotion: str, intensity: int) -> str:
  return f"{speaker}/{sentence}/{emotion}_{intensity}"


def plan(preset: Preset, seed: int):
  """[(speaker index, sentence index, split)] of every group, in a fixed order."""
  rng = np.random.default_rng([seed, 0x5B117])
  order = rng.permutation(len(SENTENCES))
  num_heldout = int(round(HELDOUT_SENTENCE_FRACTION * len(SENTENCES)))
  heldout_pool, seen_pool = np.sort(order[:num_heldout]), np.sort(order[num_heldout:])
  heldout_speakers = set(rng.permutation(preset.speakers)[: preset.heldout_speakers].tolist())
  return _assign(range(preset.speakers), heldout_speakers, preset, seen_pool, heldout_pool)


def engine_plan(preset: Preset, seed: int, engine: str, voices_here: tuple):
  """[(speaker id, sentence index, split)] of every group of `engine`'s speakers whose voice is among
  `voices_here` (the installed ones), with the same sentence pools as `plan`."""
  all_voices = engines.get_engine(engine).voices
  speakers = [voices.make_engine_speaker(engine, k, all_voices)
              for k in range(preset.engine_speakers_per_voice * len(all_voices))]
  speakers = [s for s in speakers if s.voice in voices_here]
  rng = np.random.default_rng([seed, 0x5B117])
  order = rng.permutation(len(SENTENCES))
  num_heldout = int(round(HELDOUT_SENTENCE_FRACTION * len(SENTENCES)))
  heldout_pool, seen_pool = np.sort(order[:num_heldout]), np.sort(order[num_heldout:])
  engine_rng = np.random.default_rng([seed, 0x5B117, voices.ENGINE_CODES[engine]])
  count = int(round(len(speakers) * preset.heldout_speakers / preset.speakers)) if len(speakers) > 1 else 0
  heldout = {speakers[i].index for i in engine_rng.permutation(len(speakers))[:count]}
  return [(voices.make_engine_speaker(engine, k, all_voices).id, s, split)
          for k, s, split in _assign([s.index for s in speakers], heldout, preset, seen_pool, heldout_pool)]


def _assign(speakers, heldout_speakers, preset, seen_pool, heldout_pool):
  """Groups (speaker, sentence, split): each speaker's sentences round-robin from the two pools."""
  groups = []
  for k in speakers:
    held_speaker = k in heldout_speakers
    for pool, count, held_sentence in ((seen_pool, preset.seen_sentences, False),
                                       (heldout_pool, preset.heldout_sentences, True)):
      for i in range(count):
        split = schema.SPLITS[2 * held_sentence + held_speaker]
        groups.append((k, int(pool[(k * count + i) % len(pool)]), split))
  return groups


def _render_group(task):
  """Renders and writes the 22 clips of one group; returns (manifest records, augmentation channel)."""
  out_dir, seed, speaker_spec, sentence_index, split, augment_config = task
  person = voices.parse_speaker(speaker_spec)
  speaker = person.id
  # espeak speaker k keeps the seeds it always had (espeak's code is 0); other engines' draw from 1000 e + k.
  speaker_index = person.seed_key
  sentence = sentence_id(sentence_index)
  group_rng = np.random.default_rng([seed, speaker_index, sentence_index, 0xA06])
  channel = None
  if augment_config is not None and split == "train" and group_rng.random() < augment_config.probability:
    channel = augment.sample_channel(group_rng, augment_config)
  os.makedirs(os.path.join(out_dir, speaker, sentence), exist_ok=True)
  records = []
  for emotion, intensity in STYLES:
    clip_seed = [seed, speaker_index, sentence_index, schema.EMOTIONS.index(emotion), intensity]
    wav, phones, seq = synthesize_utterance(SENTENCES[sentence_index], person, emotion, intensity, clip_seed)
    if channel is not None:
      wav = augment.apply_channel(wav, schema.SAMPLE_RATE, channel, np.random.default_rng(clip_seed + [1]))
    name = clip_id(speaker, sentence, emotion, intensity)
    soundfile.write(os.path.join(out_dir, name + ".wav"), wav.astype(np.float32), schema.SAMPLE_RATE,
                    subtype="PCM_16")
    save_npz(os.path.join(out_dir, name + ".npz"), seq, phones=phones.ids, phone_start=phones.start_s)
    records.append({"clip_id": name, "audio": name + ".wav", "coeffs": name + ".npz",
                    "fps": float(schema.FPS), "speaker": speaker, "sentence": sentence, "emotion": emotion,
                    "intensity": intensity, "split": split, "_seconds": wav.shape[0] / schema.SAMPLE_RATE})
  return records, channel


def _run(tasks, workers: int, progress: bool):
  """Yields _render_group results in task order, in `workers` spawned processes (inline for 1)."""
  bar = None
  if progress:
    bar = tqdm.tqdm(total=len(tasks) * len(STYLES), unit="clip", desc="a2e data synth")
  if workers <= 1:
    results = map(_render_group, tasks)
    pool = None
  else:
    # spawn, not fork: the parent may hold JAX or espeak state that must not be copied mid-flight.
    pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    results = pool.map(_render_group, tasks, chunksize=max(1, len(tasks) // (8 * workers)))
  try:
    for result in results:
      if bar is not None:
        bar.update(len(STYLES))
      yield result
  finally:
    if pool is not None:
      pool.shutdown(cancel_futures=True)
    if bar is not None:
      bar.close()


def build_corpus(out_dir: str, preset: str = "default", seed: int = 0, workers: int | None = None,
                 overwrite: bool = False, progress: bool = False,
                 augment_fraction: float | None = None, engine_names: tuple = DEFAULT_ENGINES,
                 log=None) -> dict:
  """Writes the corpus of `preset` (schema.SYNTHETIC_PRESETS) to `out_dir`; returns a summary dict.

  workers: processes (default: all CPUs); augment_fraction: share of training groups given a recording
  channel (default: the preset's; 0 = clean corpus); engine_names: the speech engines whose speakers it
  holds (engines.ENGINES; those not installed are skipped, each with one line to `log`, default stderr).
  Raises UserError for an unknown preset or engine, a fraction outside [0, 1], no usable engine, or an
  existing corpus in `out_dir` without `overwrite`.
  """
  if preset not in PRESETS:
    raise UserError(f"unknown corpus preset {preset!r}; choose one of {', '.join(PRESETS)}")
  unknown = [e for e in engine_names if e not in engines.ENGINES]
  if unknown or not engine_names:
    raise UserError(f"unknown speech engine {', '.join(unknown) or '(none given)'}; choose from "
                    f"{', '.join(engines.ENGINES)}")
  usable, missing = engines.available_engines(engine_names)
  for name, why in missing.items():
    print(f"a2e data synth: skipped engine {name}: {why}", file=log or sys.stderr)
  if not usable:
    names = ", ".join(engine_names)
    raise UserError(f"none of the engines {names} is usable here; install one, or use espeak")
  config = PRESETS[preset]
  if augment_fraction is not None:
    if not 0.0 <= augment_fraction <= 1.0:
      raise UserError(f"augmentation fraction {augment_fraction} is outside [0, 1]; 0 turns it off")
    base = config.augmentation or augment.AugmentConfig()
    config = dataclasses.replace(config, augmentation=dataclasses.replace(base, probability=augment_fraction))
  manifest_path = os.path.join(out_dir, "manifest.jsonl")
  if os.path.exists(manifest_path) and not overwrite:
    raise UserError(f"{out_dir} already holds a corpus (manifest.jsonl); pass --overwrite or another --out")
  workers = workers or os.cpu_count() or 1
  os.makedirs(out_dir, exist_ok=True)
  start = time.perf_counter()
  groups = plan(config, seed) if "espeak" in usable else []
  for name in usable:
    if name != "espeak":
      groups += engine_plan(config, seed, name, engines.engine_voices(name))
  tasks = [(out_dir, seed, k, s, split, config.augmentation) for k, s, split in groups]
  records, channels = [], {}
  for group_records, channel in _run(tasks, workers, progress):
    records += group_records
    if channel is not None:
      channels[group_records[0]["clip_id"].rsplit("/", 1)[0]] = channel
  seconds = sum(r.pop("_seconds") for r in records)
  with open(manifest_path, "w") as f:
    for record in sorted(records, key=lambda r: r["clip_id"]):
      f.write(json.dumps(record) + "\n")
  counts = {split: sum(r["split"] == split for r in records) for split in schema.SPLITS}
  used_speakers = sorted({voices.parse_speaker(k).id: voices.parse_speaker(k) for k, _, _ in groups}.items())
  info = {
    "format": CORPUS_FORMAT, "version": CORPUS_VERSION, "preset": preset, "seed": seed,
    "preset_settings": dataclasses.asdict(config), "clips": len(records), "audio_hours": seconds / 3600,
    "splits": counts, "styles": [list(s) for s in STYLES],
    "speakers": {name: {"voice": person.voice, "engine": person.engine}
                 for name, person in used_speakers},
    "engines": usable, "engines_missing": missing,
    "sentences": {sentence_id(s): SENTENCES[s] for s in sorted({s for _, s, _ in groups})},
    "phonemes": list(phonemes.PHONEMES), "augmented_groups": channels,
  }  # fmt: skip
  with open(os.path.join(out_dir, "corpus.json"), "w") as f:
    json.dump(info, f, indent=1, sort_keys=True)
  return {"out_dir": out_dir, "preset": preset, "seed": seed, "clips": len(records),
          "audio_hours": seconds / 3600, "splits": counts, "speakers": len(used_speakers),
          "sentences": len(info["sentences"]), "augmented_groups": len(channels), "workers": workers,
          "engines": usable,
          "build_seconds": time.perf_counter() - start}
