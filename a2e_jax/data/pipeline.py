"""The grain input pipeline: clip records -> windows -> cross-reconstruction pairs -> sharded global batches.

Training example e (counting over all steps: e = step * global_batch + row) is a pure function of
(seed, e): its anchor clip is position e mod N of the epoch's permutation of the anchors, its partners and
windows come from a generator seeded with (seed, e, 0) and its augmentation (data/mel_augment.py) from one
seeded with (seed, e, 1). Each grain record is one process's rows of one global batch, so process p (grain
`ShardOptions` from the mesh: normally jax.process_index() of jax.process_count()) reads only the clips of
its own rows, any number of processes or workers yields the same global batches, and the grain iterator's
state resumes exactly.

Batch layout (core/schema.py): {"a", "b", "ab", "ba"}, each a dict of
  mel [B,T,16,80] float32, coeffs [B,T,K] float32, beta0 [B,K] float32, eye [B,T,EYE] float32,
  emotion [B] int32, intensity [B] int32, mask [B,T] float32 (1 on real frames), clip [B] int32 (source index)
as `jax.Array`s with the batch dimension sharded over the mesh's data axes. "ab" (content of a, emotion
of b) is gathered through the DTW warp a -> ab, so its frame t says what a says at frame t; likewise "ba".
When a clip has no rendition in another emotion, `pairs.fallback` decides: "same_emotion" takes b in a's
emotion (then ab = a and ba = b are true targets), "mask" takes any b and zeroes the masks of ab and ba,
"skip" never uses such clips as anchors.
"""

import dataclasses
import functools
import json
from collections.abc import Sequence

import ml_collections
import numpy as np

from a2e_jax.audio import features
from a2e_jax.core import schema
from a2e_jax.core.errors import UserError
from a2e_jax.data import align, batching
from a2e_jax.data.mel_augment import MelAugment

VIEWS = ("a", "b", "ab", "ba")
FALLBACKS = ("same_emotion", "mask", "skip")
_HUGE = 1 << 62  # records of the endless training stream


def data_config() -> ml_collections.ConfigDict:
  """Defaults of the `data` section of a training config."""
  return ml_collections.ConfigDict(
    {
      "dataset": "a2e_synthetic/default",  # TFDS name/config[:version] under data_dir
      "data_dir": "data/tfds",
      "train_split": "train",
      "eval_splits": ("val_speaker", "val_sentence"),
      "window_frames": 32,  # T, frames of 25 fps per training window
      "eval_pad_frames": 25,  # eval clips are padded to a multiple of this (fewer distinct shapes to compile)
      "pairs": {
        "same_speaker": True,  # b from a's speaker (keeps beta0 and voice; EVP pairs within a speaker)
        "fallback": "same_emotion",  # one of FALLBACKS
        "match_intensity": True,  # ab takes b's intensity and ba a's where such a rendition exists
      },
      "workers": 0,  # grain worker processes (0: threads of the main process)
      "worker_buffer_size": 2,
      "read_threads": 2,  # threads building local batches in each process or worker
      "prefetch": 4,  # local batches built ahead by each process or worker
      # On resume, keep the checkpoint's position but not the input settings it was saved with (batch
      # size, seed, dataset, window, pairing): the stream continues at that step under the new settings.
      "reset_state": False,
      "augment": {  # data/mel_augment.py; each view draws its own, 0 turns an effect off
        "gain_db": 0.0,  # uniform level change of each view's log-mel in +-gain_db
        "mel_noise": 0.0,  # std of Gaussian noise on the normalised log-mel
        "warp": 0.0,  # vocal-tract-length perturbation: frequencies scaled by 1 +- warp
        "eq_db": 0.0,  # channel colour: tilt and one broad peak/dip of up to +-eq_db
        "floor": 0.0,  # probability of a noise floor under the speech
        "floor_max": -1.0,  # its loudest level (normalised log-mel; -4 is silence)
      },
    }
  )


