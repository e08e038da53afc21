"""The grain input pipeline: clip records -> windows -> cross-reconstruction pairs -> sharded global batches.

Training example e (counting over all steps: e = step * global_batch + row) is a pure function of
(seed, e): its anchor clip is position e mod N of the epoch's permutation of the anchors; the partners and
windows of a whole epoch are drawn at once (data/pairs.py, vectorised) from a generator seeded with
(seed, epoch, 0), row e mod N being example e's; its augmentation (data/mel_augment.py) comes from a
generator seeded with (seed, e, 1). Each grain record is one process's rows of one global batch, so
process p (grain `ShardOptions` from the mesh: normally jax.process_index() of jax.process_count()) reads
only the clips of its own rows, any number of processes or workers yields the same global batches, and
the grain iterator's state resumes exactly.

Batch layout (core/schema.py): {"a", "b", "ab", "ba"}, each a dict of
  mel [B,T,16,80] float32, coeffs [B,T,K] float32, beta0 [B,K] float32, eye [B,T,EYE] float32,
  emotion [B] int32, intensity [B] int32, mask [B,T] float32 (1 on real frames), clip [B] int32 (source index)
as `jax.Array`s with the batch dimension sharded over the mesh's data axes. Feeding accelerators, the
trainer keeps every clip's log-mel on the devices (`mel_table`, sent once) and the views carry, instead of
`mel`, each window's rows in it, packed with the other fields into three arrays per view (`pack_view`);
`cut_windows` unpacks them and gathers the windows inside the jitted step, so the host sends a few ints
per frame instead of 16x80 floats, in 12 arrays per batch instead of 40. Batches
are built from a `ClipBank` (every clip of the split in memory) with a few vectorised gathers.

"ab" (content of a, emotion of b) is gathered through the DTW warp a -> ab, so its frame t says what a
says at frame t; likewise "ba". When a clip has no rendition in another emotion, `pairs.fallback`
decides: "same_emotion" takes b in a's emotion (then ab = a and ba = b are true targets), "mask" takes
any b and zeroes the masks of ab and ba, "skip" never uses such clips as anchors.
"""

import collections
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
from a2e_jax.data.pairs import FALLBACKS, PairSampler

VIEWS = ("a", "b", "ab", "ba")
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
      "device_prefetch": 2,  # global batches placed on the devices ahead of the step that takes them
      "windows_on_device": True,  # send each example's mel frames once, cut the windows in the step
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
class ClipBank:
  """Every clip of a split in host memory, the frames of all clips concatenated, so that a batch is built
  with a few numpy gathers instead of reading and slicing four records per example.

  Attributes:
    mel: [R,80] float32 log-mel rows of all clips (None where the windows are cut on the devices).
    mel_first: [N] first row of clip c in `mel`; num_mel: [N] its mel frames.
    coeffs: [F,K], eye: [F,EYE] float32 frames of all clips; frame_first: [N] first frame of clip c.
    beta0: [N,K] float32.
  """

  mel: np.ndarray | None
  mel_first: np.ndarray
  num_mel: np.ndarray
  coeffs: np.ndarray
  eye: np.ndarray
  frame_first: np.ndarray
  beta0: np.ndarray

  @classmethod
  def read(cls, source: Sequence[dict]) -> "ClipBank":
    """Reads every record of `source` once."""
    mel, coeffs, eye, beta0 = [], [], [], []
    for i in range(len(source)):
      record = source[i]
      mel.append(np.asarray(record["mel"], np.float32))
      coeffs.append(np.asarray(record["coeffs"], np.float32))
      eye.append(np.asarray(record["eye"], np.float32))
      beta0.append(np.asarray(record["beta0"], np.float32))

    def firsts(arrays):
      return np.concatenate([[0], np.cumsum([len(a) for a in arrays])[:-1]]).astype(np.int64)

    return cls(mel=np.concatenate(mel), mel_first=firsts(mel), num_mel=np.array([len(m) for m in mel]),
               coeffs=np.concatenate(coeffs), eye=np.concatenate(eye), frame_first=firsts(coeffs),
               beta0=np.stack(beta0))


def mel_table(banks: dict) -> tuple[np.ndarray, dict]:
  """([R,80] log-mel of the banks of several splits, one after the other; {split: its first row}): the
  array that goes to the devices once, for `make_batch_iterator(..., mel_base=...)` and `cut_windows`."""
  bases, offset = {}, 0
  for split, bank in banks.items():
    bases[split] = offset
    offset += len(bank.mel)
  return np.concatenate([bank.mel for bank in banks.values()]), bases


