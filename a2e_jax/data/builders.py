"""TFDS builders that turn a corpus manifest into ArrayRecord datasets, and opening what they wrote.

  a2e_manifest/<name>   real data from a manifest (data/manifest.py; e.g. MEAD via tools/prepare_mead.py);
                        any config name is accepted, so one data_dir can hold several corpora
  a2e_synthetic/<preset> the built-in corpus (data/synth/), synthesised first when no corpus folder is given

Both write one record per clip with the fields of core/schema.py (variable-length arrays), one split per
manifest `split` value, with `file_format='array_record'`, and need no TensorFlow: records are read back
with `tfds.data_source` / `builder.as_data_source`. The dataset's metadata holds the coefficient channel
names. A clip whose audio or coefficients cannot be used is logged with its path and counted per kind
(`BuildReport`, also written as build_report.json beside the records) — never dropped silently.

  a2e data build --manifest corpus/manifest.jsonl --data-dir data/tfds --name mead
The builders follow TFDS's manual-data convention (manual_dir = the corpus folder), but TFDS 4.9.10's own
`tfds build` command imports TensorFlow at start-up, so without TensorFlow `a2e data build` is the way.
"""

import collections
import concurrent.futures
import dataclasses
import json
import logging
import multiprocessing
import os
import warnings

import numpy as np
import tensorflow_datasets as tfds
from etils import epath
from tensorflow_datasets.core import shuffle

from a2e_jax.core import schema
from a2e_jax.core.errors import UserError
from a2e_jax.data import align
from a2e_jax.data import manifest as manifest_lib
from a2e_jax.data.synth import corpus as synth_corpus

log = logging.getLogger(__name__)

REPORT_FILE = "build_report.json"
# Share of the machine's memory TFDS may hold one split's serialized records in while it shuffles them.
SHUFFLE_MEMORY_FRACTION = 0.5


def features() -> tfds.features.FeaturesDict:
  """The record layout of core/schema.py."""
  floats, ints = np.float32, np.int64
  return tfds.features.FeaturesDict(
    {
      "clip_id": tfds.features.Text(),
      "speaker": tfds.features.Text(),
      "sentence": tfds.features.Text(),
      "emotion": tfds.features.Scalar(ints),
      "intensity": tfds.features.Scalar(ints),
      "split": tfds.features.Text(),
      "mel": tfds.features.Tensor(shape=(None, schema.MEL_BANDS), dtype=floats),
      # K differs between datasets (53 ICT channels, 64 BFM); two unknown dimensions need byte encoding.
      "coeffs": tfds.features.Tensor(shape=(None, None), dtype=floats, encoding="bytes"),
      "beta0": tfds.features.Tensor(shape=(None,), dtype=floats),
      "eye": tfds.features.Tensor(shape=(None, schema.EYE), dtype=floats),
      "pose": tfds.features.Tensor(shape=(None, schema.POSE), dtype=floats),
      "phones": tfds.features.Tensor(shape=(None,), dtype=np.int32),
      "phone_start": tfds.features.Tensor(shape=(None,), dtype=floats),
    }
  )


@dataclasses.dataclass
class BuildReport:
  """What a build did with every manifest entry."""

  clips: dict = dataclasses.field(default_factory=dict)  # split -> clips written
  problems: list = dataclasses.field(default_factory=list)  # [kind, message] of clips left out
  warnings: list = dataclasses.field(default_factory=list)  # messages about clips kept (e.g. clipping)

  def counts(self) -> dict:
    return dict(collections.Counter(kind for kind, _ in self.problems))

  def summary(self) -> str:
    problems = ", ".join(f"{n} {kind}" for kind, n in sorted(self.counts().items())) or "none"
    written = ", ".join(f"{split} {n}" for split, n in self.clips.items())
    return f"clips written: {written}; left out: {problems}; warnings: {len(self.warnings)}"

  def save(self, directory: str) -> None:
    with open(os.path.join(directory, REPORT_FILE), "w") as f:
      json.dump({**dataclasses.asdict(self), "counts": self.counts()}, f, indent=1)


def _load(args):
  """Worker: (status, payload, warnings) for one entry; status "ok" (clip) or a problem kind (message)."""
  entry, channel_names = args
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    try:
      clip = manifest_lib.load_clip(entry, channel_names)
    except manifest_lib.ClipError as e:
      return e.kind, str(e), []
  return "ok", clip, [f"{entry.clip_id}: {w.message}" for w in caught if issubclass(w.category, UserWarning)]