def check_data_config(data_cfg) -> None:
  """A UserError naming the first `data` setting that cannot work (before any data is read or built)."""
  checks = [
    (data_cfg.window_frames >= 1, f"data.window_frames={data_cfg.window_frames} must be >= 1"),
    (data_cfg.eval_pad_frames >= 1, f"data.eval_pad_frames={data_cfg.eval_pad_frames} must be >= 1"),
    (data_cfg.workers >= 0, f"data.workers={data_cfg.workers} must be >= 0 (0: threads of this process)"),
    (data_cfg.worker_buffer_size >= 1, f"data.worker_buffer_size={data_cfg.worker_buffer_size} must be >= 1"),
    (data_cfg.read_threads >= 1, f"data.read_threads={data_cfg.read_threads} must be >= 1"),
    (data_cfg.prefetch >= 0, f"data.prefetch={data_cfg.prefetch} must be >= 0"),
    (data_cfg.pairs.fallback in FALLBACKS,
     f"data.pairs.fallback={data_cfg.pairs.fallback!r}; choose one of {', '.join(FALLBACKS)}"),
  ]
  for ok, message in checks:
    if not ok:
      raise UserError(f"config: {message}")


# ----------------------------------------------------------------------------------------------- pairing


class PairSampler:
  """Draws (a, b, ab, ba) clip indices for an anchor a from a `PairIndex`."""

  def __init__(
    self,
    index: align.PairIndex,
    same_speaker: bool = True,
    fallback: str = "same_emotion",
    match_intensity: bool = True,
  ):
    if fallback not in FALLBACKS:
      raise UserError(f"data.pairs.fallback={fallback!r}; choose one of {', '.join(FALLBACKS)}")
    self.index, self.fallback, self.match_intensity = index, fallback, match_intensity
    spk = index.speaker if same_speaker else np.full(len(index), "")
    self._spk = spk
    self._by_group_emotion: dict[tuple[int, int], list[int]] = {}
    for i, (g, m) in enumerate(zip(index.group.tolist(), index.emotion.tolist())):
      self._by_group_emotion.setdefault((g, m), []).append(i)
    emotions_of: dict[int, set[int]] = {}
    for g, m in self._by_group_emotion:
      emotions_of.setdefault(g, set()).add(m)
    self._emotions_of = {g: sorted(ms) for g, ms in emotions_of.items()}
    group_speaker = {int(g): s for g, s in zip(index.group, spk)}
    with_both: dict[tuple[str, int, int], list[int]] = {}
    for g, ms in self._emotions_of.items():
      for m in ms:
        for n in ms:
          if m != n:
            with_both.setdefault((group_speaker[g], m, n), []).append(g)
    self._with_both = {k: np.array(v) for k, v in with_both.items()}
    by_speaker_emotion: dict[tuple[str, int], list[int]] = {}
    by_speaker: dict[str, list[int]] = {}
    for i, (s, m) in enumerate(zip(spk.tolist(), index.emotion.tolist())):
      by_speaker_emotion.setdefault((s, m), []).append(i)
      by_speaker.setdefault(s, []).append(i)
    self._by_speaker_emotion = {k: np.array(v) for k, v in by_speaker_emotion.items()}
    self._by_speaker = {k: np.array(v) for k, v in by_speaker.items()}
    # A clip is paired when its (speaker, sentence) was also recorded in another emotion.
    has_partner = np.array([len(self._emotions_of[int(g)]) > 1 for g in index.group], bool)
    self.anchors = np.flatnonzero(has_partner) if fallback == "skip" else np.arange(len(index))
    if self.anchors.size == 0:
      raise UserError(
        "no clip has a rendition of its sentence in another emotion, so data.pairs.fallback='skip' "
        "leaves nothing to train on; use 'same_emotion' or 'mask'"
      )

  def _other_groups(self, a: int, n: int) -> np.ndarray:
    """Groups (of a's speaker when same_speaker) other than a's that hold both a's emotion and n."""
    g, m = int(self.index.group[a]), int(self.index.emotion[a])
    groups = self._with_both.get((self._spk[a], m, n), np.zeros(0, int))
    return groups[groups != g]

  def _closest_intensity(self, candidates: list[int], intensity: int, rng: np.random.Generator) -> int:
    if self.match_intensity:
      gaps = np.abs(self.index.intensity[candidates] - intensity)
      candidates = [c for c, gap in zip(candidates, gaps) if gap == gaps.min()]
    return int(candidates[rng.integers(len(candidates))])

  def sample(self, a: int, rng: np.random.Generator) -> tuple[int, int, int, int, bool]:
    """(a, b, ab, ba, paired): ab = (a's group, b's emotion), ba = (b's group, a's emotion)."""
    ix = self.index
    g, m = int(ix.group[a]), int(ix.emotion[a])
    others = [n for n in self._emotions_of[g] if n != m]
    if others:
      # b says another sentence j when one exists in a shared pair of emotions; else j = i (b is then a's
      # own sentence in emotion n, still a true swap target).
      choice = None
      for n in rng.permutation(others):
        groups = self._other_groups(a, int(n))
        if groups.size:
          choice = int(n), int(groups[rng.integers(groups.size)])
          break
      n, gj = choice if choice is not None else (int(rng.choice(others)), g)
      b = int(rng.choice(self._by_group_emotion[(gj, n)]))
      ab = self._closest_intensity(self._by_group_emotion[(g, n)], int(ix.intensity[b]), rng)
      ba = self._closest_intensity(self._by_group_emotion[(gj, m)], int(ix.intensity[a]), rng)
      return a, b, ab, ba, True
    if self.fallback == "same_emotion":
      pool = self._by_speaker_emotion[(self._spk[a], m)]
    else:
      pool = self._by_speaker[self._spk[a]]
    other = pool[ix.group[pool] != g]
    b = int(rng.choice(other)) if other.size else a
    return a, b, a, b, self.fallback == "same_emotion"


