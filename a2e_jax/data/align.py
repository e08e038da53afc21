"""Pairing for cross-reconstruction: renditions of one (speaker, sentence) and the DTW warps between them.

Clips of one speaker and sentence in different emotions say the same phones at different times. EVP
(CVPR 2021) pairs them by dynamic time warping on MFCC; so do we, with `librosa.sequence.dtw` on the
MFCC of the stored log-mel (c1..c12, normalised per clip, so loudness and spectral tilt of an emotion do
not count as a mismatch). The warp from clip u to clip v maps every 25 fps frame of u to the frame of v
that says the same thing; the input pipeline gathers v's frames through it so "ab" lies on a's timeline.

A split's `PairIndex` holds every clip's metadata (so the pipeline samples pairs without reading records)
and the warps between all ordered pairs of one group, saved as `a2e_pairs-<split>.npz` beside the dataset.
"""

import concurrent.futures
import dataclasses
import difflib
import multiprocessing
import os
from collections.abc import Callable, Sequence

import numpy as np
from etils import epath

from a2e_jax.audio import features
from a2e_jax.core import schema

_META = ("clip_id", "speaker", "sentence", "emotion", "intensity", "num_frames")


def _text(value) -> str:
  return value.decode() if isinstance(value, bytes) else str(value)


def clip_metadata(record: dict) -> dict:
  """The pairing metadata of one clip record (TFDS strings arrive as bytes)."""
  return {
    "clip_id": _text(record["clip_id"]),
    "speaker": _text(record["speaker"]),
    "sentence": _text(record["sentence"]),
    "emotion": int(record["emotion"]),
    "intensity": int(record["intensity"]),
    "num_frames": int(np.shape(record["coeffs"])[0]),
  }


@dataclasses.dataclass
class PairIndex:
  """Metadata of N clips, their groups (speaker, sentence), and warps between the clips of each group.

  Attributes:
    clip_id, speaker, sentence: [N] str.
    emotion, intensity, num_frames: [N] int64.
    group: [N] int64 group of each clip; group_pos: [N] its position among the group's clips (by index).
    warp_base: [N] int64 offset of clip u's warps in `warps` (-1 when the index has no warps).
    warps: [W] int32; the warp u -> v (v in u's group) is warps[base_u + pos_v T_u : base_u + (pos_v+1) T_u].
  """

  clip_id: np.ndarray
  speaker: np.ndarray
  sentence: np.ndarray
  emotion: np.ndarray
  intensity: np.ndarray
  num_frames: np.ndarray
  group: np.ndarray
  group_pos: np.ndarray
  warp_base: np.ndarray
  warps: np.ndarray

  def __len__(self) -> int:
    return len(self.clip_id)

  @property
  def has_warps(self) -> bool:
    return bool(len(self) and self.warp_base.min() >= 0)

  def members(self) -> list[np.ndarray]:
    """Clip indices of every group, in group-position order."""
    order = np.lexsort((self.group_pos, self.group))
    return np.split(order, np.flatnonzero(np.diff(self.group[order])) + 1) if len(self) else []

  def warp(self, src: int, dst: int) -> np.ndarray:
    """[T_src] int32 frame of `dst` aligned with each frame of `src` (same group; identity when equal)."""
    if src == dst:
      return np.arange(self.num_frames[src], dtype=np.int32)
    if self.group[src] != self.group[dst]:
      raise ValueError(f"clips {src} and {dst} are not renditions of one speaker and sentence")
    if not self.has_warps:
      raise ValueError("this PairIndex has no warps (built with with_warps=False)")
    length = int(self.num_frames[src])
    begin = int(self.warp_base[src]) + int(self.group_pos[dst]) * length
    return self.warps[begin : begin + length]

  def save(self, path: str) -> None:
    with open(path, "wb") as f:
      np.savez(f, **dataclasses.asdict(self))

  @classmethod
  def load(cls, path: str) -> "PairIndex":
    with epath.Path(path).open("rb") as f, np.load(f, allow_pickle=False) as data:  # a local path or a URL
      return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)})


