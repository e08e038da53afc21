"""Chunked inference: the chunk plan, mel windows from streamed audio, overlap-add, and the Generator's
passes against one-pass model calls, file streaming and the emotion/eye/identity controls."""

import functools

import jax
import numpy as np
import pytest
import soundfile
from infer_helpers import random_weights, speechlike, untrained_weights, without_compilation_cache

from a2e_jax.audio import features
from a2e_jax.core import schema
from a2e_jax.core.channels import ICT_CHANNELS
from a2e_jax.formats.sequence import CoeffSequence, save_npz
from a2e_jax.infer import generate as gen
from a2e_jax.infer import sources, streaming
from a2e_jax.models.a2enet import A2ENet

pytestmark = pytest.mark.slow  # compiles the generator for every chunk shape


@pytest.fixture(scope="module", autouse=True)
def _no_compilation_cache():
  yield from without_compilation_cache()


@pytest.mark.parametrize("frames, chunk, overlap", [(5, 16, 4), (16, 16, 4), (17, 16, 4), (100, 16, 4),
                                                    (1000, 32, 8), (50, 20, 0)])
def test_chunk_plan_covers_the_clip(frames, chunk, overlap):
  starts = streaming.chunk_starts(frames, chunk, overlap)
  length = min(chunk, frames)
  assert starts[0] == 0 and starts[-1] + length == frames
  assert all(b - a >= 1 and a + length - b >= overlap for a, b in zip(starts, starts[1:]))
  total = np.zeros(frames)
  for s in starts:
    total[s:s + length] += streaming.blend_weights(s, length, frames, overlap)
  assert total.min() > 0
  if len(starts) > 2 and starts[-1] - starts[-2] == chunk - overlap:
    np.testing.assert_allclose(total, 1.0)  # complementary ramps need no normalisation


def _pieces(array, rng):
  """`array` split into blocks of random sizes (0 included)."""
  cuts = np.sort(rng.integers(0, len(array), 12))
  return np.split(array, cuts)


def test_streamed_windows_and_overlap_add_equal_one_pass():
  """A per-frame function applied chunk by chunk to streamed audio gives its one-pass value exactly."""
  rng = np.random.default_rng(0)
  frames, chunk, overlap = 203, 32, 8
  wav = speechlike(frames / 25 + 0.013)
  windows_all = features.mel_windows(features.log_mel(features.crop_or_pad(wav, frames)), frames)
  expected = windows_all.mean(axis=1)  # [T,80]: depends only on each frame's own window
  blender = streaming.OverlapAdd(frames, overlap)
  starts = streaming.chunk_starts(frames, chunk, overlap)
  out = []
  blocks = streaming.whole_frames(_pieces(wav, rng))
  for index, start, windows in streaming.iter_chunk_windows(blocks, frames, chunk, overlap):
    np.testing.assert_allclose(windows, windows_all[start:start + chunk], atol=1e-5)
    following = starts[index + 1] if index + 1 < len(starts) else None
    out.append(blender.add(start, windows.mean(axis=1), following))
  np.testing.assert_allclose(np.concatenate(out), expected, atol=1e-5)


def test_chunk_windows_hold_bounded_mel():
  chunker = streaming.ChunkWindows(25 * 3600, 32, 8)
  rng = np.random.default_rng(0)
  for _ in range(300):  # 300 pieces of ~1 s of mel
    chunker.push(rng.standard_normal((80, schema.MEL_BANDS)).astype(np.float32))
  assert chunker.max_buffered < 2 * 80 + 32 * 4  # about one piece plus a chunk's span, not the hour


@pytest.fixture(scope="module")
def generator():
  # Chunking against one pass: without auto's neutral fallback and the pause gate, which change the output
  # on purpose (tests/test_infer_pauses_confidence.py).
  return gen.Generator(random_weights(), chunk_frames=16, overlap_frames=4, emotion_threshold=0.0,
                       pause_threshold=0.0)


def _one_pass(weights, wav, beta0=None, eye=None):
  """Coefficients of one model call over the whole clip (no chunks), emotion from the speech."""
  frames = wav.size // schema.SAMPLES_PER_FRAME
  mel = features.mel_windows(features.log_mel(features.crop_or_pad(wav, frames)), frames)[None]
  mask = np.ones((1, frames), np.float32)
  module, variables = A2ENet(weights.config), {"params": weights.params}
  content = module.apply(variables, mel, mask, method="encode_content")
  _, pooled, _, _ = module.apply(variables, mel, mask, method="encode_emotion")
  beta0 = np.zeros((1, 53), np.float32) if beta0 is None else beta0[None]
  eye = np.zeros((1, frames, 4), np.float32) if eye is None else eye[None]
  return np.clip(np.asarray(module.apply(variables, content, pooled, beta0, eye, mask,
                                         method="decode_expression"))[0], 0, 1)


def test_short_audio_equals_one_pass(generator):
  wav = speechlike(0.6)  # 15 frames: one chunk, padded to 16
  result = generator(wav, 16000, blink="none", gaze="still")
  assert result.coeffs.shape == (15, 53)
  np.testing.assert_allclose(result.coeffs, _one_pass(generator.weights, wav), atol=2e-5)
  assert result.seq.eye.shape == (15, 4) and result.seq.pose.shape == (15, 6)
  assert result.speech_emotion.shape == (8,) and result.speech_emotion.sum() == pytest.approx(1.0)