# ------------------------------------------------------------------------------------------- examples


def _empty_view(rows: int, frames: int, num_coeffs: int) -> dict:
  f32 = np.float32
  return {
    "mel": np.zeros((rows, frames, schema.MEL_WINDOW, schema.MEL_BANDS), f32),
    "coeffs": np.zeros((rows, frames, num_coeffs), f32),
    "beta0": np.zeros((rows, num_coeffs), f32),
    "eye": np.zeros((rows, frames, schema.EYE), f32),
    "emotion": np.zeros(rows, np.int32),
    "intensity": np.zeros(rows, np.int32),
    "mask": np.zeros((rows, frames), f32),
    "clip": np.full(rows, -1, np.int32),
  }


def _fill(
  view: dict,
  row: int,
  record: dict,
  frames_t: np.ndarray,
  valid_t: np.ndarray,
  clip: int,
  augment: MelAugment | None = None,
  rng=None,
) -> None:
  """Writes one clip's frames `frames_t` (clamped to the clip) into row `row` of a view's batch arrays."""
  coeffs, mel = record["coeffs"], record["mel"]
  frames = np.minimum(frames_t, len(coeffs) - 1)
  out_mel = view["mel"][row]
  np.take(mel, features.mel_window_index(frames, len(mel)), axis=0, out=out_mel, mode="clip")  # unbuffered
  if augment:
    augment.apply(out_mel, rng)
  np.multiply(coeffs[frames], valid_t[:, None], out=view["coeffs"][row])
  np.multiply(record["eye"][frames], valid_t[:, None], out=view["eye"][row])
  view["beta0"][row] = record["beta0"]
  view["emotion"][row] = record["emotion"]
  view["intensity"][row] = record["intensity"]
  view["mask"][row] = valid_t
  view["clip"][row] = clip