def pair_index_path(dataset_dir: str, split: str) -> str:
  return os.path.join(dataset_dir, f"a2e_pairs-{split}.npz")


def _metadata_index(metas: list[dict]) -> PairIndex:
  arrays = {k: np.array([m[k] for m in metas]) for k in _META}
  for key in ("clip_id", "speaker", "sentence"):
    arrays[key] = arrays[key].astype(np.str_)
  for key in ("emotion", "intensity", "num_frames"):
    arrays[key] = arrays[key].astype(np.int64).reshape(-1)
  n = len(metas)
  keys = [(m["speaker"], m["sentence"]) for m in metas]
  group_of = {k: g for g, k in enumerate(dict.fromkeys(keys))}
  group = np.array([group_of[k] for k in keys], np.int64)
  group_pos = np.zeros(n, np.int64)
  counts: dict[int, int] = {}
  for i, g in enumerate(group):
    group_pos[i] = counts.get(g, 0)
    counts[g] = group_pos[i] + 1
  return PairIndex(
    **arrays,
    group=group,
    group_pos=group_pos,
    warp_base=np.full(n, -1, np.int64),
    warps=np.zeros(0, np.int32),
  )


def dtw_features(mel_mf: np.ndarray) -> np.ndarray:
  """[M, 80] log-mel -> [M, 12] MFCC c1..c12, mean and variance normalised over the clip."""
  c = features.mfcc_from_log_mel(mel_mf)[:, 1:]
  return (c - c.mean(0)) / (c.std(0) + 1e-3)


def frame_warp(path_l2: np.ndarray, num_mel_u: int, num_frames_u: int, num_frames_v: int) -> np.ndarray:
  """A DTW path between mel frames of u and v -> [T_u] int32 frame of v for each 25 fps frame of u.

  Each mel frame of u maps to the mean of the v frames the path matches it with; video frame t (centred at
  (t + 0.5) / 25 s, i.e. mel position 3.2 t + 1.6) is interpolated from those and rounded to v's frames.
  """
  ku, kv = path_l2[:, 0], path_l2[:, 1].astype(np.float64)
  kv_mean = np.bincount(ku, weights=kv, minlength=num_mel_u) / np.maximum(
    np.bincount(ku, minlength=num_mel_u), 1
  )
  ratio = schema.MEL_FPS / schema.FPS
  centres = (np.arange(num_frames_u) + 0.5) * ratio
  kv_at = np.interp(centres, np.arange(num_mel_u), kv_mean)
  return np.clip(np.rint(kv_at / ratio - 0.5), 0, num_frames_v - 1).astype(np.int32)


def align_group(features_list: Sequence[np.ndarray], num_frames: Sequence[int]) -> list[list[np.ndarray]]:
  """Warps between every ordered pair of one group: result[u][v] is [T_u] frames of v (identity on u == v)."""
  n = len(features_list)
  result = [[None] * n for _ in range(n)]
  for u in range(n):
    result[u][u] = np.arange(num_frames[u], dtype=np.int32)
    for v in range(u + 1, n):
      path = features.dtw_path(features_list[u], features_list[v])
      mu, mv = len(features_list[u]), len(features_list[v])
      result[u][v] = frame_warp(path, mu, num_frames[u], num_frames[v])
      result[v][u] = frame_warp(path[:, ::-1], mv, num_frames[v], num_frames[u])
  return result


def _group_warps(task) -> list[list[np.ndarray]]:
  """Worker: the warps of one group, read from the source."""
  source, members, num_frames = task
  feats = [dtw_features(np.asarray(source[int(i)]["mel"])) for i in members]
  return align_group(feats, num_frames)


