"""DTW pairing: warps against known phone timing (fake phones and the built-in corpus's espeak speech)."""

import fake_clips
import numpy as np
import pytest

from a2e_jax.audio import features
from a2e_jax.core import schema
from a2e_jax.data import align


@pytest.fixture(scope="module")
def clips():
  return fake_clips.make_clips(speakers=1, sentences=3, emotions=(0, 1, 5, 3), seed=4)


@pytest.fixture(scope="module")
def index(clips):
  return align.build_pair_index(clips)


def _linear_baseline_errors(index, clips):
  """Errors of the naive warp that stretches u's timeline uniformly onto v's."""
  errors = []
  for members in index.members():
    for u in members:
      for v in members:
        if u == v:
          continue
        tu, tv = index.num_frames[u], index.num_frames[v]
        frame_u = np.minimum((clips[u]["phone_start"] * 25).astype(int), tu - 1)
        true_v = np.minimum((clips[v]["phone_start"] * 25).astype(int), tv - 1)
        errors.append(np.abs(np.rint((frame_u + 0.5) * tv / tu - 0.5) - true_v))
  return np.concatenate(errors)


def test_dtw_recovers_phone_timing(index, clips):
  score = align.score_alignment(index, clips)
  assert score["pairs"] == 3 * 4 * 3 and score["unmatched_phones"] == 0
  assert score["median_abs_error_frames"] <= 1.0
  baseline = _linear_baseline_errors(index, clips)
  assert score["mean_abs_error_frames"] < 0.6 * baseline.mean()  # the renditions are not uniform stretches


def test_index_layout_and_round_trip(index, clips, tmp_path):
  assert len(index) == len(clips) and index.has_warps
  assert len(index.members()) == 3 and all(len(m) == 4 for m in index.members())
  u, v = index.members()[0][:2]
  warp = index.warp(int(u), int(v))
  assert warp.shape == (index.num_frames[u],) and warp.min() >= 0 and warp.max() < index.num_frames[v]
  assert np.all(np.diff(warp) >= 0)  # DTW paths are monotonic
  np.testing.assert_array_equal(index.warp(int(u), int(u)), np.arange(index.num_frames[u]))
  with pytest.raises(ValueError, match="not renditions"):
    index.warp(int(index.members()[0][0]), int(index.members()[1][0]))
  path = tmp_path / "pairs.npz"
  index.save(str(path))
  loaded = align.PairIndex.load(str(path))
  for field in ("clip_id", "speaker", "group", "warp_base", "warps"):
    np.testing.assert_array_equal(getattr(loaded, field), getattr(index, field))
  np.testing.assert_array_equal(loaded.warp(int(u), int(v)), warp)


@pytest.mark.slow
def test_parallel_build_equals_serial(index, clips):
  parallel = align.build_pair_index(clips, workers=2)
  np.testing.assert_array_equal(parallel.warps, index.warps)
  np.testing.assert_array_equal(parallel.warp_base, index.warp_base)


def test_phones_matched_across_insertions():
  iu, iv = align._matched_phones(np.array([0, 5, 6, 7, 0]), np.array([0, 5, 9, 6, 7, 0]))
  np.testing.assert_array_equal(iu, [0, 1, 2, 3, 4])
  np.testing.assert_array_equal(iv, [0, 1, 3, 4, 5])


def test_frame_warp_of_a_known_path():
  """v is u slowed down 2x: mel frame k of u matches frames 2k, 2k+1 of v."""
  mel_u, frames_u, frames_v = 33, 10, 20
  path = np.array([(k, 2 * k + d) for k in range(mel_u) for d in (0, 1)])
  warp = align.frame_warp(path, mel_u, frames_u, frames_v)
  # frame t of u: mel position 3.2 t + 1.6 -> v mel 2 (3.2 t + 1.6) + 0.5 -> v frame that / 3.2 - 0.5.
  expect = np.clip(np.rint((2 * (3.2 * np.arange(10) + 1.6) + 0.5) / 3.2 - 0.5), 0, 19)
  np.testing.assert_array_equal(warp, expect)


def test_built_in_corpus_speech_aligns_within_a_frame():
  """Three renditions of one sentence by the built-in corpus's espeak speaker, scored on their true phones."""
  from a2e_jax.data.synth.utterance import synthesize_utterance

  clips = []
  for k, (emotion, intensity) in enumerate((("neutral", 1), ("angry", 3), ("sad", 2))):
    wav, phones, seq = synthesize_utterance(
      "The quick brown fox jumps over the lazy dog.", 1, emotion, intensity, k
    )
    clips.append(
      {
        "clip_id": emotion,
        "speaker": "s",
        "sentence": "fox",
        "emotion": schema.emotion_index(emotion),
        "intensity": intensity,
        "coeffs": seq.coeffs,
        "phones": phones.ids,
        "phone_start": phones.start_s,
        "mel": features.log_mel(features.crop_or_pad(wav, seq.num_frames)),
      }
    )
  score = align.score_alignment(align.build_pair_index(clips), clips)
  assert score["pairs"] >= 2 and score["median_abs_error_frames"] <= 1.0
