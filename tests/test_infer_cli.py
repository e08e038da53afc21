"""`a2e generate` and `a2e demo` on a random network bundle: files per format, BFM exports, user errors,
batch mode with a broken input, and the weights bundle itself."""

import json
import subprocess

import jax
import numpy as np
import pytest
import soundfile
from infer_helpers import random_weights, speechlike, without_compilation_cache

from a2e_jax import cli
from a2e_jax.core.channels import BFM_CHANNELS, ICT_CHANNELS
from a2e_jax.core.errors import UserError
from a2e_jax.formats.files import read_sequence
from a2e_jax.infer import weights as weights_module

pytestmark = pytest.mark.slow  # generates, exports and renders videos


@pytest.fixture(scope="module", autouse=True)
def _no_compilation_cache():
  yield from without_compilation_cache()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
  w = random_weights()
  folder = str(tmp_path_factory.mktemp("bundle"))
  card = {"channel_names": list(w.channel_names), "face_model": "builtin", "window_frames": 16}
  weights_module.save_bundle(folder, w.config, w.params, card)
  return folder


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("audio") / "hello.wav")
  soundfile.write(path, speechlike(1.6), 16000)
  return path


@pytest.fixture(scope="module")
def fake_bfm(tmp_path_factory):
  """A model in BFM's 64-coefficient space on the built-in mesh: each coefficient a mix of its channels."""
  from a2e_jax.face.builtin import builtin_model

  face = builtin_model().to_numpy()
  mix = np.random.default_rng(0).standard_normal((face.num_exp, len(BFM_CHANNELS))).astype(np.float32) * 0.3
  bfm = face.replace(exp_basis=np.einsum("ndk,kc->ndc", face.exp_basis, mix), channel_names=BFM_CHANNELS,
                     name="bfm")
  path = str(tmp_path_factory.mktemp("bfm") / "bfm.npz")
  bfm.save(path)
  return path


def _a2e(*args) -> int:
  return cli.main([str(a) for a in args])


def test_generate_writes_every_format_it_can(bundle, speech, tmp_path, capsys):
  out = tmp_path / "out"
  assert _a2e("generate", "--audio", speech, "--checkpoint", bundle, "--out", out, "--emotion", "happy@3",
              "--blink", "rate=30") == 0
  printed = capsys.readouterr().out
  assert "skipped sadtalker" in printed and "--bfm" in printed
  seq = read_sequence(str(out / "hello.npz"))
  assert seq.coeffs.shape == (40, 53) and seq.channel_names == ICT_CHANNELS and seq.eye.shape == (40, 4)
  assert read_sequence(str(out / "hello_arkit.csv")).num_frames == 40
  assert read_sequence(str(out / "hello.glb")).num_frames == 40
  assert not (out / "hello_sadtalker.mat").exists()


def test_bfm_exports_need_a_bfm_model(bundle, speech, fake_bfm, tmp_path, capsys):
  assert _a2e("generate", "--audio", speech, "--checkpoint", bundle, "--out", tmp_path,
              "--export", "sadtalker") == 2
  error = capsys.readouterr().err.strip()
  assert "--bfm" in error and len(error.splitlines()) == 1
  assert _a2e("generate", "--audio", speech, "--checkpoint", bundle, "--out", tmp_path, "--bfm", fake_bfm,
              "--export", "sadtalker,pirenderer") == 0
  sadtalker = read_sequence(str(tmp_path / "hello_sadtalker.mat"))
  assert sadtalker.coeffs.shape == (40, 64) and sadtalker.channel_names == BFM_CHANNELS
  assert np.load(tmp_path / "hello_pirenderer.npy").shape == (40, 73)
  assert np.abs(sadtalker.coeffs).max() > 0  # retargeted, not blank columns


@pytest.mark.parametrize("args, fragment", [
  (("--emotion", "joyful"), "unknown emotion"),
  (("--emotion", "happy", "--emotion-schedule", "0:sad"), "not allowed with"),
  (("--blink", "sometimes"), "--blink"),
  (("--export", "fbx"), "unknown format"),
  (("--ref", "missing.npz"), "not found"),
  (("--audio", "missing.wav"), "not found"),
])
def test_user_errors_are_one_line(bundle, speech, tmp_path, capsys, args, fragment):
  assert _a2e("generate", "--audio", speech, "--checkpoint", bundle, "--out", tmp_path, *args) == 2
  captured = capsys.readouterr()
  error = captured.err.strip()
  assert fragment in error and len(error.splitlines()) == 1
  assert captured.out == ""  # nothing else, not even the default exports' "skipped" notes


def test_batch_goes_on_after_a_broken_input(bundle, tmp_path, capsys):
  clips = tmp_path / "clips"
  clips.mkdir()
  for name, seconds in (("a", 1.0), ("b", 0.7)):
    soundfile.write(str(clips / f"{name}.wav"), speechlike(seconds), 16000)
  (clips / "broken.wav").write_bytes(b"RIFF not really a wav")
  out = tmp_path / "out"
  assert _a2e("generate", "--audio", clips, "--checkpoint", bundle, "--out", out, "--export", "npz",
              "--no-progress") == 1
  report = json.loads((out / "batch_report.json").read_text())
  assert (report["ok"], report["failed"]) == (2, 1)
  failed = [r for r in report["items"] if r["status"] == "failed"]
  assert failed[0]["audio"].endswith("broken.wav") and "broken.wav" in failed[0]["error"]
  assert (out / "a.npz").exists() and (out / "b.npz").exists()
  assert "2 of 3 clips done" in capsys.readouterr().out