def build_pair_index(
  source: Sequence[dict], *, with_warps: bool = True, workers: int = 1, progress: Callable | None = None
) -> PairIndex:
  """Reads every record of `source` (a random-access sequence of clip dicts) into a `PairIndex`.

  With warps, each group's records are read a second time to align them, in `workers` processes (the
  source must then be picklable, as TFDS data sources are); `progress(done, total)` follows the groups.
  """
  index = _metadata_index([clip_metadata(source[i]) for i in range(len(source))])
  if not with_warps:
    return index
  groups = index.members()
  tasks = [(source, members, [int(index.num_frames[i]) for i in members]) for members in groups]
  pool = None
  if workers > 1 and len(groups) > 1:
    pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    results = pool.map(_group_warps, tasks, chunksize=max(1, len(tasks) // (8 * workers)))
  else:
    results = map(_group_warps, tasks)
  blocks, bases, offset = [], np.zeros(len(index), np.int64), 0
  try:
    all_warps = list(_with_progress(results, len(groups), progress))
  finally:
    if pool is not None:
      pool.shutdown(cancel_futures=True)
  for members, warps in zip(groups, all_warps):
    for pos, i in enumerate(members):
      bases[i] = offset
      row = np.concatenate(warps[pos])
      blocks.append(row)
      offset += row.size
  index.warp_base = bases
  index.warps = np.concatenate(blocks).astype(np.int32) if blocks else np.zeros(0, np.int32)
  return index


def _with_progress(results, total: int, progress: Callable | None):
  for done, result in enumerate(results, start=1):
    if progress is not None:
      progress(done, total)
    yield result


def _matched_phones(phones_u: np.ndarray, phones_v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Indices of the phones the two sequences share, in order (espeak may insert or drop a pause or
  reduce a vowel in one emotion, so the sequences of one sentence need not be identical)."""
  matcher = difflib.SequenceMatcher(None, phones_u.tolist(), phones_v.tolist(), autojunk=False)
  blocks = [b for b in matcher.get_matching_blocks() if b.size]
  iu = np.concatenate([np.arange(b.a, b.a + b.size) for b in blocks]) if blocks else np.zeros(0, int)
  iv = np.concatenate([np.arange(b.b, b.b + b.size) for b in blocks]) if blocks else np.zeros(0, int)
  return iu, iv


def score_alignment(index: PairIndex, source: Sequence[dict], max_groups: int | None = None) -> dict:
  """DTW warps against the true phoneme alignment (the built-in corpus's phones/phone_start).

  For every ordered pair (u, v) of a group, each phone the two share (in sequence order) has its start
  frame in u warped to v and compared with its true start frame in v. Returns the median, mean and 90th
  percentile of the absolute error in 25 fps frames, the numbers of pairs and phones scored, and the
  phones of u without a counterpart in v.
  """
  errors, pairs, unmatched = [], 0, 0
  for members in index.members()[:max_groups]:
    records = [source[int(i)] for i in members]
    phones = [np.asarray(r["phones"]) for r in records]
    starts = [
      np.minimum((np.asarray(r["phone_start"]) * schema.FPS).astype(int), index.num_frames[i] - 1)
      for r, i in zip(records, members)
    ]
    for pu, u in enumerate(members):
      for pv, v in enumerate(members):
        if u == v or phones[pu].size == 0:
          continue
        iu, iv = _matched_phones(phones[pu], phones[pv])
        unmatched += phones[pu].size - iu.size
        if iu.size:
          errors.append(np.abs(index.warp(int(u), int(v))[starts[pu][iu]] - starts[pv][iv]))
          pairs += 1
  if not errors:
    raise ValueError(
      "no clip pairs with phone timing to score (the built-in corpus stores phones/phone_start)"
    )
  err = np.concatenate(errors).astype(np.float64)
  return {
    "median_abs_error_frames": float(np.median(err)),
    "mean_abs_error_frames": float(err.mean()),
    "p90_abs_error_frames": float(np.percentile(err, 90)),
    "pairs": pairs,
    "phones": int(err.size),
    "unmatched_phones": unmatched,
  }
