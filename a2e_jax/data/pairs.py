"""Cross-reconstruction pairs, drawn for many anchors at once with numpy (no per-example Python).

For an anchor a = x(i, m) (sentence i of group (speaker, sentence), emotion m), a draw gives
(a, b, ab, ba): b = x(j, n) is a rendition of a's speaker in an emotion n != m, ab = x(i, n) and
ba = x(j, m), so that "ab" has the content of a and the emotion of b and "ba" the reverse:
- n is uniform over the emotions of a's group that another group j of a's speaker (any speaker when
  `same_speaker` is off) also holds together with m; j is uniform over those groups. When no such j exists
  for any n, n is uniform over the other emotions of a's group and j = i (b is a's own sentence).
- b is uniform over the clips of (j, n); ab over those of (i, n) and ba over those of (j, m), each limited
  to the intensity closest to b's (for ab) and a's (for ba) when `match_intensity`.
- A group recorded in one emotion only has no partner; `fallback` decides: "same_emotion" takes b
  uniformly from a's speaker and emotion in another group (ab = a, ba = b: true targets), "mask" from a's
  speaker in any emotion (the pair is marked unpaired, so the pipeline zeroes the masks of ab and ba),
  "skip" never uses such clips as anchors. With no other group to take b from, b = a.

Every choice is a lookup into tables built once from the `PairIndex` (lists of clips or groups sorted by a
key, with each key's first position), so `draw` costs a few array operations for a whole epoch of anchors.
"""

import numpy as np

from a2e_jax.core.errors import UserError
from a2e_jax.data import align

FALLBACKS = ("same_emotion", "mask", "skip")