def test_manifest_items_override_the_flags(bundle, tmp_path):
  soundfile.write(str(tmp_path / "x.wav"), speechlike(1.0), 16000)
  manifest = tmp_path / "list.jsonl"
  manifest.write_text(json.dumps({"audio": "x.wav", "out": "x_sad", "emotion": "sad@3"}) + "\n" +
                      json.dumps({"audio": "x.wav", "out": "x_happy", "emotion": "happy@3"}) + "\n")
  out = tmp_path / "out"
  assert _a2e("generate", "--audio", manifest, "--checkpoint", bundle, "--out", out, "--export", "npz",
              "--blink", "none", "--gaze", "still", "--no-progress") == 0
  sad, happy = (read_sequence(str(out / f"x_{e}.npz")).coeffs for e in ("sad", "happy"))
  assert np.abs(sad - happy).mean() > 1e-3
  manifest.write_text('{"audio": "x.wav", "colour": "red"}\n')
  assert _a2e("generate", "--audio", manifest, "--checkpoint", bundle, "--out", out) == 2


def test_demo_speaks_and_writes_what_it_can(bundle, tmp_path, capsys):
  out = tmp_path / "demo"
  assert _a2e("demo", "--checkpoint", bundle, "--out", out, "--no-video", "--text", "Hello there.") == 0
  printed = capsys.readouterr().out
  assert "skipped sadtalker" in printed and "skipped pirenderer" in printed
  info = soundfile.info(str(out / "demo.wav"))
  assert info.samplerate == 16000 and info.frames > 0.5 * 16000
  for name in ("demo.npz", "demo_arkit.csv", "demo.glb"):
    assert (out / name).stat().st_size > 0
  assert read_sequence(str(out / "demo.npz")).num_frames == info.frames // 640


def test_weights_bundle_round_trip(tmp_path, monkeypatch):
  w = random_weights()
  size = weights_module.save_bundle(str(tmp_path), w.config, w.params, {"window_frames": 16},
                                    dtype=np.float16)
  assert size < 0.6 * sum(x.size * 4 for x in jax.tree.leaves(w.params))
  loaded = weights_module.load_weights(str(tmp_path))
  assert loaded.config.to_dict() == w.config.to_dict() and loaded.channel_names == ICT_CHANNELS
  for a, b in zip(jax.tree.leaves(loaded.params), jax.tree.leaves(w.params)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-3)
  monkeypatch.setattr(weights_module, "DEMO_DIR", str(tmp_path / "none"))
  with pytest.raises(UserError, match="tools/train_demo.py"):
    weights_module.load_weights()
  with pytest.raises(UserError, match="not a folder"):
    weights_module.load_weights(str(tmp_path / "missing"))


def test_video_has_frames_and_sound(bundle, tmp_path):
  import imageio_ffmpeg

  audio = str(tmp_path / "short.wav")
  soundfile.write(audio, speechlike(0.8), 16000)
  assert _a2e("generate", "--audio", audio, "--checkpoint", bundle, "--out", tmp_path, "--export", "npz",
              "--video", "--size", "64") == 0
  frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(tmp_path / "short.mp4"))
  assert frames == 20 and abs(seconds - 0.8) < 0.05
  probe = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(tmp_path / "short.mp4")],
                         capture_output=True, text=True).stderr
  assert "Audio: aac" in probe and "Video: h264" in probe


def test_bfm_reference_and_bfm_output_model(bundle, speech, fake_bfm, tmp_path):
  import scipy.io

  rng = np.random.default_rng(1)
  first = np.zeros((1, 73))
  first[0, :64] = rng.normal(0, 0.5, 64)
  full = np.zeros((1, 257))
  full[0, 80:144] = first[0, :64]
  scipy.io.savemat(str(tmp_path / "first_frame.mat"), {"coeff_3dmm": first, "full_3dmm": full})
  out = tmp_path / "out"
  assert _a2e("generate", "--audio", speech, "--checkpoint", bundle, "--out", out, "--export", "npz",
              "--ref", tmp_path / "first_frame.mat", "--bfm", fake_bfm) == 0
  beta0 = read_sequence(str(out / "hello.npz")).beta0
  assert beta0.shape == (53,) and np.abs(beta0).max() > 1e-3  # the .mat's identity, retargeted
  assert _a2e("generate", "--audio", speech, "--checkpoint", bundle, "--out", out, "--model", fake_bfm,
              "--export", "npz,sadtalker") == 0
  seq = read_sequence(str(out / "hello.npz"))
  assert seq.channel_names == BFM_CHANNELS and seq.num_frames == 40
  assert read_sequence(str(out / "hello_sadtalker.mat")).coeffs.shape == (40, 64)
