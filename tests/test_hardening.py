"""Finite in, finite out, whole files or none: the value checks of the coefficient readers and face-model
converters, atomic outputs, batch-manifest paths, truncated audio, one-line warnings."""

import contextlib
import io
import os
import warnings

import numpy as np
import pytest
import soundfile

from a2e_jax.audio import io as audio_io
from a2e_jax.cli import console
from a2e_jax.core import channels
from a2e_jax.core.errors import UserError
from a2e_jax.core.outputs import atomic_output
from a2e_jax.face.obj import read_obj
from a2e_jax.formats.files import read_sequence, write_sequence
from a2e_jax.formats.sequence import CoeffSequence, check_values, save_npz
from a2e_jax.infer import batch


def _seq(frames=6):
  coeffs = np.linspace(0, 1, frames * 53, dtype=np.float32).reshape(frames, 53)
  return CoeffSequence(coeffs=coeffs, channel_names=channels.ICT_CHANNELS, fps=25.0, model="builtin")


def test_check_values_names_the_frame_and_the_column():
  array = np.zeros((5, 3))
  array[3, 2] = np.nan
  with pytest.raises(UserError, match=r"^f.npz: frame 3, column 2 \(c\): nan is not finite"):
    check_values(array, "f.npz", ("a", "b", "c"))
  array[3, 2] = -2e4
  with pytest.raises(UserError, match=r"column 2 \(c\): -20000 exceeds 10000 in magnitude"):
    check_values(array, "f.npz", ("a", "b", "c"))
  check_values(np.full((2, 2), 9999.0), "fine")


def test_writers_refuse_non_finite_values_and_leave_no_file(tmp_path):
  seq = _seq()
  seq.coeffs[2, 7] = np.inf
  for name in ("x.npz", "x.csv", "sub/x.npz"):
    with pytest.raises(UserError, match=rf"coefficients for \S+{name}: coeffs: frame 2, column 7 "):
      write_sequence(str(tmp_path / name), seq)
  with pytest.raises(UserError, match="frame 2, column 7"):
    save_npz(str(tmp_path / "direct.npz"), seq)
  assert os.listdir(tmp_path) == []


def test_npz_errors_say_what_is_wrong_once(tmp_path):
  path = tmp_path / "x.npz"
  path.write_text("not a zip")
  with pytest.raises(UserError) as caught:
    read_sequence(str(path))
  message = str(caught.value)
  assert "pickled" not in message and message.count("not an a2e coefficient .npz") == 1
  assert "not a zip archive" in message


def test_atomic_output_removes_the_temporary_file_and_the_folders_it_made(tmp_path):
  target = tmp_path / "new" / "deeper" / "x.npz"
  with pytest.raises(RuntimeError), atomic_output(str(target)) as temporary:
    open(temporary, "w").write("half")
    raise RuntimeError("disk full")
  assert os.listdir(tmp_path) == []
  with atomic_output(str(target)) as temporary:
    open(temporary, "w").write("whole")
  assert target.read_text() == "whole" and os.listdir(target.parent) == ["x.npz"]


def test_obj_with_a_nan_vertex_is_refused_naming_the_vertex(tmp_path):
  path = tmp_path / "m.obj"
  path.write_text("v 0 0 0\nv 1 nan 0\nv 0 1 0\nf 1 2 3\n")
  with pytest.raises(UserError, match=r"m.obj: vertex 2, coordinate y: nan is not finite"):
    read_obj(str(path))


def test_a_face_model_with_nan_is_not_written(tmp_path):
  from a2e_jax.face.registry import resolve_model

  model = resolve_model("builtin")
  broken = model.replace(exp_basis=np.asarray(model.exp_basis).copy())
  broken.exp_basis[0, 0, 0] = np.nan
  with pytest.raises(UserError, match="exp_basis holds NaN or inf"):
    broken.save(str(tmp_path / "m.npz"))


@pytest.mark.parametrize("out, ok", [("clip1", True), ("speaker/clip1", True), ("../x", False),
                                     ("/abs/x", False), ("a/../../x", False), ("~/x", False), ("", False)])
def test_batch_manifest_outputs_stay_inside_out(tmp_path, out, ok):
  manifest = tmp_path / "m.jsonl"
  manifest.write_text(f'{{"audio": "a.wav", "out": "{out}"}}\n')
  if ok:
    assert batch.read_items(str(manifest))[0].stem == out
  else:
    with pytest.raises(UserError, match=r"m.jsonl:1: \"out\" .* would be written outside --out"):
      batch.read_items(str(manifest))


def test_a_truncated_wav_is_read_with_a_one_line_warning(tmp_path):
  path = tmp_path / "cut.wav"
  soundfile.write(path, np.random.default_rng(0).uniform(-0.3, 0.3, 44_160).astype(np.float32), 16_000,
                  subtype="PCM_16")
  raw = path.read_bytes()
  path.write_bytes(raw[: 44 + 29_410])
  with pytest.warns(audio_io.TruncatedWarning, match=r"declares 88,320 bytes of samples, 29,410 are there"):
    wav = audio_io.load_audio(str(path))
  assert wav.size == 29_410 // 2
  err = io.StringIO()
  with contextlib.redirect_stderr(err), console(verbose=False):
    warnings.warn("first\nsecond", audio_io.TruncatedWarning, stacklevel=1)
    warnings.warn("library noise", DeprecationWarning, stacklevel=1)
  assert err.getvalue() == "a2e: warning: first second\n"



def test_weight_bundles_with_nan_are_neither_written_nor_read(tmp_path):
  import json
  import re

  import jax
  from flax import serialization

  from a2e_jax.infer import weights

  demo = weights.load_weights()  # the bundled demo weights
  leaves, treedef = jax.tree.flatten(jax.tree.map(lambda x: np.array(x, np.float32), demo.params))
  leaves[0].reshape(-1)[0] = np.nan
  poisoned = jax.tree.unflatten(treedef, leaves)
  first = jax.tree_util.keystr(jax.tree_util.tree_leaves_with_path(poisoned)[0][0])
  with pytest.raises(UserError, match=r"holds NaN or inf; they come from a diverged run"):
    weights.save_bundle(str(tmp_path / "w"), demo.config, poisoned, {})
  folder = tmp_path / "bundle"
  folder.mkdir()
  (folder / weights.PARAMS_FILE).write_bytes(serialization.msgpack_serialize(poisoned))
  (folder / weights.CARD_FILE).write_text(json.dumps({"model": demo.config.to_dict()}))
  pattern = rf"weights in \S+bundle: parameter {re.escape(first)} holds NaN or inf"
  with pytest.raises(UserError, match=pattern):
    weights.load_bundle(str(folder))