class _Lists:
  """Lists of values under integer keys 0 .. num_keys - 1, stored one after the other: list k is
  `values[first[k] : first[k] + count[k]]`, in the order `order` (default: by key, then value)."""

  def __init__(self, keys: np.ndarray, values: np.ndarray, num_keys: int, order: np.ndarray | None = None):
    order = np.lexsort((values, keys)) if order is None else order
    self.keys, self.values = keys[order], values[order]
    self.count = np.bincount(self.keys, minlength=num_keys)
    self.first = np.concatenate([[0], np.cumsum(self.count)[:-1]]).astype(np.int64)

  def pick(self, key: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Entry floor(u * count) of each list `key`, for uniforms u in [0, 1) (anything where a list is
    empty)."""
    return self._take(self.first[key] + (u * self.count[key]).astype(np.int64))

  def pick_except(self, key: np.ndarray, skip: np.ndarray, skipped: np.ndarray, u: np.ndarray):
    """(a uniform pick from each list `key` leaving out its entries skip .. skip + skipped - 1,
    whether any entry was left to pick)."""
    left = self.count[key] - skipped
    k = (u * np.maximum(left, 0)).astype(np.int64)
    return self._take(self.first[key] + k + np.where(k >= skip, skipped, 0)), left > 0

  def _take(self, at: np.ndarray) -> np.ndarray:
    if not len(self.values):
      return np.zeros(at.shape, np.int64)
    return self.values[np.clip(at, 0, len(self.values) - 1)]


class PairSampler:
  """Draws (a, b, ab, ba) clip indices for arrays of anchors from a `PairIndex` (module docstring).

  Attributes:
    anchors: [A] int64 the clips that can be anchors (all, or those with a partner under "skip").
  """

  def __init__(self, index: align.PairIndex, same_speaker: bool = True, fallback: str = "same_emotion",
               match_intensity: bool = True):
    if fallback not in FALLBACKS:
      raise UserError(f"data.pairs.fallback={fallback!r}; choose one of {', '.join(FALLBACKS)}")
    self.fallback = fallback
    n = len(index)
    clips = np.arange(n, dtype=np.int64)

    def codes(values):
      return np.unique(values, return_inverse=True)[1].reshape(-1).astype(np.int64)

    speaker = codes(index.speaker) if same_speaker else np.zeros(n, np.int64)
    group, emotion = codes(index.group), codes(index.emotion)
    levels = np.unique(index.intensity)
    num_groups, num_emotions, num_levels = len(np.unique(group)), len(np.unique(emotion)), len(levels)
    num_speakers = int(speaker.max(initial=-1)) + 1
    self._speaker, self._group, self._emotion = speaker, group, emotion
    self._level = np.searchsorted(levels, index.intensity).astype(np.int64)
    self._num_emotions, self._num_levels = num_emotions, num_levels
    group_speaker = np.zeros(num_groups, np.int64)
    group_speaker[group] = speaker

    # The clips of each (group, emotion) cell; per cell and intensity level, those closest to that level.
    cell = group * num_emotions + emotion
    self._cells = _Lists(cell, clips, num_groups * num_emotions)
    self._has = (self._cells.count > 0).reshape(num_groups, num_emotions)
    gap = np.abs(index.intensity[:, None] - levels) if match_intensity else np.zeros((n, num_levels))
    closest = np.full((num_groups * num_emotions, num_levels), np.inf)
    np.minimum.at(closest, cell, gap)
    member, level = np.nonzero(gap == closest[cell])
    self._closest = _Lists(cell[member] * num_levels + level, clips[member],
                           num_groups * num_emotions * num_levels)

    # The groups holding both emotions m != n, under key (speaker, m, n).
    distinct = ~np.eye(num_emotions, dtype=bool)
    g, m, other = np.nonzero(self._has[:, :, None] & self._has[:, None, :] & distinct)
    self._both = _Lists((group_speaker[g] * num_emotions + m) * num_emotions + other, g,
                        num_speakers * num_emotions * num_emotions)
    self._both_sorted = self._both.keys * num_groups + self._both.values  # to find a group on its list

    # The fallback's pools, under key (speaker, emotion) or speaker, by group; each clip's own group's block.
    pool_key = speaker * num_emotions + emotion if fallback == "same_emotion" else speaker
    num_pools = int(pool_key.max(initial=-1)) + 1
    self._pool_key = pool_key
    self._pool = _Lists(pool_key, clips, num_pools, order=np.lexsort((clips, group, pool_key)))
    block = self._pool.keys * num_groups + group[self._pool.values]  # sorted
    own = pool_key * num_groups + group
    start = np.searchsorted(block, own)
    self._pool_skip = start - self._pool.first[pool_key]
    self._pool_skipped = np.searchsorted(block, own, side="right") - start

    has_partner = self._has[group].sum(1) > 1
    self.anchors = np.flatnonzero(has_partner) if fallback == "skip" else clips
    if self.anchors.size == 0:
      raise UserError(
        "no clip has a rendition of its sentence in another emotion, so data.pairs.fallback='skip' "
        "leaves nothing to train on; use 'same_emotion' or 'mask'"
      )

  def draw(self, a: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Partners of anchors `a` [A] (int): ([A,4] int64 clips (a, b, ab, ba), [A] bool whether the pair is a
    true swap: False for the "mask" fallback). Takes 5 uniforms per anchor from `rng`."""
    a = np.asarray(a, np.int64)
    u = rng.random((len(a), 5))
    g, m, s = self._group[a], self._emotion[a], self._speaker[a]
    emotions = np.arange(self._num_emotions)
    others = self._has[g] & (emotions != m[:, None])  # [A,E] the other emotions of a's group
    both = (s[:, None] * self._num_emotions + m[:, None]) * self._num_emotions + emotions  # [A,E] keys
    # a's own group is on every list `both` of an emotion in `others`: another j exists when there are two.
    with_other = others & (self._both.count[both] > 1)
    has_other = with_other.any(1)
    choice = np.where(has_other[:, None], with_other, others)
    k = (u[:, 0] * choice.sum(1)).astype(np.int64)
    n = np.argmax(np.cumsum(choice, 1) > k[:, None], axis=1)  # the k-th emotion of `choice`
    key = both[np.arange(len(a)), n]
    own = np.searchsorted(self._both_sorted, key * len(self._has) + g) - self._both.first[key]
    gj, _ = self._both.pick_except(key, own, 1, u[:, 1])
    gj = np.where(has_other, gj, g)
    e, levels = self._num_emotions, self._num_levels
    b = self._cells.pick(gj * e + n, u[:, 2])
    ab = self._closest.pick((g * e + n) * levels + self._level[b], u[:, 3])
    ba = self._closest.pick((gj * e + m) * levels + self._level[a], u[:, 4])
    # No partner: the fallback's b, from a's pool outside a's group (a itself when there is none).
    lone, left = self._pool.pick_except(self._pool_key[a], self._pool_skip[a], self._pool_skipped[a], u[:, 2])
    lone = np.where(left, lone, a)
    paired = others.any(1)
    clips = np.stack([a, np.where(paired, b, lone), np.where(paired, ab, a), np.where(paired, ba, lone)], 1)
    return clips, paired | (self.fallback == "same_emotion")