def test_file_streaming_equals_in_memory(generator, tmp_path, monkeypatch):
  wav = speechlike(6.3, seed=1)
  path = str(tmp_path / "speech.wav")
  soundfile.write(path, wav, 16000, subtype="FLOAT")
  in_memory = generator(wav, 16000, seed=3)
  monkeypatch.setattr(sources, "STREAM_SECONDS", 1.0)
  monkeypatch.setattr(sources, "CACHED_CHUNKS", 0)
  streamed = generator(path, seed=3)
  np.testing.assert_allclose(streamed.coeffs, in_memory.coeffs, atol=1e-5)
  np.testing.assert_array_equal(streamed.seq.eye, in_memory.seq.eye)


def test_compiles_once_for_any_length(generator):
  for seconds in (0.3, 2.0, 5.1):
    generator(speechlike(seconds), 16000)
  assert generator.network.decode_fn._cache_size() == 1 and generator.network.emotion_fn._cache_size() == 1


def test_emotion_controls(generator):
  wav = speechlike(4.0, seed=2)
  generator = functools.partial(generator, blink="none", gaze="still")  # eyes apart: blink rates vary
  speech = generator(wav, 16000, seed=0).coeffs
  happy = generator(wav, 16000, emotion="happy@3", seed=0).coeffs
  sad = generator(wav, 16000, emotion="sad@3", seed=0).coeffs
  neutral = generator(wav, 16000, emotion="neutral", seed=0).coeffs
  zero_sad = generator(wav, 16000, emotion="sad", intensity=0, seed=0).coeffs
  zero_happy = generator(wav, 16000, emotion="happy@0", seed=0).coeffs
  assert np.abs(happy - sad).mean() > 1e-3 and np.abs(happy - speech).mean() > 1e-3
  np.testing.assert_allclose(zero_sad, zero_happy, atol=1e-6)  # intensity 0: the same whatever the label
  blend = generator(wav, 16000, emotion="happy=0.5+sad=0.5@3", seed=0).coeffs
  assert 0 < np.abs(blend - happy).mean() < np.abs(sad - happy).mean()
  # Chunks (16 frames, hop 12) that end before the change at 2 s see only neutral.
  scheduled = generator(wav, 16000, emotion_schedule="0:neutral,2:happy@3", seed=0).coeffs
  np.testing.assert_allclose(scheduled[:36], neutral[:36], atol=1e-6)
  np.testing.assert_allclose(scheduled[-12:], happy[-12:], atol=1e-6)
  other = speechlike(3.0, seed=9) * 0.2
  from_clip = generator(wav, 16000, emotion_from=other, seed=0).coeffs
  assert np.abs(from_clip - speech).mean() > 1e-4


def test_blink_gate_follows_the_control(generator):
  wav = speechlike(8.0, seed=3)
  track = np.zeros((200, 2), np.float32)
  track[[20, 21, 90, 150], 0] = track[[20, 21, 90, 151], 1] = 1.0
  result = generator(wav, 16000, blink=track, seed=1)
  np.testing.assert_array_equal(result.seq.eye[:, :2], track)
  blink = result.coeffs[:, [ICT_CHANNELS.index("eyeBlink_L"), ICT_CHANNELS.index("eyeBlink_R")]]
  np.testing.assert_allclose(blink[track == 1.0], 1.0, atol=1e-5)  # a closed control closes the lid
  auto = generator(wav, 16000, blink="rate=40", seed=1).seq.eye
  assert auto[:, :2].max() > 0.85 and auto[:, :2].min() == 0.0


def test_identity_and_pose_from_a_reference(tmp_path):
  beta0 = np.random.default_rng(0).uniform(0, 0.3, 53).astype(np.float32)
  pose = np.tile(np.array([0.1, -0.2, 0.05, 0.0, 0.1, 0.0], np.float32), (4, 1))
  save_npz(str(tmp_path / "ref.npz"), CoeffSequence(np.zeros((4, 53), np.float32), ICT_CHANNELS, pose=pose,
                                                    beta0=beta0, model="builtin"))
  untrained = gen.Generator(untrained_weights(), chunk_frames=16, overlap_frames=4)
  result = untrained(speechlike(2.0), 16000, ref=str(tmp_path / "ref.npz"), blink="none")
  np.testing.assert_allclose(result.coeffs, np.broadcast_to(beta0, result.coeffs.shape), atol=1e-6)
  np.testing.assert_array_equal(result.seq.beta0, beta0)
  np.testing.assert_array_equal(result.seq.pose, np.broadcast_to(pose[0], (50, 6)))
  moving = untrained(speechlike(2.0), 16000, pose=str(tmp_path / "ref.npz"))
  assert moving.seq.pose.shape == (50, 6)


def test_generate_api_and_lazy_export():
  import subprocess
  import sys

  code = ("import sys, a2e_jax; assert 'jax' not in sys.modules; "
          "from a2e_jax import generate; assert callable(generate)")
  subprocess.run([sys.executable, "-c", code], check=True)
  result = gen.generate(speechlike(1.0), 16000, weights=random_weights(), emotion="angry")
  assert result.seq.channel_names == ICT_CHANNELS and result.emotion == "angry@2"
  assert jax.numpy.isfinite(result.coeffs).all()