# The device layout of a view (`make_batch_iterator(..., mel_base=...)`) packs its ten fields into three
# arrays, so a global batch is 12 transfers (each split over the devices) instead of 40:
#   frames [B,T,K+EYE+1] float32: coeffs | eye | mask;  beta0 [B,K] float32;
#   ints [B,T+5] int32: mel_start (T: each window's first row in the mel table, not clamped) | _INT_FIELDS.
_INT_FIELDS = ("mel_first", "mel_last", "emotion", "intensity", "clip")  # mel_first/last: the clip's rows


def pack_view(view: dict) -> dict:
  """A view with `mel_start`/`mel_first`/`mel_last` instead of `mel` -> its device layout (numpy)."""
  frames = np.concatenate([view["coeffs"], view["eye"], view["mask"][..., None]], axis=-1)
  ints = np.concatenate([view["mel_start"], np.stack([view[k] for k in _INT_FIELDS], axis=1)], axis=1)
  return {"frames": frames, "beta0": view["beta0"], "ints": ints.astype(np.int32)}


def unpack_view(view: dict) -> dict:
  """A view in the device layout -> its fields (numpy or jax arrays, inside or outside jit); any other
  view is returned as it is."""
  if "ints" not in view:
    return view
  frames, ints = view["frames"], view["ints"]
  k, t = view["beta0"].shape[-1], ints.shape[1] - len(_INT_FIELDS)
  eye = k + schema.EYE
  fields = {"coeffs": frames[..., :k], "eye": frames[..., k:eye], "mask": frames[..., eye],
            "beta0": view["beta0"], "mel_start": ints[:, :t]}
  return {**fields, **{name: ints[:, t + i] for i, name in enumerate(_INT_FIELDS)}}


def cut_windows(view: dict, table_rf=None) -> dict:
  """A batch view with the mel windows [B,T,16,80] in place, inside a jitted step: a view in the device
  layout (`pack_view`) is unpacked and its windows gathered from `table_rf` [R,80] (rows mel_start + 0..15,
  clamped to the clip's mel_first..mel_last); a view that already has `mel` is returned as it is."""
  if "mel" in view:
    return view
  import jax.numpy as jnp

  view = unpack_view(view)
  rows = view["mel_start"][..., None] + jnp.arange(schema.MEL_WINDOW)
  rows = jnp.clip(rows, view["mel_first"][:, None, None], view["mel_last"][:, None, None])
  rest = {k: v for k, v in view.items() if k not in ("mel_start", "mel_first", "mel_last")}
  return {**rest, "mel": table_rf[rows]}