@dataclasses.dataclass
class _Setup:
  """What every process and worker needs to build examples (picklable)."""

  source: Sequence[dict]
  index: align.PairIndex
  pairs: dict
  augment: MelAugment
  window_frames: int
  seed: int
  global_batch: int

  @functools.cached_property
  def sampler(self) -> PairSampler:
    return PairSampler(self.index, **self.pairs)

  def permutation(self, epoch: int) -> np.ndarray:
    """The anchors in epoch `epoch`'s order (the last one is cached: epochs are visited in order)."""
    cached = self.__dict__.get("_permutation")
    if cached is None or cached[0] != epoch:
      anchors = self.sampler.anchors
      cached = (epoch, anchors[np.random.default_rng([self.seed, epoch, 1]).permutation(anchors.size)])
      self.__dict__["_permutation"] = cached
    return cached[1]

  def training_example(self, example: int, batch: dict | None, row: int, rows: int) -> dict:
    """Writes global example `example` (a pure function of (seed, example)) into row `row` of `batch`
    (allocated for `rows` rows when None); returns the batch."""
    anchors = self.sampler.anchors
    a = int(self.permutation(example // anchors.size)[example % anchors.size])
    rng = np.random.default_rng([self.seed, example, 0])
    # Augmentation draws from its own generator, so the settings never change which windows are taken.
    augment_rng = np.random.default_rng([self.seed, example, 1])
    a, b, ab, ba, paired = self.sampler.sample(a, rng)
    records = {i: self.source[i] for i in {a, b, ab, ba}}
    if batch is None:
      num_coeffs = len(records[a]["beta0"])
      batch = {view: _empty_view(rows, self.window_frames, num_coeffs) for view in VIEWS}
    for first, second, names in ((a, ab, ("a", "ab")), (b, ba, ("b", "ba"))):
      length = int(self.index.num_frames[first])
      start = int(rng.integers(0, max(length - self.window_frames, 0) + 1))
      frames = start + np.arange(self.window_frames)
      valid = (frames < length).astype(np.float32)
      augment = (self.augment, augment_rng)
      _fill(batch[names[0]], row, records[first], frames, valid, first, *augment)
      warp = self.index.warp(first, second)
      _fill(
        batch[names[1]],
        row,
        records[second],
        warp[np.minimum(frames, length - 1)],
        valid * paired,
        second,
        *augment,
      )
    return batch


class _TrainBatches:
  """grain data source: record q = (step first_step + q // shards, shard q % shards) -> that shard's rows of
  the batch."""

  def __init__(self, setup: _Setup, shards: int, first_step: int = 0):
    self.setup, self.shards, self.first_step = setup, shards, first_step
    self.rows = setup.global_batch // shards

  def starting_at(self, step: int) -> "_TrainBatches":
    return _TrainBatches(self.setup, self.shards, step)

  def settings(self) -> dict:
    """What decides which examples come at a step (not how fast or how augmented)."""
    s = self.setup
    return {
      "clips": len(s.index),
      "global_batch": s.global_batch,
      "seed": s.seed,
      "window_frames": s.window_frames,
      "pairs": dict(s.pairs),
    }

  def __len__(self) -> int:
    return _HUGE

  def __getitem__(self, record: int) -> dict:
    step, shard = divmod(int(record), self.shards)
    step += self.first_step
    first = step * self.setup.global_batch + shard * self.rows
    batch = None
    for row in range(self.rows):
      batch = self.setup.training_example(first + row, batch, row, self.rows)
    return batch

  def __repr__(self) -> str:
    s = self.setup
    return (
      f"_TrainBatches(clips={len(s.index)}, seed={s.seed}, global_batch={s.global_batch}, "
      f"shards={self.shards}, first_step={self.first_step}, window={s.window_frames}, pairs={s.pairs}, "
      f"augment={s.augment})"
    )


class _EvalBatches:
  """grain data source over whole clips, longest first, padded to the batch's longest clip."""

  def __init__(self, source, index: align.PairIndex, global_batch: int, shards: int, pad_frames: int):
    self.source, self.index, self.shards = source, index, shards
    self.global_batch, self.rows, self.pad_frames = global_batch, global_batch // shards, pad_frames
    self.order = np.lexsort((np.arange(len(index)), -index.num_frames))
    self.num_batches = -(-len(index) // global_batch)

  def __len__(self) -> int:
    return self.num_batches * self.shards

  def frames(self, step: int) -> int:
    batch = self.order[step * self.global_batch : (step + 1) * self.global_batch]
    longest = int(self.index.num_frames[batch].max())
    return -(-longest // self.pad_frames) * self.pad_frames

  def __getitem__(self, record: int) -> dict:
    step, shard = divmod(int(record), self.shards)
    length = self.frames(step)
    frames = np.arange(length)
    first = step * self.global_batch + shard * self.rows
    clips = [int(c) for c in self.order[first : first + self.rows]]
    records = [self.source[c] for c in clips]
    num_coeffs = len((records[0] if records else self.source[int(self.order[0])])["beta0"])
    batch = _empty_view(self.rows, length, num_coeffs)  # rows past the last clip stay empty (clip -1)
    for row, (clip, record) in enumerate(zip(clips, records)):
      _fill(batch, row, record, frames, (frames < self.index.num_frames[clip]).astype(np.float32), clip)
    return batch

  def __repr__(self) -> str:
    return f"_EvalBatches(clips={len(self.index)}, global_batch={self.global_batch}, shards={self.shards})"


# ------------------------------------------------------------------- global jax arrays (data/batching.py)


# The config key of each setting in an iterator's saved state, for the message when one changed.
_SETTING_KEYS = {
  "dataset": "data.dataset",
  "split": "data.train_split",
  "clips": "the dataset's clip count",
  "global_batch": "train.batch_size",
  "seed": "seed",
  "window_frames": "data.window_frames",
  "pairs": "data.pairs",
}


class StateMismatchError(UserError):
  """A checkpoint's input position was saved under settings that choose other examples."""


class BatchIterator:
  """Global batches as `jax.Array`s from a grain loader, positioned by step.

  `get_state()` is {"step": batches taken, "settings": what decides which examples come next}. The state
  knows nothing of workers, prefetching or augmentation strengths, so changing them keeps a resume exact;
  `set_state` refuses a state saved under other settings (one line naming the setting) unless the state
  carries no settings (`data.reset_state`: keep the position, take the new settings).
  """

  def __init__(self, make_loader, shard: batching.HostShard, settings: dict | None = None):
    self._make_loader = make_loader  # first step -> a grain DataLoader starting there
    self._shard = shard
    self._settings = settings or {}
    self._step = 0
    self._iterator = None  # made on first use, so a restored position costs no discarded loader

  def __iter__(self):
    return self

  def __next__(self) -> dict:
    if self._iterator is None:
      self._iterator = iter(self._make_loader(self._step))
    batch = batching.to_global(next(self._iterator), self._shard)
    self._step += 1
    return batch

  def get_state(self) -> dict:
    return {"step": self._step, "settings": self._settings}

  def set_state(self, state) -> None:
    if isinstance(state, (bytes, str)):  # a grain DataLoader state (checkpoints before positions by step)
      step = _grain_position(json.loads(state), self._shard.index, self._shard.count)
    else:
      saved = state.get("settings")
      changed = [
        k
        for k in self._settings
        if saved is not None
        and k in saved
        and json.dumps(saved[k], sort_keys=True) != json.dumps(self._settings[k], sort_keys=True)
      ]
      if changed:
        key = changed[0]
        raise StateMismatchError(
          f"the checkpoint's input position was saved with {_SETTING_KEYS.get(key, key)}="
          f"{_show(saved[key])}, now {_show(self._settings[key])}; rerun with that setting, or add "
          "--config.data.reset_state=True to keep the trained state and continue with the new one"
        )
      step = int(state["step"])
    self._step, self._iterator = step, None


def _show(value) -> str:
  return json.dumps(value, sort_keys=True) if isinstance(value, dict) else repr(value)


def _grain_position(state: dict, shard: int, shards: int) -> int:
  """Batches a process had taken, from the state of a grain DataLoader (checkpoints from before positions
  by step): its records go round-robin over `worker_count` workers (one when 0), and worker i's last seen
  global record is shard - W*S + i*S + next_i*W*S (grain's `_DataLoaderStateDatasetIterator`)."""
  workers = max(int(state["worker_count"]), 1)
  stride = workers * shards
  return sum(
    (int(seen) - shard - int(i) * shards + stride) // stride for i, seen in state["last_seen_indices"].items()
  )


def _loader(source, shard_index: int, shard_count: int, data_cfg, num_records: int, num_epochs: int | None):
  # Deferred: configs import this module for data_config; JAX, grain and TFDS load when batches are made.
  import grain

  if data_cfg.workers:
    from absl import flags

    # grain's worker processes read its absl flags, which only an absl entry point parses (`a2e` uses
    # argparse): their defaults are what we want.
    if not flags.FLAGS.is_parsed():
      flags.FLAGS.mark_as_parsed()
  sampler = grain.samplers.IndexSampler(num_records=num_records, shuffle=False, num_epochs=num_epochs)
  return grain.DataLoader(
    data_source=source,
    sampler=sampler,
    worker_count=data_cfg.workers,
    worker_buffer_size=data_cfg.worker_buffer_size,
    read_options=grain.ReadOptions(num_threads=data_cfg.read_threads, prefetch_buffer_size=data_cfg.prefetch),
    shard_options=grain.sharding.ShardOptions(shard_index=shard_index, shard_count=shard_count),
  )


def open_split(data_cfg, split: str):
  """(random-access record source, PairIndex) of a split of the built dataset named by `data_cfg`."""
  # Deferred: configs import this module for data_config; JAX, grain and TFDS load when batches are made.
  from a2e_jax.data import builders

  return builders.open_split(data_cfg.data_dir, data_cfg.dataset, split)


def train_shard_source(
  data_cfg, source, index: align.PairIndex, seed: int, global_batch: int, shards: int, augment: bool = True
):
  """The grain data source whose record step * shards + s is shard s's rows of global batch `step`
  (numpy arrays), with `data_cfg.augment` applied when `augment`; `make_batch_iterator` reads it through
  a grain DataLoader."""
  check_data_config(data_cfg)
  setup = _Setup(
    source,
    index,
    data_cfg.pairs.to_dict(),
    MelAugment.from_config(data_cfg.augment) if augment else MelAugment(),
    data_cfg.window_frames,
    seed,
    global_batch,
  )
  setup.sampler  # noqa: B018 - builds the pair tables now, so a bad pairs setting fails here
  return _TrainBatches(setup, shards)


def make_batch_iterator(
  data_cfg,
  split: str,
  global_batch_size: int,
  mesh,
  data_axes=batching.BATCH_AXES,
  seed: int = 0,
  source: Sequence[dict] | None = None,
  index: align.PairIndex | None = None,
) -> BatchIterator:
  """Endless training batches (module docstring) of `split`, sharded over `data_axes` of `mesh`.

  `source`/`index` replace the built dataset (any random-access sequence of clip dicts; the index is
  built from it, with DTW warps, when not given). Only the training split (`data_cfg.train_split`) is
  augmented: held-out pairs (eval losses, the emotion-swap check) see the audio as it is.
  """
  if source is None:
    source, index = open_split(data_cfg, split)
  elif index is None:
    index = align.build_pair_index(source)
  if not index.has_warps:
    raise UserError(f"the pair index of split {split!r} has no DTW warps; run `a2e data align`")
  shard = batching.host_shard(mesh, global_batch_size, data_axes)
  source = train_shard_source(
    data_cfg, source, index, seed, global_batch_size, shard.count, augment=split == data_cfg.train_split
  )
  settings = {"dataset": data_cfg.dataset, "split": split, **source.settings()}
  return BatchIterator(
    lambda step: _loader(source.starting_at(step), shard.index, shard.count, data_cfg, _HUGE, None),
    shard,
    settings,
  )


def make_eval_iterator(
  data_cfg,
  split: str,
  global_batch_size: int,
  mesh,
  data_axes=batching.BATCH_AXES,
  source: Sequence[dict] | None = None,
  index: align.PairIndex | None = None,
):
  """One pass over the whole clips of `split`: batches of one view (mel, coeffs, beta0, eye, emotion,
  intensity, mask, clip), [B,T,...] with T the batch's longest clip rounded up to `eval_pad_frames`;
  rows past the last clip have clip = -1 and mask 0. Clip ids: `index.clip_id[clip]`.
  """
  if source is None:
    source, index = open_split(data_cfg, split)
  elif index is None:
    index = align.build_pair_index(source, with_warps=False)
  shard = batching.host_shard(mesh, global_batch_size, data_axes)
  batches = _EvalBatches(source, index, global_batch_size, shard.count, data_cfg.eval_pad_frames)
  return BatchIterator(lambda step: _loader(batches, shard.index, shard.count, data_cfg, len(batches), 1),
                       shard)