def shuffle_memory_bytes() -> int:
  """Bytes of serialized records a build shuffles in memory: SHUFFLE_MEMORY_FRACTION of physical memory."""
  return int(SHUFFLE_MEMORY_FRACTION * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


class A2eManifest(tfds.core.GeneratorBasedBuilder):
  """Clips of a corpus manifest (core/schema.py) as ArrayRecord; config name = the corpus's name."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Clips with SadTalker log-mel, 25 fps coefficients, eye, pose, phones."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = "manual_dir: the corpus folder holding manifest.jsonl (or manifest.csv)."

  def __init__(self, *, manifest: str | None = None, workers: int = 1, strict: bool = False, **kwargs):
    """manifest: the manifest file (default: manifest.jsonl/.csv in manual_dir); workers: loading processes;
    strict: stop at the first unusable clip instead of reporting it."""
    self._manifest, self._workers, self._strict = manifest, max(1, int(workers)), strict
    self.report = BuildReport()
    super().__init__(**kwargs)

  @classmethod
  def get_builder_config(cls, name: str, version=None):
    """Without fixed BUILDER_CONFIGS any config name is valid: it names the corpus."""
    config = super().get_builder_config(name, version)
    if config is None and not cls.BUILDER_CONFIGS:
      config = tfds.core.BuilderConfig(name=name, version=cls.VERSION)
    return config

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
      builder=self,
      description=__doc__.splitlines()[0],
      features=features(),
      metadata=tfds.core.MetadataDict(),
    )

  @staticmethod
  def _manual_folder(dl_manager) -> str | None:
    try:
      return os.fspath(dl_manager.manual_dir)
    except AssertionError:  # TFDS's way of saying there is none, or it is empty
      return None

  def _manifest_path(self, dl_manager) -> str:
    if self._manifest:
      return os.fspath(self._manifest)
    folder = self._manual_folder(dl_manager)
    for name in ("manifest.jsonl", "manifest.csv"):
      if folder and os.path.isfile(os.path.join(folder, name)):
        return os.path.join(folder, name)
    raise UserError(
      f"no manifest.jsonl or manifest.csv in {folder or 'the manual dir'}; pass the manifest "
      "(--manifest) or the corpus folder as manual_dir"
    )

  def _download_and_prepare(self, dl_manager, download_config=None):
    # TFDS shuffles a split's records in memory up to 1 GB (about 11 h of audio) and spills larger splits
    # to disk through tf.io.gfile, which needs TensorFlow; the pipeline reads records by index in its own
    # seeded order, so the shuffle may as well stay in memory, up to a share of the machine's.

    default, shuffle.MAX_MEM_BUFFER_SIZE = shuffle.MAX_MEM_BUFFER_SIZE, shuffle_memory_bytes()
    try:
      return super()._download_and_prepare(dl_manager, download_config)
    except ModuleNotFoundError as e:
      if e.name != "tensorflow":
        raise
      raise UserError(
        f"a split of {self.name}/{self.builder_config.name} holds more than "
        f"{shuffle.MAX_MEM_BUFFER_SIZE / 2**30:.1f} GB of records, more than this build may shuffle in "
        "memory; build on a machine with more memory, or install tensorflow-cpu for the build (TFDS spills "
        "larger splits to disk through TensorFlow)"
      ) from None
    finally:
      shuffle.MAX_MEM_BUFFER_SIZE = default

  def _split_generators(self, dl_manager):
    entries = manifest_lib.read_manifest(self._manifest_path(dl_manager))
    self.report = BuildReport()
    names = None
    for entry in entries:  # the first readable coefficient file fixes the dataset's channels
      try:
        names = tuple(manifest_lib.read_coefficients(entry)[0].channel_names)
        break
      except manifest_lib.ClipError:
        continue
    if names is None:
      raise UserError(
        f"none of the {len(entries)} coefficient files in the manifest can be read; "
        f"first: {entries[0].coeffs}"
      )
    self.info.metadata.update({"channel_names": list(names), "num_coeffs": len(names), "fps": schema.FPS})
    by_split = collections.defaultdict(list)
    for entry in entries:
      by_split[entry.split].append(entry)
    return {
      split: self._generate_examples(split, by_split[split], names)
      for split in schema.SPLITS
      if by_split[split]
    }

  def _generate_examples(self, split, entries, channel_names):
    pool = None
    tasks = [(entry, channel_names) for entry in entries]
    if self._workers > 1:
      # spawn, not fork: the parent may hold JAX or ffmpeg state that must not be copied mid-flight.
      pool = concurrent.futures.ProcessPoolExecutor(
        self._workers, mp_context=multiprocessing.get_context("spawn")
      )
      results = pool.map(_load, tasks, chunksize=max(1, len(tasks) // (16 * self._workers)))
    else:
      results = map(_load, tasks)
    written, problems_before = 0, len(self.report.problems)
    try:
      for (entry, _), (status, payload, notes) in zip(tasks, results):
        if status != "ok":
          if self._strict:
            raise UserError(payload)
          log.warning("left out (%s): %s", status, payload)
          self.report.problems.append([status, payload])
          continue
        for note in notes:
          log.warning("kept with a warning: %s", note)
        self.report.warnings += notes
        written += 1
        yield entry.clip_id, payload
    finally:
      if pool is not None:
        pool.shutdown(cancel_futures=True)
    self.report.clips[split] = written
    left_out = len(self.report.problems) - problems_before
    log.warning(
      "%s/%s %s: %d clips written, %d left out", self.name, self.builder_config.name, split, written, left_out
    )


class A2eSynthetic(A2eManifest):
  """The built-in corpus (data/synth/); config = its preset. Synthesised when manual_dir has no manifest."""

  BUILDER_CONFIGS = [
    tfds.core.BuilderConfig(name=p, description=f"`a2e data synth --preset {p}`")
    for p in schema.SYNTHETIC_PRESETS
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = "Optional manual_dir: a corpus written by `a2e data synth`."

  def __init__(self, *, seed: int = 0, **kwargs):
    self._seed = seed
    super().__init__(**kwargs)

  def _manifest_path(self, dl_manager) -> str:
    if self._manifest or self._manual_folder(dl_manager):
      return super()._manifest_path(dl_manager)

    folder = os.path.join(dl_manager.download_dir, f"a2e_synth_{self.builder_config.name}_seed{self._seed}")
    if not os.path.isfile(os.path.join(folder, "manifest.jsonl")):
      synth_corpus.build_corpus(
        folder, preset=self.builder_config.name, seed=self._seed, workers=self._workers, overwrite=True
      )
    return os.path.join(folder, "manifest.jsonl")


# --------------------------------------------------------------------------------------------- reading


def dataset_dir(data_dir: str, dataset: str) -> str:
  """The folder of `dataset` ("name/config[:version]"; newest version when none is given) in data_dir, a
  local folder or a URL (gs://...; read through etils.epath, as TFDS does)."""
  name, _, version = dataset.partition(":")
  text = os.fspath(data_dir)
  scheme = text.split("://")[0] if "://" in text else ""
  try:
    folder = epath.Path(text).joinpath(*name.split("/"))
    folder.is_dir()
  except KeyError:  # epath knows no such URL scheme
    raise UserError(f"data_dir {text}: etils.epath reads no {scheme}:// URLs (it reads local folders, gs://, "
                    "s3://, az://, hf://); copy the dataset to a local folder") from None
  except ImportError as e:  # epath names the fsspec package a URL scheme needs
    raise UserError(f"data_dir {text}: {e} (the filesystem package for {scheme}:// is not installed); "
                    "install it or copy the dataset to a local folder") from None
  if version:
    path = folder / version
  else:
    versions = [v.name for v in (folder.iterdir() if folder.is_dir() else [])
                if (v / "dataset_info.json").is_file()]
    if not versions:
      raise UserError(
        f"dataset {dataset!r} is not built in {data_dir}; build it with `a2e data build` "
        "(docs/data.md) or set --config.data.data_dir"
      )
    path = folder / max(versions, key=lambda v: tuple(int(x) for x in v.split(".")))
  if not (path / "dataset_info.json").is_file():
    raise UserError(f"{path} holds no built dataset; build it with `a2e data build`")
  return os.fspath(path)


# URL schemes that array_record's own (C++) reader opens: besides local files, it has a GCS client.
RECORD_SCHEMES = ("gs",)


def open_split(data_dir: str, dataset: str, split: str):
  """(random-access source of clip records, PairIndex) of one split of a built dataset.

  The metadata and pair index are read through etils.epath (any URL it knows), the records by
  array_record's reader, which opens local paths and gs:// only: another URL (s3://, az://, hf://) is a
  UserError saying to copy the dataset to a local folder or mount the bucket.
  """
  path = dataset_dir(data_dir, dataset)
  scheme = path.split("://")[0] if "://" in path else ""
  if scheme and scheme not in RECORD_SCHEMES:
    raise UserError(f"data_dir {data_dir}: ArrayRecord reads records from local paths and gs:// only, not "
                    f"{scheme}://; copy the dataset to a local folder (or a mounted bucket) and point "
                    "--config.data.data_dir there")
  builder = tfds.builder_from_directory(path)
  if split not in builder.info.splits:
    raise UserError(f"dataset {dataset!r} has no split {split!r}; it has {', '.join(builder.info.splits)}")
  index_path = align.pair_index_path(path, split)
  if not epath.Path(index_path).is_file():
    raise UserError(
      f"{index_path} is missing; run `a2e data align --data-dir {data_dir} --dataset {dataset}`"
    )
  return builder.as_data_source(split), align.PairIndex.load(index_path)


def metadata(data_dir: str, dataset: str) -> dict:
  """The dataset's metadata (channel_names, num_coeffs, fps) and its split sizes."""
  builder = tfds.builder_from_directory(dataset_dir(data_dir, dataset))
  return {**builder.info.metadata, "splits": {k: v.num_examples for k, v in builder.info.splits.items()}}