@dataclasses.dataclass
class _Setup:
  """What every process and worker needs to build examples (picklable)."""

  bank: ClipBank
  index: align.PairIndex
  pairs: dict
  augment: MelAugment
  window_frames: int
  seed: int
  global_batch: int
  mel_base: int | None = None  # windows cut on the devices, as rows of a mel table starting here

  @functools.cached_property
  def sampler(self) -> PairSampler:
    return PairSampler(self.index, **self.pairs)

  def epoch(self, epoch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The draws of every example of epoch `epoch`, in order: ([A,4] clips (a, b, ab, ba), [A,2] window
    starts in a and b, [A] float32 1 where the pair is a true swap). The two latest epochs are cached (a
    batch may straddle two; epochs are visited in order)."""
    cache = self.__dict__.get("_epochs", {})
    if epoch not in cache:
      anchors = self.sampler.anchors
      order = anchors[np.random.default_rng([self.seed, epoch, 1]).permutation(anchors.size)]
      rng = np.random.default_rng([self.seed, epoch, 0])
      clips, paired = self.sampler.draw(order, rng)
      room = np.maximum(self.index.num_frames[clips[:, :2]] - self.window_frames, 0) + 1
      starts = (rng.random((len(order), 2)) * room).astype(np.int64)
      cache = {e: v for e, v in cache.items() if e >= epoch - 1}
      cache[epoch] = clips, starts, paired.astype(np.float32)
      self.__dict__["_epochs"] = cache  # replaced whole: the grain threads share it
    return cache[epoch]

  def draws(self, first: int, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(clips [rows,4], starts [rows,2], paired [rows]) of global examples first .. first + rows - 1."""
    size = self.sampler.anchors.size
    epochs, positions = np.divmod(first + np.arange(rows), size)
    parts = [[x[positions[epochs == e]] for x in self.epoch(int(e))] for e in np.unique(epochs)]
    return tuple(np.concatenate(column) for column in zip(*parts))

  def batch(self, first: int, rows: int) -> dict:
    """Global examples first .. first + rows - 1 as one local batch (module docstring)."""
    clips, starts, paired = self.draws(first, rows)
    frames = np.arange(self.window_frames)
    out = {}
    for side, (own, other) in enumerate((("a", "ab"), ("b", "ba"))):
      src, dst = clips[:, VIEWS.index(own)], clips[:, VIEWS.index(other)]
      length = self.index.num_frames[src][:, None]
      frames_rt = starts[:, side, None] + frames
      valid = (frames_rt < length).astype(np.float32)
      frames_rt = np.minimum(frames_rt, length - 1)
      out[own] = self._view(src, frames_rt, valid)
      out[other] = self._view(dst, self._warp(src, dst, frames_rt), valid * paired[:, None])
    if self.augment and self.mel_base is None:
      # Augmentation draws from its own generator, so the settings never change which windows are taken.
      for r in range(rows):
        augment_rng = np.random.default_rng([self.seed, first + r, 1])
        for view in ("a", "ab", "b", "ba"):
          self.augment.apply(out[view]["mel"][r], augment_rng)
    return {view: out[view] for view in VIEWS}

  def _warp(self, src: np.ndarray, dst: np.ndarray, frames_rt: np.ndarray) -> np.ndarray:
    """Frames of clips `dst` aligned with frames `frames_rt` of clips `src` (`PairIndex.warp`, batched)."""
    ix = self.index
    same = (src == dst)[:, None]
    begin = ix.warp_base[src] + ix.group_pos[dst] * ix.num_frames[src]
    return np.where(same, frames_rt, ix.warps[np.where(same, 0, begin[:, None] + frames_rt)])

  def _view(self, clips: np.ndarray, frames_rt: np.ndarray, valid_rt: np.ndarray) -> dict:
    """One view of a batch: frames `frames_rt` (within each clip) of `clips`, zeroed where not valid."""
    bank, ix = self.bank, self.index
    rows = bank.frame_first[clips][:, None] + frames_rt
    view = {
      "coeffs": bank.coeffs[rows] * valid_rt[..., None],
      "beta0": bank.beta0[clips],
      "eye": bank.eye[rows] * valid_rt[..., None],
      "emotion": ix.emotion[clips].astype(np.int32),
      "intensity": ix.intensity[clips].astype(np.int32),
      "mask": valid_rt,
      "clip": clips.astype(np.int32),
    }
    starts = features.mel_window_start(frames_rt)
    first, last = bank.mel_first[clips], bank.mel_first[clips] + bank.num_mel[clips] - 1
    if self.mel_base is not None:
      view["mel_start"] = (first[:, None] + starts + self.mel_base).astype(np.int32)
      view["mel_first"] = (first + self.mel_base).astype(np.int32)
      view["mel_last"] = (last + self.mel_base).astype(np.int32)
      return pack_view(view)
    else:
      window = starts[..., None] + first[:, None, None] + np.arange(schema.MEL_WINDOW)
      view["mel"] = bank.mel[np.clip(window, first[:, None, None], last[:, None, None])]
    return view


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
    return self.setup.batch(step * self.setup.global_batch + shard * self.rows, self.rows)

  def __repr__(self) -> str:
    s = self.setup
    return (
      f"_TrainBatches(clips={len(s.index)}, seed={s.seed}, global_batch={s.global_batch}, "
      f"shards={self.shards}, first_step={self.first_step}, window={s.window_frames}, pairs={s.pairs}, "
      f"augment={s.augment}, mel_base={s.mel_base})"
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

  `prefetch` batches are transferred to the devices ahead of the one returned (the copies run while the
  devices compute); the position saved is the consumer's, not the prefetcher's.
  """

  def __init__(self, make_loader, shard: batching.HostShard, settings: dict | None = None, prefetch: int = 0):
    self._make_loader = make_loader  # first step -> a grain DataLoader starting there
    self._shard = shard
    self._settings = settings or {}
    self._step = 0
    self._iterator = None  # made on first use, so a restored position costs no discarded loader
    self._prefetch = prefetch
    self._ahead = collections.deque()  # global batches already on their way to the devices

  def __iter__(self):
    return self

  def __next__(self) -> dict:
    if self._iterator is None:
      self._iterator = iter(self._make_loader(self._step))
    while len(self._ahead) <= self._prefetch:
      try:
        local = next(self._iterator)
      except StopIteration:
        break
      self._ahead.append(batching.to_global(_own_memory(local), self._shard))
    if not self._ahead:
      raise StopIteration
    self._step += 1
    return self._ahead.popleft()

  def get_state(self) -> dict:
    return {"step": self._step, "settings": self._settings}

  def close(self) -> None:
    """Lets go of the grain iterator and the batches prepared ahead; grain closes an iterator it frees
    (stopping its worker processes and unlinking the shared memory of the batches they had queued), and
    its DataLoader iterator has no close() of its own. The next batch starts a new loader."""
    self._iterator = None
    self._ahead.clear()

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
    self.close()
    self._step = step


def _own_memory(tree):
  """`tree` (nested dicts of arrays) with the arrays that live in grain's shared memory copied out.

  With worker processes (`data.workers`), grain hands over each array as a view of a shared-memory block
  (its `SharedMemoryArray`), unlinked when the array is freed. On the CPU backend `device_put` aliases a
  NumPy array instead of copying it, and JAX drops its reference only at its next garbage-collection
  pass, so the blocks of the last batches outlived the process and Python's resource tracker unlinked
  them at exit, warning about "leaked shared_memory objects". Copying one batch's host rows frees each
  block as soon as the batch is read.
  """
  if isinstance(tree, dict):
    return {k: _own_memory(v) for k, v in tree.items()}
  return np.array(tree) if isinstance(tree, np.ndarray) and type(tree) is not np.ndarray else tree


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


def train_shard_source(data_cfg, source, index: align.PairIndex, seed: int, global_batch: int, shards: int,
                       augment: bool = True, bank: ClipBank | None = None, mel_base: int | None = None):
  """The grain data source whose record step * shards + s is shard s's rows of global batch `step`
  (numpy arrays), with `data_cfg.augment` applied when `augment`; `make_batch_iterator` reads it through
  a grain DataLoader. `bank` (read from `source` when None) holds the clips; with `mel_base` the batch
  carries window rows into a mel table (`cut_windows`) instead of the windows, unless it is augmented
  (augmentation is numpy, on the host)."""
  check_data_config(data_cfg)
  augment = MelAugment.from_config(data_cfg.augment) if augment else MelAugment()
  bank = ClipBank.read(source) if bank is None else bank
  on_device = mel_base is not None and not augment
  if on_device:
    bank = dataclasses.replace(bank, mel=None)  # the devices hold it
  setup = _Setup(bank, index, data_cfg.pairs.to_dict(), augment, data_cfg.window_frames, seed, global_batch,
                 mel_base if on_device else None)
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
  bank: ClipBank | None = None,
  mel_base: int | None = None,
) -> "BatchIterator":
  """Endless training batches (module docstring) of `split`, sharded over `data_axes` of `mesh`.

  `source`/`index` replace the built dataset (any random-access sequence of clip dicts; the index is
  built from it, with DTW warps, when not given); `bank` is the split's clips already read. Only the
  training split (`data_cfg.train_split`) is augmented: held-out pairs (eval losses, the emotion-swap
  check) see the audio as it is. With `mel_base`, the split's log-mel lives on the devices in a table
  (`mel_table`) from that row, and views carry window rows instead of windows: `cut_windows` gathers
  them inside the jitted step, so the host sends each example's frames once instead of 16 times.
  `data_cfg.device_prefetch` batches are placed on the devices ahead of use.
  """
  if source is None:
    source, index = open_split(data_cfg, split)
  elif index is None:
    index = align.build_pair_index(source)
  if not index.has_warps:
    raise UserError(f"the pair index of split {split!r} has no DTW warps; run `a2e data align`")
  shard = batching.host_shard(mesh, global_batch_size, data_axes)
  source = train_shard_source(data_cfg, source, index, seed, global_batch_size, shard.count,
                              augment=split == data_cfg.train_split, bank=bank, mel_base=mel_base)
  settings = {"dataset": data_cfg.dataset, "split": split, **source.settings()}
  return BatchIterator(
    lambda step: _loader(source.starting_at(step), shard.index, shard.count, data_cfg, _HUGE, None),
    shard,
    settings,
    data_cfg.get("device_prefetch", 0),
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
